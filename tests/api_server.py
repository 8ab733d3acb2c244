"""A real `cpmdesk serve` in a child process for the API tests: its address, token and log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    """A running server."""

    process: subprocess.Popen
    base_url: str
    token: str
    log_path: Path

    def log(self) -> str:
        """What the server has written to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _answers(base_url: str) -> bool:
    """Whether the server answers HTTP yet (uvicorn's own startup line goes to the log file, not stderr)."""
    import httpx

    try:
        httpx.get(base_url + "/models", timeout=5)
    except httpx.HTTPError:
        return False
    return True


def start_server(model: Path, log_path: Path, *extra: str, timeout: float = 180) -> Served:
    """Start `cpmdesk serve --model MODEL --port 0` and wait until it listens."""
    handle = log_path.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--model", str(model), "--port", "0", *extra],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=handle, env=dict(os.environ))
    handle.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        found = re.search(r"cpmdesk API: (http://127\.0\.0\.1:\d+/v1)", text)
        if found and _answers(found.group(1)):
            from app.server.auth import load_token

            return Served(process, found.group(1), load_token()[0], log_path)
        if process.poll() is not None:
            raise RuntimeError(f"cpmdesk serve exited ({process.returncode}):\n{text}")
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"cpmdesk serve did not start in {timeout} s:\n{log_path.read_text(errors='replace')}")
