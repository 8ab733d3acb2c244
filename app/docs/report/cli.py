"""`cpmdesk report "TOPIC" [--docs PATH…] [--out report.md|.html|.pdf] [--resume]`: a report from the indexed
documents, progress on stderr, Ctrl-C stops after the current step and leaves a readable partial report."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from app.paths import data_dir

log = logging.getLogger(__name__)


def add_report_parser(sub) -> argparse.ArgumentParser:
    """The `report` subcommand (the engine options are added by app/cli.py, as for `ask`)."""
    report = sub.add_parser("report", help="write a report with cited sources from your documents")
    report.add_argument("topic", nargs="?", default=None, help="what the report is about (with --resume and no "
                        "topic: the most recent unfinished report)")
    report.add_argument("--docs", nargs="+", type=Path, default=None, metavar="PATH",
                        help="only these files or folders (indexed first when they are not yet)")
    report.add_argument("--out", type=Path, default=None,
                        help="write the report here: .md, .html or .pdf (default: Markdown on stdout)")
    report.add_argument("--resume", action="store_true",
                        help="finish an earlier, unfinished run of this report (finished sections are kept)")
    report.add_argument("--sections", type=int, default=4, help="sections to plan (default 4)")
    return report


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _latest_unfinished() -> dict | None:
    states = sorted((data_dir() / "reports").glob("*/state.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in states:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:  # an unreadable report is passed over, not resumed
            log.warning("skipping report state %s: %s", path, err)
            continue
        if data.get("status") != "done":
            return data
    return None


def _show(progress) -> None:
    where = f"[{progress.done + (progress.stage == 'section')}/{progress.total}]" if progress.total else ""
    if progress.stage == "outline":
        _log("planning the outline…")
    elif progress.stage == "section":
        _log(f"{where} {progress.title}: writing…")
    elif progress.stage == "written":
        _log(f"{where} {progress.title}: written in {progress.seconds:.1f} s")
    elif progress.stage == "skipped":
        _log(f"[{progress.total and progress.done}/{progress.total}] {progress.title}: already written (kept)")


def run_report(engine, args: argparse.Namespace, settings) -> int:
    """Carry out `cpmdesk report`; returns the exit code (130 when stopped with Ctrl-C)."""
    from app.docs.cli import docs_db_path
    from app.docs.embedder import EmbedderError
    from app.docs.store import DocStore

    topic, docs = args.topic, [str(p.expanduser().resolve()) for p in args.docs or []]
    if topic is None:
        earlier = _latest_unfinished() if args.resume else None
        if earlier is None:
            _log("error: give a topic (or --resume with an unfinished report to finish)")
            return 2
        topic, docs = earlier["topic"], earlier["docs"]
    store = DocStore(docs_db_path())
    try:
        return _write(engine, store, args, settings, topic, docs)
    except (EmbedderError, ValueError) as err:  # no embedding model; a damaged state file: one line, logged
        log.warning("cpmdesk report failed: %s", err, exc_info=True)
        _log(f"error: {err}")
        return 2
    finally:
        store.close()


def _write(engine, store, args: argparse.Namespace, settings, topic: str, docs: list[str]) -> int:
    """Index `docs` if needed, run the job, write the report out; the exit code."""
    from app.docs.embedder import load_embedder
    from app.docs.indexer import Indexer
    from app.docs.report.export import export, to_markdown
    from app.docs.report.job import ReportJob

    if not docs and store.chunk_count() == 0:
        _log("error: no documents indexed yet; add some with: cpmdesk docs add PATH… (or give --docs PATH…)")
        return 2
    embedder = load_embedder(log=_log)
    if docs:
        report = Indexer(store, lambda: embedder).run([Path(p) for p in docs])
        for path in report.missing:
            _log(f"missing: {path}")
    if store.chunk_count() == 0:
        _log("error: none of the documents given could be indexed")
        return 2
    job = ReportJob(engine, store, embedder, topic, data_dir(), docs, settings, args.sections)
    earlier = job.existing()
    if args.resume and earlier is not None and earlier.status != "done":
        _log(f"resuming: {earlier.done} of {len(earlier.outline)} sections already written")
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        state = job.run(_show, cancel, fresh=not args.resume)
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.out is not None:
        export(state, args.out)
        _log(f"report written to {args.out}")
    else:
        sys.stdout.write(to_markdown(state))
    cited = sum(s.cited for s in state.sections if s)
    _log(f"{state.done} of {len(state.outline)} sections, {len(state.references)} references, {cited} cited "
         f"sentences; state in {job.folder}")
    if state.status != "done":
        _log("stopped: run the same command with --resume to finish it")
        return 130
    return 0
