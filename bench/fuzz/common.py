"""Shared pieces of the fuzz harnesses: the repository on sys.path, a scratch folder in memory, the run loop."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def scratch() -> Path:
    """A private scratch folder (in /dev/shm when there is one: every input is written to a file)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return Path(tempfile.mkdtemp(prefix="cpmdesk-fuzz-", dir=base))


def collecting(test_one: Callable[[bytes], None], folder: Path) -> Callable[[bytes], None]:
    """`test_one` that records each distinct crash (by exception type and raising line) in `folder` and goes on:
    for exploring; the measured runs stop at the first crash as libFuzzer does."""
    folder.mkdir(parents=True, exist_ok=True)

    def test(data: bytes) -> None:
        try:
            test_one(data)
        except Exception as err:
            frame = traceback.extract_tb(err.__traceback__)[-1]
            key = hashlib.sha1(f"{type(err).__name__}:{frame.filename}:{frame.lineno}".encode()).hexdigest()[:10]
            if not (folder / key).exists():
                (folder / key).write_bytes(data)
                (folder / f"{key}.txt").write_text("".join(traceback.format_exception(err)))
                print(f"CRASH {key}: {type(err).__name__}: {str(err)[:200]}", file=sys.stderr, flush=True)

    return test


def run(test_one: Callable[[bytes], None], instrumented: Callable[[], None]) -> None:
    """Start atheris (coverage-guided, libFuzzer engine) on `test_one`; `instrumented` imports the code under test
    inside atheris.instrument_imports() so its branches guide the search. libFuzzer flags pass through argv;
    CPMDESK_FUZZ_COLLECT=DIR records distinct crashes there instead of stopping at the first."""
    import logging

    import atheris

    logging.disable(logging.CRITICAL)  # the readers log each refusal: millions of lines, and slower runs
    with atheris.instrument_imports():
        instrumented()
    collect = os.environ.get("CPMDESK_FUZZ_COLLECT")
    atheris.Setup(sys.argv, collecting(test_one, Path(collect)) if collect else test_one)
    atheris.Fuzz()
