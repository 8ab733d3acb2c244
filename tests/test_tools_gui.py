"""Tools in the window (offscreen): the approval dialog driven by pytest-qt through the real worker and tool mode
(Allow once runs the call, Deny does not and the model is told, Always is remembered), the call and its result
stored with the chat and shown as a collapsible card, and an answer with tools on from the real engine."""

from __future__ import annotations

import json
import threading

from PySide6.QtCore import Qt, QUrl

from app.engine import GenerationSettings
from app.engine.engine import Reply
from app.gui.main_window import MainWindow
from app.gui.tool_worker import ToolChatWorker
from app.store import ChatStore
from app.tools.mcp_config import save_config
from app.tools.tool_loop import ToolCatalog, ToolLoop
from tests.mcp_fixtures import servers

LONG = 120_000  # ms
WRITE = '<|tool_call_start|>\n```python\nwrite_file(path="made.txt", text="hi")\n```\n<|tool_call_end|>'


def open_window(qtbot, tmp_path, model=None) -> MainWindow:
    save_config(servers(tmp_path), tmp_path / "mcp.json")  # beside the chat database: the window's data folder
    window = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), model,
                        settings=GenerationSettings(max_new_tokens=24))
    qtbot.addWidget(window, before_close_func=lambda w: w.threads.wait_all())
    window.show()
    if model is not None:
        with qtbot.waitSignal(window.model_ready, timeout=LONG):
            pass
    return window


class ModelTurn:
    """The window's tool worker handling an answer whose text is `text`, as a model would stream it: the Qt-free
    loop on a worker thread, asking through the worker's signal and the window's dialog, storing what happened."""

    def __init__(self, window: MainWindow, text: str) -> None:
        self.window = window
        chat = window.chat_id if window.chat_id is not None else window.new_chat()
        window.store.add_message(chat, "user", "Save hi to made.txt")
        hub = window.tools.hub
        self.worker: ToolChatWorker = window.tools.worker(None, window.store, chat, window.store.conversation(chat),
                                                          window.settings, None)
        tools, errors = hub.all_tools()
        assert errors == {}
        self.loop = ToolLoop(ToolCatalog(tools), lambda c: hub.call(c.server, c.tool, c.arguments),
                             self.worker._approve, self.worker.remember)
        self.loop.begin()
        self.loop.feed(text)
        self.turn, _ = self.loop.finish()
        reply = Reply(self.turn.content, "", 30, 100, 10.0, 50.0, False, False, 0)
        self.steps: list = []
        self.thread = threading.Thread(target=lambda: self._run(reply))
        self.thread.start()

    def _run(self, reply: Reply) -> None:
        self.steps = self.loop.resolve(self.turn, self.worker.cancel)
        self.worker._end(reply, self.turn, self.steps)

    def dialog(self, qtbot):
        qtbot.waitUntil(lambda: self.window.tools.dialog is not None and self.window.tools.dialog.isVisible(),
                        timeout=30_000)
        return self.window.tools.dialog

    def done(self, qtbot) -> None:
        qtbot.waitUntil(lambda: not self.thread.is_alive(), timeout=30_000)
        self.window._render()


def test_allow_once_runs_the_call_and_the_card_shows_it(qtbot, tmp_path) -> None:
    window = open_window(qtbot, tmp_path)
    assert window.tools.enabled and window.tools.toggle.isChecked()
    turn = ModelTurn(window, "Saving." + WRITE)
    dialog = turn.dialog(qtbot)
    assert "write_file" in dialog.question.text() and "test" in dialog.question.text()
    assert json.loads(dialog.arguments.toPlainText()) == {"path": "made.txt", "text": "hi"}
    assert not (tmp_path / "made.txt").exists()  # waiting for the user: nothing ran
    qtbot.mouseClick(dialog.allow_button, Qt.MouseButton.LeftButton)
    turn.done(qtbot)
    assert (tmp_path / "made.txt").read_text() == "hi"
    stored = window.store.messages(window.chat_id)
    assert [m.role for m in stored] == ["user", "assistant", "tool"]
    assert stored[1].content == "Saving." and stored[1].tool_calls[0]["function"]["name"] == "write_file"
    assert stored[2].content == "wrote 2 characters to made.txt"
    assert stored[2].metrics["tool"]["outcome"] == "allowed"
    text = window.transcript.toPlainText()
    assert "Tool: write_file" in text and "allowed once" in text and "wrote 2 characters" not in text  # collapsed
    window._on_link(QUrl(f"tool:{stored[2].id}"))
    assert "wrote 2 characters to made.txt" in window.transcript.toPlainText()
    assert '"path": "made.txt"' in window.transcript.toPlainText()
    window._on_link(QUrl(f"tool:{stored[2].id}"))
    assert "wrote 2 characters" not in window.transcript.toPlainText()


def test_deny_does_not_run_it_and_the_model_is_told(qtbot, tmp_path) -> None:
    window = open_window(qtbot, tmp_path)
    turn = ModelTurn(window, WRITE)
    qtbot.mouseClick(turn.dialog(qtbot).deny_button, Qt.MouseButton.LeftButton)
    turn.done(qtbot)
    assert not (tmp_path / "made.txt").exists()
    told = window.store.conversation(window.chat_id).messages[-1]
    assert told.role == "tool" and told.content == "The user denied the call to write_file; it did not run."
    assert "denied" in window.transcript.toPlainText()


def test_closing_the_dialog_denies(qtbot, tmp_path) -> None:
    window = open_window(qtbot, tmp_path)
    turn = ModelTurn(window, WRITE)
    turn.dialog(qtbot).close()
    turn.done(qtbot)
    assert not (tmp_path / "made.txt").exists() and turn.steps[0].outcome == "denied"


def test_always_is_remembered(qtbot, tmp_path) -> None:
    window = open_window(qtbot, tmp_path)
    turn = ModelTurn(window, WRITE)
    qtbot.mouseClick(turn.dialog(qtbot).always_button, Qt.MouseButton.LeftButton)
    turn.done(qtbot)
    saved = json.loads((tmp_path / "mcp.json").read_text())
    assert saved["mcpServers"]["test"]["alwaysAllow"] == ["write_file"]
    (tmp_path / "made.txt").unlink()
    window.tools.dialog = None
    again = ModelTurn(window, WRITE)  # a later answer: the same tool runs without asking
    again.done(qtbot)
    assert window.tools.dialog is None and again.steps[0].outcome == "always"
    assert (tmp_path / "made.txt").read_text() == "hi"
    assert "always allowed" in window.transcript.toPlainText()


def test_an_answer_with_tools_on_comes_from_the_engine(qtbot, tmp_path, default_model) -> None:
    """The real model answering with the MCP servers' tools in its prompt, through the tool worker."""
    window = open_window(qtbot, tmp_path, default_model)
    workers = []
    window.answer_started.connect(workers.append)
    qtbot.keyClicks(window.composer, "What time is it in UTC?")
    with qtbot.waitSignal(window.answer_finished, timeout=LONG):
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    assert isinstance(workers[0], ToolChatWorker)
    assert "get_current_time" in json.dumps(workers[0].conversation.tools)
    stored = window.store.messages(window.chat_id)
    assert stored[0].role == "user" and stored[-1].role == "assistant" and stored[-1].status == "done"
    assert stored[-1].content and stored[-1].content in window.transcript.toPlainText()


def test_the_tools_toggle_is_off_without_servers(qtbot, tmp_path) -> None:
    window = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), None)
    qtbot.addWidget(window)
    assert not window.tools.enabled and not window.tools.toggle.isEnabled() and window.tools.hub is None

