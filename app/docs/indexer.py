"""Indexing: queue files and folders, then extract, chunk, embed and store each queued file, one transaction per
file. The queue lives in the database, so a crash or a kill loses at most the file being indexed and the next
run picks up where it stopped. Unchanged files (same size and time, or same content hash) cost no work."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.docs.chunker import chunk_blocks
from app.docs.embedder import Embedder
from app.docs.extract import extract
from app.docs.formats import MAX_FILE_BYTES, DocumentError, kind_of
from app.docs.store import DocStore, FileRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """Where a run stands: files done of total, the file at hand, totals so far."""

    done: int
    total: int
    path: str
    pages: int
    chunks: int


@dataclass
class IndexReport:
    """What one run did."""

    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    missing: list[str] = field(default_factory=list)  # added paths that do not exist
    cancelled: bool = False
    pages: int = 0
    chunks: int = 0
    seconds: float = 0.0


def discover(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files to index from files and folders (folders: every supported file inside, recursively, hidden ones left
    out); and the paths that do not exist."""
    found: list[Path] = []
    missing: list[str] = []
    for path in paths:
        path = path.expanduser()
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(root) / n for n in sorted(names) if not n.startswith(".") and kind_of(n)]
        elif path.is_file():
            found.append(path)
        else:
            missing.append(str(path))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique, missing


def sha256_of(path: Path) -> str:
    """Content hash of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Indexer:
    """Indexes queued files into a DocStore with an Embedder (created on first need by `embedder_factory`)."""

    def __init__(self, store: DocStore, embedder_factory: Callable[[], Embedder],
                 max_bytes: int = MAX_FILE_BYTES) -> None:
        self.store = store
        self._embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self.max_bytes = max_bytes

    @property
    def embedder(self) -> Embedder:
        """The embedder (loaded, and built on first use)."""
        if self._embedder is None:
            self._embedder = self._embedder_factory()
        return self._embedder

    def run(self, paths: list[Path] | None = None, on_progress: Callable[[Progress], None] | None = None,
            cancel: threading.Event | None = None) -> IndexReport:
        """Queue `paths` (if any), then index everything queued, including work left by an earlier run."""
        started = time.monotonic()
        report = IndexReport()
        if paths:
            files, report.missing = discover(paths)
            known = {f.path: f for f in self.store.files()}
            report.unchanged = [str(f) for f in files if str(f) in known and not known[str(f)].pending
                                and self._same_stat(known[str(f)], f) and self._current(known[str(f)])]
            for path in report.unchanged:
                row = known[path]
                if row.status == "skipped":
                    report.skipped.append((path, f"{row.message} (unchanged since it was skipped)"))
            self.store.queue([str(f) for f in files if str(f) not in report.unchanged])
        todo = self.store.pending()
        for done, row in enumerate(todo):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            if on_progress is not None:
                on_progress(Progress(done, len(todo), row.path, report.pages, report.chunks))
            self._index_one(row, report)
        self.store.erase_replaced()  # the old text of changed files leaves the database files
        if on_progress is not None and not report.cancelled:
            on_progress(Progress(len(todo), len(todo), "", report.pages, report.chunks))
        report.seconds = time.monotonic() - started
        return report

    def _same_stat(self, row: FileRow, path: Path) -> bool:
        try:
            stat = path.stat()
        except OSError:
            return False
        return row.size == stat.st_size and row.mtime_ns == stat.st_mtime_ns and row.status != "new"

    def _current(self, row: FileRow) -> bool:
        """Indexed with the embedder in use (a new embedding model means re-indexing)."""
        return row.status == "skipped" or self._embedder is None or row.embedder == self._embedder.fingerprint

    def _index_one(self, row: FileRow, report: IndexReport) -> None:
        path = Path(row.path)
        try:
            stat = path.stat()
        except OSError as err:
            self.store.mark_skipped(row.id, -1, -1, "", f"cannot read the file ({err.strerror or err})")
            report.skipped.append((row.path, f"cannot read the file ({err.strerror or err})"))
            return
        size, mtime = stat.st_size, stat.st_mtime_ns
        if size > self.max_bytes:  # no hashing or reading: refuse at once
            message = (f"{size / 2**20:.0f} MB is over the {self.max_bytes / 2**20:.0f} MB limit for one document; "
                       "split it into smaller files")
            self.store.mark_skipped(row.id, size, mtime, "", message)
            report.skipped.append((row.path, message))
            return
        sha = sha256_of(path)
        if row.status != "new" and sha == row.sha256 and (row.status == "skipped" or
                                                          row.embedder == self.embedder.fingerprint):
            self.store.mark_unchanged(row.id, size, mtime)
            report.unchanged.append(row.path)
            if row.status == "skipped":
                report.skipped.append((row.path, f"{row.message} (unchanged since it was skipped)"))
            return
        try:
            extracted = extract(path, self.max_bytes)
        except DocumentError as err:
            log.info("skipped %s: %s", path, err)
            self.store.mark_skipped(row.id, size, mtime, sha, str(err))
            report.skipped.append((row.path, str(err)))
            return
        except Exception as err:  # a parser bug on a strange file must not stop the batch
            log.warning("reading %s failed; skipped", path, exc_info=True)
            message = f"could not read the file ({type(err).__name__}: {err})"
            self.store.mark_skipped(row.id, size, mtime, sha, message)
            report.skipped.append((row.path, message))
            return
        chunks = chunk_blocks(extracted.blocks)
        title = path.stem.replace("_", " ")
        vectors = self.embedder.embed([f"{title}. {c.heading}\n{c.text}" if c.heading else f"{title}.\n{c.text}"
                                       for c in chunks])
        self.store.replace_chunks(row.id, size, mtime, sha, extracted.pages, chunks, vectors,
                                  self.embedder.fingerprint)
        report.indexed.append(row.path)
        report.pages += extracted.pages
        report.chunks += len(chunks)
