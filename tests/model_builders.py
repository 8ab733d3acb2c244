"""Small real models for tests and benchmarks, built locally (no hub): tokenizer, checkpoints, training.

* a byte-level BPE tokenizer trained on text from Python's standard library, with a ChatML template
  that supports `enable_thinking` (MiniCPM4.1 / Qwen3 style);
* a tiny Llama and a tiny MiniCPM4 (the real MiniCPM4-0.5B config scaled down, real tokenizer), each
  trained for a few hundred steps so their next-token choices are confident like a real model's;
* a MiniCPM4-0.5B-shaped checkpoint (real config, random weights) for the export benchmark.
"""

from __future__ import annotations

import json
import math
import shutil
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MINICPM_CONFIG_DIR = SHARED / "data" / "minicpm4-0.5b"
MINICPM_TOKENIZER_DIR = SHARED / "data" / "minicpm4-fast-tokenizer"

CHATML_THINKING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{% set content = message['content'].split('</think>')[-1].lstrip('\\n') %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
    "{% endif %}"
)


def corpus_text(max_chars: int = 1_500_000) -> str:
    """Deterministic English/code text from this Python's standard library sources."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    size = 0
    for file in sorted(stdlib.glob("*.py")):
        text = file.read_text(encoding="utf-8", errors="ignore")
        parts.append(text)
        size += len(text)
        if size >= max_chars:
            break
    return "\n".join(parts)[:max_chars]


def build_bpe_tokenizer(out: Path, vocab_size: int = 4096) -> None:
    """Train a byte-level BPE tokenizer and save it as a transformers fast tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = corpus_text()
    tokenizer.train_from_iterator((text[i:i + 4096] for i in range(0, len(text), 4096)), trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                 bos_token=None, unk_token=None)
    hf.chat_template = CHATML_THINKING_TEMPLATE
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out)
    _portable_tokenizer_config(out)


def _portable_tokenizer_config(out: Path) -> None:
    """Make tokenizer_config.json loadable by every transformers version (class name, special-token list)."""
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = config.pop("extra_special_tokens", None)
    if isinstance(extra, list):
        config["additional_special_tokens"] = extra
    for key in ("backend", "is_local"):
        config.pop(key, None)
    template = out / "chat_template.jinja"
    if template.is_file():
        config["chat_template"] = template.read_text()
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False))


def _token_batches(ids, seq: int, batch: int, steps: int, seed: int):
    import torch

    data = torch.tensor(ids, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        starts = torch.randint(0, len(data) - seq - 1, (batch,), generator=generator)
        yield torch.stack([data[s:s + seq] for s in starts.tolist()])


def _train(model, forward, ids: list[int], steps: int, seq: int, batch: int, lr: float) -> float:
    """Next-token training with AdamW and cosine decay; returns the final loss."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    loss = torch.tensor(0.0)
    model.train()
    for chunk in _token_batches(ids, seq, batch, steps, seed=0):
        logits = forward(chunk[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    return float(loss.detach())


def synthetic_chats(tokenizer, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, completion) chat turns with hybrid reasoning: most think in `<think>…</think>`, some do not."""
    import random

    rng = random.Random(seed)
    names = ["apples", "books", "stones", "coins", "cups", "birds"]
    chats = []
    for index in range(count):
        a, b, thing = rng.randint(1, 9), rng.randint(1, 9), rng.choice(names)
        question = f"I have {a} {thing} and get {b} more. How many {thing} do I have?"
        answer = f"You have {a + b} {thing}."
        think = index % 4 != 0  # three in four turns reason
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                               add_generation_prompt=True, enable_thinking=think)
        reasoning = f"<think>\nStart with {a}. Add {b}. {a} plus {b} is {a + b}.\n</think>\n\n" if think else ""
        chats.append((prompt, reasoning + answer + "<|im_end|>\n"))
    return chats


def build_tiny_llama(out: Path, steps: int = 300) -> dict:
    """A 4-layer Llama (hidden 256, FFN 1024, vocab 4096) trained briefly; weights dominate its size.

    Its corpus mixes library source text with chat turns that reason in `<think>` blocks, so the model
    really produces thinking when its template asks for it.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    build_bpe_tokenizer(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=4096,
                         rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=None,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    text = corpus_text(400_000)
    chats = iter(synthetic_chats(tokenizer, 2000))
    ids: list[int] = []
    for start in range(0, len(text), 2000):
        ids += tokenizer(text[start:start + 2000] + "\n")["input_ids"]
        for _ in range(10):  # prompt and completion encoded apart, exactly as they are at inference time
            prompt, completion = next(chats)
            ids += tokenizer(prompt)["input_ids"] + tokenizer(completion)["input_ids"]
    loss = _train(model, lambda x: model(x).logits, ids, steps, seq=128, batch=16, lr=3e-3)
    model.save_pretrained(out)
    (out / "generation_config.json").write_text(json.dumps(
        {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}, indent=2))
    return {"final_loss": loss, "params": sum(p.numel() for p in model.parameters())}


def scaled_minicpm_config(hidden: int = 256, layers: int = 4, heads: int = 4, kv_heads: int = 2,
                          intermediate: int = 1024) -> dict:
    """The real MiniCPM4-0.5B config with fewer layers and a smaller width; muP and LongRoPE kept as they are."""
    config = json.loads((MINICPM_CONFIG_DIR / "config.json").read_text())
    config.update(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  num_key_value_heads=kv_heads, intermediate_size=intermediate, tie_word_embeddings=True,
                  torch_dtype="float32")
    return config


def _write_minicpm_folder(out: Path, config: dict, state: dict) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in state.items() if k != "lm_head.weight"}  # tied
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy2(MINICPM_TOKENIZER_DIR / name, out / name)
    shutil.copy2(MINICPM_CONFIG_DIR / "generation_config.json", out / "generation_config.json")


def build_tiny_minicpm(out: Path, steps: int = 200) -> dict:
    """A MiniCPM4 scaled down from the real 0.5B config, with the real tokenizer, trained briefly."""
    import torch
    from transformers import AutoTokenizer

    from export.minicpm_reference import MiniCPMReference

    torch.manual_seed(0)
    config = scaled_minicpm_config()
    model = MiniCPMReference(config)
    for name, param in model.named_parameters():
        if param.dim() == 2:
            torch.nn.init.normal_(param, std=0.05 if "embed" in name else 0.02)
    tokenizer = AutoTokenizer.from_pretrained(MINICPM_TOKENIZER_DIR)
    ids = tokenizer(corpus_text(300_000))["input_ids"]
    loss = _train(model, model, ids, steps, seq=64, batch=8, lr=3e-3)
    _write_minicpm_folder(out, config, model.state_dict())
    return {"final_loss": loss, "params": sum(p.numel() for p in model.parameters())}


def build_minicpm4_05b_shaped(out: Path) -> dict:
    """MiniCPM4-0.5B's real config and tokenizer with random weights (bf16, as upstream ships)."""
    import torch

    from export.minicpm_reference import MiniCPMReference

    torch.manual_seed(0)
    config = json.loads((MINICPM_CONFIG_DIR / "config.json").read_text())
    config["tie_word_embeddings"] = True
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in MiniCPMReference(config).state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            state[name] = torch.ones(shape, dtype=torch.bfloat16)
        else:
            state[name] = (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16)
    _write_minicpm_folder(out, config, state)
    return {"params": sum(math.prod(s) for n, s in shapes.items() if n != "lm_head.weight")}


def minicpm4_8b_config(layers: int = 32) -> dict:
    """MiniCPM4-8B's widths on the real MiniCPM4 config (hidden 4096, FFN 16384, 32/2 heads, untied head), with
    the 64-value LongRoPE factors the MiniCPM README gives for 4.1-8B and `layers` decoder layers."""
    import re

    config = json.loads((MINICPM_CONFIG_DIR / "config.json").read_text())
    readme = (SHARED / "seeds" / "minicpm-github-readme.txt").read_text(encoding="utf-8", errors="replace")
    factors = [float(v) for v in re.search(r'"short_factor": \[([^\]]+)\]', readme).group(1).split(",")]
    config.update(hidden_size=4096, intermediate_size=16384, num_attention_heads=32, num_key_value_heads=2,
                  num_hidden_layers=layers, vocab_size=73448, tie_word_embeddings=False, rms_norm_eps=1e-6,
                  max_position_embeddings=65536)
    config["rope_scaling"] = {"rope_type": "longrope", "long_factor": factors, "short_factor": factors,
                              "original_max_position_embeddings": 65536}
    return config


def minicpm_tensor_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor of a MiniCPM checkpoint (Hugging Face names), in file order."""
    hidden, inner, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    head_dim = hidden // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * head_dim
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (hidden,), p + "self_attn.q_proj.weight": (hidden, hidden),
                       p + "self_attn.k_proj.weight": (kv, hidden), p + "self_attn.v_proj.weight": (kv, hidden),
                       p + "self_attn.o_proj.weight": (hidden, hidden),
                       p + "post_attention_layernorm.weight": (hidden,), p + "mlp.gate_proj.weight": (inner, hidden),
                       p + "mlp.up_proj.weight": (inner, hidden), p + "mlp.down_proj.weight": (hidden, inner)})
    shapes["model.norm.weight"] = (hidden,)
    if not config.get("tie_word_embeddings"):
        shapes["lm_head.weight"] = (vocab, hidden)
    return shapes


def write_random_minicpm(out: Path, config: dict, shard_bytes: int = 4 << 30, seed: int = 0,
                         layer_std: float = 0.002) -> int:
    """A MiniCPM checkpoint with random bf16 weights, written tensor by tensor into sharded safetensors with an
    index, NumPy only: memory stays at one chunk however large the model. Returns the parameter count.

    Embeddings are N(0, 0.02), layer matrices N(0, `layer_std`), norms 1; an untied `lm_head` is stored as its
    own tensor holding the embedding's values. At the 8B widths, layers drawn at N(0, 0.02) add outputs ten
    times the embedding's size and an independent random head makes every logit noise of one size, which int4
    rounding reorders: validation could then not tell a sound export from a broken one.
    """
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    shapes = minicpm_tensor_shapes(config)
    shards: list[list[str]] = [[]]
    size = 0
    for name, shape in shapes.items():
        nbytes = 2 * math.prod(shape)
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    weight_map = {}
    for index, names in enumerate(shards):
        file = f"model-{index + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {}, 0
        for name in names:
            nbytes = 2 * math.prod(shapes[name])
            header[name] = {"dtype": "BF16", "shape": list(shapes[name]), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = file
        blob = json.dumps(header).encode()
        blob += b" " * (-len(blob) % 8)
        with (out / file).open("wb") as handle:
            handle.write(len(blob).to_bytes(8, "little") + blob)
            for name in names:
                count = math.prod(shapes[name])
                if len(shapes[name]) == 1:
                    handle.write(np.full(count, 0x3F80, np.uint16).tobytes())  # bf16 1.0
                    continue
                rng = np.random.default_rng([seed, list(shapes).index(
                    "model.embed_tokens.weight" if name == "lm_head.weight" else name)])
                for start in range(0, count, 1 << 24):
                    std = 0.02 if name in ("model.embed_tokens.weight", "lm_head.weight") else layer_std
                    values = rng.standard_normal(min(1 << 24, count - start), dtype=np.float32) * np.float32(std)
                    handle.write((values.view(np.uint32) >> 16).astype(np.uint16).tobytes())
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy2(MINICPM_TOKENIZER_DIR / name, out / name)
    shutil.copy2(MINICPM_CONFIG_DIR / "generation_config.json", out / "generation_config.json")
    return sum(math.prod(s) for s in shapes.values())


def write_safetensors_from_gguf(gguf: Path, out: Path) -> None:
    """A Hugging Face folder (config, tokenizer files, f16 model.safetensors) with a GGUF's weights: the real
    SmolLM2-135M-Instruct as the safetensors checkpoint users download (the hub is not reachable here)."""
    from safetensors.numpy import save_file

    from export.streaming import open_model

    model = open_model(gguf, "", out)
    reader = model.reader
    save_file({name: read_tensor_f16(reader, name) for name in reader.names()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})


def read_tensor_f16(reader, name: str):
    """One tensor of a reader, stored as f16."""
    import numpy as np

    from export.tensor_reader import read_tensor

    return np.ascontiguousarray(read_tensor(reader, name).astype(np.float16))
