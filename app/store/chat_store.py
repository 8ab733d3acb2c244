"""ChatStore: chats and messages in SQLite. Answers are written while they stream, so a kill keeps them."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.engine.conversation import Conversation, Message
from app.secure_sqlite import erase_freed, secure_connection, vacuum
from app.store.schema import migrate
from app.store.sources import scrub_sources


class StoreError(RuntimeError):
    """The chat database could not be written (disk full, read-only, I/O error); the message says what to do."""


@dataclass(frozen=True)
class ChatSummary:
    """A row of the chat list."""

    id: int
    title: str
    updated: float


@dataclass(frozen=True)
class StoredMessage:
    """A message as stored, with its status (done, streaming, stopped, interrupted, failed)."""

    id: int
    role: str
    content: str
    reasoning: str
    status: str
    metrics: dict
    tool_calls: list[dict] | None = None  # assistant: the calls it made (OpenAI form)
    tool_call_id: str | None = None  # tool: the call this result answers


class ChatStore:
    """Thread-safe access to the chat database (one connection, serialized by a lock)."""

    def __init__(self, path: Path, mark_interrupted: bool = True) -> None:
        """Open (or create) the database; `mark_interrupted=False` for a second process (a command-line tool) that
        must not mark the window's streaming answer as interrupted."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: committed data survives a process kill
        self._db.execute("PRAGMA foreign_keys=ON")
        migrate(self._db)  # first: a database from a newer cpmdesk is refused untouched
        secure_connection(self._db, path.name)
        self.interrupted_on_open = self._mark_interrupted() if mark_interrupted else 0

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._db.execute(sql, args)
            except sqlite3.OperationalError as err:
                raise StoreError(_explain(err, self.path)) from err

    def _erasing(self, sql: str, args: tuple = ()) -> None:
        """A deletion, then the freed pages and the write-ahead log erased (app/secure_sqlite.py)."""
        with self._lock:
            try:
                self._db.execute(sql, args)
                erase_freed(self._db, self.path.name)
            except sqlite3.OperationalError as err:
                raise StoreError(_explain(err, self.path)) from err

    def _mark_interrupted(self) -> int:
        """Answers still 'streaming' were cut off by a crash or kill: mark them so the UI can say so."""
        return self._run("UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'").rowcount

    # chats ---------------------------------------------------------------------------------------------

    def create_chat(self, title: str = "New chat", system_prompt: str = "", model: str = "") -> int:
        """A new, empty chat; returns its id."""
        now = time.time()
        return int(self._run("INSERT INTO chats (title, system_prompt, model, created, updated) VALUES (?, ?, ?, ?, ?)",
                             (title, system_prompt, model, now, now)).lastrowid)

    def rename_chat(self, chat_id: int, title: str) -> None:
        """Change a chat's title."""
        self._run("UPDATE chats SET title = ?, updated = ? WHERE id = ?", (title, time.time(), chat_id))

    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat and its messages, leaving none of their text in the database files."""
        self._erasing("DELETE FROM chats WHERE id = ?", (chat_id,))

    def list_chats(self, search: str = "") -> list[ChatSummary]:
        """Chats, most recently updated first; `search` matches titles and message text."""
        if search:
            pattern = f"%{search}%"
            rows = self._run(
                "SELECT id, title, updated FROM chats WHERE title LIKE ? OR id IN "
                "(SELECT chat_id FROM messages WHERE content LIKE ?) ORDER BY updated DESC", (pattern, pattern))
        else:
            rows = self._run("SELECT id, title, updated FROM chats ORDER BY updated DESC")
        return [ChatSummary(*row) for row in rows.fetchall()]

    # settings -------------------------------------------------------------------------------------------

    def get_setting(self, key: str, default=None):
        """A stored setting (JSON value), or `default`."""
        row = self._run("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value) -> None:
        """Store a setting (any JSON value)."""
        self._run(_SET_SETTING, (key, json.dumps(value)))

    def set_settings(self, values: dict) -> None:
        """Store several settings in one transaction; a value they replace (an old system prompt) is erased."""
        with self._lock:
            try:
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.executemany(_SET_SETTING, [(k, json.dumps(v)) for k, v in values.items()])
                erase_freed(self._db, self.path.name)
            except sqlite3.OperationalError as err:
                raise StoreError(_explain(err, self.path)) from err

    def count_settings(self) -> int:
        """How many settings are stored."""
        return int(self._run("SELECT COUNT(*) FROM settings").fetchone()[0])

    def delete_all_settings(self) -> None:
        """Forget every setting, leaving none of their values in the database files."""
        self._erasing("DELETE FROM settings")

    def delete_all_chats(self) -> None:
        """Delete every chat and message, then rewrite the file so no deleted text remains on disk."""
        with self._lock:
            try:
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.execute("DELETE FROM chats")
                    self._db.execute("DELETE FROM messages")
                vacuum(self._db, self.path.name)
            except sqlite3.OperationalError as err:
                raise StoreError(_explain(err, self.path)) from err

    def forget_sources(self, paths: set[str] | None = None) -> int:
        """Drop the passage text copied into answers' stored sources: of the documents in `paths`, or of every
        document (None: the index was deleted). Returns how many answers changed."""
        rows = self._run("SELECT id, metrics FROM messages WHERE metrics LIKE '%\"sources\"%'").fetchall()
        changed = [(json.dumps(metrics), message_id) for message_id, metrics in
                   ((r[0], scrub_sources(json.loads(r[1]), paths)) for r in rows) if metrics is not None]
        if changed:
            with self._lock:
                try:
                    with self._db:
                        self._db.execute("BEGIN")
                        self._db.executemany("UPDATE messages SET metrics = ? WHERE id = ?", changed)
                    erase_freed(self._db, self.path.name)
                except sqlite3.OperationalError as err:
                    raise StoreError(_explain(err, self.path)) from err
        return len(changed)

    # messages ------------------------------------------------------------------------------------------

    def add_message(self, chat_id: int, role: str, content: str, reasoning: str = "", status: str = "done") -> int:
        """Append a message; returns its id."""
        now = time.time()
        cursor = self._run("INSERT INTO messages (chat_id, role, content, reasoning, status, created, updated) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", (chat_id, role, content, reasoning, status, now, now))
        self._run("UPDATE chats SET updated = ? WHERE id = ?", (now, chat_id))
        return int(cursor.lastrowid)

    def start_answer(self, chat_id: int) -> int:
        """An empty assistant message in 'streaming' state, written before the first token."""
        return self.add_message(chat_id, "assistant", "", status="streaming")

    def update_answer(self, message_id: int, content: str, reasoning: str) -> None:
        """Persist the answer so far (each call is its own committed transaction)."""
        self._run("UPDATE messages SET content = ?, reasoning = ?, updated = ? WHERE id = ?",
                  (content, reasoning, time.time(), message_id))

    def finish_answer(self, message_id: int, content: str, reasoning: str, status: str = "done",
                      metrics: dict | None = None) -> None:
        """The final text, status and metrics of an answer."""
        self._run("UPDATE messages SET content = ?, reasoning = ?, status = ?, metrics = ?, updated = ? WHERE id = ?",
                  (content, reasoning, status, json.dumps(metrics or {}), time.time(), message_id))

    def set_tool_calls(self, message_id: int, calls: list[dict]) -> None:
        """The tool calls an answer made (OpenAI form: id, type, function with name and arguments)."""
        self._run("UPDATE messages SET tool_calls = ? WHERE id = ?", (json.dumps(calls) if calls else "", message_id))

    def add_tool_result(self, chat_id: int, call_id: str, content: str, metrics: dict) -> int:
        """A tool turn: the result of call `call_id` (what is shown of the call in `metrics`); returns its id."""
        now = time.time()
        cursor = self._run("INSERT INTO messages (chat_id, role, content, metrics, tool_call_id, created, updated) "
                           "VALUES (?, 'tool', ?, ?, ?, ?, ?)", (chat_id, content, json.dumps(metrics), call_id, now,
                                                                 now))
        self._run("UPDATE chats SET updated = ? WHERE id = ?", (now, chat_id))
        return int(cursor.lastrowid)

    def delete_messages_from(self, chat_id: int, message_id: int) -> None:
        """Remove a message and everything after it (regenerate, edit and resend), leaving none of their text in the
        database files."""
        self._erasing("DELETE FROM messages WHERE chat_id = ? AND id >= ?", (chat_id, message_id))

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """A chat's messages in order."""
        rows = self._run("SELECT id, role, content, reasoning, status, metrics, tool_calls, tool_call_id FROM messages "
                         "WHERE chat_id = ? ORDER BY id", (chat_id,)).fetchall()
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]) if r[6] else None, r[7])
                for r in rows]

    def conversation(self, chat_id: int) -> Conversation:
        """The chat as the engine takes it (partial answers included; failed ones left out)."""
        row = self._run("SELECT system_prompt FROM chats WHERE id = ?", (chat_id,)).fetchone()
        messages = [Message(m.role, m.content, m.reasoning, m.tool_calls, m.tool_call_id)
                    for m in self.messages(chat_id)
                    if m.status != "failed" and (m.content or m.tool_calls or m.role in ("user", "tool"))]
        return Conversation(system=row[0] if row else "", messages=messages)


_SET_SETTING = ("INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value")


def _explain(err: sqlite3.OperationalError, path: Path) -> str:
    if "full" in str(err):
        return (f"The disk is full: cpmdesk could not save to {path.parent}. Free some space; what is on screen "
                "is kept and saved once there is room.")
    return f"cpmdesk could not save to {path} ({err}); check that the folder is writable."
