"""Settings (persisted in SQLite, applied live) and the model manager (list, add, switch, download offline)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from app.app_settings import AppSettings
from app.gui.appearance import is_dark
from app.gui.main_window import MainWindow
from app.paths import models_dir
from app.store import ChatStore
from tests.qt_wait import models_job_settled

pytestmark = pytest.mark.slow
LONG = 120_000


@pytest.fixture
def window(qtbot, tmp_path, data_dir):
    store = ChatStore(tmp_path / "chats.sqlite3")
    win = MainWindow(store, None, app_settings=AppSettings.load(store))
    qtbot.addWidget(win, before_close_func=lambda w: w.threads.wait_all())
    win.show()
    yield win
    win.apply_settings(AppSettings())  # global Qt state (palette, translator) back to the defaults


def test_settings_dialog_applies_and_persists(window) -> None:
    dialog = window.open_settings()
    dialog.system_prompt.setPlainText("Answer in one sentence.")
    dialog.max_new_tokens.setValue(77)
    dialog.temperature.setValue(0.0)
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.language.setCurrentIndex(dialog.language.findData("zh_CN"))
    dialog.accept()
    assert window.settings.max_new_tokens == 77 and window.settings.temperature == 0.0
    assert is_dark(QApplication.instance())
    assert window.send_button.text() == "发送" and window.think_toggle.text() == "深度思考"
    chat = window.new_chat()
    assert window.store.conversation(chat).system == "Answer in one sentence."
    stored = AppSettings.load(window.store)
    assert stored.max_new_tokens == 77 and stored.language == "zh_CN" and stored.theme == "dark"


def test_model_manager_lists_adds_and_switches(qtbot, window, default_model, tiny_llama, exported) -> None:
    manager = window.open_models()
    rows = {manager.table.item(r, 0).text(): manager.table.item(r, 2).text() for r in range(manager.table.rowCount())}
    assert rows[default_model.name] == "int4 g64 sym AWQ"
    assert manager.table.item(0, 1).text().endswith("MiB")

    assert manager.add(tiny_llama / "config.json")  # neither a model folder nor a .gguf file
    qtbot.waitUntil(lambda: models_job_settled(manager), timeout=LONG)
    assert "is not a .gguf file" in manager.status.text()
    tiny = exported(tiny_llama, "int4")
    with qtbot.waitSignal(manager.folder_added, timeout=LONG):
        assert manager.add(tiny)
    assert str(tiny.resolve()) in AppSettings.load(window.store).model_dirs
    with qtbot.waitSignal(window.model_ready, timeout=LONG):
        manager.choose(tiny)
    assert tiny.name in window.model_label.text()
    assert window.think_toggle.isEnabled()
    assert AppSettings.load(window.store).model_folder == str(tiny)
    assert any(manager.table.item(r, 0).text() == f"{tiny.name} ●" for r in range(manager.table.rowCount()))


def test_download_without_network_says_so(qtbot, window, tmp_path) -> None:
    manager = window.open_models()
    manager.controller.endpoint = "http://127.0.0.1:9"  # closed port: the hub is unreachable
    assert manager.download("openbmb/MiniCPM4-0.5B")
    assert manager.cancel_button.isVisible()
    qtbot.waitUntil(lambda: models_job_settled(manager), timeout=LONG)
    assert "No network" in manager.status.text() and "Add folder" in manager.status.text()
    assert not (models_dir() / "minicpm4-0.5b-int4").exists()


def test_settings_survive_a_restart(qtbot, tmp_path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    AppSettings(max_new_tokens=42, device="CPU", model_dirs=["/somewhere"]).save(store)
    store.close()
    again = AppSettings.load(ChatStore(tmp_path / "chats.sqlite3"))
    assert again.max_new_tokens == 42 and again.model_dirs == ["/somewhere"]
    assert again.model_sampling == AppSettings().model_sampling == {}  # unset keys keep their defaults
