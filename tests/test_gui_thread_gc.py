"""Cyclic garbage is collected on the GUI thread only once a window is up (app/gui/gui_thread_gc.py): a Qt object
freed by a collection in a worker thread could deadlock against the GUI thread (seen as a frozen window)."""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtCore import QObject

from app.gui.gui_thread_gc import GuiThreadCollector, collect_due, collect_on_gui_thread


class _Cycle:
    """A Python object in a reference cycle, owning a Qt object."""

    def __init__(self) -> None:
        self.qt = QObject()
        self.me = self


def test_a_worker_thread_leaves_a_qt_cycle_to_the_gui_thread(qtbot, qapp) -> None:
    collector = collect_on_gui_thread(qapp)
    assert isinstance(collector, GuiThreadCollector) and collect_on_gui_thread(qapp) is collector
    assert not gc.isenabled()
    cycle = _Cycle()
    freed_in: list[str] = []
    cycle.qt.destroyed.connect(lambda: freed_in.append(threading.current_thread().name))
    alive = weakref.ref(cycle)
    del cycle

    kept: list[list[int]] = []

    def churn() -> None:  # far past the youngest generation's threshold: automatic collection would run here
        kept.extend([i] for i in range(200_000))

    worker = threading.Thread(target=churn, name="churn")
    worker.start()
    worker.join()
    assert alive() is not None  # nothing was collected in the worker
    qtbot.waitUntil(lambda: alive() is None, timeout=5000)  # the GUI thread's timer collected it
    assert freed_in == [threading.main_thread().name] and len(kept) == 200_000


def test_collect_due_waits_for_the_youngest_generations_threshold(qapp) -> None:
    collect_on_gui_thread(qapp)
    gc.collect()
    young_collections = gc.get_count()[1]
    assert collect_due() == 0 and gc.get_count()[1] == young_collections  # below the threshold: nothing
    junk = [[i] for i in range(gc.get_threshold()[0] * 2)]
    collect_due()
    assert gc.get_count()[1] == young_collections + 1 and len(junk)  # one collection of the youngest generation
