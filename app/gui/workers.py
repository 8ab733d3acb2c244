"""Work that must not block the UI: loading a model and generating an answer, each on its own QThread."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from app.engine import ChatEngine, Conversation, GenerationSettings
from app.engine.speculative import DraftConfig
from app.models.library import with_draft
from app.store import ChatStore
from app.store.answer_recorder import AnswerRecorder

log = logging.getLogger(__name__)


class ModelLoader(QObject):
    """Builds a ChatEngine off the UI thread, in the pipeline mode `greedy` (or sampled) answers need. With
    `library_drafts`, a model without a draft of its own gets one from the user's models (the library's draft_for:
    MiniCPM4-0.5B for an 8B MiniCPM4), `extra_dirs` being the folders the user added."""

    loaded = Signal(object)  # ChatEngine
    failed = Signal(str)

    def __init__(self, folder: Path, device: str, draft: DraftConfig | None = None,
                 greedy: bool | None = None, library_drafts: bool = False,
                 extra_dirs: list[str] | None = None, context: int | None = None) -> None:
        super().__init__()
        self.folder, self.device, self.draft, self.greedy = folder, device, draft, greedy
        self.context = context
        self.library_drafts, self.extra_dirs = library_drafts, list(extra_dirs or [])

    def run(self) -> None:
        draft = self.draft
        if self.library_drafts:
            draft, _match = with_draft(self.folder, draft or DraftConfig(), self.extra_dirs)
        try:
            self.loaded.emit(ChatEngine(self.folder, self.device, self.context, draft=draft, greedy=self.greedy))
        except Exception as err:  # every load failure is shown to the user, never raised into Qt
            log.warning("loading %s on %s failed", self.folder, self.device, exc_info=True)
            self.failed.emit(str(err))


class GenerationWorker(QObject):
    """Runs one answer: streams deltas as signals and records the answer in the store as it grows. The engine
    switches its pipeline mode here, off the UI thread, when the answer needs the other one (draft or not)."""

    delta = Signal(str, str)  # kind, text
    finished = Signal(object, float)  # Reply, thinking seconds (or -1)
    failed = Signal(str)

    def __init__(self, engine: ChatEngine, store: ChatStore, chat_id: int, conversation: Conversation,
                 settings: GenerationSettings, think: bool | None) -> None:
        super().__init__()
        self.engine, self.store, self.chat_id = engine, store, chat_id
        self.conversation, self.settings, self.think = conversation, settings, think
        self.cancel = threading.Event()
        self.recorder = AnswerRecorder(store, chat_id)
        self.message_id = self.recorder.message_id
        self._thinking_started: float | None = None
        self._thinking_s = -1.0

    def run(self) -> None:
        def on_delta(delta) -> None:
            if delta.kind == "reasoning" and self._thinking_started is None:
                self._thinking_started = time.monotonic()
            if delta.kind == "answer" and self._thinking_started is not None and self._thinking_s < 0:
                self._thinking_s = time.monotonic() - self._thinking_started
            self.recorder(delta)
            self.delta.emit(delta.kind, delta.text)

        try:
            reply = self.engine.generate(self.conversation, self.settings, self.think, on_delta, self.cancel)
        except Exception as err:  # shown in the transcript; the partial answer stays stored as failed
            log.warning("generation failed", exc_info=True)
            self.recorder.fail()
            self.failed.emit(str(err))
            return
        if self._thinking_started is not None and self._thinking_s < 0:
            self._thinking_s = time.monotonic() - self._thinking_started
        self.recorder.finish(reply, {"thinking_s": round(self._thinking_s, 2)} if self._thinking_s >= 0 else None)
        self.finished.emit(reply, self._thinking_s)


class Threads:
    """Runs workers on their own QThreads and can wait for all of them (window close, tests)."""

    def __init__(self) -> None:
        self._running: list[tuple[QThread, QObject]] = []

    def start(self, worker: QObject) -> QThread:
        """Move `worker` to a new QThread and call its run(); the thread ends when the worker reports back."""
        thread = QThread()
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        for name in ("finished", "failed", "loaded"):
            signal = getattr(worker, name, None)
            if signal is not None:
                signal.connect(thread.quit)
        self._running = [(t, w) for t, w in self._running if not t.isFinished()] + [(thread, worker)]
        thread.start()
        return thread

    def wait_all(self, timeout_ms: int = 30_000) -> None:
        """Block until every started thread has ended."""
        for thread, _worker in self._running:
            thread.quit()
            thread.wait(timeout_ms)
        self._running = []
