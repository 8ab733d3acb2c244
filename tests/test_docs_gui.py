"""Documents mode in the real window (offscreen): add a folder, watch it index, ask, see and open the sources."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt, QUrl

from app.gui.main_window import MainWindow
from app.store import ChatStore
from tests.docs_corpus import UNRELATED_QUESTION, write_corpus
from tests.test_gui import LONG, open_window, send

pytestmark = pytest.mark.slow


def test_documents_mode_answers_with_sources_that_open(qtbot, tmp_path, default_model, embedding_model) -> None:
    window = open_window(qtbot, tmp_path / "chats.sqlite3", default_model, max_new_tokens=60)
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "renamed.txt").write_bytes(b"\x00\x01binary" * 100)
    qtbot.mouseClick(window.docs.toggle, Qt.MouseButton.LeftButton)
    dialog = window.docs.dialog
    assert window.docs.enabled and dialog is not None and dialog.isVisible(), "no documents yet: the panel opens"
    with qtbot.waitSignal(dialog.indexing_finished, timeout=LONG) as finished:
        dialog.add_paths([corpus])
        assert dialog.cancel_button.isEnabled()
    report = finished.args[0]
    assert len(report.indexed) == 5 and [p for p, _ in report.skipped] == [str(corpus / "renamed.txt")]
    rows = {dialog.table.item(r, 0).text(): (dialog.table.item(r, 1).text(), dialog.table.item(r, 2).text())
            for r in range(dialog.table.rowCount())}
    assert rows["harbour_report.pdf"] == ("indexed", "3 page(s), 3 passage(s)")
    assert rows["renamed.txt"][0] == "skipped" and "binary" in rows["renamed.txt"][1]
    assert "5 indexed" in dialog.status.text() and "renamed.txt" in dialog.status.text()
    assert dialog.progress.value() == dialog.progress.maximum() and not dialog.cancel_button.isEnabled()

    send(qtbot, window, "When does the ferry to Corvin Island leave?")
    shown = window.transcript.toPlainText()
    assert "07:15" in shown
    # the travel guide fits in the model's context: read whole, and the answer says so under its sources
    assert re.search(r"Sources, as given to the model:\s*\[1\] travel_guide\.html \(.*supported", shown), shown
    assert "Answered from the whole document (travel_guide.html): they fit in the model's context." in shown
    answer = window.store.messages(window.chat_id)[-1]
    assert answer.metrics["sources"][0]["path"] == str(corpus / "travel_guide.html")
    assert f'href="source:{answer.id}:1"' in window.transcript.toHtml()
    window._on_link(QUrl(f"source:{answer.id}:1"))
    passage = window.docs.passage_dialog
    assert passage.isVisible() and "travel_guide.html" in passage.windowTitle()
    assert "07:15" in passage.text.toPlainText()

    send(qtbot, window, UNRELATED_QUESTION)
    nothing = window.store.messages(window.chat_id)[-1]
    assert "found nothing about this in your documents" in nothing.content and nothing.metrics["sources"] == []
    assert nothing.metrics["tokens"] == 0, "the model was not called"
    assert "No passage of your documents matched" in window.transcript.toPlainText()


def test_unfinished_indexing_resumes_when_the_window_opens(qtbot, tmp_path, embedding_model) -> None:
    from app.docs.store import DocStore

    corpus = write_corpus(tmp_path / "corpus")
    store = DocStore(tmp_path / "docs.sqlite3")  # a run that queued its files, then the app was killed
    store.queue([str(p) for p in sorted(corpus.iterdir())])
    store.close()
    window = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), None)
    qtbot.addWidget(window, before_close_func=lambda w: w.threads.wait_all())
    window.show()
    qtbot.waitUntil(lambda: window.docs.dialog is not None and window.docs.dialog.last_report is not None,
                    timeout=LONG)
    assert "Resuming the indexing of 5 document(s)" in window.statusBar().currentMessage()
    assert len(window.docs.dialog.last_report.indexed) == 5
    assert window.docs.library.store.pending() == []
    assert not window.docs.dialog.isVisible(), "resuming does not pop up the panel"
