"""Long-context benchmark: InfLLM v2 sparse op vs openvino-genai's dense backends, one run, side by side.

For each prompt length (random token ids) and each variant, a child process loads the model with
openvino-genai, prefills the prompt and decodes a few tokens greedily (EOS ignored). Prints one JSON line per
run (prefill seconds = TTFT, decode tokens/s, the child's peak RSS) and one summary line per length with the
sparse op's speed-ups. Variants:
  sparse - the IR rewritten by export/sparse_attention.py (InfLLMv2Attention, ATTENTION_BACKEND=SDPA)
  pa     - the dense IR on GenAI's default PagedAttention backend
  sdpa   - the dense IR on the stateful SDPA backend
  sparse_f32 - `sparse` with the op's f32 kernel forced (CPMDESK_INFLLM_PRECISION=f32; on CPUs without
           AVX512-BF16 both are the f32 kernel)
  sparse_bf16 - `sparse` with the bf16 kernel only, no int8 QK^T (CPMDESK_INFLLM_PRECISION=bf16)
Sparse rows also report the op's own share of the prefill (op_prefill_s: wall seconds inside the 24 ops, from
the op's CPMDESK_INFLLM_PROFILE lines) and the rest of the graph (non_op_prefill_s).

--op-profile LENGTH times one InfLLMv2Attention op alone (MiniCPM4-0.5B heads: 16 q / 2 kv, head_dim 64, the
default sparse_config) on a LENGTH-token prefill of random q/k/v, for each --op-precisions value, and prints
its split: compressed-key scoring, block selection (pool + top-k), attention proper (CPU seconds over threads).
A dense run whose predicted prefill time (quadratic from the previous length) does not fit the remaining
--budget-min is skipped and reported as skipped.

    .venv/bin/python bench/long_context.py [--lengths 8192,16384,32768,65536] [--variants sparse,pa,sdpa]
        [--runs sparse@32768,pa@32768,...] [--budget-min 40] [--decode-tokens 16]
    .venv/bin/python bench/long_context.py --op-profile 32768 [--op-precisions f32,bf16,auto]

--app (what `make bench-long-context` runs; issue 18) measures through the app's ChatEngine instead, in one run:
a question over a --doc-tokens document (default 32K tokens of real text, the prompt filling the context) on the
sparse export (the engine's own loop over the op) and on the dense export with GenAI's PagedAttention backend
(prefill = time to first token, decode tokens/s, peak RSS, each in its own process); then a three-turn chat on
the sparse export growing past --chat-tokens (16K): time to first token of turns 2 and 3, which feed only their
new tokens, against a freshly loaded engine prefilling the same conversation whole. The last line is the
summary `long-context-summary`. The model (MiniCPM4-0.5B's config with random weights, int4) is built and
exported on first use.

With --pairs N the question runs N times per variant, alternating sparse and PA, and the summary's ratios are
pooled: the mean PA prefill over the mean sparse prefill (the machine drifts by 10-20 % between runs).

    .venv/bin/python bench/long_context.py --app [--doc-tokens 32512] [--chat-tokens 16384] [--pairs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_MODEL = REPO / ".cache" / "bench" / "minicpm4-0.5b-shaped-int4"


def sparse_folder(dense: Path, config: dict) -> Path:
    """The dense IR folder copied and rewritten with the sparse op (cached beside it, keyed by the config)."""
    from export.manifest import read_manifest
    from export.sparse_attention import add_to_export_folder
    from ov_ops.sparse_config import SparseAttentionConfig

    cfg = SparseAttentionConfig.from_dict(config)
    out = dense.parent / f"{dense.name}-infllm-{cfg.variant}-d{cfg.dense_len}"
    manifest = read_manifest(out)
    if manifest and manifest.get("sparse_attention", {}).get("config") == cfg.to_dict():
        return out
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(dense, out)
    add_to_export_folder(out, cfg)
    return out


def child(variant: str, folder: Path, length: int, decode_tokens: int, library: str) -> dict:
    """One measurement in this process: load, prefill `length` random tokens, decode `decode_tokens`."""
    import numpy as np
    import openvino as ov
    import openvino_genai as og

    kwargs: dict = {}
    if variant.startswith("sparse"):
        kwargs = {"extensions": [library], "ATTENTION_BACKEND": "SDPA"}
    elif variant == "sdpa":
        kwargs = {"ATTENTION_BACKEND": "SDPA"}
    start = time.perf_counter()
    pipe = og.LLMPipeline(str(folder), "CPU", **kwargs)
    load_s = time.perf_counter() - start
    ids = np.random.default_rng(length).integers(100, 70000, size=(1, length), dtype=np.int64)
    config = og.GenerationConfig()
    config.max_new_tokens = decode_tokens + 1
    config.min_new_tokens = decode_tokens + 1
    config.ignore_eos = True
    config.do_sample = False
    start = time.perf_counter()
    result = pipe.generate(og.TokenizedInputs(ov.Tensor(ids), ov.Tensor(np.ones_like(ids))), config)
    wall = time.perf_counter() - start
    perf = result.perf_metrics
    tpot_ms = float(perf.get_tpot().mean)
    return {"load_s": round(load_s, 1), "prefill_s": round(float(perf.get_ttft().mean) / 1000, 2),
            "decode_tok_s": round(1000 / tpot_ms, 2) if tpot_ms > 0 else None,
            "decode_ms_per_token": round(tpot_ms, 1), "generated": int(perf.get_num_generated_tokens()),
            "wall_s": round(wall, 1), "first_tokens": [int(t) for t in result.tokens[0][:4]]}


def document(tokenizer, tokens: int, seed: int) -> str:
    """About `tokens` tokens (of the model's openvino_genai.Tokenizer) of real text: the benchmark corpus from a
    seed-chosen offset."""
    from tests.model_builders import corpus_text

    text = corpus_text()
    start = (seed * 7919) % (len(text) // 2)
    text = text[start:start + 8 * tokens]
    ids = [int(i) for i in tokenizer.encode(text, add_special_tokens=False).input_ids.data[0][:tokens]]
    return tokenizer.decode(ids)


def app_question(variant: str, folder: Path, doc_tokens: int, decode_tokens: int) -> dict:
    """One question over a `doc_tokens` document through ChatEngine (this process)."""
    import openvino_genai as og

    from app.engine import ChatEngine, Conversation, GenerationSettings

    engine = ChatEngine(folder)
    tokenizer = og.Tokenizer(str(folder))
    text = document(tokenizer, doc_tokens, 1) + "\n\nWhat is this document about?"
    reply = engine.send(Conversation(), text, GenerationSettings(max_new_tokens=decode_tokens + 1, ignore_eos=True))
    return {"mode": engine.pipeline_mode, "context": engine.context_tokens, "prompt_tokens": reply.prompt_tokens,
            "prefill_s": round(reply.ttft_ms / 1000, 2), "decode_tok_s": round(reply.tokens_per_second, 2),
            "generated": reply.num_tokens}


def app_chat(folder: Path, chat_tokens: int, decode_tokens: int) -> dict:
    """A three-turn chat on the sparse export (this process): turn 1 a document of about `chat_tokens` tokens,
    turns 2 and 3 a short message each (~150 tokens) that takes it past `chat_tokens`; their time to first token
    against a freshly loaded engine's over the same conversation."""
    import openvino_genai as og

    from app.engine import ChatEngine, Conversation, GenerationSettings

    settings = GenerationSettings(max_new_tokens=decode_tokens, ignore_eos=True)
    engine = ChatEngine(folder)
    tokenizer = og.Tokenizer(str(folder))
    conversation = Conversation()
    turns = [document(tokenizer, chat_tokens - 200, 2) + "\n\nSummarize the first part.",
             document(tokenizer, 150, 3) + "\n\nHow does this continue the story?",
             document(tokenizer, 150, 4) + "\n\nAnd what happens at the end?"]
    rows = []
    for n, text in enumerate(turns, 1):
        reply = engine.send(conversation, text, settings)
        row = {"turn": n, "prompt_tokens": reply.prompt_tokens, "prefilled_tokens": reply.prefilled_tokens,
               "ttft_s": round(reply.ttft_ms / 1000, 3)}
        if n > 1:  # the same conversation prefilled whole by a freshly loaded engine
            fresh = ChatEngine(folder).generate(Conversation(messages=conversation.messages[:-1]), settings)
            row.update(full_prefill_s=round(fresh.ttft_ms / 1000, 2), full_prefilled_tokens=fresh.prefilled_tokens,
                       ttft_fraction=round(reply.ttft_ms / fresh.ttft_ms, 4))
        rows.append(row)
    return {"turns": rows}


def pooled_ratio(numerator: list[dict], denominator: list[dict], key: str) -> float:
    """mean(numerator[key]) / mean(denominator[key]) over the runs of each variant (issue 5's pooling)."""
    def mean(runs: list[dict]) -> float:
        return sum(r[key] for r in runs) / len(runs)

    return round(mean(numerator) / mean(denominator), 2)


def app_bench(args, library: str) -> int:
    """--app: the question over a long document (sparse vs PagedAttention) and the three-turn chat."""
    dense = ensure_model(args.model)
    sparse = sparse_folder(dense, json.loads(args.sparse_config))
    machine = {"cpu": _cpu_name(), "cores": os.cpu_count()}
    chat = {"bench": "long-context-chat", **run_child("app-chat", sparse, args.chat_tokens, args.decode_tokens,
                                                      3600, library), **machine}
    print(json.dumps(chat), flush=True)
    rows: dict[str, list[dict]] = {"sparse": [], "pa": []}
    for _ in range(args.pairs):  # pairs alternate, so the machine's drift falls on both variants alike
        for variant, folder in (("sparse", sparse), ("pa", dense)):
            row = {"bench": "long-context-app", "variant": variant, "doc_tokens": args.doc_tokens,
                   **run_child(f"app-{variant}", folder, args.doc_tokens, args.decode_tokens, 3600, library),
                   **machine, "load_avg_1m": round(os.getloadavg()[0], 2)}
            rows[variant].append(row)
            print(json.dumps(row), flush=True)
    ok = all(row.get("ok") for runs in rows.values() for row in runs)
    later = [t["ttft_fraction"] for t in chat.get("turns", []) if "ttft_fraction" in t]
    print(json.dumps({"bench": "long-context-summary",
                      "prefill_ratio_vs_pa_32k": pooled_ratio(rows["pa"], rows["sparse"], "prefill_s") if ok else None,
                      "decode_ratio_vs_pa_32k": pooled_ratio(rows["sparse"], rows["pa"], "decode_tok_s")
                      if ok else None,
                      "later_turn_ttft_fraction": round(max(later), 4) if later else None}), flush=True)
    return 0 if ok and later else 1


def ensure_model(folder: Path) -> Path:
    """`folder` when it holds an export; the default model is built and exported on first use (bench/decode)."""
    if (folder / "manifest.json").is_file() or folder != DEFAULT_MODEL:
        return folder
    from bench.decode import prepare_model

    return prepare_model(None)[1]


def op_split(profile: Path, prefill_s: float) -> dict:
    """The op's share of the prefill from its profile lines (calls with more than one token)."""
    lines = [json.loads(x) for x in profile.read_text().splitlines() if x.strip()] if profile.is_file() else []
    calls = [x for x in lines if x["T"] > 1]
    if not calls:
        return {}
    op = sum(x["wall_s"] for x in calls)
    return {"op_prefill_s": round(op, 2), "non_op_prefill_s": round(prefill_s - op, 2), "op_bf16": calls[0]["bf16"],
            "op_int8": calls[0].get("int8", False),
            "op_cpu_s": {k: round(sum(x[f"{k}_cpu_s"] for x in calls), 1) for k in ("score", "select", "attend")}}


def op_profile(length: int, precisions: list[str], library: str) -> None:
    """One op alone on a `length`-token prefill (MiniCPM4-0.5B heads), per precision: wall time and split."""
    import numpy as np
    import openvino as ov
    import openvino.opset14 as ops
    from openvino.utils.node_factory import NodeFactory

    from ov_ops.sparse_config import SparseAttentionConfig

    hq, hk, d = 16, 2, 64
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, hq, length, d), dtype=np.float32)
    k = rng.standard_normal((1, hk, length, d), dtype=np.float32)
    v = rng.standard_normal((1, hk, length, d), dtype=np.float32)
    pos = np.arange(length, dtype=np.int64)[None]
    core = ov.Core()
    core.add_extension(library)
    factory = NodeFactory("opset14")
    factory.add_extension(library)
    log = Path(tempfile.mkdtemp()) / "profile.jsonl"
    os.environ["CPMDESK_INFLLM_PROFILE"] = str(log)  # read once per process by the op
    for precision in precisions:
        params = [ops.parameter([1, hq, -1, d], np.float32), ops.parameter([1, hk, -1, d], np.float32),
                  ops.parameter([1, hk, -1, d], np.float32), ops.parameter([1, -1], np.int64)]
        attrs = {**SparseAttentionConfig().op_attributes(), "precision": precision}
        node = factory.create("InfLLMv2Attention", [p.output(0) for p in params], attrs)
        request = core.compile_model(ov.Model([node.output(0)], params), "CPU").create_infer_request()
        start = time.perf_counter()
        request.infer([q, k, v, pos])
        wall = time.perf_counter() - start
        line = json.loads(log.read_text().splitlines()[-1]) if log.is_file() else {}
        row = {"bench": "long_context-op-profile", "length": length, "precision": precision, "infer_s": round(wall, 2),
               **{k: round(x, 3) if isinstance(x, float) else x for k, x in line.items()},
               "cpu": _cpu_name(), "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
        print(json.dumps(row), flush=True)
    shutil.rmtree(log.parent, ignore_errors=True)


def run_child(variant: str, folder: Path, length: int, decode_tokens: int, timeout_s: float, library: str) -> dict:
    """A child process per run, so its peak RSS is that run's alone."""
    cmd = [sys.executable, __file__, "--child", variant, "--model", str(folder), "--lengths", str(length),
           "--decode-tokens", str(decode_tokens), "--library", library]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    profile = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    if variant.startswith("sparse"):
        env["CPMDESK_INFLLM_PROFILE"] = str(profile)  # a few timer reads per (token, head): no measurable cost
    if variant in ("sparse_f32", "sparse_bf16"):
        env["CPMDESK_INFLLM_PRECISION"] = variant.split("_")[1]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = start + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            return {"ok": False, "error": f"killed after {timeout_s:.0f} s (budget)",
                    "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2)}
        time.sleep(0.5)
    out, err = proc.stdout.read(), proc.stderr.read()
    row = {"ok": os.waitstatus_to_exitcode(status) == 0, "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2)}
    if row["ok"]:
        row.update(json.loads(out.strip().splitlines()[-1]))
        row.update(op_split(profile, row.get("prefill_s", 0.0)))
        profile.unlink(missing_ok=True)
    else:
        row["error"] = (err.strip().splitlines() or ["?"])[-1][:300]
    return row


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="dense int4 IR folder")
    parser.add_argument("--lengths", default="8192,16384,32768,65536")
    parser.add_argument("--variants", default="sparse,pa,sdpa")
    parser.add_argument("--decode-tokens", type=int, default=16)
    parser.add_argument("--sparse-config", default="{}", help="JSON overrides of the sparse config (default: "
                                                              "MiniCPM4's sparse_config defaults)")
    parser.add_argument("--runs", help="explicit order, e.g. sparse@8192,pa@8192 (default: every length x variant)")
    parser.add_argument("--budget-min", type=float, default=40.0, help="wall-clock budget of the whole run")
    parser.add_argument("--op-profile", type=int, metavar="LENGTH", help="time one op alone (see above)")
    parser.add_argument("--op-precisions", default="f32,bf16,auto")
    parser.add_argument("--app", action="store_true", help="through the app's ChatEngine (see above)")
    parser.add_argument("--doc-tokens", type=int, default=32512, help="--app: the document's tokens")
    parser.add_argument("--chat-tokens", type=int, default=16384, help="--app: the chat grows past this")
    parser.add_argument("--pairs", type=int, default=1, help="--app: sparse/PA question pairs, alternating; the "
                        "summary's ratios are pooled (mean over mean)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--library", help=argparse.SUPPRESS)
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    if args.child:
        if args.child == "app-chat":
            result = app_chat(args.model, lengths[0], args.decode_tokens)
        elif args.child.startswith("app-"):
            result = app_question(args.child[4:], args.model, lengths[0], args.decode_tokens)
        else:
            result = child(args.child, args.model, lengths[0], args.decode_tokens, args.library)
        print(json.dumps(result), flush=True)
        return 0
    from ov_ops.build import library_path

    library = str(library_path())
    if args.op_profile:
        op_profile(args.op_profile, args.op_precisions.split(","), library)
        return 0
    if args.app:
        return app_bench(args, library)
    args.model = ensure_model(args.model)
    folders = {"pa": args.model, "sdpa": args.model}
    if "sparse" in args.variants or (args.runs and "sparse" in args.runs):
        sparse = sparse_folder(args.model, json.loads(args.sparse_config))
        folders.update(sparse=sparse, sparse_bf16=sparse, sparse_f32=sparse)
    started = time.perf_counter()
    budget = args.budget_min * 60
    machine = {"cpu": _cpu_name(), "cores": os.cpu_count()}
    runs = [r.split("@") for r in args.runs.split(",")] if args.runs else [
        (v, str(n)) for n in lengths for v in args.variants.split(",")]
    last: dict[str, tuple[int, float]] = {}
    rows: dict[tuple[str, int], dict] = {}
    for variant, text in runs:
        length = int(text)
        left = budget - (time.perf_counter() - started)
        previous = last.get(variant)
        growth = 1.3 if variant.startswith("sparse") else 2.0  # sparse attention is ~linear past its 6K-token budget
        predicted = previous[1] * (length / previous[0]) ** growth if previous and length > previous[0] else 0.0
        base = {"bench": "long_context", "variant": variant, "length": length, "model": args.model.name}
        if left <= 30 or predicted > left:
            row = {**base, "ok": False, "skipped": f"predicted prefill {predicted:.0f} s > {left:.0f} s left"}
        else:
            row = {**base, **run_child(variant, folders[variant], length, args.decode_tokens, left, library)}
            if row.get("ok"):
                last[variant] = (length, row["prefill_s"])
        row.update(machine, load_avg_1m=round(os.getloadavg()[0], 2))
        rows[(variant, length)] = row
        print(json.dumps(row), flush=True)
    for length in sorted({n for _, n in rows}):
        summary = {"bench": "long_context-summary", "length": length}
        for name, prefix in (("sparse", ""), ("sparse_bf16", "bf16_"), ("sparse_f32", "f32_")):
            sparse = rows.get((name, length), {})
            for dense in ("pa", "sdpa"):
                other = rows.get((dense, length), {})
                if sparse.get("ok") and other.get("ok"):
                    prefill = other["prefill_s"] / sparse["prefill_s"]
                    decode = sparse["decode_tok_s"] / other["decode_tok_s"]
                    summary[f"{prefix}prefill_speedup_vs_{dense}"] = round(prefill, 2)
                    summary[f"{prefix}decode_speedup_vs_{dense}"] = round(decode, 2)
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
