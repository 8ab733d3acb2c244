"""The command that runs cpmdesk-export in a child process (keeps torch out of the app's own process)."""

from __future__ import annotations

import sys
from pathlib import Path


def export_command(source: Path | str, out: Path, *options: str) -> list[str]:
    """The exporter as a child process: `python -m export SOURCE OUT …` with this interpreter, or `cpmdesk export
    SOURCE OUT …` inside the bundle (its executable runs the exporter); --force replaces a half-built OUT."""
    runner = [sys.executable, "export"] if getattr(sys, "frozen", False) else [sys.executable, "-m", "export"]
    return [*runner, str(source), str(out), "--force", *options]
