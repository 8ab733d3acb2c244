"""Regression guard: PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a void Qt method
(setHtml, quit, processEvents…), so a long session ends in `Fatal Python error: none_dealloc`. pyproject pins
PySide6 below 6.12; this test fails if a release with that bug comes back."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication, QTextBrowser
app = QApplication([])
thread, browser = QThread(), QTextBrowser()
before = (sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False))
for _ in range(2000):
    thread.quit(); app.processEvents(); browser.setHtml("<p>x</p>"); browser.isVisible(); thread.wait(0)
after = (sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False))
print(*(a - b for a, b in zip(after, before)))
"""


def test_void_and_bool_qt_calls_keep_their_references() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr[-2000:]
    changes = [int(x) for x in result.stdout.split()]
    assert all(abs(change) < 200 for change in changes), f"None/True/False refcount drift over 10,000 calls: {changes}"
