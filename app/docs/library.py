"""DocsLibrary: one document index and its embedder, shared by the window's workers (the embedder is loaded, and
built on first use, only when something needs it)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from app.docs.embedder import Embedder, load_embedder
from app.docs.forget import remove_documents
from app.docs.indexer import Indexer
from app.docs.store import DocStore
from app.store import ChatStore


class DocsLibrary:
    """The document index at `db_path` plus a lazily loaded, shared embedder."""

    def __init__(self, db_path: Path, device: str = "CPU", log: Callable[[str], None] = print,
                 chats: ChatStore | None = None) -> None:
        self.store = DocStore(db_path)
        self.chats = chats  # whose answers' stored sources lose a removed document's passages
        self.device = device
        self._log = log
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    def embedder(self) -> Embedder:
        """The embedder (blocks while the model is built on first use: call it from a worker)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.device, self._log)
            return self._embedder

    def indexer(self) -> Indexer:
        """An indexer over this library."""
        return Indexer(self.store, self.embedder)

    def remove(self, paths: list[str]) -> list[str]:
        """Remove documents from the index and their passages from the chats' stored sources (docs/forget.py)."""
        return remove_documents(self.store, self.chats, paths)

    def close(self) -> None:
        """Close the database."""
        self.store.close()
