"""`cpmdesk`: start the app, or `cpmdesk ask "…"` / `cpmdesk chat` in a terminal, on the same engine."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from app.privacy import disable_telemetry
from export.log_file import setup_logging

log = logging.getLogger(__name__)
SERVER_LOGGERS = ("app.server", "uvicorn")  # `cpmdesk serve` shows their INFO lines on the terminal

_DIM, _RESET = "\033[2m", "\033[0m"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="cpmdesk", description="Offline, private chat on OpenVINO.")
    sub = parser.add_subparsers(dest="command")
    ask = sub.add_parser("ask", help="answer one prompt and exit")
    ask.add_argument("prompt")
    chat = sub.add_parser("chat", help="interactive chat in the terminal")
    from app.docs.report.cli import add_report_parser

    report = add_report_parser(sub)
    for command in (ask, chat, report):
        command.add_argument("--model", type=Path, help="exported model folder (default: the embedded model)")
        command.add_argument("--device", default="CPU", help="OpenVINO device (default CPU)")
        command.add_argument("--max-new-tokens", type=int, default=256 if command is report else 1024,
                             help="tokens per answer (report: per step, default 256)")
        command.add_argument("--context", type=int, default=None, metavar="N",
                             help="context length in tokens (default: the model's trained length, as much of it "
                                  "as fits in memory)")
        command.add_argument("--temperature", type=float, default=0.0,
                             help="sample at this temperature with the model's top-p/top-k (default 0: greedy, "
                                  "the same answer every time)")
        command.add_argument("--no-repetition-guard", dest="guard", action="store_false",
                             help="do not penalize tokens the answer already repeats (on by default)")
        command.add_argument("--system", default="", help="system prompt")
        command.add_argument("--no-draft", dest="draft", action="store_false",
                             help="decode with the model alone, without its draft (assisted generation)")
        think = command.add_mutually_exclusive_group()
        think.add_argument("--think", dest="think", action="store_true", default=None,
                           help="reason before answering (models with hybrid thinking)")
        think.add_argument("--no-think", dest="think", action="store_false", help="answer without reasoning")
    ask.add_argument("--docs", action="store_true", help="answer from your documents, with sources (cpmdesk docs add)")
    ask.add_argument("--tools", action="store_true",
                     help="let the model call the tools of the MCP servers in <data folder>/mcp.json; each call "
                          "asks first on the terminal (y/N/always)")
    sub.add_parser("prepare", help="build the embedded default model if it is not there yet")
    from app.docs.cli import add_docs_parser

    add_docs_parser(sub)
    from app.models.cli import add_models_parser

    add_models_parser(sub)
    from app.server.cli import add_serve_parser

    add_serve_parser(sub)
    return parser


def _model_folder(path: Path | None) -> Path:
    from app.default_model import ensure_default_model

    return path if path is not None else ensure_default_model(log=lambda m: print(m, file=sys.stderr))


class _TerminalPrinter:
    """Answer to stdout; reasoning dimmed on a terminal, or to stderr when stdout is redirected."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.in_reasoning = False

    def __call__(self, delta) -> None:
        if delta.kind == "reasoning":
            if self.tty:
                sys.stdout.write(_DIM + delta.text + _RESET)
                sys.stdout.flush()
            else:
                sys.stderr.write(delta.text)
                sys.stderr.flush()
            self.in_reasoning = True
            return
        if self.in_reasoning:
            self.in_reasoning = False
            (sys.stdout if self.tty else sys.stderr).write("\n")
        sys.stdout.write(delta.text)
        sys.stdout.flush()


def _engine(args: argparse.Namespace):
    from app.engine import ChatEngine
    from app.engine.speculative import DraftConfig
    from app.models.library import with_draft

    folder = _model_folder(args.model)
    draft, _match = with_draft(folder, DraftConfig(enabled=args.draft))  # MiniCPM4-0.5B for an 8B MiniCPM4
    engine = ChatEngine(folder, args.device, context_tokens=args.context, draft=draft)
    if engine.context_note:
        print(f"note: {engine.context_note}", file=sys.stderr)
    if engine.draft_state:
        print(f"note: {engine.draft_state}", file=sys.stderr)
    if args.think is not None and not engine.supports_thinking:
        print(f"note: {engine.name} has no reasoning toggle; answering normally", file=sys.stderr)
    return engine


def _generation(engine, args: argparse.Namespace):
    """The terminal's settings: the model's own top-p/top-k (app/engine/model_defaults.py) at --temperature,
    the repetition guard unless --no-repetition-guard."""
    from app.engine.model_defaults import model_defaults

    sampling = model_defaults(engine.folder).merged({"temperature": args.temperature, "repetition_guard": args.guard})
    return sampling.generation(args.max_new_tokens)


def _turn(engine, conversation, text: str, args: argparse.Namespace) -> None:
    """One exchange; Ctrl-C stops the answer and keeps what was written."""
    from app.terminal_work import run_cancellable

    settings = _generation(engine, args)
    reply = run_cancellable(
        lambda cancel: engine.send(conversation, text, settings, args.think, _TerminalPrinter(), cancel))
    sys.stdout.write("\n")
    note = " (stopped)" if reply.stopped else ""
    dropped = f", {reply.dropped_messages} oldest messages left out to fit" if reply.dropped_messages else ""
    dropped += f", {reply.draft.describe()}" if reply.draft else ""
    print(f"[{reply.num_tokens} tokens, {reply.tokens_per_second:.1f} tok/s, first token {reply.ttft_ms:.0f} ms"
          f"{dropped}]{note}", file=sys.stderr)


def _ask(args: argparse.Namespace) -> int:
    from app.engine import Conversation

    engine = _engine(args)
    if args.docs:
        return _ask_docs(engine, args)
    if args.tools:
        return _ask_tools(engine, args)
    _turn(engine, Conversation(system=args.system), args.prompt, args)
    return 0


def _ask_docs(engine, args: argparse.Namespace) -> int:
    from app.docs.cli import ask_documents, format_sources

    answer = ask_documents(engine, args.prompt, args.system, _generation(engine, args),
                           args.think, _TerminalPrinter(), threading.Event())
    sys.stdout.write("\n")
    sources = format_sources(answer)
    if sources:
        print(sources)
    return 0


def _ask_tools(engine, args: argparse.Namespace) -> int:
    """`ask --tools`: the tool loop on the terminal; a server that fails is noted and the answer goes on."""
    from app.engine import Conversation
    from app.engine.conversation import Message
    from app.engine.think_parser import Delta
    from app.tools.mcp_client import McpHub
    from app.tools.mcp_config import McpConfigError, config_path, load_config, remember_always
    from app.tools.terminal import step_summary, terminal_approver
    from app.tools.tool_loop import RoundHooks, ToolCatalog, ToolLoop, run_with_tools

    try:
        config = load_config()
    except McpConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not config.active():
        print(f"note: no MCP server is configured in {config_path()}; answering without tools", file=sys.stderr)
    hub = McpHub(config)
    try:
        tools, errors = hub.all_tools()
        for message in errors.values():
            print(f"note: {message}", file=sys.stderr)
        catalog = ToolCatalog(tools)
        loop = ToolLoop(catalog, lambda c: hub.call(c.server, c.tool, c.arguments), terminal_approver(),
                        lambda server, tool: remember_always(config, server, tool))
        printer = _TerminalPrinter()

        def ended(_reply, _turn, steps) -> None:
            for step in steps:
                print(step_summary(step), file=sys.stderr)

        conversation = Conversation(system=args.system, tools=catalog.functions())
        conversation.messages.append(Message("user", args.prompt))
        reply = run_with_tools(engine, conversation, _generation(engine, args), args.think, loop,
                               RoundHooks(shown=lambda kind, text: printer(Delta(kind, text)), end=ended),
                               threading.Event())
    finally:
        hub.close()
    sys.stdout.write("\n")
    print(f"[{reply.num_tokens} tokens, {reply.tokens_per_second:.1f} tok/s]", file=sys.stderr)
    return 0


def _chat(args: argparse.Namespace) -> int:
    from app.engine import Conversation

    engine = _engine(args)
    conversation = Conversation(system=args.system)
    print(f"cpmdesk chat on {engine.name} ({engine.device}). End a message with /think or /no_think to switch "
          "reasoning; Ctrl-C stops an answer; an empty line or Ctrl-D quits.", file=sys.stderr)
    while True:
        try:
            text = input("> ").strip()
        except EOFError:
            break
        if not text:
            break
        _turn(engine, conversation, text, args)
    return 0


def _start_app() -> int:
    """Double-click entry: the window (it builds the default model itself), or the terminal chat when no window can
    open here (one line says what is missing)."""
    from app.display_check import display_problem

    problem = display_problem()
    if problem is None:
        try:
            from app.gui.main import run_gui  # the desktop window (PySide6)
        except ImportError as err:
            print(f"The desktop window cannot start ({err}); starting the terminal chat.", file=sys.stderr)
        else:
            return run_gui()
    else:
        print(f"No desktop window: {problem}. Starting the terminal chat.", file=sys.stderr)
    args = build_parser().parse_args(["chat", "--model", str(_model_folder(None))])
    return _chat(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        return _export(argv[1:])
    disable_telemetry()
    args = build_parser().parse_args(argv)
    # a server shows its startup and its requests (never their content) as it runs, as servers do
    setup_logging("cpmdesk", terminal_info=SERVER_LOGGERS if args.command == "serve" else ())
    log.info("cpmdesk %s", args.command or "(window)")
    from app.default_model import DefaultModelError
    from app.engine import EngineError, ModelFolderError
    from app.sqlite_schema import NewerSchemaError

    try:
        if args.command == "ask":
            return _ask(args)
        if args.command == "chat":
            return _chat(args)
        if args.command == "report":
            from app.docs.report.cli import run_report

            engine = _engine(args)
            return run_report(engine, args, _generation(engine, args))
        if args.command == "docs":
            from app.docs.cli import run_docs

            return run_docs(args)
        if args.command == "models":
            from app.models.cli import run_models

            return run_models(args)
        if args.command == "serve":
            from app.server.cli import run_serve

            return run_serve(args)
        if args.command == "prepare":
            print(_model_folder(None))
            return 0
        return _start_app()
    except (ModelFolderError, DefaultModelError, EngineError, NewerSchemaError) as err:
        log.warning("cpmdesk %s failed: %s", args.command, err, exc_info=True)
        print(f"error: {err}", file=sys.stderr)
        return 2


def _export(argv: list[str]) -> int:
    """`cpmdesk export SOURCE OUT [options]` is `cpmdesk-export`: the bundle's way to run the exporter (it has no
    separate executable). Dispatched before argparse so the exporter keeps its own options and help."""
    from export.cli import main as export_main

    return export_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
