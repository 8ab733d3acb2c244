"""`cpmdesk`: start the app, or `cpmdesk ask "…"` / `cpmdesk chat` in a terminal, on the same engine."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.privacy import disable_telemetry


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="cpmdesk", description="Offline, private chat on OpenVINO.")
    sub = parser.add_subparsers(dest="command")
    ask = sub.add_parser("ask", help="answer one prompt and exit")
    ask.add_argument("prompt")
    chat = sub.add_parser("chat", help="interactive chat in the terminal")
    for command in (ask, chat):
        command.add_argument("--model", type=Path, help="exported model folder (default: the embedded model)")
        command.add_argument("--device", default="CPU", help="OpenVINO device (default CPU)")
        command.add_argument("--max-new-tokens", type=int, default=512)
    sub.add_parser("prepare", help="build the embedded default model if it is not there yet")
    return parser


def _model_folder(path: Path | None) -> Path:
    from app.default_model import ensure_default_model

    return path if path is not None else ensure_default_model(log=lambda m: print(m, file=sys.stderr))


def _ask(args: argparse.Namespace) -> int:
    from app.engine import ChatEngine, GenerationSettings

    engine = ChatEngine(_model_folder(args.model), args.device)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)

    def show(chunk: str) -> None:
        sys.stdout.write(chunk)
        sys.stdout.flush()

    engine.reply([{"role": "user", "content": args.prompt}], settings, show)
    sys.stdout.write("\n")
    return 0


def _chat(args: argparse.Namespace) -> int:
    from app.engine import ChatEngine, GenerationSettings

    engine = ChatEngine(_model_folder(args.model), args.device)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    messages: list[dict[str, str]] = []
    print(f"cpmdesk chat on {engine.folder.name} ({engine.device}); empty line or Ctrl-D quits.", file=sys.stderr)
    while True:
        try:
            prompt = input("> ").strip()
        except EOFError:
            break
        if not prompt:
            break
        messages.append({"role": "user", "content": prompt})
        reply = engine.reply(messages, settings, lambda chunk: print(chunk, end="", flush=True))
        print(f"\n[{reply.num_tokens} tokens, {reply.tokens_per_second:.1f} tok/s, TTFT {reply.ttft_ms:.0f} ms]",
              file=sys.stderr)
        messages.append({"role": "assistant", "content": reply.text})
    return 0


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin")


def _start_app() -> int:
    """Double-click entry: make sure the default model exists, then open the window (terminal chat without one)."""
    folder = _model_folder(None)
    try:
        from app.gui.main import run_gui  # the desktop window (PySide6)
    except ImportError:
        run_gui = None
    if run_gui is not None and _has_display():
        return run_gui(folder)
    print("No desktop window available here; starting the terminal chat.", file=sys.stderr)
    return _chat(argparse.Namespace(model=folder, device="CPU", max_new_tokens=512))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    disable_telemetry()
    args = build_parser().parse_args(argv)
    from app.default_model import DefaultModelError
    from app.engine import ModelFolderError

    try:
        if args.command == "ask":
            return _ask(args)
        if args.command == "chat":
            return _chat(args)
        if args.command == "prepare":
            print(_model_folder(None))
            return 0
        return _start_app()
    except (ModelFolderError, DefaultModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
