"""Python's cyclic garbage collected on the GUI thread only.

Automatic collection runs in whichever thread happens to allocate when a threshold is passed: a worker thread (the
formula warm-up, indexing, a streaming answer) can then free a Qt object caught in a reference cycle. Its C++
destructor takes Qt's signal-slot lock and calls back into Python for the GIL, while the GUI thread holds the GIL and
waits for that lock: the window froze at start in a test run this way (the warm-up thread collecting, the GUI thread
adding widgets). So while the window is up, automatic collection is off and a timer on the GUI thread collects
instead, by the same generation thresholds.
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QCoreApplication, QObject, QTimer

log = logging.getLogger(__name__)

INTERVAL_MS = 250  # a worker allocating fast may pass a threshold many times over in between: that is only memory


def collect_due() -> int:
    """Collect as automatic collection would now: nothing until the youngest generation's count passes its
    threshold, then the oldest generation whose count passed its own (it covers the younger ones); returns the
    objects found unreachable."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    if counts[0] <= thresholds[0]:
        return 0
    generation = next((g for g in (2, 1) if counts[g] > thresholds[g]), 0)
    return gc.collect(generation)


class GuiThreadCollector(QObject):
    """Owns the timer; made once per application by collect_on_gui_thread()."""

    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.setObjectName("cpmdesk-gc")
        self._timer = QTimer(self, interval=INTERVAL_MS)
        self._timer.timeout.connect(collect_due)
        self._timer.start()
        gc.disable()
        app.aboutToQuit.connect(gc.enable)
        log.debug("cyclic garbage now collected on the GUI thread")


def collect_on_gui_thread(app: QCoreApplication) -> GuiThreadCollector:
    """Turn automatic collection off for `app`'s lifetime and collect on its thread instead (idempotent)."""
    found = app.findChild(GuiThreadCollector, "cpmdesk-gc")
    return found if found is not None else GuiThreadCollector(app)
