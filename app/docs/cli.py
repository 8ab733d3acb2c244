"""`cpmdesk docs add PATH…`, `cpmdesk docs list`, `cpmdesk docs remove PATH…`, and `cpmdesk ask --docs`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from app.docs.source_marks import NOT_SUPPORTED, conflict_lines, marks, title, unsupported_note
from app.paths import data_dir

DOCS_DB = "docs.sqlite3"


def docs_db_path() -> Path:
    """The document index, beside the chats in the data folder."""
    return data_dir() / DOCS_DB


def add_docs_parser(sub) -> None:
    """The `docs` subcommand and its actions."""
    docs = sub.add_parser("docs", help="your documents: add files or folders to the index, list them")
    actions = docs.add_subparsers(dest="docs_command", required=True)
    add = actions.add_parser("add", help="index files and folders (PDF, TXT, MD, DOCX, HTML); resumes earlier work")
    add.add_argument("paths", nargs="*", type=Path, help="files or folders (none: finish what an earlier run left)")
    actions.add_parser("list", help="the indexed files and why any were skipped")
    remove = actions.add_parser("remove", help="forget files (their passages leave the index)")
    remove.add_argument("paths", nargs="+", type=Path)


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def run_docs(args: argparse.Namespace) -> int:
    """Carry out a `docs` action; returns the exit code."""
    from app.docs.embedder import load_embedder
    from app.docs.indexer import Indexer
    from app.docs.store import DocStore

    store = DocStore(docs_db_path())
    try:
        if args.docs_command == "list":
            return _list(store)
        if args.docs_command == "remove":
            return _remove(store, args.paths)
        indexer = Indexer(store, lambda: load_embedder(log=_log))
        cancel = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())  # Ctrl-C: stop after the current file
        try:
            report = indexer.run(args.paths, lambda p: _progress(p), cancel)
        finally:
            signal.signal(signal.SIGINT, previous)
        _log("")
        for path in report.missing:
            print(f"missing: {path} (no such file or folder)")
        for path, reason in report.skipped:
            print(f"skipped: {path}: {reason}")
        print(f"{len(report.indexed)} indexed ({report.pages} pages, {report.chunks} passages), "
              f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped in {report.seconds:.1f} s"
              + (" - cancelled; run `cpmdesk docs add` to finish" if report.cancelled else ""))
        return 130 if report.cancelled else 0
    finally:
        store.close()


def _remove(store, paths: list[Path]) -> int:
    """Remove files from the index and their passages from the chats' stored sources."""
    from app.docs.forget import open_chats, remove_documents

    wanted = [str(path.expanduser().resolve()) for path in paths]
    chats = open_chats(data_dir() / "chats.sqlite3")
    try:
        removed = set(remove_documents(store, chats, wanted))
    finally:
        if chats is not None:
            chats.close()
    for path, absolute in zip(paths, wanted, strict=True):
        print(f"{'removed' if absolute in removed else 'not in the index'}: {path}")
    return 0


def _progress(progress) -> None:
    if progress.total and progress.path:
        sys.stderr.write(f"\r[{progress.done + 1}/{progress.total}] {Path(progress.path).name[:60]:<60}")
        sys.stderr.flush()


def _list(store) -> int:
    files = store.files()
    if not files:
        print("No documents yet: cpmdesk docs add PATH…")
        return 0
    for row in files:
        state = "pending" if row.pending else row.status
        pages = f"{row.pages} pages, " if row.path.lower().endswith(".pdf") else ""
        detail = f"{pages}{row.chunks} passages" if row.status == "indexed" else row.message
        print(f"{state:8} {row.path}  ({detail})" if detail else f"{state:8} {row.path}")
    return 0


def ask_documents(engine, question: str, system: str, settings, think, on_delta, cancel) -> tuple:
    """`cpmdesk ask --docs`: the answer from the documents, and the sources to print under it."""
    from app.docs.answer import answer_from_documents
    from app.docs.embedder import load_embedder
    from app.docs.store import DocStore
    from app.engine import Conversation, Message

    store = DocStore(docs_db_path())
    try:
        if store.chunk_count() == 0:
            raise SystemExit("error: no documents indexed yet; add some with: cpmdesk docs add PATH…")
        embedder = load_embedder(log=_log)
        conversation = Conversation(system, [Message("user", question)])
        return answer_from_documents(engine, store, embedder, conversation, settings, think, on_delta, cancel)
    finally:
        store.close()


def format_sources(answer) -> str:
    """The sources under an answer, exactly as the prompt held them, each with its marks (app/docs/citations.py),
    after a line for each number of the answer that a source contradicts."""
    if not answer.passages:
        return ""
    sources = answer.sources_metadata()
    lines = [*([answer.note] if answer.note else []),
             *(f"{NOT_SUPPORTED}: {line}" for line in conflict_lines(sources)), f"{title(sources)}:"]
    for entry in sources:
        how = f" ({', '.join(marks(entry))})" if marks(entry) else ""
        place = Path(entry["path"]).name + (f", page {entry['page']}" if entry["page"] is not None else "")
        lines.append(f"[{entry['n']}] {place}{how}: {entry['text'][:100]}…")
    note = unsupported_note(sources)
    return "\n".join([*lines, *([note] if note else [])])
