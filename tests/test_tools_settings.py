"""Settings → Tools (MCP) and Settings → API, offscreen: servers from mcp.json added, edited, removed and switched,
their tools listed from the real servers with checkboxes, saved back; the API switch serving the real engine on
127.0.0.1 with the token shown, copied and renewed."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from app.gui.api_page import ApiPage, ApiSwitch
from app.gui.main_window import MainWindow
from app.gui.mcp_page import McpPage
from app.store import ChatStore
from app.tools.mcp_config import load_config, save_config
from tests.mcp_fixtures import servers


def _tree(page: McpPage) -> dict[str, dict[str, bool]]:
    shown = {}
    for i in range(page.tree.topLevelItemCount()):
        item = page.tree.topLevelItem(i)
        tools = {item.child(j).text(0): item.child(j).checkState(0) == Qt.CheckState.Checked
                 for j in range(item.childCount())}
        shown[item.text(0)] = {"on": item.checkState(0) == Qt.CheckState.Checked, **tools}
    return shown


def test_tools_page_lists_switches_and_saves(qtbot, tmp_path) -> None:
    path = tmp_path / "mcp.json"
    save_config(servers(tmp_path), path)
    page = McpPage(path)
    qtbot.addWidget(page)
    assert list(_tree(page)) == ["time", "git", "test"]
    with qtbot.waitSignal(page.tools_listed, timeout=60_000):
        page.list_tools()
    shown = _tree(page)
    assert shown["time"] == {"on": True, "get_current_time": True, "convert_time": True}
    assert shown["git"]["git_status"] and shown["test"]["crash"]
    time_item = page.tree.topLevelItem(0)
    time_item.child(1).setCheckState(0, Qt.CheckState.Unchecked)  # convert_time off
    page.tree.topLevelItem(1).setCheckState(0, Qt.CheckState.Unchecked)  # the git server off
    saved = []
    page.saved.connect(saved.append)
    page.apply()
    on_disk = load_config(path)
    assert on_disk.servers["time"].disabled_tools == ["convert_time"] and on_disk.servers["git"].disabled
    assert [s.name for s in on_disk.active()] == ["time", "test"] and saved[0] is page.config


def test_servers_are_added_edited_and_removed(qtbot, tmp_path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"time": {"command": "mcp-server-time", "alwaysAllow": ["x"]}}}))
    page = McpPage(path)
    qtbot.addWidget(page)
    dialog = page.add_server()
    dialog.name.setText("time")  # taken
    dialog.command.setText("uvx mcp-server-fetch")
    dialog._check()
    assert dialog.isVisible() and "name of its own" in dialog.problem.text()
    dialog.name.setText("notes")
    dialog.kind.setCurrentIndex(1)
    dialog.url.setText("ftp://nowhere")
    dialog._check()
    assert "http://" in dialog.problem.text()
    dialog.url.setText("http://127.0.0.1:8000/mcp")
    dialog.timeout.setValue(12)
    dialog._check()
    assert list(_tree(page)) == ["time", "notes"]
    page.tree.setCurrentItem(page.tree.topLevelItem(0))
    edit = page.edit_server()
    assert edit.command.text() == "mcp-server-time"
    edit.command.setText("mcp-server-time --local-timezone 'Europe/Paris'")
    edit.env.setPlainText("TZ=UTC\nnot a pair")
    edit._check()
    page.apply()
    saved = json.loads(path.read_text())["mcpServers"]
    assert saved["time"] == {"command": "mcp-server-time", "args": ["--local-timezone", "Europe/Paris"],
                             "env": {"TZ": "UTC"}, "alwaysAllow": ["x"]}
    assert saved["notes"] == {"url": "http://127.0.0.1:8000/mcp", "timeout": 12.0}
    page.tree.setCurrentItem(page.tree.topLevelItem(1))
    page.remove_server()
    page.apply()
    assert list(json.loads(path.read_text())["mcpServers"]) == ["time"]


def test_settings_has_tools_and_api_tabs_and_saving_reloads_the_tools(qtbot, tmp_path) -> None:
    window = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), None)
    qtbot.addWidget(window)
    assert window.tools.hub is None
    dialog = window.open_settings()
    titles = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert titles == ["General", "Tools (MCP)", "API"]
    tools_page = dialog.pages[0]
    tools_page.config = servers(tmp_path)
    dialog.accept()
    assert (tmp_path / "mcp.json").is_file() and window.tools.enabled
    assert set(window.tools.hub.config.servers) == {"time", "git", "test"}
    window.tools.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def api_switch(qtbot, tmp_path, default_model, monkeypatch):
    from app.engine import ChatEngine

    monkeypatch.setenv("CPMDESK_DATA_DIR", str(tmp_path))  # the token renewed here is this test's own
    switch = ApiSwitch(ChatStore(tmp_path / "chats.sqlite3"))
    switch.engine = ChatEngine(default_model)
    yield switch
    switch.shutdown()


def test_api_page_serves_the_model_and_renews_the_token(qtbot, api_switch) -> None:
    page = ApiPage(api_switch)
    qtbot.addWidget(page)
    assert not page.enabled.isChecked() and page.token.text().startswith("cpm-")
    port = _free_port()
    page.enabled.setChecked(True)
    page.port.setValue(port)
    page.apply().join(30)
    qtbot.waitUntil(lambda: "API server on" in page.state.text(), timeout=10_000)
    url = f"http://127.0.0.1:{port}/v1"
    assert api_switch.server.url == url and api_switch.store.get_setting("api_server") == {"enabled": True,
                                                                                          "port": port}
    old = page.token.text()
    models = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {old}"}, timeout=30)
    assert models.status_code == 200 and models.json()["data"][0]["id"] == api_switch.engine.name
    qtbot.mouseClick(page.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == old
    qtbot.mouseClick(page.renew_button, Qt.MouseButton.LeftButton)
    new = page.token.text()
    assert new != old and new.startswith("cpm-")
    api_switch.last_restart.join(30)  # the running server restarts with the new token
    assert httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {old}"}, timeout=30).status_code == 401
    assert httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {new}"}, timeout=30).status_code == 200
    page.enabled.setChecked(False)
    page.apply().join(30)
    assert not api_switch.server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models", timeout=5)


def test_a_busy_port_is_reported(qtbot, api_switch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        messages = []
        api_switch.status.connect(messages.append)
        api_switch.configure(True, port).join(30)
        qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert f"could not start on port {port}" in messages[-1] and not api_switch.server.running
