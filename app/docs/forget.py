"""Removing documents: out of the index, and their passage text out of the answers that quoted them."""

from __future__ import annotations

import logging
from pathlib import Path

from app.docs.store import DocStore
from app.store import ChatStore

log = logging.getLogger(__name__)


def remove_documents(docs: DocStore, chats: ChatStore | None, paths: list[str]) -> list[str]:
    """Remove `paths` (absolute) from the index and the copies of their passages from the chats' stored sources
    (also for paths no longer indexed: an earlier removal may have left copies). Returns the paths that were
    indexed. Neither database keeps the removed text (app/secure_sqlite.py)."""
    removed = [path for path in paths if docs.remove(path)]
    if chats is not None and paths:
        changed = chats.forget_sources(set(paths))
        log.info("removed %d document(s); %d answer(s) no longer keep their passages", len(removed), changed)
    return removed


def open_chats(database: Path) -> ChatStore | None:
    """The chat database when there is one (a command-line removal must not create it), opened as a second
    process: a window's streaming answer is left as it is."""
    return ChatStore(database, mark_interrupted=False) if database.exists() else None
