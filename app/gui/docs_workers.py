"""Documents work off the UI thread: indexing (progress, cancel) and answering from the documents."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.docs.answer import answer_from_documents, nothing_found_reply
from app.docs.library import DocsLibrary
from app.engine import ChatEngine, Conversation, GenerationSettings
from app.gui.workers import GenerationWorker
from app.store import ChatStore

log = logging.getLogger(__name__)


class IndexWorker(QObject):
    """Indexes paths (and whatever an earlier run left queued) into the library."""

    progress = Signal(object)  # app.docs.indexer.Progress
    finished = Signal(object)  # IndexReport
    failed = Signal(str)

    def __init__(self, library: DocsLibrary, paths: list[Path]) -> None:
        super().__init__()
        self.library, self.paths = library, paths
        self.cancel = threading.Event()

    def run(self) -> None:
        try:
            report = self.library.indexer().run(self.paths, self.progress.emit, self.cancel)
        except Exception as err:  # the embedding model could not be built or loaded: shown, never raised into Qt
            log.warning("indexing failed", exc_info=True)
            self.failed.emit(str(err))
            return
        self.finished.emit(report)


class DocsGenerationWorker(GenerationWorker):
    """An answer in Documents mode: retrieval, then generation with the numbered passages; the sources are stored
    with the answer (its metrics) so the transcript can show and open them after a restart."""

    def __init__(self, engine: ChatEngine, library: DocsLibrary, store: ChatStore, chat_id: int,
                 conversation: Conversation, settings: GenerationSettings, think: bool | None) -> None:
        super().__init__(engine, store, chat_id, conversation, settings, think)
        self.library = library

    def run(self) -> None:
        def on_delta(delta) -> None:
            self.recorder(delta)
            self.delta.emit(delta.kind, delta.text)

        try:
            result = answer_from_documents(self.engine, self.library.store, self.library.embedder(),
                                           self.conversation, self.settings, self.think, on_delta, self.cancel)
        except Exception as err:  # shown in the status bar; the partial answer stays stored as failed
            log.warning("answering from the documents failed", exc_info=True)
            self.recorder.fail()
            self.failed.emit(str(err))
            return
        reply = result.reply or nothing_found_reply()
        self.recorder.finish(reply, {"sources": result.sources_metadata(), "documents": True,
                                     "note": result.note})
        self.finished.emit(reply, -1.0)
