"""Models… through the real window (offscreen): the catalogue, chat models only, download from a local stand-in for
the hub → convert → use, Cancel, Add .gguf, and the draft an 8B MiniCPM4 gets from the user's MiniCPM4-0.5B."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.app_settings import AppSettings
from app.engine import Conversation, GenerationSettings
from app.gui.main_window import MainWindow
from app.gui.model_manager import ModelManager
from app.models.catalogue import CATALOGUE
from app.store import ChatStore
from tests.hub_server import FakeHub
from tests.qt_wait import models_job_settled

LONG = 600_000  # ms: a conversion on 2 shared cores
SMALL_HUB_ID = "openbmb/MiniCPM4-0.5B"  # served by the local hub: the tiny MiniCPM4 under the catalogue's id


@pytest.fixture
def data(tmp_path, embedding_model, monkeypatch) -> Path:
    """An empty data folder of this test's own, holding only the document embedding model (a link)."""
    folder = tmp_path / "data"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / embedding_model.name).symlink_to(embedding_model, target_is_directory=True)
    monkeypatch.setenv("CPMDESK_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def window(qtbot, data):
    store = ChatStore(data / "chats.sqlite3")
    win = MainWindow(store, None, app_settings=AppSettings.load(store))
    qtbot.addWidget(win, before_close_func=lambda w: w.threads.wait_all())
    win.show()
    yield win
    if win.models_dialog is not None:
        win.models_dialog.shutdown()


def cells(table) -> list[list[str]]:
    return [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def catalogue_button(manager: ModelManager, row: int):
    return manager.catalogue.cellWidget(row, manager.catalogue.columnCount() - 1)


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def with_params(folder: Path, params: int) -> None:
    """Say in the manifest that the model has `params` parameters (how the library sizes 8B and 0.5B)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["architecture"]["param_count"] = params
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_catalogue_and_chat_models_only_without_paths(window, data, tiny_minicpm, exported, tmp_path) -> None:
    models = data / "models"
    shutil.copytree(exported(tiny_minicpm, "int4", "streaming"), models / "minicpm4-0.5b-int4")
    manager = window.open_models()
    catalogue = cells(manager.catalogue)
    assert [row[0] for row in catalogue] == [entry.display_name for entry in CATALOGUE]
    for row, entry in zip(catalogue, CATALOGUE, strict=True):
        assert row[1] == f"{entry.download_bytes / 1e9:.1f} GB" and row[2] == f"{entry.ram_bytes() / 2**30:.1f} GiB"
        assert row[3] == f"{entry.context_length:,} tokens"
        assert row[4].split(" ", 1)[0] in ("✓", "✗", "installed") and ("memory" in row[4] or "disk" in row[4])
    assert catalogue[0][4].startswith("installed") and catalogue_button(manager, 0).text() == "Use"
    assert [catalogue_button(manager, r).text() for r in (1, 2)] == ["Download", "Download"]
    listed = cells(manager.table)
    assert [row[0] for row in listed] == ["minicpm4-0.5b-int4"]  # the embedding model is not a chat model
    assert listed[0][3] == tiny_minicpm.name  # the source, by name only
    every_cell = [text for row in listed + catalogue for text in row]
    assert not any("/" in text or "\\" in text or str(tmp_path) in text for text in every_cell), every_cell


@pytest.mark.slow
def test_download_converts_adds_and_switches_to_it(qtbot, window, data, tiny_minicpm) -> None:
    manager = window.open_models()
    details: list[str] = []
    manager.state_shown.connect(lambda state: details.append(state.job.detail) if state.job else None)
    with FakeHub({SMALL_HUB_ID: tiny_minicpm}, rate=40 * 2**20) as hub:
        manager.controller.endpoint = hub.url
        with qtbot.waitSignal(manager.model_chosen, timeout=LONG) as chosen:
            qtbot.mouseClick(catalogue_button(manager, 0), Qt.MouseButton.LeftButton)
            assert manager.cancel_button.isVisible() and not catalogue_button(manager, 1).isEnabled()
    folder = data / "models" / "minicpm4-0.5b-int4"
    assert chosen.args == [folder]
    assert any("MiB/s" in d and "left" in d for d in details), details  # bytes, speed and time left
    assert any("layer " in d for d in details), details  # the conversion's progress by layer
    qtbot.waitUntil(lambda: window.engine is not None and window.engine.folder == folder, timeout=LONG)
    assert folder.name in window.model_label.text()
    assert AppSettings.load(window.store).model_folder == str(folder)
    assert f"{folder.name} ●" in [row[0] for row in cells(manager.table)]
    assert cells(manager.catalogue)[0][4].startswith("installed") and catalogue_button(manager, 0).text() == "Use"
    assert manager.status.text() == f"Ready: {folder.name}" and not manager.cancel_button.isVisible()
    assert (data / "downloads" / "openbmb--MiniCPM4-0.5B" / "model.safetensors").is_file()
    reply = window.engine.send(Conversation(), "Hello", GenerationSettings(max_new_tokens=4))
    assert reply.num_tokens >= 1


@pytest.mark.slow
def test_cancel_during_a_download_leaves_no_file(qtbot, window, data, tiny_minicpm) -> None:
    before = files_in(data)
    manager = window.open_models()
    with FakeHub({SMALL_HUB_ID: tiny_minicpm}, rate=4 * 2**20) as hub:
        manager.controller.endpoint = hub.url
        manager.download(SMALL_HUB_ID)
        qtbot.waitUntil(lambda: (manager.controller.state.job or None) is not None
                        and (manager.controller.state.job.fraction or 0) > 0.02, timeout=LONG)
        assert hub.bytes_sent > 0
        qtbot.mouseClick(manager.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: models_job_settled(manager), timeout=60_000)
    assert manager.status.text().startswith("Cancelled")
    assert files_in(data) == before and not (data / "downloads").exists()
    assert cells(manager.table) == [] and catalogue_button(manager, 0).text() == "Download"


@pytest.mark.slow
@pytest.mark.parametrize("source_fixture", ["smollm2_gguf", "smollm2_safetensors", "tiny_minicpm"])
def test_add_converts_and_lists_it(qtbot, window, data, source_fixture, request) -> None:
    """Add… a .gguf or a Hugging Face folder: converted in a child process with progress by layer, listed by name
    only, and usable."""
    source: Path = request.getfixturevalue(source_fixture)
    manager = window.open_models()
    details: list[str] = []
    manager.state_shown.connect(lambda state: details.append(state.job.detail) if state.job else None)
    assert manager.add(source)
    assert not manager.add(source), "one job at a time"
    qtbot.waitUntil(lambda: models_job_settled(manager), timeout=LONG)
    name = (source.stem if source.is_file() else source.name).lower() + "-int4"
    assert manager.status.text() == f"Added {name}", manager.status.text()
    assert [row[0] for row in cells(manager.table)] == [name]
    assert cells(manager.table)[0][3] == source.name
    assert any("layer " in d for d in details), details
    with qtbot.waitSignal(window.model_ready, timeout=LONG):
        manager.table.selectRow(0)
        qtbot.mouseClick(manager.use_button, Qt.MouseButton.LeftButton)
    assert window.engine.folder == data / "models" / name


def test_an_8b_minicpm_gets_the_05b_as_draft_and_says_so(qtbot, window, data, tiny_minicpm, exported) -> None:
    models = data / "models"
    big, small = models / "minicpm4-8b-int4", models / "minicpm4-0.5b-int4"
    for folder, params in ((big, 8_000_000_000), (small, 430_000_000)):
        shutil.copytree(exported(tiny_minicpm, "int4", "streaming"), folder)
        with_params(folder, params)
    manager = window.open_models()
    drafts = {row[0]: row[5] for row in cells(manager.table)}
    assert drafts == {big.name: f"draft: {small.name} (same tokenizer)", small.name: ""}
    with qtbot.waitSignal(window.model_ready, timeout=LONG):
        manager.choose(big)
    engine = window.engine
    assert engine.folder == big and engine.draft_state == f"draft on ({small.name})"
    assert f"draft on ({small.name})" in window.model_label.text()
    reply = engine.send(Conversation(), "Hello", GenerationSettings(max_new_tokens=8, temperature=0.0))
    assert reply.draft is not None and reply.draft.draft_tokens > 0  # the 0.5B drafted for the 8B

    (small / "openvino_tokenizer.bin").write_bytes(b"another tokenizer")  # no longer the same tokenizer
    with qtbot.waitSignal(window.model_ready, timeout=LONG):
        manager.choose(big)
    assert window.engine.draft_state == "" and "draft" not in window.model_label.text()


def test_cpmdesk_ask_uses_the_paired_draft_and_says_so(data, tiny_minicpm, exported) -> None:
    big, small = data / "models" / "minicpm4-8b-int4", data / "models" / "minicpm4-0.5b-int4"
    for folder, params in ((big, 8_000_000_000), (small, 430_000_000)):
        shutil.copytree(exported(tiny_minicpm, "int4", "streaming"), folder)
        with_params(folder, params)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    asked = subprocess.run([sys.executable, "-m", "app", "ask", "Hello", "--model", str(big), "--max-new-tokens", "4"],
                           capture_output=True, text=True, timeout=600, env=env, cwd=Path(__file__).parents[1])
    assert asked.returncode == 0, asked.stderr[-2000:]
    assert f"note: draft on ({small.name})" in asked.stderr and "draft " in asked.stderr.splitlines()[-1]
    plain = subprocess.run([sys.executable, "-m", "app", "ask", "Hello", "--model", str(big), "--max-new-tokens", "4",
                            "--no-draft"], capture_output=True, text=True, timeout=600, env=env,
                           cwd=Path(__file__).parents[1])
    assert plain.returncode == 0 and small.name not in plain.stderr, plain.stderr[-2000:]


def test_remove_deletes_data_models_and_refuses_the_one_in_use(qtbot, window, data, tiny_minicpm, exported) -> None:
    models = data / "models"
    for name in ("first-int4", "second-int4"):
        shutil.copytree(exported(tiny_minicpm, "int4", "streaming"), models / name)
    manager = window.open_models()
    with qtbot.waitSignal(window.model_ready, timeout=LONG):
        manager.choose(models / "first-int4")
    assert not manager.remove("first-int4") and "in use" in manager.status.text()
    box = manager.ask_remove("second-int4")
    assert "cannot be undone" in box.text() and (models / "second-int4").exists()
    box.button(box.StandardButton.Yes).click()
    assert not (models / "second-int4").exists()
    assert [row[0] for row in cells(manager.table)] == ["first-int4 ●"]
