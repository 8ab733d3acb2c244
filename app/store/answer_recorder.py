"""Write an answer to the store while it streams: throttled, so disk writes never slow generation down."""

from __future__ import annotations

import time
from collections.abc import Callable

from app.engine.engine import Reply
from app.engine.think_parser import Delta
from app.store.chat_store import ChatStore, StoreError

WRITE_INTERVAL_S = 0.1


class AnswerRecorder:
    """Feed it the engine's deltas; it keeps the stored answer at most WRITE_INTERVAL_S behind the stream.

    A failed write (disk full) never stops the answer: `save_error` says why, and `retry()` writes it later.
    """

    def __init__(self, store: ChatStore, chat_id: int) -> None:
        self.store = store
        self.message_id = store.start_answer(chat_id)
        self._answer: list[str] = []
        self._reasoning: list[str] = []
        self._last_write = 0.0
        self.save_error: str | None = None
        self._pending: Callable[[], None] | None = None

    def __call__(self, delta: Delta) -> None:
        (self._reasoning if delta.kind == "reasoning" else self._answer).append(delta.text)
        now = time.monotonic()
        if now - self._last_write >= WRITE_INTERVAL_S:
            answer, reasoning = "".join(self._answer), "".join(self._reasoning)
            self._save(lambda: self.store.update_answer(self.message_id, answer, reasoning))
            self._last_write = now

    def _save(self, write: Callable[[], None]) -> None:
        try:
            write()
        except StoreError as err:
            self.save_error, self._pending = str(err), write
        else:
            self.save_error, self._pending = None, None

    def retry(self) -> bool:
        """Write what could not be saved before; True when the answer is fully saved."""
        if self._pending is not None:
            self._save(self._pending)
        return self.save_error is None

    def finish(self, reply: Reply, extra_metrics: dict | None = None) -> None:
        """The parsed final answer, with how it ended and its speed."""
        metrics = {"tokens": reply.num_tokens, "ttft_ms": round(reply.ttft_ms, 1),
                   "tokens_per_second": round(reply.tokens_per_second, 2), "dropped_messages": reply.dropped_messages,
                   **(extra_metrics or {})}
        status = "stopped" if reply.stopped else "done"
        self._save(lambda: self.store.finish_answer(self.message_id, reply.answer, reply.reasoning, status, metrics))

    def fail(self) -> None:
        """Generation raised: keep what was written, marked as failed."""
        answer, reasoning = "".join(self._answer), "".join(self._reasoning)
        self._save(lambda: self.store.finish_answer(self.message_id, answer, reasoning, "failed"))
