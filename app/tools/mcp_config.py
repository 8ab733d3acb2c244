"""mcp.json in the data folder: MCP servers in the `mcpServers` layout other apps use, plus cpmdesk's switches.

    {"mcpServers": {
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"], "env": {"TZ": "UTC"}},
        "notes": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer …"}},
        "git": {"command": "mcp-server-git", "disabled": true, "disabledTools": ["git_commit"],
                "alwaysAllow": ["git_status"], "timeout": 30}}}

A server has `command` (stdio: `args`, `env`, `cwd`) or `url` (streamable HTTP: `headers`). `disabled`,
`disabledTools`, `alwaysAllow` and `timeout` (seconds per call) are the keys Cline and Roo Code use for the same
things. Keys cpmdesk does not know are kept as they are when the file is written back.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.paths import data_dir

CONFIG_FILE = "mcp.json"
DEFAULT_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


class McpConfigError(ValueError):
    """mcp.json cannot be read; the message names the file and the problem."""


@dataclass
class ServerConfig:
    """One MCP server as configured."""

    name: str
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    disabled: bool = False
    disabled_tools: list[str] = field(default_factory=list)
    always_allow: list[str] = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT_S
    extra: dict[str, Any] = field(default_factory=dict)  # other apps' keys, written back untouched

    @property
    def transport(self) -> str:
        """"http" (streamable HTTP) for a server with a URL, else "stdio"."""
        return "http" if self.url else "stdio"

    def tool_enabled(self, tool: str) -> bool:
        """Whether the user left `tool` switched on."""
        return tool not in self.disabled_tools

    def problem(self) -> str | None:
        """What makes this entry unusable, or None."""
        if bool(self.command) == bool(self.url):
            return f"MCP server {self.name!r} needs either a command (stdio) or a url (streamable HTTP)"
        if self.url and not self.url.startswith(("http://", "https://")):
            return f"MCP server {self.name!r}: the url must start with http:// or https://"
        if self.timeout <= 0:
            return f"MCP server {self.name!r}: the timeout must be more than 0 seconds"
        return None

    def to_json(self) -> dict[str, Any]:
        """The entry as mcp.json holds it (defaults left out)."""
        out: dict[str, Any] = dict(self.extra)
        if self.url:
            out["url"] = self.url
            if self.headers:
                out["headers"] = dict(self.headers)
        else:
            out["command"] = self.command
            if self.args:
                out["args"] = list(self.args)
            if self.env:
                out["env"] = dict(self.env)
            if self.cwd:
                out["cwd"] = self.cwd
        if self.disabled:
            out["disabled"] = True
        if self.disabled_tools:
            out["disabledTools"] = sorted(self.disabled_tools)
        if self.always_allow:
            out["alwaysAllow"] = sorted(self.always_allow)
        if self.timeout != DEFAULT_TIMEOUT_S:
            out["timeout"] = self.timeout
        return out


_KNOWN = {"command", "args", "env", "cwd", "url", "headers", "disabled", "disabledTools", "alwaysAllow", "timeout"}


def server_from_json(name: str, entry: Any) -> ServerConfig:
    """A ServerConfig from its mcp.json entry (McpConfigError when a field has the wrong type)."""
    if not isinstance(entry, dict):
        raise McpConfigError(f"MCP server {name!r} is not an object")
    strings = _typed(name, entry, "args", list, []) + _typed(name, entry, "disabledTools", list, []) \
        + _typed(name, entry, "alwaysAllow", list, [])
    if not all(isinstance(item, str) for item in strings):
        raise McpConfigError(f"MCP server {name!r}: args, disabledTools and alwaysAllow are lists of strings")
    timeout = entry.get("timeout", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise McpConfigError(f"MCP server {name!r}: timeout is a number of seconds")
    return ServerConfig(
        name=name, command=_typed(name, entry, "command", str, ""), args=list(entry.get("args") or []),
        env={str(k): str(v) for k, v in _typed(name, entry, "env", dict, {}).items()},
        cwd=_typed(name, entry, "cwd", str, ""), url=_typed(name, entry, "url", str, ""),
        headers={str(k): str(v) for k, v in _typed(name, entry, "headers", dict, {}).items()},
        disabled=bool(entry.get("disabled", False)), disabled_tools=list(entry.get("disabledTools") or []),
        always_allow=list(entry.get("alwaysAllow") or []), timeout=float(timeout),
        extra={k: v for k, v in entry.items() if k not in _KNOWN})


def _typed(name: str, entry: dict, key: str, kind: type, default: Any) -> Any:
    value = entry.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise McpConfigError(f"MCP server {name!r}: {key!r} should be a {kind.__name__}")
    return value


@dataclass
class McpConfig:
    """The servers of an mcp.json, in the file's order."""

    servers: dict[str, ServerConfig] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # top-level keys other than mcpServers

    def active(self) -> list[ServerConfig]:
        """The servers switched on and well-formed (a malformed one is logged and left out)."""
        found = []
        for server in self.servers.values():
            problem = server.problem()
            if problem:
                log.warning("%s; left out", problem)
            elif not server.disabled:
                found.append(server)
        return found

    def to_json(self) -> dict[str, Any]:
        """The whole file's content."""
        return {**self.extra, "mcpServers": {name: s.to_json() for name, s in self.servers.items()}}


def config_path() -> Path:
    """<data folder>/mcp.json."""
    return data_dir() / CONFIG_FILE


def load_config(path: Path | None = None) -> McpConfig:
    """The servers in mcp.json (none when the file does not exist); McpConfigError when it cannot be read."""
    path = path or config_path()
    if not path.is_file():
        return McpConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise McpConfigError(f"{path} cannot be read: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers", {}), dict):
        raise McpConfigError(f'{path} should be an object with "mcpServers": {{name: {{…}}}}')
    servers = {name: server_from_json(name, entry) for name, entry in (data.get("mcpServers") or {}).items()}
    return McpConfig(servers, {k: v for k, v in data.items() if k != "mcpServers"})


def save_config(config: McpConfig, path: Path | None = None) -> None:
    """Write mcp.json atomically (env values and headers may hold secrets: readable by the user alone)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(config.to_json(), handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.replace(scratch, path)
    except OSError:
        scratch.unlink(missing_ok=True)
        raise


def remember_always(config: McpConfig, server: str, tool: str, path: Path | None = None) -> None:
    """"Always for this tool": add it to the server's alwaysAllow, in memory and in mcp.json."""
    entry = config.servers.get(server)
    if entry is None or tool in entry.always_allow:
        return
    entry.always_allow.append(tool)
    try:
        on_disk = load_config(path)
        if server in on_disk.servers and tool not in on_disk.servers[server].always_allow:
            on_disk.servers[server].always_allow.append(tool)
            save_config(on_disk, path)
    except (McpConfigError, OSError) as err:  # the choice still holds for this session
        log.warning("could not remember %s/%s in mcp.json: %s", server, tool, err)
