"""Work for a terminal command on a thread, so Ctrl-C can cancel it and let it clean up."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_cancellable(work: Callable[[threading.Event], T], notice: str | None = None) -> T:
    """Run `work(cancel)` on a thread and return its result; Ctrl-C sets `cancel` (printing `notice` to stderr
    when given) and waits for the work to finish. An exception in the work is raised here."""
    cancel = threading.Event()
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = work(cancel)
        except BaseException as err:  # re-raised on the main thread
            result["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        if notice:
            print(notice, file=sys.stderr, flush=True)
        cancel.set()
        worker.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
