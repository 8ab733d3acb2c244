"""Cold start: from launching the app to a visible window, and to the default model loaded and ready.

Each run is a fresh process (`python -c …` building the real window; offscreen unless $DISPLAY is set).
Prints one JSON line per run and a median line.   .venv/bin/python bench/startup.py [--runs 3]
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

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
from PySide6.QtWidgets import QApplication
from app.gui.main import build_window
app = QApplication([])
window = build_window()
window.show()
app.processEvents()
print("shown", time.time(), flush=True)
window.model_ready.connect(lambda: (print("ready", time.time(), flush=True), app.quit()))
app.exec()
window.threads.wait_all()
"""


def one_run() -> dict:
    start = time.time()
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=REPO, timeout=600,
                           env=env)
    stamps = dict(line.split() for line in child.stdout.splitlines() if line.startswith(("shown", "ready")))
    return {"bench": "startup", "window_shown_s": round(float(stamps["shown"]) - start, 2),
            "model_ready_s": round(float(stamps["ready"]) - start, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from app.default_model import ensure_default_model

    ensure_default_model()  # first-start export is not part of the cold start being measured
    rows = [one_run() for _ in range(args.runs)]
    for row in rows:
        print(json.dumps(row), flush=True)
    print(json.dumps({"bench": "startup-median", "runs": len(rows),
                      "window_shown_s": statistics.median(r["window_shown_s"] for r in rows),
                      "model_ready_s": statistics.median(r["model_ready_s"] for r in rows)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
