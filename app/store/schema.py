"""The chat database schema and its migrations (PRAGMA user_version holds the schema version)."""

from __future__ import annotations

import sqlite3

from app.sqlite_schema import NewerSchemaError
from app.sqlite_schema import migrate as apply_migrations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "NewerSchemaError", "migrate"]

# Each entry migrates from version i to i + 1. Never edit a released step: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chats (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        system_prompt TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the UI keys its state by message id
        chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL DEFAULT '',
        reasoning TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'done'
            CHECK (status IN ('done', 'streaming', 'stopped', 'interrupted', 'failed')),
        metrics TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX messages_by_chat ON messages(chat_id, id);
    """,
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL  -- JSON
    );
    """,
    # Tool use (MCP): 'tool' turns hold a call's result (tool_call_id names the call; the tool, its arguments and
    # the user's approval are in metrics), an assistant turn's calls are its tool_calls (JSON, '' for none). SQLite
    # cannot change a CHECK constraint, so the table is rebuilt; ids and the AUTOINCREMENT counter are kept.
    """
    ALTER TABLE messages RENAME TO messages_v2;
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
        content TEXT NOT NULL DEFAULT '',
        reasoning TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'done'
            CHECK (status IN ('done', 'streaming', 'stopped', 'interrupted', 'failed')),
        metrics TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        updated REAL NOT NULL,
        tool_calls TEXT NOT NULL DEFAULT '',
        tool_call_id TEXT
    );
    INSERT INTO messages (id, chat_id, role, content, reasoning, status, metrics, created, updated)
        SELECT id, chat_id, role, content, reasoning, status, metrics, created, updated FROM messages_v2;
    DELETE FROM sqlite_sequence WHERE name = 'messages';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'messages', seq FROM sqlite_sequence WHERE name = 'messages_v2';
    DROP TABLE messages_v2;
    CREATE INDEX messages_by_chat ON messages(chat_id, id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the chat database to SCHEMA_VERSION; returns the version it started from."""
    return apply_migrations(connection, MIGRATIONS, "the chat database")
