"""Tools for the model: MCP servers (mcp.json), a client on its own event loop, and the approve-run-continue loop.

Qt-free; sits beside app/docs above app/engine. The `mcp` SDK is imported only when a server is started."""
