"""Settings › Privacy & data: what cpmdesk stores where, and deleting it (each deletion confirmed first)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from app import data_inventory
from app.store import ChatStore

PRIVACY_TEXT = (
    "cpmdesk runs the model on this computer. Your messages and answers never leave it: cpmdesk makes no network "
    "connection, except when you ask it to download a model in Models…, and the telemetry of OpenVINO, NNCF and "
    "Hugging Face is switched off."
)


def human_size(size: int) -> str:
    """1536 -> '1.5 KB'."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


class PrivacyPage(QDialog):
    """Lists the stored data and deletes a kind of it after the user confirms."""

    deleted = Signal(str)  # chats, settings, models, downloads, backups, docs_index, embedding_model, reports, logs
    about_to_delete = Signal(str)  # emitted (synchronously) before the files go: close what holds them open

    def __init__(self, data_dir: Path, store: ChatStore, model_in_use: Path | None = None, busy=lambda: False,
                 parent=None, downloading=lambda: False) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Privacy & data"))
        self.resize(720, 420)
        self.data_dir, self.store, self.model_in_use, self._busy = data_dir, store, model_in_use, busy
        self._downloading = downloading
        intro = QLabel(self.tr(PRIVACY_TEXT), wordWrap=True)
        folder = QLabel(self.tr("Everything is kept in <b>{0}</b>").format(data_dir), wordWrap=True)
        self.table = QTreeWidget()
        self.table.setHeaderLabels([self.tr("What"), self.tr("How many"), self.tr("Size"), self.tr("Where")])
        self.table.setRootIsDecorated(False)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for key, label in (("chats", self.tr("Delete all chats…")), ("models", self.tr("Delete models…")),
                           ("downloads", self.tr("Delete downloads…")),
                           ("settings", self.tr("Reset settings…")), ("backups", self.tr("Delete backups…")),
                           ("docs_index", self.tr("Delete document index…")),
                           ("embedding_model", self.tr("Delete embedding model…")),
                           ("reports", self.tr("Delete reports…")),
                           ("logs", self.tr("Delete logs…"))):
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, k=key: self.ask_delete(k))
            self.buttons[key] = button
            row.addWidget(button)
        open_folder = QPushButton(self.tr("Open data folder"))
        open_folder.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(data_dir))))
        row.addStretch(1)
        row.addWidget(open_folder)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (intro, folder, self.table):
            layout.addWidget(widget)
        layout.addLayout(row)
        layout.addWidget(close)
        self.refresh()

    def refresh(self) -> None:
        """Re-read what is stored."""
        self.items = {item.key: item for item in data_inventory.inventory(self.data_dir, self.store)}
        self.table.clear()
        for item in self.items.values():
            size = human_size(item.size_bytes) if item.key != "settings" else ""
            self.table.addTopLevelItem(QTreeWidgetItem([self.tr(item.title), str(item.count), size,
                                                        str(item.location)]))
        for column in range(3):
            self.table.resizeColumnToContents(column)
        for key, button in self.buttons.items():
            button.setVisible(key in self.items)
            button.setEnabled(key in self.items and self.items[key].count > 0)

    def ask_delete(self, key: str) -> QMessageBox:
        """Ask first (non-blocking); the deletion happens only on Yes."""
        item = self.items[key]
        text = self.tr("Delete {0} ({1}, {2})? This cannot be undone.").format(
            self.tr(item.title).lower(), item.count, human_size(item.size_bytes))
        if key == "models" and self.model_in_use is not None:
            text += " " + self.tr("The model in use ({0}) is kept.").format(self.model_in_use.name)
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Privacy & data"), text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(
            lambda button: self.delete(key) if box.standardButton(button) == QMessageBox.StandardButton.Yes else None)
        self.confirmation = box
        box.open()
        return box

    def delete(self, key: str) -> None:
        """Delete one kind of data now (the confirmation's Yes)."""
        if key in ("chats", "docs_index", "embedding_model", "reports") and self._busy():
            QMessageBox.information(self, self.tr("Privacy & data"), self.tr("Stop the answer first."))
            return
        if key == "downloads" and self._downloading():
            QMessageBox.information(self, self.tr("Privacy & data"), self.tr("Cancel the download in Models… first."))
            return
        self.about_to_delete.emit(key)
        if key == "chats":
            data_inventory.delete_chats(self.store)
        elif key == "settings":
            data_inventory.delete_settings(self.store)
        elif key == "models":
            data_inventory.delete_models(self.data_dir, self.model_in_use)
        elif key == "downloads":
            data_inventory.delete_downloads(self.data_dir)
        elif key == "backups":
            data_inventory.delete_backups(self.data_dir)
        elif key == "docs_index":
            data_inventory.delete_docs_index(self.data_dir, self.store)
        elif key == "embedding_model":
            data_inventory.delete_embedding_model(self.data_dir)
        elif key == "reports":
            data_inventory.delete_reports(self.data_dir)
        elif key == "logs":
            data_inventory.delete_logs(self.data_dir)
        self.refresh()
        self.deleted.emit(key)
