"""A failed save in any click handler (disk full, read-only folder) is told in the status bar, not lost in a log."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QMainWindow

from app.store import StoreError

_target: list[QMainWindow] = []  # the window that reports (the latest one given)


def report_store_errors(window: QMainWindow) -> None:
    """Show StoreErrors raised in Qt slots in `window`'s status bar; other errors go to the previous hook."""
    if not _target:
        previous = sys.excepthook

        def hook(kind, error, trace) -> None:
            if issubclass(kind, StoreError) and _target:
                try:
                    _target[0].statusBar().showMessage(str(error))
                    return
                except RuntimeError:  # that window is gone
                    pass
            previous(kind, error, trace)

        sys.excepthook = hook
    _target[:] = [window]
