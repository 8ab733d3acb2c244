"""The MCP client layer against real servers: mcp-server-time and mcp-server-git from PyPI, and a server written
with the SDK for the failure cases (slow, crash, huge output), over stdio and streamable HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from app.tools.mcp_client import McpHub
from app.tools.mcp_config import McpConfig, McpConfigError, ServerConfig, load_config, remember_always, save_config
from app.tools.tool_loop import ToolCatalog
from tests.mcp_fixtures import TEST_SERVER, servers


@pytest.fixture
def hub(tmp_path):
    hub = McpHub(servers(tmp_path, timeout=2.0), max_result_chars=1000)
    yield hub
    hub.close()


def test_tools_are_listed_per_server(hub) -> None:
    tools, errors = hub.all_tools()
    assert errors == {}
    by_server = {}
    for tool in tools:
        by_server.setdefault(tool.server, set()).add(tool.name)
    assert {"get_current_time", "convert_time"} <= by_server["time"]
    assert {"git_status", "git_log"} <= by_server["git"]
    assert by_server["test"] == {"echo", "write_file", "slow", "crash", "huge"}
    schema = next(t for t in tools if t.name == "get_current_time").input_schema
    assert schema["required"] == ["timezone"]


def test_real_servers_answer_calls(hub, tmp_path) -> None:
    now = hub.call("time", "get_current_time", {"timezone": "Europe/Paris"})
    assert not now.is_error and json.loads(now.text)["timezone"] == "Europe/Paris"
    log = hub.call("git", "git_log", {"repo_path": str(tmp_path / "repo")})
    assert not log.is_error and "First notes" in log.text
    bad = hub.call("time", "get_current_time", {"timezone": "Not/AZone"})
    assert bad.is_error and "Not/AZone" in bad.text  # the tool's own error reaches the model


def test_a_slow_tool_times_out_and_the_server_goes_on(hub) -> None:
    started = time.monotonic()
    result = hub.call("test", "slow", {"seconds": 30})
    assert result.is_error
    assert "did not finish slow within 2 s" in result.text
    assert time.monotonic() - started < 10
    assert hub.call("test", "echo", {"text": "still here"}).text == "echo: still here"
    assert hub.call("test", "slow", {"seconds": 0.1}, timeout=5).text == "slept 0.1 s"


def test_a_crash_gives_a_clear_message_and_the_next_call_restarts_the_server(hub) -> None:
    result = hub.call("test", "crash", {})
    assert result.is_error
    assert "MCP server 'test' stopped while running crash" in result.text
    assert "crashing on purpose" in result.text  # the server's last words, from its stderr
    assert hub.call("test", "echo", {"text": "again"}).text == "echo: again"


def test_huge_output_is_cut_with_a_note(hub) -> None:
    result = hub.call("test", "huge", {"chars": 3_000_000})
    assert result.truncated and not result.is_error
    assert result.text.startswith("0123456789")
    assert "the tool returned 3,000,000 characters; the first 1,000 are kept" in result.text
    assert len(result.text) < 1200


def test_a_server_that_cannot_start_or_hangs_is_named(tmp_path) -> None:
    config = McpConfig({
        "missing": ServerConfig("missing", command=str(tmp_path / "no-such-server")),
        "mute": ServerConfig("mute", command=sys.executable, args=["-c", "import time; time.sleep(60)"], timeout=1),
        "time": servers(tmp_path).servers["time"],
    })
    hub = McpHub(config)
    try:
        tools, errors = hub.all_tools()
        assert {t.server for t in tools} == {"time"}  # the others do not stop the working one
        assert "MCP server 'missing' could not start" in errors["missing"]
        assert "MCP server 'mute' did not start within 1 s" in errors["mute"]
        result = hub.call("missing", "anything", {})
        assert result.is_error and "could not start" in result.text
        assert hub.call("nowhere", "x", {}).text == "no MCP server named 'nowhere' in mcp.json"
    finally:
        hub.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_streamable_http_server(tmp_path) -> None:
    port = _free_port()
    process = subprocess.Popen([sys.executable, str(TEST_SERVER), "--http", str(port)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        hub = McpHub(McpConfig({"web": ServerConfig("web", url=f"http://127.0.0.1:{port}/mcp", timeout=2)}))
        try:
            tools, errors = hub.all_tools()
            assert errors == {} and "echo" in {t.name for t in tools}
            assert hub.call("web", "echo", {"text": "over http"}).text == "echo: over http"
            assert "did not finish slow" in hub.call("web", "slow", {"seconds": 20}).text
        finally:
            hub.close()
    finally:
        process.kill()  # its slow tool may still be sleeping
        process.wait(10)


def test_mcp_json_layout_round_trips_and_switches(tmp_path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"], "env": {"TZ": "UTC"},
                 "disabledTools": ["convert_time"], "autoApprove": ["x"]},
        "web": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer t"}, "disabled": True},
    }, "otherAppSetting": 1}))
    config = load_config(path)
    time_server, web = config.servers["time"], config.servers["web"]
    assert time_server.transport == "stdio" and web.transport == "http"
    assert not time_server.tool_enabled("convert_time") and time_server.tool_enabled("get_current_time")
    assert [s.name for s in config.active()] == ["time"]  # a disabled server is never started
    remember_always(config, "time", "get_current_time", path)
    saved = json.loads(path.read_text())
    assert saved["otherAppSetting"] == 1 and saved["mcpServers"]["time"]["autoApprove"] == ["x"]  # others' keys kept
    assert saved["mcpServers"]["time"]["alwaysAllow"] == ["get_current_time"]
    assert load_config(path).servers["time"].always_allow == ["get_current_time"]
    save_config(config, path)
    assert path.stat().st_mode & 0o077 == 0  # env values and headers may be secrets


def test_disabled_tools_are_not_offered(tmp_path) -> None:
    config = servers(tmp_path)
    config.servers["time"].disabled_tools = ["convert_time"]
    hub = McpHub(McpConfig({"time": config.servers["time"]}))
    try:
        tools, _ = hub.all_tools()
    finally:
        hub.close()
    names = [f["function"]["name"] for f in ToolCatalog(tools).functions()]
    assert names == ["get_current_time"]


@pytest.mark.parametrize("content", ["{not json", '{"mcpServers": []}', '{"mcpServers": {"x": {"args": "a"}}}'])
def test_a_broken_mcp_json_is_named(tmp_path, content) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(content)
    with pytest.raises(McpConfigError, match=r"mcp\.json|'x'"):
        load_config(path)
