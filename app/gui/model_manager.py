"""Models: the exported ones in the data folder and any folder the user adds; switch, add, or download one."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QProcess, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.engine import ModelFolderError, check_model_folder
from app.export_runner import export_command
from app.paths import models_dir
from app.resources import bundled_models_dir, is_bundled
from export.manifest import read_manifest

# What the download list offers (hub ids); the export runs `cpmdesk-export` on them.
DOWNLOADABLE = ("openbmb/MiniCPM4-0.5B", "openbmb/MiniCPM4-8B", "openbmb/MiniCPM4.1-8B")


def list_models(extra_dirs: list[str]) -> list[tuple[Path, dict]]:
    """Exported models in the data folder, shipped in the bundle and in the user's added folders, with manifests."""
    shipped = sorted(p for p in bundled_models_dir().iterdir() if p.is_dir()) if bundled_models_dir().is_dir() else []
    folders = sorted(p for p in models_dir().iterdir() if p.is_dir()) + shipped + [Path(d) for d in extra_dirs]
    found = []
    for folder in folders:
        manifest = read_manifest(folder)
        if manifest is not None:
            found.append((folder, manifest))
    return found


def describe_quantization(manifest: dict) -> str:
    """E.g. 'int4 g64 sym AWQ'."""
    q = manifest.get("quantization", {})
    text = q.get("weight_format", "?")
    if text == "int4":
        text += f" g{q.get('group_size')}" + (" sym" if q.get("sym") else "") + (" AWQ" if q.get("awq") else "")
    return text


class ModelManager(QDialog):
    """Lists models; emits `model_chosen(folder)` and `folder_added(folder)`."""

    model_chosen = Signal(object)
    folder_added = Signal(str)

    def __init__(self, extra_dirs: list[str], current: Path | None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Models"))
        self.resize(760, 420)
        self.extra_dirs = list(extra_dirs)
        self.current = current
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels([self.tr("Model"), self.tr("Size"), self.tr("Quantization"),
                                              self.tr("Source")])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.use_button = QPushButton(self.tr("Use selected"))
        self.add_button = QPushButton(self.tr("Add a local folder…"))
        self.variants = QComboBox()
        self.variants.addItems(DOWNLOADABLE)
        self.download_button = QPushButton(self.tr("Download and export"))
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.use_button)
        row.addWidget(self.add_button)
        download = QHBoxLayout()
        download.addWidget(self.variants, 1)
        download.addWidget(self.download_button)
        download.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(QLabel(self.tr("Download a MiniCPM model from the Hugging Face Hub (the only time cpmdesk "
                                        "goes online) and export it to int4:")))
        layout.addLayout(download)
        layout.addWidget(self.status)
        self.use_button.clicked.connect(self._use_selected)
        self.add_button.clicked.connect(self._ask_folder)
        self.download_button.clicked.connect(self._download)
        self.cancel_button.clicked.connect(self._cancel)
        self.process: QProcess | None = None
        if is_bundled():  # the bundle does not carry the exporter yet: say where exporting happens
            self.download_button.setEnabled(False)
            self.status.setText(self.tr("This installed app runs exported models; to download and export one, use "
                                        "cpmdesk-export (pip install cpmdesk), then Add a local folder."))
        self.refresh()

    def refresh(self) -> None:
        """Reload the table."""
        self.models = list_models(self.extra_dirs)
        self.table.setRowCount(len(self.models))
        for index, (folder, manifest) in enumerate(self.models):
            mark = " ●" if self.current is not None and folder.resolve() == self.current.resolve() else ""
            size = manifest.get("sizes", {}).get("total_bytes", 0) / 2**20
            cells = [folder.name + mark, f"{size:.0f} MiB", describe_quantization(manifest),
                     str(manifest.get("source", {}).get("spec", ""))]
            for column, text in enumerate(cells):
                self.table.setItem(index, column, QTableWidgetItem(text))

    def _use_selected(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.models):
            self.choose(self.models[row][0])

    def choose(self, folder: Path) -> None:
        """Switch the app to `folder`."""
        self.current = folder
        self.model_chosen.emit(folder)
        self.refresh()

    def add_folder(self, folder: Path) -> bool:
        """Add an exported model folder to the list; says why when it is not one."""
        try:
            check_model_folder(folder)
        except ModelFolderError as err:
            self.status.setText(str(err))
            return False
        if str(folder) not in self.extra_dirs:
            self.extra_dirs.append(str(folder))
            self.folder_added.emit(str(folder))
        self.status.setText(self.tr("Added {0}").format(folder.name))
        self.refresh()
        return True

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Exported model folder"))
        if folder:
            self.add_folder(Path(folder))

    def download(self, hub_id: str) -> None:
        """Export `hub_id` in a child process (download included), with progress and cancel."""
        target = models_dir() / (hub_id.split("/")[-1].lower() + "-int4")
        command = export_command(hub_id, target)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._on_output)
        self.process.finished.connect(lambda code, _status: self._on_done(code, target))
        self._last_error = ""
        self.download_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(self.tr("Starting the export of {0}…").format(hub_id))
        self.process.start(command[0], command[1:])

    def _download(self) -> None:
        self.download(self.variants.currentText())

    def _on_output(self) -> None:
        for line in bytes(self.process.readAllStandardOutput()).decode(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("error:"):
                self._last_error = line[len("error:"):].strip()
            if line.startswith(("[", "error:", "Exported")):
                self.status.setText(line)

    def _cancel(self) -> None:
        if self.process is not None:
            self.process.kill()
            self._last_error = self.tr("Cancelled; nothing was written.")

    def _on_done(self, code: int, target: Path) -> None:
        self.download_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if code == 0 and read_manifest(target) is not None:
            self.status.setText(self.tr("Ready: {0}").format(target.name))
            self.refresh()
            return
        message = self._last_error or self.tr("The export failed (exit code {0}).").format(code)
        if "Cannot reach the Hugging Face Hub" in message:
            message = self.tr("No network: cpmdesk cannot download models here. Download the model on another "
                              "machine, then use “Add a local folder…” (or run cpmdesk-export on the folder).")
        self.status.setText(message)
