"""An export killed half-way leaves nothing that looks usable, and the next run cleans up and succeeds."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_killed_export_leaves_no_output(tiny_llama, tmp_path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "export", str(tiny_llama), str(out), "--weight-format", "int8"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    staging = []
    while time.monotonic() < deadline and not staging:
        staging = list(tmp_path.glob(".out.partial-*/ir/*"))  # conversion has started writing
        time.sleep(0.05)
    assert staging, "the export never started writing"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not out.exists()
    assert list(tmp_path.glob(".out.partial-*")), "the staging folder is where the partial work went"

    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "manifest.json").is_file()
    assert not list(tmp_path.glob(".out.partial-*")), "the stale staging folder was not removed"
