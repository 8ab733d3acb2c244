"""The command that runs cpmdesk-export in a child process (keeps torch out of the app's own process)."""

from __future__ import annotations

import sys
from pathlib import Path


def export_command(source: Path | str, out: Path, *options: str) -> list[str]:
    """`python -m export SOURCE OUT …` with this interpreter; --force replaces a half-built OUT."""
    return [sys.executable, "-m", "export", str(source), str(out), "--force", *options]
