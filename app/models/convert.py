"""Run cpmdesk-export in a child process (torch and the exporter's memory stay out of the app), with progress
per step and per layer parsed from its output, and a cancel that leaves no half-built folder."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.export_runner import export_command

log = logging.getLogger(__name__)
_STEP = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)")
_LAYER = re.compile(r"layer (\d+)/(\d+)")
_STOP_WAIT = 20.0  # seconds the exporter gets to clean its staging folder after an interrupt


class ConvertError(RuntimeError):
    """The export failed; the message is its one-line error."""


class ConvertCancelled(Exception):
    """The user cancelled; nothing was written to the output folder."""


@dataclass(frozen=True)
class ConvertProgress:
    """Where the export is: step n of total, layer i of n while converting (0 of 0 otherwise), and its line."""

    step: int
    steps: int
    layer: int
    layers: int
    line: str

    def describe(self) -> str:
        """E.g. "step 3/5, layer 12/24"."""
        text = f"step {self.step}/{self.steps}"
        return text + (f", layer {self.layer}/{self.layers}" if self.layers else "") + f": {self.line}"


OnConvert = Callable[[ConvertProgress], None]


def parse_progress(line: str, last: ConvertProgress) -> ConvertProgress | None:
    """The progress a line of the exporter's output reports, or None when it reports none."""
    step = _STEP.match(line)
    if step:
        return ConvertProgress(int(step.group(1)), int(step.group(2)), 0, 0, step.group(3))
    layer = _LAYER.search(line)
    if layer:
        return ConvertProgress(last.step, last.steps, int(layer.group(1)), int(layer.group(2)), line)
    return None


def convert(source: Path | str, out: Path, options: tuple[str, ...] = (), on_progress: OnConvert | None = None,
            cancel: threading.Event | None = None) -> Path:
    """Export `source` (Hugging Face folder, .gguf file or hub id) into `out`; returns `out`."""
    cancel = cancel or threading.Event()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(export_command(source, out, *options), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace", env=env)
    watcher = threading.Thread(target=_stop_on_cancel, args=(process, cancel), daemon=True)
    watcher.start()
    last, error = ConvertProgress(0, 5, 0, 0, ""), ""
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.strip()
        if line.startswith("error:"):
            error = line[len("error:"):].strip()
        progress = parse_progress(line, last)
        if progress is not None:
            last = progress
            if on_progress is not None:
                on_progress(progress)
    code = process.wait()
    if cancel.is_set():
        _remove_staging(out)
        raise ConvertCancelled("Cancelled: the conversion stopped and its unfinished model was deleted")
    if code != 0:
        log.warning("export of %s failed with exit code %s: %s", source, code, error)
        raise ConvertError(error or f"The conversion failed (exit code {code})")
    return out


def cancelled_after_download(hub_id: str) -> ConvertCancelled:
    """What a cancel during the conversion of a finished download says: the download itself is kept."""
    return ConvertCancelled(f"Cancelled: the conversion stopped and its unfinished model was deleted; the download "
                            f"of {hub_id} is kept to convert again (Privacy & data deletes it)")


def _stop_on_cancel(process: subprocess.Popen, cancel: threading.Event) -> None:
    """Interrupt the exporter when `cancel` is set (it then removes its staging folder), kill it if it hangs."""
    while process.poll() is None:
        if cancel.wait(0.2):
            break
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT if os.name == "posix" else signal.SIGTERM)
    try:
        process.wait(_STOP_WAIT)
    except subprocess.TimeoutExpired:
        log.warning("the exporter did not stop within %.0f s; killing it", _STOP_WAIT)
        process.kill()


def _remove_staging(out: Path) -> None:
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
