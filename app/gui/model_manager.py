"""Models…: the catalogue (download, convert, use), the user's chat models (use, add, remove). A thin view over
app/models/manager.py's ModelsController, which holds the state and does the work on its own thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.engine.engine import DEFAULT_CONTEXT
from app.gui.model_card import describe_quantization
from app.models.manager import CatalogueRow, ManagerState, ModelRow, ModelsController

_ORIGINS = {"data": "data folder", "bundled": "shipped with cpmdesk", "added": "added folder"}


def catalogue_cells(row: CatalogueRow) -> list[str]:
    """Model, download size, RAM at the default context, context length, this machine's verdict."""
    entry = row.entry
    verdict = ("installed · " if row.installed else "") + ("✓ " if row.verdict.ok else "✗ ") + row.verdict.reason
    return [entry.display_name, f"{entry.download_bytes / 1e9:.1f} GB", f"{entry.ram_bytes() / 2**30:.1f} GiB",
            f"{entry.context_length:,} tokens", verdict]


def model_cells(row: ModelRow) -> list[str]:
    """Model (● in use), size, quantization, source (never a path), where it is kept, its draft."""
    model = row.model
    return [model.name + (" ●" if row.current else ""), f"{model.size_bytes / 2**20:.0f} MiB",
            describe_quantization(model.manifest), model.source, _ORIGINS.get(model.origin, model.origin), row.draft]


class ModelManager(QDialog):
    """Emits `model_chosen(folder)`, `folder_added(folder)` and `folder_forgotten(folder)`; the window switches
    models and keeps its list of added folders."""

    model_chosen = Signal(object)
    folder_added = Signal(str)
    folder_forgotten = Signal(str)
    state_shown = Signal(object)  # the ManagerState just rendered
    _event = Signal(str, object)  # the controller's events, carried to the UI thread

    def __init__(self, extra_dirs: list[str], current: Path | None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Models"))
        self.resize(980, 620)
        self._shown: tuple = ((), (), None)  # what the tables show: catalogue, models, busy
        self._build()
        self._event.connect(self._on_event)
        self.controller = ModelsController(extra_dirs, current, self._event.emit)
        self.controller.refresh()

    def _build(self) -> None:
        self.catalogue = _table([self.tr("Model"), self.tr("Download"),
                                 self.tr("Memory at {0} tokens").format(DEFAULT_CONTEXT), self.tr("Context"),
                                 self.tr("This computer"), ""])
        self.job_title, self.job_detail = QLabel(""), QLabel("")
        self.progress = QProgressBar(textVisible=True)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.clicked.connect(lambda: self.controller.cancel())
        job = QHBoxLayout()
        job.addWidget(self.job_title)
        job.addWidget(self.progress, 1)
        job.addWidget(self.cancel_button)
        self.table = _table([self.tr("Model"), self.tr("Size"), self.tr("Quantization"), self.tr("Source"),
                             self.tr("Kept in"), self.tr("Draft")])
        self.use_button = QPushButton(self.tr("Use selected"))
        self.remove_button = QPushButton(self.tr("Remove…"))
        self.add_folder_button = QPushButton(self.tr("Add folder…"))
        self.add_gguf_button = QPushButton(self.tr("Add .gguf…"))
        self.use_button.clicked.connect(self._use_selected)
        self.remove_button.clicked.connect(self._remove_selected)
        self.add_folder_button.clicked.connect(self._ask_folder)
        self.add_gguf_button.clicked.connect(self._ask_gguf)
        row = QHBoxLayout()
        for button in (self.use_button, self.remove_button):
            row.addWidget(button)
        row.addStretch(1)
        for button in (self.add_folder_button, self.add_gguf_button):
            row.addWidget(button)
        self.status = QLabel("", wordWrap=True)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(self.tr("<b>Download</b> from the Hugging Face Hub into the data folder (the only "
                                        "time cpmdesk goes online), then convert to int4 here:"), wordWrap=True))
        layout.addWidget(self.catalogue, 2)
        layout.addLayout(job)
        layout.addWidget(self.job_detail)
        layout.addWidget(QLabel(self.tr("<b>Your models</b> (exported folders, Hugging Face folders and .gguf files "
                                        "are converted; optimum-cli OpenVINO folders are checked and kept in place):"),
                                wordWrap=True))
        layout.addWidget(self.table, 3)
        layout.addLayout(row)
        layout.addWidget(self.status)

    # ------------------------------------------------------------------ actions (the controller does the work)

    def choose(self, folder: Path) -> None:
        """Switch the app to `folder`."""
        self.controller.choose(Path(folder))

    def download(self, hub_id: str) -> bool:
        """Download, convert, add and use `hub_id`; False when a job is already running."""
        return self.controller.download(hub_id)

    def add(self, path: Path) -> bool:
        """Add a model folder or convert a .gguf file or Hugging Face folder; False when a job is running."""
        return self.controller.add(Path(path))

    def remove(self, name: str) -> bool:
        """Remove a model now (the confirmation's Yes)."""
        return self.controller.remove(name)

    def ask_remove(self, name: str) -> QMessageBox:
        """Ask first (non-blocking); the model is removed only on Yes."""
        row = next(r for r in self.controller.state.models if r.model.name == name)
        text = (self.tr("Delete {0} from the data folder? This cannot be undone.") if row.model.origin == "data"
                else self.tr("Forget {0}? Its folder stays where it is.")).format(name)
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Models"), text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(
            lambda b: self.remove(name) if box.standardButton(b) == QMessageBox.StandardButton.Yes else None)
        self.confirmation = box
        box.open()
        return box

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel a running job and wait for it (the main window closing)."""
        self.controller.cancel()
        self.controller.wait(timeout)

    def _selected(self) -> ModelRow | None:
        index, rows = self.table.currentRow(), self.controller.state.models
        return rows[index] if 0 <= index < len(rows) else None

    def _use_selected(self) -> None:
        row = self._selected()
        if row is not None:
            self.choose(row.model.folder)

    def _remove_selected(self) -> None:
        row = self._selected()
        if row is not None:
            self.ask_remove(row.model.name)

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Model folder (export, Hugging Face or OpenVINO)"))
        if folder:
            self.add(Path(folder))

    def _ask_gguf(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, self.tr("GGUF model file"), "", self.tr("GGUF (*.gguf)"))
        if name:
            self.add(Path(name))

    # ------------------------------------------------------------------ rendering

    def _on_event(self, kind: str, payload: object) -> None:
        if kind == "changed":
            self.render(self.controller.state)  # the newest: a queued event can be older than the state
        elif kind == "chosen":
            self.model_chosen.emit(payload)
        elif kind == "added":
            self.folder_added.emit(str(payload))
        elif kind == "forgotten":
            self.folder_forgotten.emit(str(payload))

    def render(self, state: ManagerState) -> None:
        """Show `state`: the tables only when they changed, the job and the message always."""
        busy = state.job is not None
        if (state.catalogue, state.models, busy) != self._shown:
            self._render_catalogue(state.catalogue, busy)
            self._render_models(state.models)
            self._shown = (state.catalogue, state.models, busy)
        for widget in (self.job_title, self.progress, self.cancel_button, self.job_detail):
            widget.setVisible(busy)
        for button in (self.add_folder_button, self.add_gguf_button, self.remove_button):
            button.setEnabled(not busy)
        if state.job is not None:
            self.job_title.setText(state.job.title)
            self.job_detail.setText(state.job.detail)
            self.progress.setRange(0, 0 if state.job.fraction is None else 1000)
            if state.job.fraction is not None:
                self.progress.setValue(int(state.job.fraction * 1000))
        self.status.setText(state.message)
        self.status.setStyleSheet("color: #c0392b" if state.error else "")
        self.state_shown.emit(state)

    def _render_catalogue(self, rows: tuple[CatalogueRow, ...], busy: bool) -> None:
        self.catalogue.setRowCount(len(rows))
        for index, row in enumerate(rows):
            for column, text in enumerate(catalogue_cells(row)):
                self.catalogue.setItem(index, column, QTableWidgetItem(text))
            self.catalogue.item(index, 4).setToolTip(row.verdict.reason)
            if row.installed is not None:
                button = QPushButton(self.tr("Use"))
                button.clicked.connect(lambda _=False, f=row.installed: self.choose(f))
            else:
                button = QPushButton(self.tr("Download"))
                button.clicked.connect(lambda _=False, h=row.entry.hub_id: self.download(h))
                button.setEnabled(not busy)
            self.catalogue.setCellWidget(index, 5, button)

    def _render_models(self, rows: tuple[ModelRow, ...]) -> None:
        self.table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            for column, text in enumerate(model_cells(row)):
                self.table.setItem(index, column, QTableWidgetItem(text))


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    return table
