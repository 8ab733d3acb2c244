"""One engine, one answer at a time: jobs run in order on a worker thread, and a full queue refuses more."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """Every place in the queue is taken; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class EngineQueue:
    """Runs submitted jobs one at a time, in order; at most `max_waiting` wait behind the running one.

    A job whose future is cancelled before it starts is skipped."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0  # waiting + running
        self._closing = False
        self._durations: deque[float] = deque(maxlen=8)
        self._thread = threading.Thread(target=self._work, name="engine-queue", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        with self._lock:
            return self._pending

    def submit(self, job: Callable[[], Any]) -> Future:
        """Queue `job`; its future holds the result or the exception. QueueFull when there is no room."""
        with self._lock:
            if self._pending >= 1 + self.max_waiting:
                raise QueueFull(self._retry_after())
            self._pending += 1
        future: Future = Future()
        self._jobs.put((job, future))
        return future

    def close(self) -> None:
        """Stop the worker: the running job finishes, the waiting ones are cancelled."""
        self._closing = True
        self._jobs.put(None)
        self._thread.join()

    def _retry_after(self) -> int:
        """Seconds until a place is likely free: the recent mean job time (1 s before any), at most a minute."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return max(1, min(60, math.ceil(mean)))

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, future = item
            try:
                if self._closing:
                    future.cancel()
                if not future.set_running_or_notify_cancel():
                    continue
                started = time.monotonic()
                try:
                    future.set_result(job())
                except BaseException as err:  # handed to the request that submitted it
                    future.set_exception(err)
                self._durations.append(time.monotonic() - started)
            finally:
                with self._lock:
                    self._pending -= 1
