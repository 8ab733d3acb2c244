"""Deletion that deletes, for cpmdesk's SQLite databases (chats and documents).

`secure_delete` makes SQLite overwrite deleted rows and freed pages with zeros; `auto_vacuum=INCREMENTAL` lets a
deletion hand freed pages back to the file system; a TRUNCATE checkpoint copies the write-ahead log into the
database and empties it, so no older copy of a page (with the deleted text) survives in the -wal file.
"""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger(__name__)

_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def secure_connection(db: sqlite3.Connection, name: str) -> None:
    """Switch on secure_delete for this connection, and incremental vacuum for the file (a file without it is
    rebuilt once with VACUUM: cheap for a new one). `name` is used in the log."""
    db.execute("PRAGMA secure_delete = ON")
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] == _INCREMENTAL:
        return
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # a WAL file or one with tables needs a VACUUM to switch
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] == _INCREMENTAL:
        return
    log.info("rebuilding %s once for incremental vacuum", name)
    try:
        db.execute("VACUUM")
    except sqlite3.OperationalError as err:  # another process holds it: zeroing still works, retried next open
        log.warning("could not rebuild %s for incremental vacuum (%s); will retry on next open", name, err)


def erase_freed(db: sqlite3.Connection, name: str) -> bool:
    """After a deletion: give freed pages back and empty the write-ahead log. True when the log is empty; False
    when another connection was reading (logged; the next erase or the last connection's close finishes it)."""
    db.execute("PRAGMA incremental_vacuum").fetchall()  # frees one page per step: run it to the end
    busy, _frames, _copied = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        log.warning("%s: another connection is reading; the write-ahead log is emptied later", name)
        return False
    return True


def vacuum(db: sqlite3.Connection, name: str) -> bool:
    """Rewrite the whole file (after deleting most of it), then empty the write-ahead log."""
    db.execute("VACUUM")
    return erase_freed(db, name)
