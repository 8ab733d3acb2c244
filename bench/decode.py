"""Decode benchmark: time to first token and decode speed of cpmdesk's engine against its peers, in one run.

For one model (default: the MiniCPM4-0.5B-shaped int4 export from bench/export.py) and prompts of 128,
1024 and 4096 tokens, each backend gets the same token ids (a different text per repetition, so no
prefix cache helps) and must generate exactly --new-tokens tokens (EOS ignored, greedy):

* cpmdesk: `app.engine.ChatEngine` (openvino-genai LLMPipeline) on the int4 IR;
* optimum-intel: `OVModelForCausalLM.generate` on the same int4 IR;
* transformers: PyTorch fp32 on the source checkpoint (MiniCPM's muP folded into Llama, exact);
* llama.cpp: llama-cpp-python on the same model converted to GGUF Q4_0 (llama.cpp's own MiniCPM converter).

Also prints the memory-bandwidth bound: weight + KV bytes read per decoded token against measured copy
bandwidth. One JSON line per measurement; ratios are against cpmdesk at the same prompt length.

    .venv/bin/python bench/decode.py [--backends cpmdesk,optimum,torch,llamacpp] [--prompts 128,1024,4096]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.privacy import disable_telemetry  # noqa: E402
from tests.model_builders import MINICPM_CONFIG_DIR, build_minicpm4_05b_shaped, corpus_text  # noqa: E402

WORK = REPO / ".cache" / "bench"


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


# ---------------------------------------------------------------- inputs


def prepare_model(source: Path | None) -> tuple[Path, Path]:
    """The HF source folder and its int4 IR (exported once, cached)."""
    source = source or WORK / "minicpm4-0.5b-shaped"
    if not (source / "config.json").is_file():
        build_minicpm4_05b_shaped(source)
    ir = WORK / f"{source.name}-int4"
    if not (ir / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "export", str(source), str(ir), "--force"], check=True,
                       stdout=sys.stderr)  # keep stdout for the JSON lines
    return source, ir


def prompt_ids(tokenizer, length: int, rep: int) -> list[int]:
    """`length` token ids of real text, a different slice for each repetition."""
    ids = tokenizer(corpus_text(3_000_000), add_special_tokens=False)["input_ids"]
    start = (rep * 7919 + length * 13) % (len(ids) - length - 1)
    return ids[start:start + length]


# ---------------------------------------------------------------- backends


def run_cpmdesk(ir: Path, tokenizer, lengths: list[int], reps: int, new_tokens: int):
    from app.engine import ChatEngine, Conversation, GenerationSettings

    engine = ChatEngine(ir, context_tokens=max(lengths) + new_tokens + 64)
    settings = GenerationSettings(max_new_tokens=new_tokens, ignore_eos=True)
    engine.send(Conversation(), "warm up", GenerationSettings(max_new_tokens=4))
    for length in lengths:
        for rep in range(reps):
            text = tokenizer.decode(prompt_ids(tokenizer, length, rep + 1))
            reply = engine.send(Conversation(), text, settings)
            yield length, reply.prompt_tokens, reply.ttft_ms, reply.tokens_per_second, reply.num_tokens


class _Clock:
    """A transformers streamer that timestamps each put(): the first is the prompt, then one per token."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def put(self, value) -> None:
        self.stamps.append(time.perf_counter())

    def end(self) -> None:
        pass


def _timed_generate(model, ids: list[int], new_tokens: int, start: float | None = None):
    import torch

    clock = _Clock()
    inputs = torch.tensor([ids])
    begin = time.perf_counter() if start is None else start
    model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=new_tokens,
                   min_new_tokens=new_tokens, do_sample=False, streamer=clock)
    tokens = clock.stamps[1:]
    ttft = (tokens[0] - begin) * 1000
    rate = (len(tokens) - 1) / (tokens[-1] - tokens[0]) if len(tokens) > 1 else 0.0
    return ttft, rate, len(tokens)


def run_hf_style(model, tokenizer, lengths: list[int], reps: int, new_tokens: int):
    _timed_generate(model, [1, 2, 3, 4], 4)  # warm-up
    for length in lengths:
        for rep in range(reps):
            ids = [tokenizer.bos_token_id, *prompt_ids(tokenizer, length - 1, rep + 1)]
            ttft, rate, count = _timed_generate(model, ids, new_tokens)
            yield length, len(ids), ttft, rate, count


def run_optimum(ir: Path, tokenizer, lengths, reps, new_tokens):
    from optimum.intel import OVModelForCausalLM

    model = OVModelForCausalLM.from_pretrained(ir, device="CPU")
    yield from run_hf_style(model, tokenizer, lengths, reps, new_tokens)


def run_torch(source: Path, tokenizer, lengths, reps, new_tokens):
    import torch
    from transformers import LlamaForCausalLM

    from export.minicpm import fold_to_llama

    folded = WORK / f"{source.name}-folded-fp32"
    if not (folded / "config.json").is_file():
        fold_to_llama(source, folded, torch.float32)
    torch.set_num_threads(os.cpu_count() or 1)
    model = LlamaForCausalLM.from_pretrained(folded, dtype=torch.float32).eval()
    yield from run_hf_style(model, tokenizer, lengths, reps, new_tokens)


def gguf_q4_0(source: Path) -> Path:
    """Convert with llama.cpp's own converter (from the llama-cpp-python sdist) and quantize to Q4_0."""
    target = WORK / f"{source.name}.Q4_0.gguf"
    if target.is_file():
        return target
    import llama_cpp

    vendor = WORK / "llama.cpp"
    if not (vendor / "convert_hf_to_gguf.py").is_file():
        sdist_dir = WORK / "sdist"
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d",
                        str(sdist_dir), f"llama-cpp-python=={llama_cpp.__version__}"], check=True, stdout=sys.stderr)
        archive = next(sdist_dir.glob("llama_cpp_python-*.tar.gz"))
        shutil.unpack_archive(archive, sdist_dir)
        shutil.copytree(next(sdist_dir.glob("llama_cpp_python-*/vendor/llama.cpp")), vendor)
    hf = WORK / f"{source.name}-for-gguf"
    if not hf.is_dir():
        shutil.copytree(source, hf)
        shutil.copy2(MINICPM_CONFIG_DIR / "tokenizer.model", hf / "tokenizer.model")  # SentencePiece vocab
    f16 = WORK / f"{source.name}.f16.gguf"
    env = {**os.environ, "PYTHONPATH": str(vendor / "gguf-py")}
    subprocess.run([sys.executable, str(vendor / "convert_hf_to_gguf.py"), str(hf), "--outtype", "f16",
                    "--outfile", str(f16)], check=True, env=env, stdout=sys.stderr)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    params.nthread = os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(str(f16).encode(), str(target).encode(), params) != 0:
        raise RuntimeError("llama.cpp quantization failed")
    f16.unlink()
    return target


def run_llamacpp(source: Path, tokenizer, lengths, reps, new_tokens):
    import llama_cpp

    model = llama_cpp.Llama(str(gguf_q4_0(source)), n_ctx=max(lengths) + new_tokens + 64,
                            n_threads=os.cpu_count(), n_batch=512, verbose=False)

    def timed(ids: list[int]):
        model.reset()
        begin = time.perf_counter()
        stamps = []
        for _ in model.generate(ids, top_k=1, temp=0.0, reset=True):
            stamps.append(time.perf_counter())
            if len(stamps) == new_tokens:
                break
        return (stamps[0] - begin) * 1000, (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)

    timed([1, 2, 3, 4])
    for length in lengths:
        for rep in range(reps):
            ids = [tokenizer.bos_token_id, *prompt_ids(tokenizer, length - 1, rep + 1)]
            ttft, rate, count = timed(ids)
            yield length, len(ids), ttft, rate, count


# ---------------------------------------------------------------- bandwidth bound


def copy_bandwidth_gb_s() -> float:
    """Best of 5 copies of a 512 MiB buffer with all threads (torch), counting read + write bytes."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    src = torch.ones(128 << 20, dtype=torch.float32)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * 4 / best / 1e9


def bytes_per_token(ir: Path, context: int) -> int:
    """Weights read per decoded token (all but the embedding table, of which one row) plus the KV cache."""
    import openvino as ov

    config = json.loads((ir / "config.json").read_text())
    model = ov.Core().read_model(ir / "openvino_model.xml")
    total = (ir / "openvino_model.bin").stat().st_size
    embed = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() == "Constant" and "embed_tokens" in node.get_friendly_name():
            embed = max(embed, node.get_byte_size())
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    kv = 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * head_dim * 2 * context  # f16 K and V
    return total - embed + kv


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="cpmdesk,optimum,torch,llamacpp")
    parser.add_argument("--prompts", default="128,1024,4096")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--model", type=Path, help="HF source folder (default: MiniCPM4-0.5B-shaped)")
    args = parser.parse_args()
    disable_telemetry()
    from transformers import AutoTokenizer

    source, ir = prepare_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(ir)  # the export's copy: no remote-code prompt from the source config
    lengths = [int(x) for x in args.prompts.split(",")]
    runners = {"cpmdesk": lambda: run_cpmdesk(ir, tokenizer, lengths, args.reps, args.new_tokens),
               "optimum": lambda: run_optimum(ir, tokenizer, lengths, args.reps, args.new_tokens),
               "torch": lambda: run_torch(source, tokenizer, lengths, 1, args.new_tokens),
               "llamacpp": lambda: run_llamacpp(source, tokenizer, lengths, args.reps, args.new_tokens)}
    results: dict[tuple[str, int], dict] = {}
    for backend in args.backends.split(","):
        samples: dict[int, list] = {}
        try:
            for length, prompt_tokens, ttft, rate, count in runners[backend]():
                samples.setdefault(length, []).append((prompt_tokens, ttft, rate, count))
        except Exception as err:  # a missing peer (e.g. llama-cpp-python not built) is reported, not fatal
            emit({"bench": "decode", "backend": backend, "error": f"{type(err).__name__}: {err}"})
            continue
        for length, rows in samples.items():
            results[(backend, length)] = emit({
                "bench": "decode", "backend": backend, "prompt": length, "prompt_tokens": rows[0][0],
                "ttft_ms": round(statistics.median(r[1] for r in rows), 1),
                "decode_tok_s": round(statistics.median(r[2] for r in rows), 2),
                "new_tokens": rows[0][3], "reps": len(rows)})
    for (backend, length), row in results.items():
        base = results.get(("cpmdesk", length))
        if base and backend != "cpmdesk":
            emit({"bench": "decode-ratio", "backend": backend, "prompt": length,
                  "cpmdesk_decode_speedup": round(base["decode_tok_s"] / row["decode_tok_s"], 2),
                  "cpmdesk_ttft_speedup": round(row["ttft_ms"] / base["ttft_ms"], 2)})
    bandwidth = copy_bandwidth_gb_s()
    for length in lengths:
        per_token = bytes_per_token(ir, length)
        base = results.get(("cpmdesk", length))
        bound = bandwidth * 1e9 / per_token
        emit({"bench": "bandwidth-bound", "prompt": length, "copy_gb_s": round(bandwidth, 1),
              "bytes_per_token_mb": round(per_token / 1e6, 1), "bound_tok_s": round(bound, 1),
              "cpmdesk_share_of_bound": round(base["decode_tok_s"] / bound, 2) if base else None})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
