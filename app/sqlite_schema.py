"""Schema versions for cpmdesk's SQLite databases: PRAGMA user_version, raised one migration step at a time."""

from __future__ import annotations

import sqlite3


class NewerSchemaError(RuntimeError):
    """The database was written by a newer cpmdesk; it is left untouched."""


def migrate(connection: sqlite3.Connection, migrations: tuple[str, ...], what: str) -> int:
    """Bring the database to len(migrations), each step in its own transaction; returns the version it started
    from. `what` names the database in the error ("the chat database")."""
    target = len(migrations)
    start = connection.execute("PRAGMA user_version").fetchone()[0]
    if start > target:
        raise NewerSchemaError(f"{what} is from a newer cpmdesk (schema {start} > {target}); update cpmdesk to open it")
    for version in range(start, target):
        with connection:
            connection.executescript(f"BEGIN; {migrations[version]} PRAGMA user_version = {version + 1}; COMMIT;")
    return start
