"""Export benchmark: wall time and the child's own peak RSS, streaming backend against optimum-intel, side by side.

Models (random bf16 weights written by this script; no weights can be had offline):
* `0.5b`: MiniCPM4-0.5B's real config and tokenizer;
* `8b`: MiniCPM4-8B's widths (hidden 4096, FFN 16384, 32/2 heads, vocabulary 73448, untied head) on the real
  config and tokenizer, with `--layers` decoder layers (32 = the real depth).

Each export runs `python -m export SRC OUT` in its own process, so the peak RSS (`ru_maxrss` from wait4,
file-backed pages included) is that export's alone; /proc sampling adds the peak anonymous and file-backed parts.
Prints one JSON line per export, then for 8B-shaped runs one `export-8b` line per backend (at `--extrapolate`
layers when given: a straight line through the shallowest and deepest depths run, when that depth was not
run), and for 0.5B-shaped runs an `export-summary` line with the streaming/optimum speed ratio.

    .venv/bin/python bench/export.py --shape 0.5b --backends streaming,optimum --formats int4,fp16
    .venv/bin/python bench/export.py --shape 8b --layers 8,16,32 --backends streaming
    .venv/bin/python bench/export.py --shape 8b --layers 1,3 --backends optimum --extrapolate 32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.model_builders import (  # noqa: E402
    build_minicpm4_05b_shaped,
    minicpm4_8b_config,
    write_random_minicpm,
)


def _sample_status(pid: int, peaks: dict, stop: threading.Event) -> None:
    """Peak RssAnon / RssFile of a running process (kB -> GiB), sampled every 50 ms."""
    while not stop.wait(0.05):
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                peaks[key] = max(peaks.get(key, 0), int(value.split()[0]))


def export_once(model: Path, out: Path, weight_format: str, backend: str) -> dict:
    """Run one export in a child process; wall time, the child's peak RSS, and what the manifest says."""
    shutil.rmtree(out, ignore_errors=True)
    log = out.with_suffix(".log")
    peaks: dict = {}
    stop = threading.Event()
    start = time.perf_counter()
    with log.open("w") as sink:
        child = subprocess.Popen([sys.executable, "-m", "export", str(model), str(out), "--weight-format",
                                  weight_format, "--backend", backend], stdout=sink, stderr=subprocess.STDOUT)
        sampler = threading.Thread(target=_sample_status, args=(child.pid, peaks, stop), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage: its peak RSS alone
    stop.set()
    wall = time.perf_counter() - start
    row = {"bench": "export", "model": model.name, "backend": backend, "format": weight_format,
           "wall_s": round(wall, 1), "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),  # ru_maxrss: KiB
           "peak_anon_gib": round(peaks.get("RssAnon", 0) / 2**20, 2),
           "peak_file_gib": round(peaks.get("RssFile", 0) / 2**20, 2)}
    if os.waitstatus_to_exitcode(status) != 0:
        return {**row, "ok": False, "error": log.read_text().strip().splitlines()[-1:]}
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        **row, "ok": True,
        "weights_gib": round(manifest["sizes"]["weights_bytes"] / 2**30, 3),
        "top1_agreement": manifest["validation"]["top1_agreement"],
        "max_abs_logit_diff": manifest["validation"]["max_abs_logit_diff"],
        "params": manifest["architecture"]["param_count"],
        "layers": manifest["architecture"].get("config", {}).get("num_hidden_layers"),
    }


def _extrapolate(rows: list[dict], layers: int) -> dict | None:
    """A linear fit of wall time and peak RSS over two or more depths, evaluated at `layers`."""
    points = sorted((r["layers"], r) for r in rows if r.get("ok"))
    if len(points) < 2:
        return None
    (l0, r0), (l1, r1) = points[0], points[-1]

    def at(key: str) -> float:
        return r0[key] + (r1[key] - r0[key]) * (layers - l0) / (l1 - l0)

    return {"layers": layers, "params": round(at("params")), "peak_rss_gib": round(at("peak_rss_gib"), 2),
            "wall_s": round(at("wall_s"), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("0.5b", "8b"), default="0.5b")
    parser.add_argument("--layers", default="32", help="8b: comma-separated depths to build and export")
    parser.add_argument("--formats", default="int4")
    parser.add_argument("--backends", default="streaming,optimum")
    parser.add_argument("--extrapolate", type=int, help="8b: report each backend at this depth, fitted if not run")
    parser.add_argument("--keep", action="store_true", help="keep the written 8B-shaped checkpoints and IRs")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "bench")
    args = parser.parse_args()
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    backends, formats = args.backends.split(","), args.formats.split(",")
    rows: list[dict] = []
    if args.shape == "0.5b":
        model = args.work / "minicpm4-0.5b-shaped"
        if not (model / "model.safetensors").is_file():
            build_minicpm4_05b_shaped(model)
        models = [(model, None)]
    else:
        models = []
        for layers in (int(v) for v in args.layers.split(",")):
            model = args.work / f"minicpm4-8b-shaped-L{layers}"
            if not (model / "model.safetensors.index.json").is_file():
                write_random_minicpm(model, minicpm4_8b_config(layers))
            models.append((model, layers))
    for model, _layers in models:
        for weight_format in formats:
            for backend in backends:
                out = args.work / f"out-{model.name}-{weight_format}-{backend}"
                row = {**export_once(model, out, weight_format, backend), **machine}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.shape == "8b" and not args.keep:
                    shutil.rmtree(out, ignore_errors=True)
        if args.shape == "8b" and not args.keep:
            shutil.rmtree(model, ignore_errors=True)
    if args.shape == "8b":
        for backend in backends:
            done = [r for r in rows if r["backend"] == backend and r.get("ok") and r["format"] == "int4"]
            target = args.extrapolate or max((r["layers"] for r in done), default=0)
            measured = next((r for r in done if r["layers"] == target), None)
            fit = None if measured else _extrapolate(done, target)
            if measured:
                fit = {"layers": target, "params": measured["params"], "peak_rss_gib": measured["peak_rss_gib"],
                       "wall_s": measured["wall_s"]}
            if fit:
                print(json.dumps({"bench": "export-8b", "backend": backend, **fit}), flush=True)
    else:
        wall = {(r["backend"], r["format"]): r["wall_s"] for r in rows if r.get("ok")}
        ratios = {fmt: round(wall[("optimum", fmt)] / wall[("streaming", fmt)], 2) for fmt in formats
                  if ("optimum", fmt) in wall and ("streaming", fmt) in wall}
        print(json.dumps({"bench": "export-summary", "model": "minicpm4-0.5b-shaped",
                          "speedup_streaming_vs_optimum": ratios}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
