"""What the CPU offers that changes how OpenVINO's CPU plugin computes (read once, from the OS)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

log = logging.getLogger(__name__)


@functools.cache
def has_amx() -> bool:
    """Whether the CPU has AMX tiles (Xeon since Sapphire Rapids). Read from /proc/cpuinfo; False where there is
    none (Windows, macOS: the Core Ultra laptops cpmdesk is for have no AMX)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        log.info("CPU features unknown (%s): AMX taken as absent", err)
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "amx_bf16" in flags
