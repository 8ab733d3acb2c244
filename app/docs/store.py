"""DocStore: files, chunks, vectors and an FTS5 keyword index in SQLite (WAL) — `docs.sqlite3` in the data folder.

Each file is written in one transaction (its old chunks out, its new chunks and fingerprint in), so a crash or a
kill leaves every file either fully indexed or untouched, and a chunk can never be stored twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.docs.blocks import Chunk
from app.docs.schema import migrate
from app.secure_sqlite import erase_freed, secure_connection


@dataclass(frozen=True)
class FileRow:
    """A file the user added, and where its indexing stands."""

    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str
    status: str  # new | indexed | skipped
    pending: bool
    message: str
    pages: int
    chunks: int
    embedder: str


@dataclass(frozen=True)
class ChunkRow:
    """A stored chunk with its file."""

    id: int
    path: str
    page: int | None
    heading: str
    text: str


class DocStore:
    """Thread-safe access to the document index (one connection, serialized by a lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._lock:
            migrate(self._db)  # first: an index from a newer cpmdesk is refused untouched
            secure_connection(self._db, path.name)
        self._matrix: tuple[int, np.ndarray, np.ndarray] | None = None
        self._replaced = False  # a re-indexed or newly skipped file dropped old chunks since the last erase

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # files ---------------------------------------------------------------------------------------------

    def files(self) -> list[FileRow]:
        """Every added file, in the order they were added."""
        rows = self._all("SELECT id, path, size, mtime_ns, sha256, status, pending, message, pages, chunks, embedder "
                         "FROM files ORDER BY id")
        return [FileRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9], r[10]) for r in rows]

    def file(self, path: str) -> FileRow | None:
        """The row of one file, by its absolute path."""
        return next((f for f in self.files() if f.path == path), None)

    def queue(self, paths: list[str]) -> None:
        """Mark files for (re-)indexing, adding rows for new ones (one transaction)."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            for path in paths:
                self._db.execute("INSERT INTO files (path, updated) VALUES (?, ?) "
                                 "ON CONFLICT(path) DO UPDATE SET pending = 1", (path, time.time()))

    def pending(self) -> list[FileRow]:
        """Files still to index, in the order they were queued."""
        return [f for f in self.files() if f.pending]

    def mark_unchanged(self, file_id: int, size: int, mtime_ns: int) -> None:
        """The content did not change (same hash): remember the new size and time, nothing else to do."""
        with self._lock:
            self._db.execute("UPDATE files SET size = ?, mtime_ns = ?, pending = 0 WHERE id = ?",
                             (size, mtime_ns, file_id))

    def mark_skipped(self, file_id: int, size: int, mtime_ns: int, sha256: str, message: str) -> None:
        """The file cannot be indexed: drop its old chunks and keep the reason."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._replaced |= self._db.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,)).rowcount > 0
            self._db.execute("UPDATE files SET size = ?, mtime_ns = ?, sha256 = ?, status = 'skipped', pending = 0, "
                             "message = ?, pages = 0, chunks = 0, updated = ? WHERE id = ?",
                             (size, mtime_ns, sha256, message, time.time(), file_id))
            self._bump()

    def replace_chunks(self, file_id: int, size: int, mtime_ns: int, sha256: str, pages: int, chunks: list[Chunk],
                       vectors: np.ndarray, embedder: str) -> None:
        """A file's new chunks and vectors, replacing its old ones, and its fingerprint: all or nothing."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._replaced |= self._db.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,)).rowcount > 0
            self._db.executemany(
                "INSERT INTO chunks (file_id, ord, page, heading, text, vector) VALUES (?, ?, ?, ?, ?, ?)",
                [(file_id, c.ord, c.page, c.heading, c.text, vectors[i].tobytes()) for i, c in enumerate(chunks)])
            self._db.execute("UPDATE files SET size = ?, mtime_ns = ?, sha256 = ?, status = 'indexed', pending = 0, "
                             "message = '', pages = ?, chunks = ?, embedder = ?, updated = ? WHERE id = ?",
                             (size, mtime_ns, sha256, pages, len(chunks), embedder, time.time(), file_id))
            self._bump()

    def remove(self, path: str) -> bool:
        """Forget a file and its chunks, leaving none of their text in the database files; True when it was there."""
        with self._lock:
            with self._db:
                self._db.execute("BEGIN")
                deleted = self._db.execute("DELETE FROM files WHERE path = ?", (path,)).rowcount
                self._bump()
            if deleted:
                self.erase_deleted()
        return bool(deleted)

    def erase_replaced(self) -> bool:
        """After indexing: erase the old chunks of files that were re-indexed or skipped (erase_deleted), if any."""
        if not self._replaced:
            return False
        self.erase_deleted()
        return True

    def erase_deleted(self) -> None:
        """Make deleted passages unrecoverable: the keyword index merged into one segment (FTS5 keeps deleted
        words in older segments until a merge), then freed pages and the write-ahead log erased."""
        with self._lock:
            with self._db:
                self._db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
            erase_freed(self._db, self.path.name)
            self._replaced = False

    def _bump(self) -> None:
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    # chunks --------------------------------------------------------------------------------------------

    def generation(self) -> int:
        """Changes with every committed change to the chunks (from any process)."""
        return int(self._all("SELECT value FROM meta WHERE key = 'generation'")[0][0])

    def chunk_count(self) -> int:
        """How many chunks the index holds."""
        return int(self._all("SELECT COUNT(*) FROM chunks")[0][0])

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, vector matrix), cached until the index changes."""
        generation = self.generation()
        if self._matrix is None or self._matrix[0] != generation:
            rows = self._all("SELECT id, vector FROM chunks ORDER BY id")
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                      if rows else np.zeros((0, 0), dtype=np.float32))
            self._matrix = (generation, ids, matrix)
        return self._matrix[1], self._matrix[2]

    def keyword_search(self, match: str, limit: int) -> list[int]:
        """Chunk ids for an FTS5 MATCH expression, best BM25 first."""
        if not match:
            return []
        try:
            rows = self._all("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) "
                             "LIMIT ?", (match, limit))
        except sqlite3.OperationalError:  # a query FTS5 cannot parse: keyword search simply finds nothing
            return []
        return [r[0] for r in rows]

    def document_chunks(self, path: str) -> list[Chunk]:
        """A file's chunks in document order."""
        rows = self._all("SELECT c.ord, c.text, c.page, c.heading FROM chunks c JOIN files f ON f.id = c.file_id "
                         "WHERE f.path = ? ORDER BY c.ord", (path,))
        return [Chunk(*r) for r in rows]

    def chunks_by_id(self, ids: list[int]) -> dict[int, ChunkRow]:
        """Chunks with their file paths."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._all(f"SELECT c.id, f.path, c.page, c.heading, c.text FROM chunks c JOIN files f "
                         f"ON f.id = c.file_id WHERE c.id IN ({marks})", tuple(ids))
        return {r[0]: ChunkRow(*r) for r in rows}
