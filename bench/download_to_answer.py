"""From "Download" to the first answer: a MiniCPM4-0.5B-shaped model served by a local stand-in for the Hugging
Face Hub, downloaded, converted to int4, validated, added and asked one question, through the same code the
Models window runs (app/models: download_model, then library.add; then the app's ChatEngine).

The model has MiniCPM4-0.5B's real config and tokenizer and random bf16 weights (bench/export.py builds it once in
.cache/bench). The data folder is a fresh temporary one. Prints one JSON line per step and a summary.

    .venv/bin/python bench/download_to_answer.py [--rate MBPS]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HUB_ID = "openbmb/MiniCPM4-0.5B"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, help="serve at this many MB/s (default: as fast as the disk)")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "bench")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    source = args.work / "minicpm4-0.5b-shaped"
    if not (source / "model.safetensors").is_file():
        from tests.model_builders import build_minicpm4_05b_shaped

        build_minicpm4_05b_shaped(source)
    with tempfile.TemporaryDirectory(dir=args.work) as data:
        os.environ["CPMDESK_DATA_DIR"] = data
        from app.privacy import disable_telemetry

        disable_telemetry()
        from app.engine import ChatEngine, Conversation, GenerationSettings
        from app.models.download import download_model
        from app.models.library import add
        from tests.hub_server import FakeHub

        steps: dict[str, float] = {}
        with FakeHub({HUB_ID: source}, rate=args.rate * 1e6 if args.rate else None) as hub:
            start = time.perf_counter()
            folder = download_model(HUB_ID, endpoint=hub.url)
            steps["download_s"] = time.perf_counter() - start
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        mark = time.perf_counter()
        model = add(folder, name="minicpm4-0.5b-int4")
        steps["convert_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        engine = ChatEngine(model.folder)
        steps["load_s"] = time.perf_counter() - mark
        first: list[float] = []
        mark = time.perf_counter()
        reply = engine.send(Conversation(), "Why is the sky blue?", GenerationSettings(max_new_tokens=16),
                            on_delta=lambda _d: first or first.append(time.perf_counter()))
        steps["first_token_s"] = (first[0] if first else time.perf_counter()) - mark
        total = time.perf_counter() - start
        for step, seconds in steps.items():
            print(json.dumps({"bench": "download-to-answer", "step": step, "seconds": round(seconds, 2)}))
        print(json.dumps({"bench": "download-to-answer-summary", "model": "minicpm4-0.5b-shaped",
                          "download_gib": round(size / 2**30, 3), "tokens": reply.num_tokens,
                          "download_to_first_token_s": round(total, 1), "cores": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
