"""An event-loop wait for the tests' Qt child scripts (a processEvents() spin leaks None refs in PySide6)."""

from __future__ import annotations

from collections.abc import Callable


def wait(condition: Callable[[], bool], seconds: float = 120) -> None:
    """Run the Qt event loop until `condition()` holds; exit the process if it does not within `seconds`."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    poll = QTimer(interval=20)
    poll.timeout.connect(lambda: loop.quit() if condition() else None)
    QTimer.singleShot(int(seconds * 1000), lambda: loop.exit(1))
    poll.start()
    if not condition() and loop.exec() == 1:
        raise SystemExit("timed out")
    poll.stop()


def models_job_settled(manager) -> bool:
    """The Models window's job is over and the window shows its final state (the worker's last event reaches the
    widget through the event loop after the controller is idle)."""
    state = manager.controller.state
    return not manager.controller.busy and state.job is None and manager.status.text() == state.message
