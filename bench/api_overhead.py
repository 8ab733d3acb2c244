"""What `cpmdesk serve` costs: time to first token and tokens/s through HTTP against the engine called directly.

One run loads the model twice: a ChatEngine in this process (direct) and `cpmdesk serve` in a child process
(HTTP, driven by the official openai client, streaming). Both get the same prompts, greedy, EOS ignored and
exactly --new-tokens tokens, interleaved (direct/HTTP order alternating per round) so load on the machine hits
both alike; each prompt starts with its own line so GenAI's prefix cache cannot answer from an earlier run.
Time to first token is measured by the caller in both cases: from the call to the first piece of answer text
(prompt rendering and tokenizing included on both sides). Tokens/s: (tokens - 1) over the time from the first
to the last piece. Medians per prompt, and the overhead as the median of each round's HTTP/direct ratio; one
JSON line each, then a summary line.

    .venv/bin/python bench/api_overhead.py [--model DIR] [--rounds 7] [--new-tokens 128] [--stream-interval-ms MS]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.privacy import disable_telemetry  # noqa: E402
from app.server import STREAM_INTERVAL_S  # noqa: E402

PROMPTS = {
    "short": "Explain in a few sentences why the sky is blue.",
    "medium": ("Summarize the following notes for a colleague who missed the meeting.\n\n" +
               "The team reviewed the quarterly plan, agreed to move the launch by two weeks, asked design for "
               "new onboarding screens, and noted that the support backlog grew after the pricing change. " * 12),
    "long": ("Read this log excerpt and say which service failed first and why.\n\n" +
             "".join(f"12:{i // 60:02d}:{i % 60:02d} service-{i % 7} handled request {i} in {20 + i % 13} ms; "
                     f"queue depth {i % 5}; cache {'hit' if i % 3 else 'miss'}\n" for i in range(90))),
}


chunk_counts: list[int] = []  # text chunks of each streamed answer (the server joins what comes within its interval)


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def run_direct(engine, prompt: str, settings) -> tuple[float, float, int]:
    """(ttft_ms, tokens/s, tokens) of the engine called directly."""
    from app.engine import Conversation

    times: list[float] = []
    start = time.perf_counter()
    reply = engine.send(Conversation(), prompt, settings,
                        on_delta=lambda d: times.append(time.perf_counter()) if d.kind == "answer" else None)
    return _rates(start, times, reply.num_tokens)


def run_http(client, model: str, prompt: str, new_tokens: int) -> tuple[float, float, int]:
    """(ttft_ms, tokens/s, tokens) through the API, streamed (how many chunks carried text: into chunk_counts)."""
    times: list[float] = []
    tokens = 0
    start = time.perf_counter()
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], stream=True, temperature=0,
        max_tokens=new_tokens, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            times.append(time.perf_counter())
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    chunk_counts.append(len(times))
    return _rates(start, times, tokens)


def _rates(start: float, times: list[float], tokens: int) -> tuple[float, float, int]:
    ttft = 1000.0 * (times[0] - start)
    span = times[-1] - times[0]
    return ttft, (tokens - 1) / span if span > 0 else 0.0, tokens


def main() -> int:
    disable_telemetry()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="exported model folder (default: the embedded model)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--stream-interval-ms", type=float, default=STREAM_INTERVAL_S * 1000,
                        help="the server's --stream-interval-ms (default: its own default)")
    args = parser.parse_args()

    import openai

    from app.default_model import ensure_default_model
    from app.engine import ChatEngine
    from app.engine.model_defaults import model_defaults
    from tests.api_server import start_server

    folder = args.model or ensure_default_model(log=lambda m: print(m, file=sys.stderr))
    engine = ChatEngine(folder)
    # what the server answers a temperature-0 request with: the model's defaults, greedy
    settings = model_defaults(folder).merged({"temperature": 0.0}).generation(args.new_tokens)
    settings = dataclasses.replace(settings, ignore_eos=True)
    with tempfile.TemporaryDirectory() as scratch:
        served = start_server(folder, Path(scratch) / "serve.log", "--stream-interval-ms", str(args.stream_interval_ms))
        try:
            client = openai.OpenAI(base_url=served.base_url, api_key=served.token, max_retries=0)
            for prompt in PROMPTS.values():  # warm both up (first-inference compilation)
                run_direct(engine, prompt, settings)
                run_http(client, folder.name, prompt, args.new_tokens)
            rows = {name: {"direct": [], "http": []} for name in PROMPTS}
            for round_index in range(args.rounds):
                for name, text in PROMPTS.items():
                    order = ("direct", "http") if round_index % 2 == 0 else ("http", "direct")
                    for mode in order:
                        # a new first line each time: GenAI's prefix cache must not answer from an earlier run
                        prompt = f"Request {round_index}-{mode}.\n{text}"
                        result = (run_direct(engine, prompt, settings) if mode == "direct"
                                  else run_http(client, folder.name, prompt, args.new_tokens))
                        rows[name][mode].append(result)
        finally:
            served.stop()
    summary = {"ttft": [], "tps": []}
    for name, modes in rows.items():
        direct_ttft = statistics.median(r[0] for r in modes["direct"])
        http_ttft = statistics.median(r[0] for r in modes["http"])
        direct_tps = statistics.median(r[1] for r in modes["direct"])
        http_tps = statistics.median(r[1] for r in modes["http"])
        assert {r[2] for r in modes["direct"] + modes["http"]} == {args.new_tokens}, "unequal token counts"
        # paired per round (the two runs of a round are back to back, so slow drifts in the machine's load cancel)
        pairs = list(zip(modes["direct"], modes["http"], strict=True))
        ttft_pct = 100.0 * statistics.median(h[0] / d[0] - 1 for d, h in pairs)
        tps_pct = 100.0 * statistics.median(1 - h[1] / d[1] for d, h in pairs)
        summary["ttft"].append(ttft_pct)
        summary["tps"].append(tps_pct)
        emit({"bench": "api-overhead", "prompt": name, "prompt_tokens": engine.count_tokens(
            engine.render([{"role": "user", "content": PROMPTS[name]}], None)), "new_tokens": args.new_tokens,
              "rounds": args.rounds, "ttft_ms_direct": round(direct_ttft, 1), "ttft_ms_http": round(http_ttft, 1),
              "ttft_overhead_pct": round(ttft_pct, 1), "tps_direct": round(direct_tps, 1),
              "tps_http": round(http_tps, 1), "tps_overhead_pct": round(tps_pct, 1)})
    worst = max(max(summary["ttft"]), max(summary["tps"]))
    emit({"bench": "api-overhead-summary", "model": folder.name, "stream_interval_ms": args.stream_interval_ms,
          "content_chunks_per_answer": statistics.median(chunk_counts),
          "ttft_overhead_pct": round(statistics.mean(summary["ttft"]), 1),
          "tps_overhead_pct": round(statistics.mean(summary["tps"]), 1),
          "api_overhead_pct": round(worst, 1)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
