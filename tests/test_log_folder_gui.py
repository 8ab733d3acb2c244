"""Help → Open log folder opens the data folder's log folder (offscreen window, the system's URL opener replaced
through Qt's own hook for `file:` URLs)."""

from __future__ import annotations

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from app.gui.main_window import MainWindow
from app.store import ChatStore


class _Opener(QObject):
    """Stands in for the file manager: records the URLs Qt would have opened."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_help_menu_opens_the_log_folder(qtbot, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CPMDESK_DATA_DIR", str(tmp_path / "data"))
    window = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), None)
    qtbot.addWidget(window, before_close_func=lambda w: w.threads.wait_all())
    menus = {action.text(): action.menu() for action in window.menuBar().actions()}
    assert "&Help" in menus
    actions = {action.text(): action for action in menus["&Help"].actions()}
    assert "Open log folder" in actions
    opener = _Opener()
    QDesktopServices.setUrlHandler("file", opener, "open")
    try:
        actions["Open log folder"].trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    logs = tmp_path / "data" / "logs"
    assert [url.toLocalFile() for url in opener.urls] == [str(logs)]
    assert logs.is_dir(), "the folder exists before the file manager is asked to show it"
