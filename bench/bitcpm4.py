"""BitCPM4: a ternary model's lossless export against the normal int4 export (issue 23), in one run.

The model: MiniCPM4-0.5B's real config and tokenizer with random weights in BitCPM4's fake-quantized bf16 form
(every decoder matmul weight -s/0/+s per tensor, tests/ternary_model.py `write_random_bitcpm4`). Exported three
ways by `python -m export`:

* int4-nncf: `--ternary off`, the normal path (NNCF int4 asymmetric, group 128; embedding and head int8);
* ternary-int4: `--ternary int4` (i4 codes, exact scales; embedding int8, the tied head shares it);
* ternary-int2: `--ternary int2` (u2 codes in the file, turned into i4 codes in memory when the app loads it).

For each: weights size (openvino_model.bin), max |Δlogit| and top-1 agreement against the fake-quantized source
(the export's own validation, NumPy reference on the source weights), the engine's load time and the resident
memory it added, and decode tokens/s through the app's engine (`ChatEngine`, greedy, EOS ignored). The summary
line is the exporter's default for ternary models. Where llama-cpp-python is installed, the same checkpoint converted
by llama.cpp's own converter to TQ2_0 and TQ1_0 is decoded too. All models are loaded side by side and take
turns repetition after repetition (the machine is shared): speeds are medians, and the ratio to int4-nncf is the
median of each repetition's ratio.

    .venv/bin/python bench/bitcpm4.py [--reps 9] [--new-tokens 64] [--prompt-tokens 128] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.privacy import disable_telemetry  # noqa: E402
from export.settings import Quantization  # noqa: E402
from tests.model_builders import MINICPM_CONFIG_DIR, corpus_text  # noqa: E402
from tests.ternary_model import write_random_bitcpm4  # noqa: E402

WORK = REPO / ".cache" / "bench"
VARIANTS = {"int4-nncf": ["--ternary", "off"], "ternary-int4": ["--ternary", "int4"],
            "ternary-int2": ["--ternary", "int2"]}
TERNARY_GGUF = ("TQ2_0", "TQ1_0")


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def source_model(reuse: bool) -> Path:
    """The BitCPM4-0.5B-shaped checkpoint (written again unless `reuse`)."""
    folder = WORK / "bitcpm4-0.5b-shaped"
    config = json.loads((MINICPM_CONFIG_DIR / "config.json").read_text())
    config["tie_word_embeddings"] = True
    if not (reuse and (folder / "config.json").is_file()):
        started = time.monotonic()
        params = write_random_bitcpm4(folder, config)
        emit({"bench": "bitcpm4-source", "params": params, "write_s": round(time.monotonic() - started, 1)})
        for qtype in TERNARY_GGUF:
            (WORK / f"{folder.name}.{qtype}.gguf").unlink(missing_ok=True)
    return folder


def export(source: Path, name: str, reuse: bool) -> tuple[Path, dict]:
    """One export of `source` through the CLI; returns its folder and manifest."""
    out = WORK / f"bitcpm4-0.5b-shaped-{name}"
    if not (reuse and (out / "manifest.json").is_file()):
        subprocess.run([sys.executable, "-m", "export", str(source), str(out), "--force", *VARIANTS[name]],
                       check=True, stdout=sys.stderr)  # stdout keeps the JSON lines
    return out, json.loads((out / "manifest.json").read_text())


def prompt_text(tokenizer, length: int, rep: int) -> str:
    """About `length` tokens of real text, a different slice for each repetition (no prefix cache helps)."""
    ids = tokenizer(corpus_text(400_000), add_special_tokens=False)["input_ids"]
    start = (rep * 7919) % (len(ids) - length - 1)
    return tokenizer.decode(ids[start:start + length])


def engine_runner(folder: Path, length: int, new_tokens: int):
    """text -> (decode tokens/s, tokens) through the app's engine (greedy, EOS ignored)."""
    from app.engine import ChatEngine, Conversation, GenerationSettings

    engine = ChatEngine(folder, context_tokens=length + new_tokens + 256)
    settings = GenerationSettings(max_new_tokens=new_tokens, ignore_eos=True)
    engine.send(Conversation(), "warm up", GenerationSettings(max_new_tokens=4, ignore_eos=True))

    def run(text: str) -> tuple[float, int]:
        reply = engine.send(Conversation(), text, settings)
        return reply.tokens_per_second, reply.num_tokens

    return run


def gguf_ternary(source: Path, qtype: str) -> Path | str:
    """The checkpoint converted by llama.cpp's own converter to TQ1_0 / TQ2_0 (the copy vendored in the
    llama-cpp-python sdist, which bench/decode.py unpacks into .cache/bench/llama.cpp); a reason when it cannot."""
    target = WORK / f"{source.name}.{qtype}.gguf"
    if target.is_file():
        return target
    vendor = WORK / "llama.cpp"
    if not (vendor / "convert_hf_to_gguf.py").is_file():
        return "llama.cpp's converter is not in .cache/bench/llama.cpp (bench/decode.py --backends llamacpp unpacks it)"
    hf = WORK / f"{source.name}-for-gguf"  # the checkpoint's files linked, plus the SentencePiece vocabulary
    hf.mkdir(exist_ok=True)
    for file in [*source.iterdir(), MINICPM_CONFIG_DIR / "tokenizer.model"]:
        if not (hf / file.name).exists():
            (hf / file.name).symlink_to(file.resolve())
    env = {**os.environ, "PYTHONPATH": str(vendor / "gguf-py")}
    done = subprocess.run([sys.executable, str(vendor / "convert_hf_to_gguf.py"), str(hf), "--outtype",
                           qtype.lower(), "--outfile", str(target)], env=env, stdout=sys.stderr, stderr=sys.stderr)
    return target if done.returncode == 0 else f"llama.cpp's converter failed (exit {done.returncode})"


def llama_cpp_runner(gguf: Path, length: int, new_tokens: int):
    """text -> (decode tokens/s, tokens) of llama-cpp-python on a GGUF (greedy, exactly `new_tokens` tokens)."""
    import llama_cpp

    model = llama_cpp.Llama(str(gguf), n_ctx=length + new_tokens + 256, n_threads=os.cpu_count(), n_batch=512,
                            verbose=False)

    def run(text: str) -> tuple[float, int]:
        ids = model.tokenize(text.encode(), add_bos=True)
        model.reset()
        stamps = []
        for _ in model.generate(ids, top_k=1, temp=0.0, reset=True):
            stamps.append(time.perf_counter())
            if len(stamps) == new_tokens:
                break
        return (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)

    run("warm up")
    return run


def llama_cpp_variants(source: Path, length: int, new_tokens: int) -> tuple[dict, dict]:
    """llama.cpp's TQ2_0 / TQ1_0 runners and rows (GGUF file size), or a row saying why there are none."""
    runners, rows = {}, {}
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        for qtype in TERNARY_GGUF:
            emit({"bench": "bitcpm4", "variant": f"llama.cpp-{qtype}", "skipped": "llama-cpp-python is not installed"})
        return runners, rows
    for qtype in TERNARY_GGUF:
        name, gguf = f"llama.cpp-{qtype}", gguf_ternary(source, qtype)
        if isinstance(gguf, str):
            emit({"bench": "bitcpm4", "variant": name, "skipped": gguf})
            continue
        rows[name] = emit({"bench": "bitcpm4", "variant": name, "weights_bytes": gguf.stat().st_size,
                           "note": "the whole GGUF file; llama.cpp's converter keeps token_embd in F16"})
        runners[name] = llama_cpp_runner(gguf, length, new_tokens)
    return runners, rows


def decode_speeds(runners: dict, tokenizer, reps: int, length: int) -> dict[str, list[float]]:
    """Decode tokens/s of each runner, all taking turns each repetition (the order reversed every other one)."""
    speeds: dict[str, list[float]] = {name: [] for name in runners}
    for rep in range(reps):
        text = prompt_text(tokenizer, length, rep)
        for name in (list(runners) if rep % 2 == 0 else list(reversed(runners))):
            rate, tokens = runners[name](text)
            speeds[name].append(rate)
            emit({"bench": "bitcpm4-decode", "variant": name, "rep": rep, "tokens": tokens,
                  "decode_tok_s": round(rate, 2)})
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--reuse", action="store_true", help="reuse the checkpoint and exports of an earlier run")
    args = parser.parse_args()
    disable_telemetry()
    WORK.mkdir(parents=True, exist_ok=True)
    from transformers import PreTrainedTokenizerFast

    source = source_model(args.reuse)
    folders, rows = {}, {}
    for name in VARIANTS:
        started = time.monotonic()
        folders[name], manifest = export(source, name, args.reuse)
        validation = manifest["validation"]
        rows[name] = emit({
            "bench": "bitcpm4", "variant": name, "weights_bytes": manifest["sizes"]["weights_bytes"],
            "ternary": (manifest.get("ternary") or {}).get("storage"),
            "max_abs_logit_diff": validation["max_abs_logit_diff"], "top1_agreement": validation["top1_agreement"],
            "validation_passed": validation["passed"], "export_s": round(time.monotonic() - started, 1)})
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(source / "tokenizer.json"))  # no config, no prompt
    runners, process = {}, psutil.Process()
    for name, folder in folders.items():  # loaded one after another: each one's time and added memory
        before, started = process.memory_info().rss, time.monotonic()
        runners[name] = engine_runner(folder, args.prompt_tokens, args.new_tokens)
        rows[name].update(load_s=round(time.monotonic() - started, 2),
                          rss_added_bytes=process.memory_info().rss - before)
    llama_runners, llama_rows = llama_cpp_variants(source, args.prompt_tokens, args.new_tokens)
    runners.update(llama_runners)
    rows.update(llama_rows)
    speeds = decode_speeds(runners, tokenizer, args.reps, args.prompt_tokens)
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    # each repetition's ratio to int4-nncf (run in the same repetition, seconds apart), then their median: the
    # machine's load drifts between repetitions far more than between the runs of one repetition
    ratios = {name: statistics.median(a / b for a, b in zip(values, speeds["int4-nncf"], strict=True))
              for name, values in speeds.items()}
    base = rows["int4-nncf"]
    for name, row in rows.items():
        emit({"bench": "bitcpm4-variant", "variant": name, "weights_mib": round(row["weights_bytes"] / 2**20, 1),
              "size_vs_int4": round(row["weights_bytes"] / base["weights_bytes"], 3),
              "decode_tok_s_median": round(medians[name], 2), "decode_vs_int4": round(ratios[name], 3),
              "max_abs_logit_diff": row.get("max_abs_logit_diff"), "load_s": row.get("load_s"),
              "rss_added_mib": round(row["rss_added_bytes"] / 2**20, 1) if "rss_added_bytes" in row else None,
              "cpu": _cpu(), "cores": os.cpu_count(),
              "load_avg_1m": round(os.getloadavg()[0], 2)})
    chosen = f"ternary-{Quantization().ternary}"  # what a ternary model gets without options
    default = rows[chosen]
    emit({"bench": "bitcpm4-summary", "size_vs_int4": round(default["weights_bytes"] / base["weights_bytes"], 3),
          "decode_vs_int4": round(ratios[chosen], 3),
          "max_abs_logit_diff": default["max_abs_logit_diff"]})


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError as err:
        print(f"cpu model unknown: {err}", file=sys.stderr)
    return "unknown"


if __name__ == "__main__":
    main()
