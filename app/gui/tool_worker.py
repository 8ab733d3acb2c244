"""An answer with tools, on its own QThread: the engine's rounds through the tool loop (app/tools/tool_loop.py),
each answer and each tool result stored as it comes. Approval is asked of the UI thread by a signal; this thread
waits for `decide()`, so the window never blocks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from app.engine import ChatEngine, Conversation, GenerationSettings
from app.engine.think_parser import Delta
from app.store import ChatStore
from app.store.answer_recorder import AnswerRecorder
from app.tools.mcp_client import McpHub
from app.tools.tool_loop import (
    AnswerTurn,
    Decision,
    PendingCall,
    RoundHooks,
    ToolCatalog,
    ToolLoop,
    ToolStep,
    run_with_tools,
)

log = logging.getLogger(__name__)


class ToolChatWorker(QObject):
    """GenerationWorker's signals, plus a new answer per round, approval requests and stored tool turns."""

    delta = Signal(str, str)  # kind, text
    finished = Signal(object, float)  # the last Reply, thinking seconds (or -1)
    failed = Signal(str)
    round_started = Signal(int)  # the id of the next answer, after tool results
    approval_needed = Signal(object)  # PendingCall: answer with decide()
    tool_stored = Signal(int)  # the id of a stored tool turn
    notice = Signal(str)  # a server that could not be reached

    def __init__(self, engine: ChatEngine, store: ChatStore, chat_id: int, conversation: Conversation,
                 settings: GenerationSettings, think: bool | None, hub: McpHub,
                 remember: Callable[[str, str], None] | None = None) -> None:
        super().__init__()
        self.engine, self.store, self.chat_id, self.hub = engine, store, chat_id, hub
        self.conversation, self.settings, self.think, self.remember = conversation, settings, think, remember
        self.cancel = threading.Event()
        self.recorder = AnswerRecorder(store, chat_id)
        self.message_id = self.recorder.message_id
        self._decided = threading.Event()
        self._decision = Decision.DENY
        self._rounds = 0
        self._thinking: list[float] = []  # [started, ended] of this round's reasoning

    def decide(self, decision: Decision) -> None:
        """The user's answer to the pending approval (any thread)."""
        self._decision = decision
        self._decided.set()

    def _approve(self, call: PendingCall) -> Decision:
        self._decided.clear()
        self._decision = Decision.DENY
        self.approval_needed.emit(call)
        while not self._decided.wait(0.1):
            if self.cancel.is_set():  # Stop while the question is open: the call does not run
                return Decision.DENY
        return self._decision

    def run(self) -> None:
        try:
            tools, errors = self.hub.all_tools()
            for message in errors.values():
                self.notice.emit(message)
            catalog = ToolCatalog(tools)
            self.conversation.tools = catalog.functions()
            loop = ToolLoop(catalog, lambda c: self.hub.call(c.server, c.tool, c.arguments), self._approve,
                            self.remember)
            reply = run_with_tools(self.engine, self.conversation, self.settings, self.think, loop,
                                   RoundHooks(self._start, self._shown, self._end), self.cancel)
        except Exception as err:  # shown in the status bar; the partial answer stays stored as failed
            log.warning("generation with tools failed", exc_info=True)
            self.recorder.fail()
            self.failed.emit(str(err))
            return
        self.finished.emit(reply, self._thinking_s())

    def _start(self) -> None:
        self._rounds += 1
        self._thinking = []
        if self._rounds > 1:
            self.recorder = AnswerRecorder(self.store, self.chat_id)
            self.message_id = self.recorder.message_id
            self.round_started.emit(self.message_id)

    def _shown(self, kind: str, text: str) -> None:
        if kind == "reasoning" and not self._thinking:
            self._thinking = [time.monotonic()]
        elif kind != "reasoning" and len(self._thinking) == 1:
            self._thinking.append(time.monotonic())
        self.recorder(Delta(kind, text))
        self.delta.emit(kind, text)

    def _thinking_s(self) -> float:
        if not self._thinking:
            return -1.0
        return (self._thinking[1] if len(self._thinking) > 1 else time.monotonic()) - self._thinking[0]

    def _end(self, reply, turn: AnswerTurn, steps: list[ToolStep]) -> None:
        thinking = self._thinking_s()
        self.recorder.finish(replace(reply, answer=turn.content),
                             {"thinking_s": round(thinking, 2)} if thinking >= 0 else None)
        if turn.calls:
            self.store.set_tool_calls(self.message_id, [call.openai() for call in turn.calls])
        for step in steps:
            self.tool_stored.emit(self.store.add_tool_result(self.chat_id, step.call.call_id, step.result.text,
                                                             step.record()))
