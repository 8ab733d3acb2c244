"""`cpmdesk serve` inside the app: the same API (app/server/api.py) on a uvicorn thread over the window's engine,
on 127.0.0.1 only. Starting and stopping return quickly; the window's answers and the API's share the engine, one
generation at a time."""

from __future__ import annotations

import logging
import threading
import time

from app.server.cli import LOOPBACK, listen_socket

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
log = logging.getLogger(__name__)


class BackgroundServer:
    """One API server at a time; `start` again replaces it (a new engine, port or token)."""

    def __init__(self) -> None:
        self._server = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    @property
    def running(self) -> bool:
        """The server is up."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, engine, port: int, token: str, queue: int = 4) -> str:
        """Serve `engine` on 127.0.0.1:`port` (0: any free port); returns the base URL. OSError when the port
        cannot be had, RuntimeError when the server did not come up."""
        import uvicorn

        from app.server.api import create_app

        self.stop()
        sock = listen_socket(LOOPBACK, port)
        config = uvicorn.Config(create_app(engine, token, queue), log_config=None, access_log=False, http="h11",
                                lifespan="on", timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="api-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            server.should_exit = True
            thread.join(STOP_TIMEOUT_S)
            sock.close()
            raise RuntimeError("the API server did not start; see the log")
        self._server, self._thread = server, thread
        self.url = f"http://{LOOPBACK}:{sock.getsockname()[1]}/v1"
        log.info("API server started on %s", self.url)
        return self.url

    def stop(self) -> None:
        """Stop serving (requests being answered are cancelled)."""
        if self._server is None:
            return
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("the API server did not stop within %s s", STOP_TIMEOUT_S)
        log.info("API server stopped")
        self._server, self._thread, self.url = None, None, None
