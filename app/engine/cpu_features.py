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


PRECISION = "INFERENCE_PRECISION_HINT"


def decode_first(properties: dict, device: str) -> dict:
    """`properties` with f32 activations on a CPU with AMX, unless they choose a precision already.

    There the CPU plugin defaults to bf16 on AMX tiles, which reads prompts fast but decodes slowly: at f32 the
    one-token steps run 25-57 % faster (int4 weights, issue 22: SmolLM2-135M, the MiniCPM4-0.5B shape,
    Qwen2.5-Coder-1.5B) and prompts 1.4-2.3x slower, and one-row and several-row steps round alike. Decoding is
    what a chat user waits on for every token. Other CPUs keep the plugin's default (f32 on Core Ultra laptops)."""
    if device != "CPU" or not has_amx() or PRECISION in properties:
        return properties
    return {**properties, PRECISION: "f32"}
