"""The tool loop, Qt-free: the model's streamed answer is scanned for tool calls (app/engine/tool_calls.py); each
call waits for the user's approval (Allow once / Always for this tool / Deny), runs on its MCP server, and its
result goes back to the model as a `tool` turn; then the model answers again. Nothing runs unapproved.

The GUI's worker and `cpmdesk ask --tools` drive the same controller; `run_with_tools` is the whole loop on an
engine, with hooks for what a caller records or shows per round.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from app.engine.conversation import Conversation, Message
from app.engine.tool_calls import MalformedCall, Text, ToolCall, ToolCallParser
from app.tools.mcp_client import ToolInfo, ToolResult

MAX_ROUNDS = 6  # answers per message at most: a model that keeps calling is stopped here
log = logging.getLogger(__name__)


class Decision(Enum):
    """The user's answer to a call."""

    ALLOW_ONCE = "once"
    ALWAYS = "always"
    DENY = "deny"


@dataclass(frozen=True)
class PendingCall:
    """A call the model asked for, resolved to its server's tool (server "" when no tool has that name)."""

    call_id: str
    name: str  # as the model wrote it
    server: str
    tool: str
    arguments: dict

    def openai(self) -> dict:
        """The call as the assistant message's `tool_calls` entry."""
        return {"id": self.call_id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}

    def describe(self) -> str:
        """`server / tool(arguments)` for the terminal and the log."""
        return f"{self.server or '?'} / {self.tool}({json.dumps(self.arguments, ensure_ascii=False)})"


@dataclass(frozen=True)
class ToolStep:
    """A call and what came of it: `outcome` is "allowed", "always" (allowed earlier), "denied", "unknown" or
    "repeated" (the same call ran before in this answer: not run or asked about again)."""

    call: PendingCall
    outcome: str
    result: ToolResult
    seconds: float = 0.0

    def message(self) -> Message:
        """The `tool` turn that gives the result back to the model."""
        return Message("tool", self.result.text, tool_call_id=self.call.call_id)

    def record(self) -> dict:
        """What is stored with the tool turn (its metrics): enough to show the card again."""
        return {"tool": {"name": self.call.tool, "server": self.call.server, "arguments": self.call.arguments,
                         "outcome": self.outcome, "is_error": self.result.is_error,
                         "truncated": self.result.truncated, "seconds": round(self.seconds, 2)}}


@dataclass
class AnswerTurn:
    """One finished answer: its visible text and the calls it made."""

    content: str
    calls: list[PendingCall] = field(default_factory=list)
    malformed: list[MalformedCall] = field(default_factory=list)

    def message(self, reasoning: str = "") -> Message:
        """The assistant turn as it goes back into the conversation (calls as `tool_calls`)."""
        return Message("assistant", self.content, reasoning, [c.openai() for c in self.calls] or None)


class ToolCatalog:
    """The enabled tools by the name the model sees (a name two servers share gets the server as a prefix)."""

    def __init__(self, tools: list[ToolInfo]) -> None:
        self.by_name: dict[str, ToolInfo] = {}
        for tool in (t for t in tools if t.enabled):
            name = tool.name if tool.name not in self.by_name else f"{tool.server}_{tool.name}"
            self.by_name[name] = tool

    def functions(self) -> list[dict]:
        """OpenAI function definitions for the prompt (Conversation.tools)."""
        return [tool.function(name) for name, tool in self.by_name.items()]

    def resolve(self, call: ToolCall) -> PendingCall:
        """A parsed call with a fresh id and its tool (server "" when the name is unknown)."""
        tool = self.by_name.get(call.name)
        return PendingCall(f"call_{uuid.uuid4().hex[:16]}", call.name, tool.server if tool else "",
                           tool.name if tool else call.name, dict(call.arguments))

    def __bool__(self) -> bool:
        return bool(self.by_name)


Approver = Callable[[PendingCall], Decision]
Runner = Callable[[PendingCall], ToolResult]


class ToolLoop:
    """Feed it an answer's text as it streams; `finish` says what calls it made, `resolve` asks and runs them.

    `approve` is asked for every call not allowed always (it may block: it runs on the caller's worker thread);
    `remember` keeps an "Always for this tool" choice (mcp.json)."""

    def __init__(self, catalog: ToolCatalog, run: Runner, approve: Approver,
                 remember: Callable[[str, str], None] | None = None, max_rounds: int = MAX_ROUNDS) -> None:
        self.catalog, self._run, self._approve, self._remember = catalog, run, approve, remember
        self.max_rounds = max_rounds
        self.always = {(t.server, t.name) for t in catalog.by_name.values() if t.always_allowed}
        self.rounds = 0
        self._parser = ToolCallParser(frozenset(self.catalog.by_name))
        self._events: list = []
        self._made: set[str] = set()  # calls that ran in this answer, as _signature()s
        self._only_repeats = False  # the last resolve() met only calls that had run before

    def begin(self) -> None:
        """A new answer starts."""
        self._parser, self._events = ToolCallParser(frozenset(self.catalog.by_name)), []
        self.rounds += 1

    def feed(self, text: str) -> str:
        """An answer chunk; returns the part to show (tool-call blocks are held back and shown as cards)."""
        events = self._parser.feed(text)
        self._events += events
        return "".join(e.text for e in events if isinstance(e, Text | MalformedCall))

    def finish(self) -> tuple[AnswerTurn, str]:
        """The answer ended: its turn, and the last text to show."""
        events = self._parser.finish()
        self._events += events
        shown = "".join(e.text for e in events if isinstance(e, Text | MalformedCall))
        content = "".join(e.text for e in self._events if isinstance(e, Text | MalformedCall)).strip()
        calls = [self.catalog.resolve(e) for e in self._events if isinstance(e, ToolCall)]
        malformed = [e for e in self._events if isinstance(e, MalformedCall)]
        for bad in malformed:
            log.info("a tool call did not parse: %s", bad.reason)
        return AnswerTurn(content, calls, malformed), shown

    def wants_another_round(self, turn: AnswerTurn) -> bool:
        """Whether the answer's calls go back to the model: it made some, not only calls it had made before (a
        model that asks again for a result it has is not asked once more), and MAX_ROUNDS is not reached."""
        return bool(turn.calls) and not self._only_repeats and self.rounds < self.max_rounds

    def resolve(self, turn: AnswerTurn, cancel: threading.Event | None = None) -> list[ToolStep]:
        """Ask about and run each call in order; a denied, cancelled or unknown call runs nothing and the model is
        told so."""
        steps = []
        for call in turn.calls:
            if _signature(call) in self._made:  # the same call with the same arguments ran before in this answer
                log.info("tool call %s / %s asked again with the same arguments: not run", call.server, call.tool)
                steps.append(ToolStep(call, "repeated", ToolResult(
                    f"{call.name} already ran with these arguments; its result is above.", is_error=False)))
                continue
            step = self.step(call, cancel)
            if step.outcome in ("allowed", "always"):
                self._made.add(_signature(call))
            steps.append(step)
        self._only_repeats = bool(steps) and all(step.outcome == "repeated" for step in steps)
        return steps

    def step(self, call: PendingCall, cancel: threading.Event | None = None) -> ToolStep:
        """One call: unknown, denied or run."""
        if not call.server:
            names = ", ".join(self.catalog.by_name) or "none"
            return ToolStep(call, "unknown", ToolResult(f"There is no tool named {call.name!r}; the tools are: "
                                                        f"{names}.", is_error=True))
        if (call.server, call.tool) in self.always:
            outcome = "always"
        elif cancel is not None and cancel.is_set():
            outcome = "denied"
        else:
            decision = self._approve(call)
            if decision is Decision.ALWAYS:
                self.always.add((call.server, call.tool))
                if self._remember is not None:
                    self._remember(call.server, call.tool)
            outcome = "denied" if decision is Decision.DENY or (cancel is not None and cancel.is_set()) else \
                "allowed"
        if outcome == "denied":
            log.info("tool call denied: %s / %s", call.server, call.tool)
            return ToolStep(call, outcome, ToolResult(f"The user denied the call to {call.name}; it did not run.",
                                                      is_error=True))
        started = time.monotonic()
        result = self._run(call)
        log.info("tool call %s / %s: %s in %.2f s", call.server, call.tool, "error" if result.is_error else "ok",
                 time.monotonic() - started)
        return ToolStep(call, outcome, result, time.monotonic() - started)


def _signature(call: PendingCall) -> str:
    return f"{call.server}/{call.tool}:{json.dumps(call.arguments, sort_keys=True, ensure_ascii=False)}"


@dataclass
class RoundHooks:
    """What a caller of run_with_tools does per answer: `start` before it, `shown` for each piece of text or
    reasoning to show (kind, text), `end` with the reply, the turn and the steps its calls took."""

    start: Callable[[], None] = lambda: None
    shown: Callable[[str, str], None] = lambda kind, text: None
    end: Callable[[object, AnswerTurn, list[ToolStep]], None] = lambda reply, turn, steps: None


def run_with_tools(engine, conversation: Conversation, settings, think: bool | None, loop: ToolLoop,
                   hooks: RoundHooks, cancel: threading.Event | None = None):
    """Answer the conversation with its tools (conversation.tools set by the caller): generate, ask about and run
    the calls, give the results back, generate again, until an answer makes no call, Stop, or MAX_ROUNDS.
    Returns the last Reply, its answer being the visible text."""
    while True:
        loop.begin()
        hooks.start()

        def on_delta(delta) -> None:
            text = delta.text if delta.kind == "reasoning" else loop.feed(delta.text)
            if text:
                hooks.shown(delta.kind, text)

        reply = engine.generate(conversation, settings, think, on_delta, cancel)
        turn, rest = loop.finish()
        if rest:
            hooks.shown("answer", rest)
        stopped = reply.stopped or (cancel is not None and cancel.is_set())
        if stopped:
            turn.calls = []  # Stop: calls the model was writing are neither asked about nor kept
        conversation.messages[-1] = turn.message(reply.reasoning)
        reply = replace(reply, answer=turn.content)
        steps = loop.resolve(turn, cancel) if turn.calls and not stopped else []
        conversation.messages += [step.message() for step in steps]
        hooks.end(reply, turn, steps)
        if stopped or not steps or not loop.wants_another_round(turn):
            return reply
