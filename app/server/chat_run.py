"""One chat completion on the engine: settings from the request over the model's defaults, the context checked,
and (when streaming) each piece of reasoning, text and each tool call handed to the event loop as it comes.

Events cross from the engine's thread to the event loop in batches: the worker appends to an outbox and wakes the
loop only when no wake-up is pending, so tokens made while the loop is busy (writing the previous chunk) go over
with one wake-up instead of one each. Streamed text is also paced: after text went out, the next goes no sooner
than STREAM_INTERVAL_S later (what came meanwhile joined to it), the first text and the end at once."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

from app.engine import ChatEngine, Delta, GenerationSettings, Reply
from app.engine.model_defaults import Sampling as ModelSampling
from app.engine.tool_calls import MalformedCall, Text, ToolCall, ToolCallParser, offered_names
from app.engine.tool_prompt import ToolTemplateError
from app.server import STREAM_INTERVAL_S
from app.server.protocol import ChatRequest, RequestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Piece:
    """Streamed text: kind "reasoning" or "content"."""

    kind: str
    text: str


@dataclass(frozen=True)
class Finished:
    """Generation ended."""

    reply: Reply
    finish_reason: str


@dataclass(frozen=True)
class Failed:
    """Generation did not start or broke off."""

    error: BaseException


class ChatRun:
    """A request's generation, run by the engine queue's worker (call it); `cancel` stops it.

    With `events` (streaming), it puts Piece, ToolCall, MalformedCall and then Finished or Failed on that asyncio
    queue from the worker thread; without, the result is only its return value."""

    def __init__(self, engine: ChatEngine, request: ChatRequest, defaults: ModelSampling,
                 events: asyncio.Queue | None = None, loop: asyncio.AbstractEventLoop | None = None,
                 interval_s: float = STREAM_INTERVAL_S) -> None:
        self.engine, self.request, self.defaults = engine, request, defaults
        self.cancel = threading.Event()
        self.events = events
        self._handoff = HandOff(events, loop, interval_s) if events is not None and loop is not None else None
        self._tools = ToolCallParser(offered_names(request.conversation.tools)) if request.parse_tools else None

    def __call__(self) -> Finished:
        try:
            finished = self._generate()
        except BaseException as err:
            self._put(Failed(err))
            raise
        self._put(finished)
        return finished

    def _generate(self) -> Finished:
        started = time.monotonic()
        request, engine = self.request, self.engine
        conversation = request.conversation
        try:
            prompt = engine.render(conversation.prompt_messages(), request.think, conversation.tools)
        except ToolTemplateError as err:
            raise RequestError(str(err), "messages") from err
        prompt_tokens = engine.count_tokens(prompt)
        room = engine.context_tokens - prompt_tokens
        wanted = request.sampling.max_tokens or max(room, 1)
        if wanted > room:
            raise RequestError(f"This model's context is {engine.context_tokens} tokens; the messages take "
                               f"{prompt_tokens} and max_tokens asks for {wanted}", "messages",
                               "context_length_exceeded")
        settings = self.settings(wanted)
        on_delta = self._on_delta if self.events is not None else None
        reply = engine.generate(conversation, settings, request.think, on_delta, self.cancel)
        if self._tools is not None and self.events is not None:
            for event in self._tools.finish():
                self._put_tool_event(event)
        reason = "length" if reply.num_tokens >= settings.max_new_tokens and not reply.stopped else "stop"
        log.info("chat completion: %d prompt + %d completion tokens in %.2f s%s", reply.prompt_tokens,
                 reply.num_tokens, time.monotonic() - started, ", cancelled" if reply.stopped else "")
        return Finished(reply, reason)

    def settings(self, max_new_tokens: int) -> GenerationSettings:
        """The request's sampling over the model's defaults (app/engine/model_defaults.py), as the app answers."""
        asked = self.request.sampling
        base = self.defaults.generation(max_new_tokens)
        changes = {name: value for name, value in (
            ("temperature", asked.temperature), ("top_p", asked.top_p), ("seed", asked.seed),
            ("presence_penalty", asked.presence_penalty), ("frequency_penalty", asked.frequency_penalty))
            if value is not None}
        return replace(base, stop_strings=asked.stop, ignore_eos=asked.ignore_eos, **changes)

    def _on_delta(self, delta: Delta) -> None:
        if delta.kind == "reasoning":
            self._put(Piece("reasoning", delta.text))
        elif self._tools is None:
            self._put(Piece("content", delta.text))
        else:
            for event in self._tools.feed(delta.text):
                self._put_tool_event(event)

    def _put_tool_event(self, event: Text | ToolCall | MalformedCall) -> None:
        self._put(Piece("content", event.text) if isinstance(event, Text) else event)

    def _put(self, event: object) -> None:
        if self._handoff is not None:
            self._handoff.put(event, paced=isinstance(event, Piece))


class HandOff:
    """Events from a worker thread onto an asyncio queue, in order, with one wake-up of the loop per batch: what
    arrives while a delivery is pending (the loop is busy writing the previous chunk) goes with it.

    Paced events (streamed text) are delivered no sooner than `interval_s` after the last delivery that carried
    paced events; the first one, and any unpaced event (a tool call, the end), go at once and take whatever is
    waiting with them."""

    def __init__(self, events: asyncio.Queue, loop: asyncio.AbstractEventLoop, interval_s: float = 0.0) -> None:
        self.events, self._loop, self.interval_s = events, loop, interval_s
        self._outbox: deque = deque()
        self._lock = threading.Lock()
        self._pending: str | None = None  # "now" or "later" while a delivery is scheduled
        self._paced_waiting = False  # the outbox holds paced events
        self._last_paced: float | None = None  # when paced events were last delivered (time.monotonic)

    def put(self, event: object, paced: bool = False) -> None:
        """Queue `event` (any thread); schedule a delivery unless one that is soon enough is on its way."""
        self._outbox.append(event)
        with self._lock:
            self._paced_waiting = self._paced_waiting or paced
            if self._pending == "now" or (self._pending == "later" and paced):
                return
            last = self._last_paced
            delay = 0.0 if not paced or last is None else last + self.interval_s - time.monotonic()
            self._pending = "now" if delay <= 0 else "later"
        if delay <= 0:
            self._loop.call_soon_threadsafe(self._deliver)
        else:
            self._loop.call_soon_threadsafe(self._loop.call_later, delay, self._deliver)

    def _deliver(self) -> None:
        """On the loop: everything in the outbox onto the queue."""
        with self._lock:
            self._pending = None  # cleared first: an event put after this schedules its own delivery
            if self._paced_waiting:
                self._last_paced, self._paced_waiting = time.monotonic(), False
        while self._outbox:
            self.events.put_nowait(self._outbox.popleft())
