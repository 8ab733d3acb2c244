"""A small MCP server written with the SDK for the failure cases (slow, crash, huge output) and for approval tests
(write_file leaves a trace, so a denied call can be seen not to have run).

    python tests/mcp_test_server.py                # stdio
    python tests/mcp_test_server.py --http PORT    # streamable HTTP on 127.0.0.1:PORT/mcp
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("cpmdesk-test")


@server.tool()
def echo(text: str) -> str:
    """Give the text back."""
    return f"echo: {text}"


@server.tool()
def write_file(path: str, text: str) -> str:
    """Write text to a file (relative to the server's folder)."""
    Path(path).write_text(text, encoding="utf-8")
    return f"wrote {len(text)} characters to {path}"


@server.tool()
def slow(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return f"slept {seconds} s"


@server.tool()
def crash() -> str:
    """Die at once, saying why on stderr."""
    print("test server: crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def huge(chars: int) -> str:
    """A result of `chars` characters."""
    return ("0123456789" * (chars // 10 + 1))[:chars]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
