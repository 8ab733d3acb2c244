"""Open the chat database; a damaged one is kept aside as a backup and a fresh one started, with a notice."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from app.store.chat_store import ChatStore


def _damage(path: Path) -> str | None:
    """Why the file cannot be used as a chat database, or None when it is sound (or absent)."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(path)
        try:
            rows = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        return str(err)
    return None if rows == ["ok"] else "; ".join(rows[:3])


def open_chat_store(path: Path) -> tuple[ChatStore, str | None]:
    """The store at `path`, and a notice for the user when a damaged database had to be replaced."""
    problem = _damage(path)
    if problem is None:
        try:
            return ChatStore(path), None
        except sqlite3.DatabaseError as err:
            problem = str(err)
    backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{backup}{suffix}"))
    notice = (f"The chat history could not be read ({problem}), so cpmdesk started a new one. The damaged file is "
              f"kept at {backup}: a recovery tool such as `sqlite3 … .recover` may get chats back from it.")
    return ChatStore(path), notice
