"""Load an exported model in the app's engine and answer once: load time, time to first token, decode speed and
the process's peak RSS, at a prompt of about `--prompt-tokens` tokens.

Runs the engine in a child process so the peak RSS (`ru_maxrss` from wait4, file-backed pages included) is the
load and answer alone; prints one JSON line.

    .venv/bin/python bench/engine_load.py MODEL_DIR [--prompt-tokens 1024] [--new-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_CHILD = """
import json, sys, time
sys.path.insert(0, {repo!r})
from app.privacy import disable_telemetry
disable_telemetry()
from pathlib import Path
from app.engine import ChatEngine, Conversation, GenerationSettings
start = time.perf_counter()
engine = ChatEngine(Path({model!r}), context_tokens={context})
load = time.perf_counter() - start
words = "The quick brown fox jumps over the lazy dog near the river bank. "
text = words * max(1, {prompt} // 14) + "Summarize the text above in one sentence."
settings = GenerationSettings(max_new_tokens={new}, ignore_eos=True)
reply = engine.send(Conversation(), text, settings)
print(json.dumps({{"load_s": round(load, 1), "prompt_tokens": reply.prompt_tokens, "new_tokens": reply.num_tokens,
                  "ttft_s": round(reply.ttft_ms / 1000, 2), "decode_tok_s": round(reply.tokens_per_second, 2),
                  "mode": engine.pipeline_mode}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--prompt-tokens", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    code = _CHILD.format(repo=str(REPO), model=str(args.model.resolve()), prompt=args.prompt_tokens,
                         new=args.new_tokens, context=args.prompt_tokens + args.new_tokens + 256)
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    row = {"bench": "engine-load", "model": args.model.name, "wall_s": round(time.perf_counter() - start, 1),
           "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2), "ok": os.waitstatus_to_exitcode(status) == 0}
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if lines:
        row.update(json.loads(lines[-1]))
    print(json.dumps(row), flush=True)
    return 0 if row["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
