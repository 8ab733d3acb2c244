"""Write an answer to the store while it streams: throttled, so disk writes never slow generation down."""

from __future__ import annotations

import time

from app.engine.engine import Reply
from app.engine.think_parser import Delta
from app.store.chat_store import ChatStore

WRITE_INTERVAL_S = 0.1


class AnswerRecorder:
    """Feed it the engine's deltas; it keeps the stored answer at most WRITE_INTERVAL_S behind the stream."""

    def __init__(self, store: ChatStore, chat_id: int) -> None:
        self.store = store
        self.message_id = store.start_answer(chat_id)
        self._answer: list[str] = []
        self._reasoning: list[str] = []
        self._last_write = 0.0

    def __call__(self, delta: Delta) -> None:
        (self._reasoning if delta.kind == "reasoning" else self._answer).append(delta.text)
        now = time.monotonic()
        if now - self._last_write >= WRITE_INTERVAL_S:
            self.store.update_answer(self.message_id, "".join(self._answer), "".join(self._reasoning))
            self._last_write = now

    def finish(self, reply: Reply, extra_metrics: dict | None = None) -> None:
        """The parsed final answer, with how it ended and its speed."""
        metrics = {"tokens": reply.num_tokens, "ttft_ms": round(reply.ttft_ms, 1),
                   "tokens_per_second": round(reply.tokens_per_second, 2), "dropped_messages": reply.dropped_messages,
                   **(extra_metrics or {})}
        self.store.finish_answer(self.message_id, reply.answer, reply.reasoning,
                                 "stopped" if reply.stopped else "done", metrics)

    def fail(self) -> None:
        """Generation raised: keep what was written, marked as failed."""
        self.store.finish_answer(self.message_id, "".join(self._answer), "".join(self._reasoning), "failed")
