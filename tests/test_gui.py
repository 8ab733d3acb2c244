"""The real window (offscreen) with the real engine on real exported models, driven like a user would."""

from __future__ import annotations

import re
import signal
import statistics
import subprocess
import sys
import time

import pytest
from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QGuiApplication

from app.engine import GenerationSettings
from app.gui.main_window import MainWindow
from app.store import ChatStore

pytestmark = pytest.mark.slow
LONG = 120_000  # ms


def open_window(qtbot, database, model, **settings) -> MainWindow:
    window = MainWindow(ChatStore(database), model, settings=GenerationSettings(**settings) if settings else None)
    qtbot.addWidget(window, before_close_func=lambda w: w.threads.wait_all())
    window.show()
    if model is not None:
        with qtbot.waitSignal(window.model_ready, timeout=LONG):
            pass
    return window


def send(qtbot, window: MainWindow, text: str) -> None:
    qtbot.keyClicks(window.composer, text)
    with qtbot.waitSignal(window.answer_finished, timeout=LONG):
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)


def test_type_send_and_see_the_answer(qtbot, tmp_path, default_model) -> None:
    window = open_window(qtbot, tmp_path / "chats.sqlite3", default_model, max_new_tokens=200)
    assert window.think_toggle.isEnabled() is False and "cannot" in window.think_toggle.toolTip()
    assert default_model.name in window.model_label.text()
    shown: list[str] = []
    window.transcript.textChanged.connect(lambda: shown.append(window.transcript.toPlainText()))
    send(qtbot, window, "What is the capital of France? Then describe the city in a few sentences.")
    assert "Paris" in window.transcript.toPlainText()
    partial = [text for text in shown if "Assistant" in text and text != shown[-1]]
    assert len(set(partial)) >= 2, "the answer appeared token by token, not all at once"
    assert "tok/s" in window.speed_label.text() and "first token" in window.speed_label.text()
    assert window.composer.toPlainText() == ""
    assert window.chats.list.item(0).text().startswith("What is the capital of France?")


def test_shift_enter_is_a_new_line(qtbot, tmp_path, default_model) -> None:
    window = open_window(qtbot, tmp_path / "chats.sqlite3", default_model)
    qtbot.keyClicks(window.composer, "first")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.composer, "second")
    assert window.composer.toPlainText() == "first\nsecond"
    assert not window.is_generating


def test_stop_mid_answer_keeps_the_partial_answer(qtbot, tmp_path, default_model) -> None:
    window = open_window(qtbot, tmp_path / "chats.sqlite3", default_model, max_new_tokens=3000, ignore_eos=True)
    qtbot.keyClicks(window.composer, "Count from 1 to 1000, one number per line.")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    assert window.send_button.text() == "Stop"
    qtbot.waitUntil(lambda: len(window.transcript.toPlainText()) > 120, timeout=LONG)
    with qtbot.waitSignal(window.answer_finished, timeout=10_000):
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    answer = window.store.messages(window.chat_id)[-1]
    assert answer.status == "stopped" and len(answer.content) > 20
    assert "Stopped" in window.transcript.toPlainText()
    assert window.send_button.text() == "Send"


def test_regenerate_replaces_the_last_answer(qtbot, tmp_path, default_model) -> None:
    window = open_window(qtbot, tmp_path / "chats.sqlite3", default_model, max_new_tokens=24, temperature=0.9,
                         seed=1)
    send(qtbot, window, "Tell me a fun fact.")
    first = window.store.messages(window.chat_id)[-1]
    with qtbot.waitSignal(window.answer_finished, timeout=LONG):
        window._on_link(QUrl("regenerate:"))
    messages = window.store.messages(window.chat_id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[-1].id != first.id and messages[-1].content


def test_edit_and_resend_replaces_what_followed(qtbot, tmp_path, default_model) -> None:
    window = open_window(qtbot, tmp_path / "chats.sqlite3", default_model, max_new_tokens=24)
    send(qtbot, window, "What is the capital of Italy?")
    user = window.store.messages(window.chat_id)[0]
    window._on_link(QUrl(f"edit:{user.id}"))
    assert window.composer.toPlainText() == "What is the capital of Italy?"
    window.composer.clear()
    send(qtbot, window, "What is the capital of France?")
    messages = window.store.messages(window.chat_id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].content == "What is the capital of France?"
    assert "Paris" in messages[1].content


def test_reasoning_toggle_shows_or_hides_thinking(qtbot, tmp_path, tiny_llama, exported) -> None:
    question = "I have 3 apples and get 4 more. How many apples do I have?"
    window = open_window(qtbot, tmp_path / "chats.sqlite3", exported(tiny_llama, "int4"), max_new_tokens=40)
    assert window.think_toggle.isEnabled()
    window.think_toggle.setChecked(True)
    send(qtbot, window, question)
    text = window.transcript.toPlainText()
    assert "Thought for" in text
    answer = window.store.messages(window.chat_id)[-1]
    assert answer.reasoning and "thinking_s" in answer.metrics
    assert answer.reasoning not in text, "the Thinking section is collapsed once the answer starts"
    window._on_link(QUrl(f"think:{answer.id}"))
    assert answer.reasoning.splitlines()[0] in window.transcript.toPlainText()

    window.new_chat()
    window.think_toggle.setChecked(False)
    send(qtbot, window, question)
    assert "Thought for" not in window.transcript.toPlainText()
    assert window.store.messages(window.chat_id)[-1].reasoning == ""


def test_switch_chats_restart_and_find_the_history(qtbot, tmp_path, default_model) -> None:
    database = tmp_path / "chats.sqlite3"
    window = open_window(qtbot, database, default_model, max_new_tokens=16)
    send(qtbot, window, "What is the capital of France?")
    first = window.chat_id
    window.new_chat()
    send(qtbot, window, "Name a colour.")
    second = window.chat_id
    window.select_chat(first)
    assert "capital of France" in window.transcript.toPlainText()
    window.chats.search.setText("colour")
    assert window.chats.ids() == [second]
    window.close()
    window.store.close()

    again = open_window(qtbot, database, None)
    assert set(again.chats.ids()) == {first, second}
    again.select_chat(first)
    assert "capital of France" in again.transcript.toPlainText()


def window_with_exchange(qtbot, tmp_path, question: str, answer: str) -> MainWindow:
    """A window (no model) showing one stored exchange."""
    window = open_window(qtbot, tmp_path / "chats.sqlite3", None)
    chat = window.new_chat()
    window.store.add_message(chat, "user", question)
    window.store.add_message(chat, "assistant", answer)
    window.select_chat(chat)
    return window


def test_code_blocks_render_with_a_copy_link(qtbot, tmp_path) -> None:
    window = window_with_exchange(qtbot, tmp_path, "Show me code", "Here:\n\n```python\nprint('hi')\n```\n")
    assert "Copy" in window.transcript.toPlainText()
    answer = window.store.messages(window.chat_id)[-1]
    window._on_link(QUrl(f"copy:{answer.id}:0"))
    assert QGuiApplication.clipboard().text() == "print('hi')\n"


def test_export_chat_to_markdown(qtbot, tmp_path) -> None:
    window = window_with_exchange(qtbot, tmp_path, "Hi", "Hello!")
    window.export_markdown(tmp_path / "chat.md")
    assert (tmp_path / "chat.md").read_text() == "**You:**\n\nHi\n\n**Assistant:**\n\nHello!\n"


def test_event_loop_stays_responsive_while_streaming(qtbot, tmp_path, default_model) -> None:
    window = open_window(qtbot, tmp_path / "chats.sqlite3", default_model, max_new_tokens=300, ignore_eos=True)
    lateness: list[float] = []
    interval = 0.01
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        lateness.append(max(0.0, now - last[0] - interval))
        last[0] = now

    timer = QTimer(interval=int(interval * 1000))
    timer.timeout.connect(tick)
    timer.start()
    send(qtbot, window, "Write a long story about a lighthouse keeper.")
    timer.stop()
    assert len(lateness) > 50
    p95 = statistics.quantiles(lateness, n=20)[-1]
    assert p95 < 0.100, f"95th percentile timer lateness {p95 * 1000:.0f} ms"


KILLED_GUI = """
import sys
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from app.engine import GenerationSettings
from app.gui.main_window import MainWindow
from app.store import ChatStore

app = QApplication([])
window = MainWindow(ChatStore(Path(sys.argv[1])), Path(sys.argv[2]),
                    settings=GenerationSettings(max_new_tokens=4000, ignore_eos=True))
def watch():
    if window._streaming is not None and len(window._streaming.content) > 200:
        print("STREAMING", flush=True)
        poll.stop()
poll = QTimer(interval=20)
poll.timeout.connect(watch)
def ready():
    window.composer.setPlainText("Write a long story about a lighthouse keeper.")
    window.send()
    poll.start()
window.model_ready.connect(ready)
window.show()
app.exec()
"""


def test_kill_mid_answer_then_restart_shows_the_partial_answer(qtbot, tmp_path, default_model) -> None:
    database = tmp_path / "chats.sqlite3"
    child = subprocess.Popen([sys.executable, "-c", KILLED_GUI, str(database), str(default_model)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "STREAMING"
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait(30)

    window = open_window(qtbot, database, None)
    answer = window.store.messages(window.chat_id)[-1]
    assert answer.status == "interrupted" and len(answer.content) > 20
    text = window.transcript.toPlainText()
    assert "Interrupted" in text
    words = re.findall(r"[A-Za-z']+", answer.content)[:6]  # words survive markdown rendering; markup does not
    assert len(words) == 6 and " ".join(words) in " ".join(re.findall(r"[A-Za-z']+", text))
    assert "interrupted" in window.statusBar().currentMessage()
