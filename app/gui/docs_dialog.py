"""The Documents panel: add files or folders, watch indexing progress, cancel it, see what was skipped and why."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.docs.formats import SUFFIXES
from app.docs.library import DocsLibrary
from app.gui.docs_workers import IndexWorker
from app.gui.workers import Threads

FILTER = "Documents (" + " ".join(f"*{s}" for s in SUFFIXES) + ")"


class DocumentsDialog(QDialog):
    """Non-modal: indexing runs on a worker thread and goes on when the dialog is closed."""

    indexing_finished = Signal(object)  # IndexReport
    indexing_failed = Signal(str)

    def __init__(self, library: DocsLibrary, threads: Threads, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library, self.threads = library, threads
        self.worker: IndexWorker | None = None
        self._thread = None
        self._queued: list[Path] = []
        self.last_report = None
        self.setWindowTitle(self.tr("Documents"))
        self.resize(760, 480)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels([self.tr("File"), self.tr("Status"), self.tr("Details")])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.add_files_button = QPushButton(self.tr("Add files…"))
        self.add_files_button.clicked.connect(self._choose_files)
        self.add_folder_button = QPushButton(self.tr("Add folder…"))
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.remove_button = QPushButton(self.tr("Remove"))
        self.remove_button.clicked.connect(self.remove_selected)
        self.cancel_button = QPushButton(self.tr("Cancel indexing"))
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setValue(0)
        self.status = QLabel(self.tr("Your files stay on this computer. PDF, TXT, Markdown, Word (.docx), HTML."))
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.add_files_button, self.add_folder_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.refresh()

    @property
    def is_indexing(self) -> bool:
        """A run is in progress."""
        return self.worker is not None

    def refresh(self) -> None:
        """Show every file and where it stands."""
        files = self.library.store.files()
        self.table.setRowCount(len(files))
        for row, file in enumerate(files):
            status = "queued" if file.pending else {"indexed": "indexed", "skipped": "skipped"}.get(file.status, "new")
            done = file.status == "indexed" and not file.pending
            pages = f"{file.pages} page(s), " if file.path.lower().endswith(".pdf") else ""
            details = f"{pages}{file.chunks} passage(s)" if done else file.message
            for column, text in enumerate((Path(file.path).name, status, details)):
                item = QTableWidgetItem(text)
                item.setToolTip(file.path if column == 0 else text)
                self.table.setItem(row, column, item)

    def add_paths(self, paths: list[Path]) -> None:
        """Index files and folders in the background (queued behind a run in progress)."""
        if self.is_indexing:
            self._queued += paths
            return
        self.worker = IndexWorker(self.library, list(paths))
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.status.setText(self.tr("Preparing…"))
        self._thread = self.threads.start(self.worker)

    def resume(self) -> int:
        """Finish work an earlier run left queued (after a crash or a cancel); returns how many files."""
        pending = len(self.library.store.pending())
        if pending and not self.is_indexing:
            self.add_paths([])
        return pending

    def cancel(self) -> None:
        """Stop after the file at hand; the rest stays queued for next time."""
        if self.worker is not None:
            self.worker.cancel.set()
            self._queued = []
            self.status.setText(self.tr("Cancelling after the current file…"))

    def remove_selected(self) -> None:
        """Forget the selected files: out of the index, and their passages out of the chats' stored sources."""
        files = self.library.store.files()
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if not self.is_indexing:
            self.library.remove([files[row].path for row in rows if row < len(files)])
        self.refresh()

    def _choose_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, self.tr("Add documents"), "", FILTER)
        if names:
            self.add_paths([Path(n) for n in names])

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Add a folder of documents"))
        if folder:
            self.add_paths([Path(folder)])

    def _on_progress(self, progress) -> None:
        self.progress.setRange(0, max(progress.total, 1))
        self.progress.setValue(progress.done)
        if progress.path:
            self.status.setText(self.tr("Indexing {0} ({1}/{2}) · {3} passages so far").format(
                Path(progress.path).name, progress.done + 1, progress.total, progress.chunks))
        self.refresh()

    def _end_run(self) -> None:
        self._thread.quit()
        self._thread.wait()
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.refresh()

    def _on_finished(self, report) -> None:
        self._end_run()
        self.last_report = report
        parts = [self.tr("{0} indexed ({1} passages)").format(len(report.indexed), report.chunks),
                 self.tr("{0} unchanged").format(len(report.unchanged))]
        if report.skipped:
            parts.append(self.tr("{0} skipped: {1}").format(
                len(report.skipped), "; ".join(f"{Path(p).name}: {why}" for p, why in report.skipped[:3])))
        if report.missing:
            parts.append(self.tr("{0} not found").format(len(report.missing)))
        if report.cancelled:
            parts.append(self.tr("cancelled; the rest is queued and resumes next time"))
        self.status.setText(" · ".join(parts))
        self.indexing_finished.emit(report)
        if self._queued:
            queued, self._queued = self._queued, []
            self.add_paths(queued)

    def _on_failed(self, message: str) -> None:
        self._end_run()
        self.status.setText(message)
        self.indexing_failed.emit(message)
