"""MCP servers for the tests: the real mcp-server-time and mcp-server-git from PyPI (dev extra) and the failure-case
server in tests/mcp_test_server.py, as mcp.json entries."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.tools.mcp_config import McpConfig, ServerConfig

TEST_SERVER = Path(__file__).with_name("mcp_test_server.py")
BIN = Path(sys.executable).parent


def server_command(name: str) -> str:
    """A console script installed beside this Python (the dev extra's MCP servers)."""
    path = BIN / name
    if not path.is_file():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
        return found
    return str(path)


def git_repo(folder: Path) -> Path:
    """A small git repository with one commit, for mcp-server-git."""
    folder.mkdir(parents=True, exist_ok=True)
    run = lambda *args: subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (folder / "notes.txt").write_text("first line\n")
    run("add", "notes.txt")
    run("-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "First notes")
    return folder


def servers(folder: Path, timeout: float = 20.0) -> McpConfig:
    """time, git (over a repository in `folder`) and test (the failure cases; it works in `folder`)."""
    return McpConfig({
        "time": ServerConfig("time", command=server_command("mcp-server-time"), args=["--local-timezone", "UTC"]),
        "git": ServerConfig("git", command=server_command("mcp-server-git"),
                            args=["--repository", str(git_repo(folder / "repo"))]),
        "test": ServerConfig("test", command=sys.executable, args=[str(TEST_SERVER)], cwd=str(folder),
                             timeout=timeout),
    })
