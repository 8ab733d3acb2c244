"""`cpmdesk serve`: start the OpenAI-compatible API on 127.0.0.1 (another address only when --host says so)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
from pathlib import Path

from app.server import STREAM_INTERVAL_S

# LM Studio has 1234, Jan 1337, GPT4All 4891, Ollama 11434 and Intel AI Playground 8765: a port none of them (nor
# the usual 3000/5000/8000/8080 of development servers) takes, so cpmdesk can run beside them. 276 is "cpm" on a
# phone keypad.
DEFAULT_PORT = 8276
LOOPBACK = "127.0.0.1"
log = logging.getLogger(__name__)


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    """The `serve` subcommand."""
    serve = sub.add_parser("serve", help="serve the model to other apps: an OpenAI-compatible API on 127.0.0.1")
    serve.add_argument("--model", type=Path, help="exported model folder (default: the embedded model)")
    serve.add_argument("--device", default="CPU", help="OpenVINO device (default CPU)")
    serve.add_argument("--context", type=int, default=None, metavar="N", help="context length in tokens")
    serve.add_argument("--no-draft", dest="draft", action="store_false", help="decode without the draft model")
    serve.add_argument("--host", default=LOOPBACK,
                       help="address to listen on (default 127.0.0.1, this machine only; any other address lets "
                            "other machines reach the API, with a warning)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    serve.add_argument("--queue", type=int, default=4, metavar="N",
                       help="requests that may wait behind the one being answered; more get 429 (default 4)")
    serve.add_argument("--stream-interval-ms", type=float, default=STREAM_INTERVAL_S * 1000, metavar="MS",
                       help="streamed text goes out at most every MS milliseconds, what came meanwhile in one chunk "
                            f"(default {STREAM_INTERVAL_S * 1000:g}; 0: every token on its own)")
    serve.add_argument("--new-token", action="store_true", help="replace the API token with a new one first")
    serve.add_argument("--print-token", action="store_true", help="print the API token and exit")


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until Ctrl-C; returns the exit code."""
    from app.server.auth import load_token, new_token, token_path

    if args.print_token:
        print(load_token()[0])
        return 0
    if args.queue < 0:
        print("error: --queue must be 0 or more", file=sys.stderr)
        return 2
    if not 0 <= args.stream_interval_ms <= 1000:
        print("error: --stream-interval-ms must be between 0 and 1000", file=sys.stderr)
        return 2
    token, made = (new_token(), True) if args.new_token else load_token()
    try:
        sock = listen_socket(args.host, args.port)
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port} ({err.strerror or err}); choose another with --port",
              file=sys.stderr)
        return 2
    _configure_logging()
    engine = _load_engine(args)
    import uvicorn

    from app.server.api import create_app

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if made:
        print(f"API token (new; kept in {token_path()}): {token}", file=sys.stderr)
    else:
        print(f"API token: in {token_path()} (cpmdesk serve --print-token shows it; --new-token renews it)",
              file=sys.stderr)
    print(f"cpmdesk API: http://{shown}:{port}/v1 serving {engine.name} on {engine.device}; Ctrl-C stops",
          file=sys.stderr, flush=True)
    app = create_app(engine, token, args.queue, stream_interval_s=args.stream_interval_ms / 1000)
    config = uvicorn.Config(app, log_config=None, access_log=False, http="h11",
                            lifespan="on", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; warns on stderr when the address is not this machine's loopback."""
    family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    if not ipaddress.ip_address(address[0].split("%")[0]).is_loopback:
        print(f"WARNING: listening on {host}: other machines on the network can reach the API and the model "
              "(the token is still required). Use the default 127.0.0.1 unless you mean it.", file=sys.stderr)
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _configure_logging() -> None:
    """Server log lines (counts and timings, never content) on stderr, unless logging is configured already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _load_engine(args: argparse.Namespace):
    """The engine the API answers with (the model's draft when it has one, as the app does)."""
    from app.default_model import ensure_default_model
    from app.engine import ChatEngine
    from app.engine.speculative import DraftConfig
    from app.models.library import with_draft

    folder = args.model or ensure_default_model(log=lambda m: print(m, file=sys.stderr))
    draft, _match = with_draft(folder, DraftConfig(enabled=args.draft))
    engine = ChatEngine(folder, args.device, context_tokens=args.context, draft=draft)
    for note in (engine.context_note, engine.draft_state):
        if note:
            print(f"note: {note}", file=sys.stderr)
    return engine
