"""Documents mode → Write a report…: a topic, a Write button, progress per section, Stop, the report as it grows
(each [n] opens its passage, as an answer's sources do) and Save… as Markdown, HTML or PDF. The job runs on its own
QThread (app/docs/report/job.py); an unfinished report on the same topic continues where it stopped."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.docs.library import DocsLibrary
from app.docs.report.export import export, to_html
from app.docs.report.job import DEFAULT_SECTIONS, ReportJob
from app.docs.report.state import Progress, ReportState
from app.engine import ChatEngine, GenerationSettings
from app.gui.passage_dialog import PassageDialog
from app.gui.workers import Threads

log = logging.getLogger(__name__)
REPORT_TOKENS = 320  # per step: a section of a few sentences, with room for a model that reasons first


class ReportWorker(QObject):
    """Writes (or finishes) one report off the UI thread; the page is re-rendered here after every section."""

    progress = Signal(object)  # Progress
    page = Signal(str, object)  # the report as HTML, its references as passage-dialog sources
    finished = Signal(object)  # ReportState
    failed = Signal(str)

    def __init__(self, engine: ChatEngine, library: DocsLibrary, topic: str, root: Path,
                 settings: GenerationSettings, sections: int = DEFAULT_SECTIONS) -> None:
        super().__init__()
        self.engine, self.library, self.topic, self.root, self.settings = engine, library, topic, root, settings
        self.sections = sections
        self.cancel = threading.Event()
        self.job: ReportJob | None = None

    def run(self) -> None:
        try:
            self.job = ReportJob(self.engine, self.library.store, self.library.embedder(), self.topic, self.root,
                                 settings=self.settings, sections=self.sections)
            earlier = self.job.existing()  # unfinished: continued; finished: written anew
            state = self.job.run(self._on_progress, self.cancel, fresh=earlier is not None and earlier.status == "done")
        except Exception as err:  # shown in the dialog; what was finished stays in the job's folder
            log.warning("writing the report on %r failed", self.topic, exc_info=True)
            self.failed.emit(str(err))
            return
        self._show(state)
        self.finished.emit(state)

    def _on_progress(self, progress: Progress) -> None:
        self.progress.emit(progress)
        if progress.stage in ("written", "skipped") and self.job is not None:
            state = self.job.existing()
            if state is not None:
                self._show(state)

    def _show(self, state: ReportState) -> None:
        self.page.emit(to_html(state, lambda n: f"source:0:{n}", standalone=False),
                       [ref.source() for ref in state.references])


class ReportDialog(QDialog):
    """Write a report from the documents (non-modal)."""

    report_finished = Signal(object)  # ReportState: done, or stopped with its finished sections
    report_failed = Signal(str)

    def __init__(self, library: DocsLibrary, threads: Threads, engine_source: Callable[[], ChatEngine | None],
                 root: Path, parent: QWidget | None = None, settings: GenerationSettings | None = None,
                 sections: int = DEFAULT_SECTIONS) -> None:
        super().__init__(parent)
        self.library, self.threads, self.engine_source, self.root = library, threads, engine_source, root
        self.settings = settings or GenerationSettings(max_new_tokens=REPORT_TOKENS)
        self.sections = sections
        self.worker: ReportWorker | None = None
        self.state: ReportState | None = None
        self.sources: list[dict] = []
        self.passage_dialog: PassageDialog | None = None
        self.setWindowTitle(self.tr("Write a report"))
        self.resize(720, 640)
        self.topic = QLineEdit()
        self.topic.setPlaceholderText(self.tr("What should the report be about?"))
        self.topic.setAccessibleName(self.tr("Report topic"))
        self.topic.returnPressed.connect(self.start)
        self.write_button = QPushButton(self.tr("Write"))
        self.write_button.setDefault(True)
        self.write_button.clicked.connect(self.start)
        self.stop_button = QPushButton(self.tr("Stop"))
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.save_button = QPushButton(self.tr("Save…"))
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._choose_file)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel(self.tr("Each section is written from your documents, and every cited sentence is "
                                     "checked against its passage."))
        self.status.setWordWrap(True)
        self.view = QTextBrowser()
        self.view.setOpenLinks(False)
        self.view.setAccessibleName(self.tr("Report"))
        self.view.anchorClicked.connect(self.open_link)
        row = QHBoxLayout()
        row.addWidget(self.topic, 1)
        row.addWidget(self.write_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.view, 1)

    @property
    def is_writing(self) -> bool:
        """A report is being written now."""
        return self.worker is not None

    def start(self) -> bool:
        """Write the report on the topic (or finish an unfinished one); False when it cannot start now."""
        topic = self.topic.text().strip()
        engine = self.engine_source()
        if self.worker is not None or not topic:
            return False
        if engine is None:
            self.status.setText(self.tr("No model is loaded yet."))
            return False
        if self.library.store.chunk_count() == 0:
            self.status.setText(self.tr("No documents yet: add files or a folder in Chat → Documents…"))
            return False
        self.worker = ReportWorker(engine, self.library, topic, self.root, self.settings, self.sections)
        self.worker.progress.connect(self._on_progress)
        self.worker.page.connect(self._on_page)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.write_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.save_button.setEnabled(False)
        self.topic.setEnabled(False)
        self.progress.setRange(0, 0)  # busy until the outline gives the number of sections
        self.status.setText(self.tr("Planning the outline…"))
        self.threads.start(self.worker)
        return True

    def stop(self) -> None:
        """Stop after the current step; the finished sections are kept and Write continues later."""
        if self.worker is not None:
            self.worker.cancel.set()
            self.stop_button.setEnabled(False)
            self.status.setText(self.tr("Stopping…"))

    def _on_progress(self, progress: Progress) -> None:
        if progress.total:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(progress.done)
        if progress.stage == "section":
            self.status.setText(self.tr("Writing section {0} of {1}: {2}").format(
                progress.done + 1, progress.total, progress.title))
        elif progress.stage == "skipped":
            self.status.setText(self.tr("Kept from last time: {0}").format(progress.title))

    def _on_page(self, html: str, sources: list) -> None:
        bar = self.view.verticalScrollBar()
        position = bar.value()
        self.view.setHtml(html)
        bar.setValue(position)
        self.sources = sources

    def _end(self) -> None:
        self.worker = None
        self.write_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.topic.setEnabled(True)

    def _on_finished(self, state: ReportState) -> None:
        self._end()
        self.state = state
        self.save_button.setEnabled(True)
        total = len(state.outline)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(state.done)
        if state.status == "done":
            self.status.setText(self.tr("Done: {0} sections, {1} references.").format(total, len(state.references)))
        else:
            self.status.setText(self.tr("Stopped: {0} of {1} sections are written. Write again to finish.").format(
                state.done, total))
        self.report_finished.emit(state)

    def _on_failed(self, message: str) -> None:
        self._end()
        self.progress.setRange(0, 1)
        self.status.setText(self.tr("The report could not be written: {0}").format(message))
        self.report_failed.emit(message)

    def open_link(self, url: QUrl) -> PassageDialog | None:
        """[n] opens passage n (as an answer's sources do); other links open in the system's viewer."""
        action, _, arg = url.toString().partition(":")
        if action != "source":
            QDesktopServices.openUrl(url)
            return None
        number = int(arg.partition(":")[2] or 0)
        source = next((s for s in self.sources if s["n"] == number), None)
        if source is None:
            return None
        self.passage_dialog = PassageDialog(source, self)
        self.passage_dialog.show()
        return self.passage_dialog

    def save(self, path: Path) -> Path | None:
        """Save the report (.md, .html or .pdf by the name's extension)."""
        if self.state is None:
            return None
        try:
            written = export(self.state, path)
        except OSError as err:
            log.warning("saving the report to %s failed", path, exc_info=True)
            self.status.setText(self.tr("Could not save the report: {0}").format(err))
            return None
        self.status.setText(self.tr("Saved to {0}").format(written))
        return written

    def _choose_file(self) -> None:
        name, chosen = QFileDialog.getSaveFileName(
            self, self.tr("Save the report"), str(Path.home() / "report.md"),
            self.tr("Markdown (*.md);;Web page (*.html);;PDF (*.pdf)"))
        if name:
            path = Path(name)
            if not path.suffix:
                extension = re.search(r"\*(\.\w+)", chosen)
                path = path.with_suffix(extension.group(1) if extension else ".md")
            self.save(path)
