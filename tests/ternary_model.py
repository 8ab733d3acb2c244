"""BitCPM4-like ternary models for tests and the benchmark: fake-quantized bf16 checkpoints, as BitCPM4 ships.

* `build_tiny_bitcpm4`: the trained tiny MiniCPM4 taken through a short ternary QAT (BitNet b1.58's absmean
  ternarization with a straight-through estimator), BitCPM4's two stages: high precision first, then QAT;
* `write_random_bitcpm4`: a checkpoint of any MiniCPM config with random ternary weights (the 0.5B-shaped bench).

Every decoder matmul weight is saved holding -s, 0 and +s only: s is computed in f32 and ±s are cast to bf16
together, so their magnitudes stay equal.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from tests.model_builders import MINICPM_CONFIG_DIR, MINICPM_TOKENIZER_DIR, _train, corpus_text, minicpm_tensor_shapes

# Scale layouts of the tiny model: attention per tensor (BitNet b1.58's absmean), gate/up per row, down per group of
# 64 columns, so one model takes every layout through the export.
TINY_LAYOUTS = {"self_attn.": ("tensor", 0), "mlp.gate_proj": ("row", 0), "mlp.up_proj": ("row", 0),
                "mlp.down_proj": ("group", 64)}


def ternarize(weight, granularity: str, group: int = 0):
    """Absmean ternarization of a torch [out, in] weight: with s = mean |W| per tensor, row or group of `group`
    columns, W -> s * clamp(round(W / s), -1, 1)."""
    rows = weight.shape[0]
    grouped = weight.reshape(rows, -1, group) if granularity == "group" else weight.reshape(rows, 1, -1)
    if granularity == "tensor":
        scale = grouped.abs().mean().clamp(min=1e-8).expand(rows, 1, 1)
    else:
        scale = grouped.abs().mean(-1, keepdim=True).clamp(min=1e-8)
    return ((grouped / scale).round().clamp(-1, 1) * scale).reshape(weight.shape)


def tiny_layout(name: str) -> tuple[str, int]:
    """The scale layout of one of the tiny model's matmul weights."""
    return next(layout for part, layout in TINY_LAYOUTS.items() if part in name)


def build_tiny_bitcpm4(out: Path, base: Path, steps: int = 20) -> dict:
    """The trained tiny MiniCPM4 in `base` after `steps` steps of ternary QAT, saved fake-quantized in bf16."""
    import torch
    from torch.nn.utils import parametrize
    from transformers import AutoTokenizer

    from export.minicpm_reference import load_reference

    class StraightThrough(torch.nn.Module):
        """The ternarized weight forward, the identity backward."""

        def __init__(self, layout: tuple[str, int]) -> None:
            super().__init__()
            self.layout = layout

        def forward(self, weight):
            return weight + (ternarize(weight, *self.layout) - weight).detach()

    torch.manual_seed(0)
    model = load_reference(base, torch.float32)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in f".{name}":
            parametrize.register_parametrization(module, "weight", StraightThrough(tiny_layout(name)))
    tokenizer = AutoTokenizer.from_pretrained(MINICPM_TOKENIZER_DIR)
    ids = tokenizer(corpus_text(60_000))["input_ids"]
    loss = _train(model, model, ids, steps, seq=64, batch=4, lr=1e-3)
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("model.safetensors", ".complete"))
    state = {}
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith(".parametrizations.weight.original"):
                name = name.replace(".parametrizations.weight.original", ".weight")
                value = ternarize(value, *tiny_layout(name))
            if name != "lm_head.weight":  # tied to the embedding
                state[name] = value.to(torch.bfloat16).contiguous()
    from safetensors.torch import save_file

    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    config["torch_dtype"] = "bfloat16"
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return {"final_loss": loss, "params": sum(v.numel() for v in state.values())}


def write_random_bitcpm4(out: Path, config: dict, std: float = 0.02, seed: int = 0) -> int:
    """A MiniCPM checkpoint (one bf16 safetensors file, NumPy only) with N(0, std) embeddings, norms of 1 and
    every decoder matmul weight ternary per tensor: s = bf16(std · sqrt(2/π)) (the absmean of N(0, std)) and each
    value round(w / s) clamped to -1..1, times s. Returns the parameter count."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    shapes = minicpm_tensor_shapes(config)
    header, offset = {}, 0
    for name, shape in shapes.items():
        nbytes = 2 * math.prod(shape)
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    scale = np.float32(std * math.sqrt(2 / math.pi)).view(np.uint32) & np.uint32(0xFFFF0000)  # a bf16 value
    scale_bits = np.uint16(scale >> 16)
    with (out / "model.safetensors").open("wb") as handle:
        handle.write(len(blob).to_bytes(8, "little") + blob)
        for index, (name, shape) in enumerate(shapes.items()):
            count = math.prod(shape)
            if len(shape) == 1:
                handle.write(np.full(count, 0x3F80, np.uint16).tobytes())  # bf16 1.0
                continue
            rng = np.random.default_rng([seed, index])
            for start in range(0, count, 1 << 24):
                values = rng.standard_normal(min(1 << 24, count - start), dtype=np.float32) * np.float32(std)
                if ".layers." in name:
                    codes = np.clip(np.rint(values / scale.view(np.float32)), -1, 1)
                    bits = np.where(codes == 0, np.uint16(0), scale_bits | np.where(codes < 0, 0x8000, 0))
                    handle.write(bits.astype(np.uint16).tobytes())
                else:
                    handle.write((values.view(np.uint32) >> 16).astype(np.uint16).tobytes())
    (out / "config.json").write_text(json.dumps({**config, "torch_dtype": "bfloat16"}, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy2(MINICPM_TOKENIZER_DIR / name, out / name)
    shutil.copy2(MINICPM_CONFIG_DIR / "generation_config.json", out / "generation_config.json")
    return sum(math.prod(s) for s in shapes.values())
