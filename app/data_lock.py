"""One cpmdesk window per data folder: an OS file lock, released by the OS even when the process is killed."""

from __future__ import annotations

import os
from pathlib import Path

LOCK_NAME = "cpmdesk.lock"


class DataFolderInUseError(RuntimeError):
    """Another cpmdesk process holds the data folder; the message says which and what to do."""


class DataFolderLock:
    """Hold it for as long as the app uses the data folder; `acquire()` refuses while another process holds it."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._file = None

    def acquire(self) -> None:
        """Take the lock, or raise DataFolderInUseError."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            _lock(handle)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DataFolderInUseError(
                f"cpmdesk is already running with the data folder {self.path.parent} (process {holder}). Switch "
                "to that window, or close it first; two windows on the same chats could overwrite each other."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Give the lock up (also happens when the process ends, however it ends)."""
        if self._file is not None:
            self._file.close()
            self._file = None


if os.name == "nt":
    import msvcrt

    def _lock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
else:
    import fcntl

    def _lock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
