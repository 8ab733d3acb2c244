"""cpmdesk's log files: `<data folder>/logs/<program>.log`, rotating at 1 MB with 3 older files kept, UTF-8.

Every entry point (the window, `cpmdesk`, `cpmdesk-export`) calls `setup_logging` first. Tracebacks go to the file;
the terminal gets them only with CPMDESK_DEBUG=1. Prompts and answers are written only with CPMDESK_LOG_CONTENT=1
(`content_logging()`). One file per program, so the window and an export it runs never rotate each other's file.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path

from export.data_folder import data_dir

MAX_BYTES = 1_000_000
BACKUP_COUNT = 3
OWN_LOGGERS = ("app", "export", "ov_ops")  # cpmdesk's packages: INFO and up reach the file
_FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
_MARK = "_cpmdesk_handler"
log = logging.getLogger(__name__)


def log_dir() -> Path:
    """The folder of the log files (in the data folder; not created here)."""
    return data_dir() / "logs"


def debug_enabled() -> bool:
    """CPMDESK_DEBUG set (and not 0): tracebacks on the terminal too."""
    return os.environ.get("CPMDESK_DEBUG", "") not in ("", "0")


def content_logging() -> bool:
    """CPMDESK_LOG_CONTENT=1: the user allowed prompts and answers in the log."""
    return os.environ.get("CPMDESK_LOG_CONTENT", "") == "1"


class _OneLine(logging.Formatter):
    """The terminal's form of a record: its message alone, never a traceback (that is in the file)."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


class _ForTerminal(logging.Filter):
    """cpmdesk's own warnings without a traceback (a record with one is for the file, and the code that caught the
    exception tells the user itself; libraries with their own handlers, huggingface_hub, would print twice), and
    the INFO lines of the loggers a program shows as it runs (a server's requests)."""

    def __init__(self, info_loggers: tuple[str, ...]) -> None:
        super().__init__()
        self.info_loggers = info_loggers

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is not None:
            return False
        if any(record.name == name or record.name.startswith(name + ".") for name in self.info_loggers):
            return True
        return record.levelno >= logging.WARNING and record.name.split(".", 1)[0] in OWN_LOGGERS


def setup_logging(program: str, terminal: bool = True, max_bytes: int = MAX_BYTES,
                  backup_count: int = BACKUP_COUNT, terminal_info: tuple[str, ...] = ()) -> Path | None:
    """Send logging to `<log folder>/<program>.log` (rotating) and, with `terminal`, cpmdesk's own warnings that
    carry no traceback to stderr, one line each, plus the INFO lines of the loggers in `terminal_info` (a server's
    startup and requests); with CPMDESK_DEBUG everything goes to stderr with tracebacks. A second call replaces the
    first's handlers. Returns the log file, or None when it cannot be opened (said on stderr)."""
    stop_logging()
    root = logging.getLogger()
    debug = debug_enabled()
    for name in OWN_LOGGERS + terminal_info:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.INFO)
    path = None
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        file_handler = RotatingFileHandler(folder / f"{program}.log", maxBytes=max_bytes, backupCount=backup_count,
                                           encoding="utf-8")
    except OSError as err:
        print(f"warning: cpmdesk cannot write its log file ({err}); continuing without one", file=sys.stderr)
    else:
        file_handler.setFormatter(logging.Formatter(_FILE_FORMAT))
        _add(root, file_handler, logging.DEBUG)
        path = Path(file_handler.baseFilename)
    if debug:
        _add(root, logging.StreamHandler(sys.stderr), logging.DEBUG).setFormatter(logging.Formatter(_FILE_FORMAT))
    elif terminal:
        stream = _add(root, logging.StreamHandler(sys.stderr), logging.INFO if terminal_info else logging.WARNING)
        stream.setFormatter(_OneLine())
        stream.addFilter(_ForTerminal(terminal_info))
    _log_uncaught()
    log.info("%s started (pid %d, Python %s, %s)", program, os.getpid(), sys.version.split()[0], sys.platform)
    return path


def stop_logging() -> None:
    """Remove and close the handlers `setup_logging` added (the log file is flushed and released)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()


def release_log_files() -> None:
    """Close this process's open log files; each opens again (a new file) at its next record. Call before deleting
    them, or the process would go on writing into a deleted file."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, _MARK, False) and isinstance(handler, logging.FileHandler):
            with handler.lock or threading.RLock():
                if handler.stream is not None:
                    handler.stream.close()
                    handler.stream = None


def _add(root: logging.Logger, handler: logging.Handler, level: int) -> logging.Handler:
    setattr(handler, _MARK, True)
    handler.setLevel(level)
    root.addHandler(handler)
    return handler


def _log_uncaught() -> None:
    """Uncaught exceptions (main thread and others) are logged with their traceback, then handled as before."""
    if getattr(sys.excepthook, _MARK, False):
        return
    previous_hook, previous_thread_hook = sys.excepthook, threading.excepthook

    def hook(kind, value, trace) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            log.critical("uncaught exception", exc_info=(kind, value, trace))
        previous_hook(kind, value, trace)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit:
            log.critical("uncaught exception in thread %s", getattr(args.thread, "name", "?"),
                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        previous_thread_hook(args)

    setattr(hook, _MARK, True)
    sys.excepthook, threading.excepthook = hook, thread_hook
