"""Export benchmark: time, peak RSS and output size per weight format for a MiniCPM4-0.5B-shaped model.

The model has MiniCPM4-0.5B's real config and tokenizer with random bf16 weights (no weights can be had
offline). Each format is exported in its own process (`cpmdesk-export`) so peak RSS is that export's own.
Prints one JSON line per format, then a summary line with size ratios against fp16.

    .venv/bin/python bench/export.py [--formats fp16,int8,int4] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.model_builders import build_minicpm4_05b_shaped  # noqa: E402


def export_once(model: Path, out: Path, weight_format: str) -> dict:
    """Run one export in a child process; wall time, the child's peak RSS, and sizes."""
    shutil.rmtree(out, ignore_errors=True)
    log = out.with_suffix(".log")
    start = time.perf_counter()
    with log.open("w") as sink:
        child = subprocess.Popen([sys.executable, "-m", "export", str(model), str(out),
                                  "--weight-format", weight_format], stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage: its peak RSS alone
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        return {"format": weight_format, "ok": False, "error": log.read_text().strip().splitlines()[-1:]}
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "bench": "export", "model": model.name, "format": weight_format, "ok": True,
        "wall_s": round(wall, 1),
        "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),  # ru_maxrss is in KiB on Linux
        "weights_mib": round(manifest["sizes"]["weights_bytes"] / 2**20, 1),
        "folder_mib": round(manifest["sizes"]["total_bytes"] / 2**20, 1),
        "top1_agreement": manifest["validation"]["top1_agreement"],
        "max_abs_logit_diff": manifest["validation"]["max_abs_logit_diff"],
        "params": manifest["architecture"]["param_count"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", default="fp16,int8,int4")
    parser.add_argument("--model", type=Path, help="a model folder (default: build the 0.5B-shaped one)")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "bench")
    args = parser.parse_args()
    model = args.model
    if model is None:
        model = args.work / "minicpm4-0.5b-shaped"
        if not (model / "model.safetensors").is_file():
            build_minicpm4_05b_shaped(model)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    rows = []
    for weight_format in args.formats.split(","):
        row = export_once(model, args.work / f"out-{weight_format}", weight_format)
        row.update(machine)
        rows.append(row)
        print(json.dumps(row), flush=True)
    sizes = {r["format"]: r["weights_mib"] for r in rows if r.get("ok")}
    if "fp16" in sizes:
        print(json.dumps({"bench": "export-summary", "size_vs_fp16": {
            f: round(sizes["fp16"] / s, 2) for f, s in sizes.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
