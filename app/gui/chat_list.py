"""The sidebar: search box, chats (most recent first), new / rename / delete (after a confirmation)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.store import ChatStore


class ChatList(QWidget):
    """Lists the store's chats; emits `selected(chat_id)` and `new_requested`."""

    selected = Signal(int)
    new_requested = Signal()
    deleted = Signal(int)

    def __init__(self, store: ChatStore) -> None:
        super().__init__()
        self.store = store
        self.search = QLineEdit(placeholderText="Search chats")
        self.list = QListWidget()
        self.new_button, self.rename_button = QPushButton("New chat"), QPushButton("Rename")
        self.delete_button = QPushButton("Delete")
        buttons = QHBoxLayout()
        for button in (self.new_button, self.rename_button, self.delete_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.search.textChanged.connect(lambda _: self.refresh())
        self.list.currentItemChanged.connect(self._on_current)
        self.new_button.clicked.connect(self.new_requested)
        self.rename_button.clicked.connect(self._ask_rename)
        self.delete_button.clicked.connect(self._delete_current)
        self.setMinimumWidth(200)

    def refresh(self, select: int | None = None) -> None:
        """Reload from the store, keeping (or setting) the selection without emitting for an unchanged one."""
        keep = select if select is not None else self.current_id()
        self.list.blockSignals(True)
        self.list.clear()
        for chat in self.store.list_chats(self.search.text().strip()):
            item = QListWidgetItem(chat.title)
            item.setData(Qt.ItemDataRole.UserRole, chat.id)
            self.list.addItem(item)
            if chat.id == keep:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

    def current_id(self) -> int | None:
        """The selected chat's id."""
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def ids(self) -> list[int]:
        """The listed chats' ids, top to bottom."""
        return [int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())]

    def _on_current(self, current: QListWidgetItem | None, _previous) -> None:
        if current is not None:
            self.selected.emit(int(current.data(Qt.ItemDataRole.UserRole)))

    def _ask_rename(self) -> None:
        chat_id = self.current_id()
        if chat_id is None:
            return
        title, ok = QInputDialog.getText(self, "Rename chat", "Title:", text=self.list.currentItem().text())
        if ok and title.strip():
            self.store.rename_chat(chat_id, title.strip())
            self.refresh()

    def _delete_current(self) -> QMessageBox | None:
        """Ask first (non-blocking); the chat is deleted only on Yes."""
        chat_id = self.current_id()
        if chat_id is None:
            return None
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Delete chat"),
                          self.tr("Delete the chat “{0}” and all its messages? This cannot be undone.").format(
                              self.list.currentItem().text()),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(
            lambda button: self.delete_chat(chat_id)
            if box.standardButton(button) == QMessageBox.StandardButton.Yes else None)
        self.confirmation = box
        box.open()
        return box

    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat now (the confirmation's Yes); the store leaves none of its text on disk."""
        self.store.delete_chat(chat_id)
        self.refresh()
        self.deleted.emit(chat_id)
