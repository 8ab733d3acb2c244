"""MCP servers reached with the official `mcp` SDK, on a background thread with its own asyncio event loop.

Callers (worker threads, the terminal) get plain blocking methods; nothing here may run on the Qt UI thread. Each
server is started on first use and kept connected. A call has a timeout; a server that crashes, hangs or cannot
start gives an error result whose text says so (never an exception), and a result too long for the model's context
is cut with a note. A server is only started or connected to when mcp.json configures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.tools.mcp_config import McpConfig, ServerConfig

MAX_RESULT_CHARS = 8000  # ~2k tokens: a result longer than this is cut (small models have small contexts)
STDERR_TAIL_CHARS = 600
CLOSE_TIMEOUT_S = 5.0
log = logging.getLogger(__name__)


class McpError(RuntimeError):
    """A server could not be started, reached or listed; the message says which and why."""


@dataclass(frozen=True)
class ToolInfo:
    """A tool a server offers."""

    server: str
    name: str
    description: str = ""
    input_schema: dict = field(default_factory=dict)
    enabled: bool = True  # the user's switch in mcp.json (disabledTools)
    always_allowed: bool = False  # runs without asking (alwaysAllow)

    def function(self, exposed_name: str | None = None) -> dict:
        """The tool as an OpenAI function definition, the form the engine puts into prompts."""
        schema = self.input_schema or {"type": "object", "properties": {}}
        return {"type": "function", "function": {"name": exposed_name or self.name,
                                                 "description": self.description, "parameters": schema}}


@dataclass(frozen=True)
class ToolResult:
    """What a call gave back, as text for the model; `is_error` when the tool or its server failed."""

    text: str
    is_error: bool = False
    truncated: bool = False


def truncate(text: str, limit: int = MAX_RESULT_CHARS) -> tuple[str, bool]:
    """`text` cut to `limit` characters with a note saying so; also whether it was cut."""
    if len(text) <= limit:
        return text, False
    return (f"{text[:limit]}\n[… output cut: the tool returned {len(text):,} characters; the first {limit:,} "
            "are kept]"), True


def result_text(result: Any) -> str:
    """A CallToolResult's content as text (images and audio named, not included)."""
    parts = []
    for item in result.content or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} ({getattr(item, 'mime_type', '?')}) not shown]")
        elif kind == "resource":
            resource = item.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource {item.uri}]")
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def describe_error(err: BaseException) -> str:
    """The innermost meaningful message of an exception (task groups wrap the SDK's errors)."""
    while getattr(err, "exceptions", None):  # an exception group
        err = next((e for e in err.exceptions if not isinstance(e, asyncio.CancelledError)), err.exceptions[0])
    if isinstance(err, FileNotFoundError):
        return f"command not found ({err.filename or err})"
    return str(err) or type(err).__name__


class _Connection:
    """One server's live client, held open by a task on the hub's loop until `stop` is set."""

    def __init__(self, server: ServerConfig) -> None:
        self.server = server
        self.client: Any = None
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.stop = asyncio.Event()
        self.closed = asyncio.Event()
        self.error: str | None = None
        self.stderr_path: Path | None = None
        self.task: asyncio.Task | None = None

    def stderr_tail(self) -> str:
        """The end of what the server wrote to stderr (stdio servers), for error messages."""
        if self.stderr_path is None:
            return ""
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError as err:
            log.warning("cannot read the stderr of MCP server %s: %s", self.server.name, err)
            return ""
        return text[-STDERR_TAIL_CHARS:]

    def transport(self):
        """The SDK transport for this server (stdio: its stderr goes to a scratch file, read on failure)."""
        server = self.server
        if server.url:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = create_mcp_http_client(headers=server.headers or None)
            return streamable_http_client(server.url, http_client=client)
        from mcp.client.stdio import StdioServerParameters, stdio_client

        fd, name = tempfile.mkstemp(prefix=f"cpmdesk-mcp-{os.getpid()}-", suffix=".log")
        os.close(fd)
        self.stderr_path = Path(name)
        errlog = open(name, "a", encoding="utf-8")  # noqa: SIM115 (closed when the connection ends)
        self._errlog = errlog
        params = StdioServerParameters(command=server.command, args=list(server.args), env=dict(server.env) or None,
                                       cwd=server.cwd or None)
        return stdio_client(params, errlog=errlog)

    async def hold(self) -> None:
        """Connect, report ready, and keep the session open until told to stop."""
        from mcp import Client

        try:
            async with Client(self.transport()) as client:
                self.client = client
                self.ready.set_result(None)
                await self.stop.wait()
        except BaseException as err:  # every failure becomes the server's message; cancelling goes on
            self.error = describe_error(err)
            log.warning("MCP server %s ended: %s", self.server.name, self.error, exc_info=True)
            if not self.ready.done():
                self.ready.set_exception(McpError(self.failure(f"could not start: {self.error}")))
            if not isinstance(err, Exception):  # cancelled, interrupted
                raise
        finally:
            self.client = None
            self.closed.set()
            errlog = getattr(self, "_errlog", None)
            if errlog is not None:
                errlog.close()

    def failure(self, what: str) -> str:
        """A message naming the server, what happened and the end of its stderr."""
        tail = self.stderr_tail()
        return f"MCP server {self.server.name!r} {what}" + (f"\nIts last output:\n{tail}" if tail else "")

    def discard(self) -> None:
        """Remove the scratch stderr file."""
        if self.stderr_path is not None:
            self.stderr_path.unlink(missing_ok=True)


class McpHub:
    """The configured servers, started on demand, on one background event loop. Thread-safe; blocking methods."""

    def __init__(self, config: McpConfig, max_result_chars: int = MAX_RESULT_CHARS) -> None:
        self.config = config
        self.max_result_chars = max_result_chars
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connections: dict[str, _Connection] = {}
        self._start_lock = threading.Lock()

    # ---------------------------------------------------------------- the loop thread

    def _submit(self, coroutine, timeout: float | None) -> Any:
        with self._start_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-client", daemon=True)
                self._thread.start()
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def close(self) -> None:
        """Stop every server and the loop thread."""
        if self._loop is None:
            return
        try:
            self._submit(self._close_all(), CLOSE_TIMEOUT_S * 2)
        except (FutureTimeout, RuntimeError) as err:
            log.warning("MCP servers did not all stop in time: %s", err)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(CLOSE_TIMEOUT_S)
        self._loop.close()
        self._loop = self._thread = None

    async def _close_all(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await self._stop(connection)

    @staticmethod
    async def _stop(connection: _Connection) -> None:
        connection.stop.set()
        if connection.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(connection.task), CLOSE_TIMEOUT_S)
            except (TimeoutError, asyncio.TimeoutError):
                log.warning("MCP server %s did not stop in time; cancelled", connection.server.name)
                connection.task.cancel()
        connection.discard()

    # ---------------------------------------------------------------- connections

    def server(self, name: str) -> ServerConfig:
        """A configured server by name (McpError when there is none)."""
        server = self.config.servers.get(name)
        if server is None:
            raise McpError(f"no MCP server named {name!r} in mcp.json")
        return server

    async def _connected(self, name: str) -> _Connection:
        connection = self._connections.get(name)
        if connection is not None and connection.closed.is_set():
            await self._stop(connection)  # it died (crash): start it again
            connection = None
        if connection is None:
            connection = _Connection(self.server(name))
            connection.task = asyncio.create_task(connection.hold(), name=f"mcp-{name}")
            self._connections[name] = connection
        try:
            await asyncio.wait_for(asyncio.shield(connection.ready), connection.server.timeout)
        except (TimeoutError, asyncio.TimeoutError) as err:
            message = connection.failure(f"did not start within {connection.server.timeout:g} s")
            self._connections.pop(name, None)
            await self._stop(connection)
            raise McpError(message) from err
        except McpError:
            self._connections.pop(name, None)
            await self._stop(connection)
            raise
        return connection

    def list_tools(self, name: str) -> list[ToolInfo]:
        """The tools of server `name`, starting it if needed (McpError when it cannot be reached)."""
        server = self.server(name)
        return self._submit(self._list_tools(name), server.timeout * 2 + CLOSE_TIMEOUT_S)

    async def _list_tools(self, name: str) -> list[ToolInfo]:
        connection = await self._connected(name)
        server = connection.server
        try:
            listed = await asyncio.wait_for(connection.client.list_tools(), server.timeout)
        except (TimeoutError, asyncio.TimeoutError) as err:
            raise McpError(connection.failure(f"did not list its tools within {server.timeout:g} s")) from err
        except Exception as err:
            log.warning("listing the tools of MCP server %s failed", name, exc_info=True)
            raise McpError(connection.failure(f"could not list its tools: {describe_error(err)}")) from err
        return [ToolInfo(name, tool.name, tool.description or "", dict(tool.input_schema or {}),
                         server.tool_enabled(tool.name), tool.name in server.always_allow)
                for tool in listed.tools]

    def all_tools(self) -> tuple[list[ToolInfo], dict[str, str]]:
        """The tools of every active server, and for each server that failed, why."""
        tools: list[ToolInfo] = []
        errors: dict[str, str] = {}
        for server in self.config.active():
            try:
                tools += self.list_tools(server.name)
            except (McpError, FutureTimeout) as err:
                errors[server.name] = str(err) or f"MCP server {server.name!r} did not answer"
                log.warning("MCP server %s: %s", server.name, errors[server.name])
        return tools, errors

    def call(self, server_name: str, tool: str, arguments: dict, timeout: float | None = None) -> ToolResult:
        """Run a tool. Failures (no server, start failure, crash, timeout, tool error) come back as an error
        result whose text says what happened; a long output is cut to max_result_chars."""
        try:
            limit = timeout if timeout is not None else self.server(server_name).timeout
            result = self._submit(self._call(server_name, tool, arguments, limit), limit * 2 + CLOSE_TIMEOUT_S)
        except McpError as err:
            return ToolResult(str(err), is_error=True)
        except FutureTimeout:
            log.warning("MCP call %s/%s did not come back", server_name, tool)
            return ToolResult(f"MCP server {server_name!r} did not answer {tool}; the call was abandoned",
                              is_error=True)
        return result

    async def _call(self, name: str, tool: str, arguments: dict, timeout: float) -> ToolResult:
        connection = await self._connected(name)
        call = asyncio.ensure_future(connection.client.call_tool(tool, arguments))
        closed = asyncio.ensure_future(connection.closed.wait())
        done, _pending = await asyncio.wait({call, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if call not in done:
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call
            if closed in done:
                message = connection.failure(f"stopped while running {tool}")
                self._connections.pop(name, None)
                await self._stop(connection)
                return ToolResult(message, is_error=True)
            log.warning("MCP call %s/%s timed out after %g s", name, tool, timeout)
            return ToolResult(f"MCP server {name!r} did not finish {tool} within {timeout:g} s; the call was "
                              "cancelled", is_error=True)
        try:
            result = call.result()
        except Exception as err:
            log.warning("MCP call %s/%s failed", name, tool, exc_info=True)
            if connection.closed.is_set() or "closed" in str(err).lower():
                await asyncio.sleep(0.2)  # let the process's last stderr lines land
                message = connection.failure(f"stopped while running {tool} ({describe_error(err)})")
                self._connections.pop(name, None)
                await self._stop(connection)
                return ToolResult(message, is_error=True)
            return ToolResult(f"{tool} on MCP server {name!r} failed: {describe_error(err)}", is_error=True)
        text, cut = truncate(result_text(result), self.max_result_chars)
        return ToolResult(text, bool(result.is_error), cut)
