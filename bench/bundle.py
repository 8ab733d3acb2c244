"""The double-click bundle: its size on disk (by part) and its cold start, side by side with the source install.

Start = launching the process until it exits, in fresh processes with an empty data folder:
  `--help` (bootloader + Python start-up only) and `ask "Hi" --max-new-tokens 1` (start-up, model load, one token).
The same two commands run from the source install (`python -m app`) in the same session give the ratio.
Prints JSON lines.   .venv/bin/python bench/bundle.py [--bundle dist/cpmdesk/cpmdesk] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _size(path: Path) -> int:
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def sizes(exe: Path) -> list[dict]:
    """Total size and the biggest parts of the bundle folder."""
    folder = exe.parent
    internal = folder / "_internal"
    parts = {p.name: _size(p) for p in internal.iterdir()}
    big = sorted(((n, s) for n, s in parts.items() if s >= 4 * 2**20), key=lambda x: -x[1])
    rest = sum(parts.values()) - sum(s for _, s in big)
    rows = [{"bench": "bundle-size", "total_mib": round(_size(folder) / 2**20, 1),
             "files": sum(1 for p in folder.rglob("*") if p.is_file())}]
    rows += [{"bench": "bundle-part", "part": name, "mib": round(size / 2**20, 1)} for name, size in big]
    rows.append({"bench": "bundle-part", "part": "(everything else)", "mib": round(rest / 2**20, 1)})
    return rows


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "dist" / "cpmdesk" / "cpmdesk")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.bundle.is_file():
        raise SystemExit(f"{args.bundle} is missing: build it with `make bundle`")
    for row in sizes(args.bundle):
        print(json.dumps(row), flush=True)

    sys.path.insert(0, str(REPO))
    from app.default_model import ensure_default_model

    model = ensure_default_model(log=lambda m: print(m, file=sys.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        bundle_env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "CPMDESK_DATA_DIR": str(Path(tmp) / "data")}
        source_env = {**os.environ, "PYTHONPATH": str(REPO), "CPMDESK_DATA_DIR": str(model.parents[1])}
        variants = {
            "bundle": ([str(args.bundle)], bundle_env),
            "source": ([sys.executable, "-m", "app"], source_env),
        }
        commands = {"help": ["--help"], "ask-1-token": ["ask", "Hi", "--max-new-tokens", "1"]}
        results: dict[tuple[str, str], list[float]] = {}
        for run in range(args.runs):  # interleaved, so both variants see the same machine load
            for variant, (base, env) in variants.items():
                for name, extra in commands.items():
                    seconds = timed(base + extra, env)
                    results.setdefault((variant, name), []).append(seconds)
                    print(json.dumps({"bench": "bundle-start", "variant": variant, "command": name, "run": run,
                                      "seconds": round(seconds, 3)}), flush=True)
    for name in commands:
        bundle = statistics.median(results[("bundle", name)])
        source = statistics.median(results[("source", name)])
        print(json.dumps({"bench": "bundle-start-median", "command": name, "runs": args.runs,
                          "bundle_s": round(bundle, 3), "source_s": round(source, 3),
                          "bundle_vs_source": round(bundle / source, 2),
                          "bundle_first_run_s": round(results[("bundle", name)][0], 3)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
