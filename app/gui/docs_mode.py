"""Documents mode in the main window: the composer's toggle, the Documents… menu entry and panel, answering from
the documents, opening a cited passage, and resuming indexing that a crash or a cancel left unfinished."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow

from app.docs.library import DocsLibrary
from app.gui.docs_dialog import DocumentsDialog
from app.gui.docs_workers import DocsGenerationWorker
from app.gui.passage_dialog import PassageDialog
from app.gui.report_dialog import ReportDialog
from app.gui.switch import Switch


class DocsMode(QObject):
    """Owns the document library of one window (opened on first use)."""

    def __init__(self, window: QMainWindow, db_path: Path) -> None:
        super().__init__(window)
        self.window, self.db_path = window, db_path
        self._library: DocsLibrary | None = None
        self.dialog: DocumentsDialog | None = None
        self.passage_dialog: PassageDialog | None = None
        self.toggle = Switch(window.tr("Documents"))
        self.toggle.setToolTip(window.tr("Answer from your own documents, with numbered sources (Chat → Documents… "
                                         "to add files)"))
        self.toggle.toggled.connect(self._on_toggled)
        self.action = QAction(window.tr("Documents…"), window)
        self.action.triggered.connect(self.open_dialog)
        self.report_dialog: ReportDialog | None = None
        self.report_action = QAction(window.tr("Write a report…"), window)
        self.report_action.triggered.connect(self.open_report)
        if db_path.exists():
            QTimer.singleShot(0, self.resume)

    @property
    def library(self) -> DocsLibrary:
        """The window's document library."""
        if self._library is None:
            self._library = DocsLibrary(self.db_path, chats=self.window.store)
        return self._library

    @property
    def enabled(self) -> bool:
        """Documents mode is on."""
        return self.toggle.isChecked()

    def _ensure_dialog(self) -> DocumentsDialog:
        if self.dialog is None:
            self.dialog = DocumentsDialog(self.library, self.window.threads, self.window)
            self.dialog.indexing_failed.connect(self.window.statusBar().showMessage)
        return self.dialog

    def open_dialog(self) -> DocumentsDialog:
        """Show the Documents panel (non-modal)."""
        dialog = self._ensure_dialog()
        dialog.refresh()
        dialog.show()
        dialog.raise_()
        return dialog

    def open_report(self) -> ReportDialog:
        """Show Write a report (non-modal): a report on a topic from the documents, written off the UI thread."""
        if self.report_dialog is None:
            self.report_dialog = ReportDialog(self.library, self.window.threads, lambda: self.window.engine,
                                              self.db_path.parent, self.window)
        self.report_dialog.show()
        self.report_dialog.raise_()
        return self.report_dialog

    def resume(self) -> int:
        """Index in the background whatever an earlier session left queued; returns how many files."""
        if self._library is None and not self.db_path.exists():
            return 0
        pending = self._ensure_dialog().resume()
        if pending:
            self.window.statusBar().showMessage(
                self.window.tr("Resuming the indexing of {0} document(s) left from last time").format(pending), 8000)
        return pending

    def _on_toggled(self, on: bool) -> None:
        if on and self.library.store.chunk_count() == 0 and not (self.dialog and self.dialog.is_indexing):
            self.window.statusBar().showMessage(self.window.tr("No documents yet: add files or a folder here."), 8000)
            self.open_dialog()

    def worker(self, engine, chat_id: int, conversation, settings, think) -> DocsGenerationWorker:
        """A worker that answers the chat's last message from the documents."""
        return DocsGenerationWorker(engine, self.library, self.window.store, chat_id, conversation, settings, think)

    def open_source(self, messages, arg: str) -> PassageDialog | None:
        """Open passage N of message M (link `source:M:N`)."""
        message_id, _, number = arg.partition(":")
        message = next((m for m in messages if m.id == int(message_id)), None)
        sources = (message.metrics.get("sources") or []) if message is not None else []
        source = next((s for s in sources if s["n"] == int(number)), None)
        if source is None:
            return None
        self.passage_dialog = PassageDialog(source, self.window)
        self.passage_dialog.show()
        return self.passage_dialog

    @property
    def is_writing_report(self) -> bool:
        """A report is being written now."""
        return self.report_dialog is not None and self.report_dialog.is_writing

    @property
    def is_indexing(self) -> bool:
        """Files are being indexed now."""
        return self.dialog is not None and self.dialog.is_indexing

    @Slot(str)
    def release(self, key: str) -> None:
        """Close the index and drop the embedder before Privacy & data deletes them; the next use opens anew."""
        if key not in ("docs_index", "embedding_model") or self._library is None:
            return
        if self.report_dialog is not None:
            self.report_dialog.stop()
            self.report_dialog.close()
            self.report_dialog.deleteLater()
            self.report_dialog = None
        if self.dialog is not None:
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None
        self._library.close()
        self._library = None

    def cancel(self) -> None:
        """Stop indexing after the current file and a report after its current step (window closing)."""
        if self.dialog is not None and self.dialog.is_indexing:
            self.dialog.cancel()
        if self.report_dialog is not None:
            self.report_dialog.stop()
