"""A local HTTP server standing in for the Hugging Face Hub (its model-info, HEAD and ranged GET endpoints), so
huggingface_hub's real download code runs against files on this machine. Point HF_ENDPOINT (or `endpoint=`) at
`server.url`."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_CHUNK = 64 * 1024


class FakeHub:
    """Serves each `repos[hub_id]` folder as a hub repo at COMMIT; `rate` (bytes/s, None: unthrottled) slows file
    bodies so a test can stop a download part-way; `requests` counts the file bytes sent. `broken` (status, body)
    is a failing hub: every request gets that answer instead."""

    def __init__(self, repos: dict[str, Path], rate: float | None = None,
                 broken: tuple[int, bytes] | None = None) -> None:
        self.repos = repos
        self.rate = rate
        self.broken = broken
        self.bytes_sent = 0
        self.etags = {(repo, p.relative_to(folder).as_posix()): hashlib.sha256(p.read_bytes()).hexdigest()
                      for repo, folder in repos.items() for p in folder.rglob("*") if p.is_file()
                      and not p.name.startswith(".")}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo: str) -> dict[str, int]:
        """name -> size of a served repo's files."""
        return {name: (self.repos[repo] / name).stat().st_size for (r, name) in self.etags if r == repo}

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                return None

            def do_GET(self) -> None:
                self._serve(body=True)

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def _serve(self, body: bool) -> None:
                if hub.broken is not None:
                    return self._broken(*hub.broken, body)
                path = unquote(urlparse(self.path).path)
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    return self._info("/".join(parts[2:4]))
                if len(parts) >= 5 and parts[2] == "resolve":
                    return self._file("/".join(parts[:2]), "/".join(parts[4:]), body)
                self._missing("EntryNotFound")

            def _broken(self, status: int, data: bytes, body: bool) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _missing(self, code: str) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _info(self, repo: str) -> None:
                if repo not in hub.repos:
                    return self._missing("RepoNotFound")
                siblings = [{"rfilename": name, "size": size} for name, size in sorted(hub.files(repo).items())]
                data = json.dumps({"id": repo, "modelId": repo, "sha": COMMIT, "siblings": siblings}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _file(self, repo: str, name: str, body: bool) -> None:
                if repo not in hub.repos:
                    return self._missing("RepoNotFound")
                if (repo, name) not in hub.etags:
                    return self._missing("EntryNotFound")
                data = (hub.repos[repo] / name).read_bytes()
                start = 0
                ranged = self.headers.get("Range")
                if ranged and ranged.startswith("bytes="):
                    start = int(ranged[6:].split("-")[0])
                self.send_response(206 if ranged else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hub.etags[(repo, name)]}"')
                self.send_header("Content-Length", str(len(data) - start))
                if ranged:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                try:
                    for offset in range(start, len(data), _CHUNK):
                        chunk = data[offset:offset + _CHUNK]
                        self.wfile.write(chunk)
                        hub.bytes_sent += len(chunk)
                        if hub.rate:
                            time.sleep(len(chunk) / hub.rate)
                except (BrokenPipeError, ConnectionResetError):
                    return

        return Handler
