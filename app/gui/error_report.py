"""A failed save in any click handler (disk full, read-only folder) is told in the status bar, not lost in a log."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QMainWindow

from app.store import StoreError


def report_store_errors(window: QMainWindow) -> None:
    """Show StoreErrors raised in Qt slots in `window`'s status bar; other errors go to the previous hook."""
    previous = sys.excepthook

    def hook(kind, error, trace) -> None:
        if issubclass(kind, StoreError):
            window.statusBar().showMessage(str(error))
            return
        previous(kind, error, trace)

    sys.excepthook = hook
