"""Settings › Privacy & data: what is stored where, and deleting it only after the user confirms."""

from __future__ import annotations

import shutil

from PySide6.QtWidgets import QMessageBox

from app.app_settings import AppSettings
from app.gui.main_window import MainWindow
from app.store import ChatStore

SECRET = "my bank PIN is 4711-unique-marker"


def _window(qtbot, data):
    store = ChatStore(data / "chats.sqlite3")
    window = MainWindow(store, None, app_settings=AppSettings.load(store))
    qtbot.addWidget(window, before_close_func=lambda w: w.threads.wait_all())
    window.show()
    return window


def _answer(page, key: str, button: QMessageBox.StandardButton) -> None:
    box = page.ask_delete(key)
    assert box.isVisible() and "cannot be undone" in box.text()
    box.button(button).click()


def test_page_lists_what_is_stored_and_deletes_chats_after_confirmation(qtbot, tmp_path) -> None:
    window = _window(qtbot, tmp_path)
    for title in ("Trip", "Taxes"):
        chat = window.store.create_chat(title)
        window.store.add_message(chat, "user", SECRET)
    window.store.set_setting("theme", "dark")
    window.chats.refresh()
    window.select_chat(chat)
    page = window.open_privacy()
    items = [page.table.topLevelItem(i) for i in range(page.table.topLevelItemCount())]
    rows = {item.text(0): item for item in items}
    assert rows["Chats (messages and answers)"].text(1) == "2"
    assert rows["Chats (messages and answers)"].text(3) == str(tmp_path / "chats.sqlite3")
    assert rows["Settings (stored in the chat database)"].text(1) == "1"

    _answer(page, "chats", QMessageBox.StandardButton.Cancel)
    assert len(window.store.list_chats()) == 2
    _answer(page, "chats", QMessageBox.StandardButton.Yes)
    assert window.store.list_chats() == [] and window.chat_id is None and window.chats.list.count() == 0
    assert page.table.topLevelItem(0).text(1) == "0" and not page.buttons["chats"].isEnabled()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("chats.sqlite3*"))
    assert SECRET.encode() not in on_disk, "deleted text must not stay in the database file"

    _answer(page, "settings", QMessageBox.StandardButton.Yes)
    assert window.store.count_settings() == 0 and window.app_settings == AppSettings()


def test_deleting_models_keeps_the_one_in_use(qtbot, tmp_path, tiny_llama, exported) -> None:
    models = tmp_path / "models"
    for name in ("in-use", "old-export"):
        shutil.copytree(exported(tiny_llama, "int4"), models / name)
    window = _window(qtbot, tmp_path)
    window.model_folder = models / "in-use"
    page = window.open_privacy()
    box = page.ask_delete("models")
    assert "in-use" in box.text() and "kept" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    assert sorted(p.name for p in models.iterdir()) == ["in-use"]


def test_settings_dialog_opens_the_privacy_page(qtbot, tmp_path) -> None:
    window = _window(qtbot, tmp_path)
    dialog = window.open_settings()
    with qtbot.waitSignal(dialog.privacy_requested):
        dialog.privacy_button.click()


def test_document_index_and_embedding_model_are_listed_and_deleted(qtbot, tmp_path, embedding_model) -> None:
    shutil.copytree(embedding_model, tmp_path / "models" / embedding_model.name)
    window = _window(qtbot, tmp_path)
    store = window.docs.library.store  # held open, as Documents mode does
    store.queue([str(tmp_path / "report.pdf"), str(tmp_path / "notes.txt")])
    page = window.open_privacy()
    rows = {page.table.topLevelItem(i).text(0): page.table.topLevelItem(i)
            for i in range(page.table.topLevelItemCount())}
    index = rows["Document index (passages of your documents)"]
    assert index.text(1) == "2" and index.text(3) == str(tmp_path / "docs.sqlite3")
    embedder = rows["Document embedding model (rebuilt on next use)"]
    assert embedder.text(3) == str(tmp_path / "models" / embedding_model.name)
    assert page.items["embedding_model"].size_bytes > 10 * 2**20
    assert "models" not in page.items and not page.buttons["models"].isVisible()  # the embedder has its own row
    (tmp_path / "models" / "old-export").mkdir()
    (tmp_path / "models" / "old-export" / "openvino_model.bin").write_bytes(b"w" * 1000)
    page.refresh()
    assert page.items["models"].count == 1 and page.items["models"].size_bytes == 1000

    _answer(page, "models", QMessageBox.StandardButton.Yes)  # chat models only: the embedder stays
    assert "models" not in page.items
    assert (tmp_path / "models" / embedding_model.name).is_dir()
    _answer(page, "docs_index", QMessageBox.StandardButton.Yes)
    assert not list(tmp_path.glob("docs.sqlite3*")) and "docs_index" not in page.items
    assert not page.buttons["docs_index"].isVisible()
    assert window.docs.library.store is not store and window.docs.library.store.files() == []  # a fresh index
    _answer(page, "embedding_model", QMessageBox.StandardButton.Yes)
    assert not (tmp_path / "models" / embedding_model.name).exists() and "embedding_model" not in page.items


def test_downloads_are_listed_with_their_size_and_deleted(qtbot, tmp_path) -> None:
    repo = tmp_path / "downloads" / "openbmb--MiniCPM4-0.5B"
    (repo / ".cache" / "cpmdesk-download").mkdir(parents=True)
    (repo / "config.json").write_bytes(b"x" * 3000)
    (repo / ".cache" / "cpmdesk-download" / "model.safetensors.abc.incomplete").write_bytes(b"y" * 2000)
    window = _window(qtbot, tmp_path)
    page = window.open_privacy()
    rows = {page.table.topLevelItem(i).text(0): page.table.topLevelItem(i)
            for i in range(page.table.topLevelItemCount())}
    row = rows["Downloaded model files (kept to convert again or resume)"]
    assert (row.text(1), row.text(2), row.text(3)) == ("1", "4.9 KB", str(tmp_path / "downloads"))
    _answer(page, "downloads", QMessageBox.StandardButton.Cancel)
    assert repo.is_dir()
    _answer(page, "downloads", QMessageBox.StandardButton.Yes)
    assert not (tmp_path / "downloads").exists() and not page.buttons["downloads"].isEnabled()


def _rows(page) -> dict[str, tuple[str, str]]:
    return {page.table.topLevelItem(i).text(0): (page.table.topLevelItem(i).text(1),
                                                 page.table.topLevelItem(i).text(3))
            for i in range(page.table.topLevelItemCount())}


def test_the_page_lists_only_what_exists_on_disk(qtbot, tmp_path) -> None:
    (tmp_path / "documents").mkdir()  # no cpmdesk writes such a folder: it is not listed as cpmdesk's
    (tmp_path / "documents" / "a.txt").write_text("x")
    window = _window(qtbot, tmp_path)
    page = window.open_privacy()
    assert _rows(page) == {"Chats (messages and answers)": ("0", str(tmp_path / "chats.sqlite3"))}
    assert [key for key, button in page.buttons.items() if button.isVisible()] == ["chats"]

    (tmp_path / "chats.sqlite3.corrupt-20250101-000000").write_bytes(b"damaged")
    (tmp_path / "models" / "qwen-int4").mkdir(parents=True)
    (tmp_path / "downloads" / "openbmb--MiniCPM4-0.5B").mkdir(parents=True)
    (tmp_path / "downloads" / "hub" / "models--org--name" / "blobs").mkdir(parents=True)
    window.store.set_setting("theme", "dark")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "cpmdesk.log").write_text("started\n")
    (tmp_path / "logs" / "cpmdesk.log.1").write_text("older\n")
    page.refresh()
    assert _rows(page) == {
        "Log files (errors and timings; no prompts or answers by default)": ("2", str(tmp_path / "logs")),
        "Chats (messages and answers)": ("0", str(tmp_path / "chats.sqlite3")),
        "Settings (stored in the chat database)": ("1", str(tmp_path / "chats.sqlite3")),
        "Models exported or downloaded by cpmdesk": ("1", str(tmp_path / "models")),
        "Downloaded model files (kept to convert again or resume)": ("2", str(tmp_path / "downloads")),
        "Backups of damaged chat databases": ("1", str(tmp_path)),
    }
    for key in ("backups", "downloads", "settings", "models", "logs"):
        _answer(page, key, QMessageBox.StandardButton.Yes)
    assert list(_rows(page)) == ["Chats (messages and answers)"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("chats.sqlite3")) == [
        "documents", "logs", "models"] and not any((tmp_path / "models").iterdir())
    assert not any((tmp_path / "logs").iterdir())
