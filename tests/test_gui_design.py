"""Issue 20's design part on the real window (offscreen): the header (model picker, device, Reasoning and
Documents switches), the welcome state of an empty chat, keyboard shortcuts as menu actions, accessible names,
the new strings in 简体中文, the theme following the system's colour scheme, formulas at the screen's pixel ratio
and tool calls/results as cards. Answers come from the real embedded default model."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

from app.app_settings import AppSettings
from app.gui.appearance import is_dark
from app.gui.main_window import MainWindow
from app.gui.markdown_render import MarkdownRenderer
from app.gui.math_render import MathImages
from app.gui.transcript_html import MessageView, transcript_html
from app.store import ChatStore

pytestmark = pytest.mark.slow
LONG = 120_000


def open_window(qtbot, tmp_path, model=None, **settings) -> MainWindow:
    store = ChatStore(tmp_path / "chats.sqlite3")
    app_settings = AppSettings(**settings)
    window = MainWindow(store, model, app_settings=app_settings)
    qtbot.addWidget(window, before_close_func=lambda w: w.threads.wait_all())
    window.show()
    window.activateWindow()
    if model is not None:
        with qtbot.waitSignal(window.model_ready, timeout=LONG):
            pass
    return window


@pytest.fixture
def restore_globals():
    """The palette, style sheet and translator are the application's: back to the defaults after the test."""
    yield
    from app.gui.appearance import apply_language, apply_theme

    apply_theme(QApplication.instance(), "light")
    apply_language(QApplication.instance(), "en")


def send(qtbot, window: MainWindow, text: str) -> None:
    window.composer.setPlainText(text)
    with qtbot.waitSignal(window.answer_finished, timeout=LONG):
        window.send()


# ---------------------------------------------------------------- header

def test_header_lists_models_switches_and_holds_the_switches(qtbot, tmp_path, data_dir, default_model, tiny_llama,
                                                             exported) -> None:
    tiny = exported(tiny_llama, "int4")
    window = open_window(qtbot, tmp_path, default_model, model_dirs=[str(tiny)], max_new_tokens=16)
    picker = window.header.model_picker
    texts = [picker.itemText(i) for i in range(picker.count())]
    current = picker.currentText()
    assert current.startswith(default_model.name), "the picker shows the model in use"
    assert "MiB" in current and "int4 g64" in current and "tokens" in current and "draft" in current
    assert f"{window.engine.context_tokens:,} tokens" in current, "the loaded model's context"
    assert any(t.startswith(tiny.name) for t in texts), "the added folder's model is listed"
    assert texts[-1] == "Manage models…"
    assert window.header.isAncestorOf(window.think_toggle) and window.header.isAncestorOf(window.docs.toggle)
    assert window.header.device.itemText(0) == "CPU"

    with qtbot.waitSignal(window.model_ready, timeout=LONG):
        picker.activated.emit(next(i for i, t in enumerate(texts) if t.startswith(tiny.name)))
    assert window.engine.name == tiny.name
    assert AppSettings.load(window.store).model_folder == str(tiny), "the switch is remembered"
    assert picker.currentText().startswith(tiny.name)
    assert window.think_toggle.isEnabled(), "the thinking model can switch reasoning"

    qtbot.mouseClick(window.think_toggle, Qt.MouseButton.LeftButton)
    assert window.think_toggle.isChecked()
    window.think_toggle.setChecked(False)
    qtbot.mouseClick(window.docs.toggle, Qt.MouseButton.LeftButton)
    assert window.docs.enabled, "the Documents switch turns Documents mode on"
    assert window.docs.dialog is not None and window.docs.dialog.isVisible(), "no documents yet: the panel opens"
    window.docs.dialog.close()
    qtbot.mouseClick(window.docs.toggle, Qt.MouseButton.LeftButton)
    assert not window.docs.enabled

    picker.activated.emit(picker.count() - 1)  # Manage models…
    assert window.models_dialog is not None and window.models_dialog.isVisible()
    assert picker.currentText().startswith(tiny.name), "the picker keeps showing the model in use"


# ---------------------------------------------------------------- welcome state

def test_welcome_state_for_an_empty_chat(qtbot, tmp_path, data_dir, default_model) -> None:
    window = open_window(qtbot, tmp_path, default_model, max_new_tokens=8)
    assert window.pages.currentWidget() is window.welcome
    assert window.welcome.card_name.text() == default_model.name
    details = window.welcome.card_details.text()
    assert "int4" in details and "MiB" in details and f"{window.engine.context_tokens:,}" in details
    example = window.welcome.example_buttons[1]
    qtbot.mouseClick(example, Qt.MouseButton.LeftButton)
    assert window.composer.toPlainText() == example.property("prompt") == example.text()
    assert window.composer.hasFocus()
    qtbot.mouseClick(window.welcome.models_button, Qt.MouseButton.LeftButton)
    assert window.models_dialog.isVisible()
    window.models_dialog.close()
    qtbot.mouseClick(window.welcome.documents_button, Qt.MouseButton.LeftButton)
    assert window.docs.dialog is not None and window.docs.dialog.isVisible()
    window.docs.dialog.close()

    send(qtbot, window, "Hello!")
    assert window.pages.currentWidget() is window.transcript, "a chat with messages shows the conversation"
    window.new_chat()
    assert window.pages.currentWidget() is window.welcome, "a new chat starts at the welcome state"


# ---------------------------------------------------------------- keyboard

def test_shortcuts_are_menu_actions_that_work(qtbot, tmp_path, data_dir, default_model) -> None:
    window = open_window(qtbot, tmp_path, default_model, max_new_tokens=2000)
    window.settings = replace(window.settings, ignore_eos=True)
    expected = {window.new_chat_action: ["Ctrl+N"], window.search_action: ["Ctrl+K", "Ctrl+F"],
                window.stop_action: ["Esc"], window.regenerate_action: ["Ctrl+R"],
                window.focus_composer_action: ["Ctrl+L", "/"]}
    for action, keys in expected.items():
        assert [s.toString() for s in action.shortcuts()] == keys
        assert action in window.chat_menu.actions(), f"{action.text()} is in the Chat menu, its shortcut shown"
    qtbot.waitUntil(lambda: QGuiApplication.focusWindow() is not None)

    chats = len(window.store.list_chats())
    qtbot.keyClick(window.composer, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert len(window.store.list_chats()) == chats + 1 and window.pages.currentWidget() is window.welcome
    qtbot.keyClick(window.composer, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert window.chats.search.hasFocus()
    qtbot.keyClick(window.chats.search, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.composer.hasFocus()
    qtbot.keyClick(window.composer, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.chats.search.hasFocus()
    window.chats.list.setFocus()
    qtbot.keyClick(window.chats.list, Qt.Key.Key_Slash)
    assert window.composer.hasFocus(), "/ outside the message box goes to the message box"
    qtbot.keyClicks(window.composer, "/no_think count to 500")
    assert window.composer.toPlainText() == "/no_think count to 500", "/ typed in the message box stays text"

    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    assert window.is_generating and window.stop_action.isEnabled()
    qtbot.waitUntil(lambda: len(window.transcript.toPlainText()) > 60, timeout=LONG)
    with qtbot.waitSignal(window.answer_finished, timeout=10_000):
        qtbot.keyClick(window.composer, Qt.Key.Key_Escape)
    first = window.store.messages(window.chat_id)[-1]
    assert first.status == "stopped" and not window.stop_action.isEnabled()

    window.settings = replace(window.settings, ignore_eos=False, max_new_tokens=8)
    with qtbot.waitSignal(window.answer_finished, timeout=LONG):
        qtbot.keyClick(window.composer, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    messages = window.store.messages(window.chat_id)
    assert [m.role for m in messages] == ["user", "assistant"] and messages[-1].id != first.id, "regenerated"


def test_every_control_has_an_accessible_name(qtbot, tmp_path, data_dir) -> None:
    window = open_window(qtbot, tmp_path)
    window.new_chat()
    window.store.add_message(window.chat_id, "user", "Hi")
    window._render()
    kinds = (QAbstractButton, QComboBox, QLineEdit, QAbstractItemView, QTextEdit, QPlainTextEdit)
    controls = [w for w in window.findChildren(QWidget) if isinstance(w, kinds)
                and not _inside_combo(w)]
    names = {type(w).__name__ for w in controls}
    assert {"Switch", "PickerCombo", "QComboBox", "QPushButton", "QListWidget", "Transcript", "Composer",
            "QLineEdit"} <= names
    unnamed = [f"{type(w).__name__} {w.objectName()} {getattr(w, 'text', lambda: '')()}" for w in controls
               if not w.accessibleName()]
    assert unnamed == []
    assert window.transcript.accessibleName() == "Conversation" and window.composer.accessibleName() == "Message"


def _inside_combo(widget) -> bool:
    parent = widget.parent()
    while parent is not None:
        if isinstance(parent, QComboBox):
            return True
        parent = parent.parent()
    return False


# ---------------------------------------------------------------- language and theme

def test_new_strings_in_simplified_chinese(qtbot, tmp_path, data_dir, restore_globals) -> None:
    window = open_window(qtbot, tmp_path)
    window.apply_settings(AppSettings(language="zh_CN"))
    assert window.header.device_label.text() == "设备"
    assert window.header.model_picker.itemText(window.header.model_picker.count() - 1) == "管理模型…"
    assert window.welcome.title.text() == "有什么可以帮你？"
    assert window.welcome.documents_button.text() == "添加文档…"
    assert window.welcome.example_buttons[0].text() == "用公式解释勾股定理"
    assert window.stop_action.text() == "停止回答" and window.focus_composer_action.text() == "转到消息框"
    assert window.help_menu.title() == "帮助(&H)"
    assert window.transcript.accessibleName() == "对话内容"
    assert window.docs.toggle.text() == "文档" and window.think_toggle.text() == "深度思考"
    assert window.tools.toggle.text() == "工具"
    assert window.docs.report_action.text() == "撰写报告…"
    report = window.docs.open_report()
    assert (report.windowTitle(), report.write_button.text()) == ("撰写报告", "撰写")
    report.close()
    from app.gui.approval_dialog import ApprovalDialog
    from app.tools.tool_loop import PendingCall

    dialog = ApprovalDialog(PendingCall("c1", "get_time", "time", "get_time", {}), window)
    assert (dialog.windowTitle(), dialog.allow_button.text(), dialog.deny_button.text()) == ("运行工具？", "允许一次",
                                                                                            "拒绝")
    dialog.deleteLater()
    window.new_chat()
    window.store.add_message(window.chat_id, "user", "你好")
    window.store.add_message(window.chat_id, "assistant", '<tool_call>{"name": "f", "arguments": {}}</tool_call>')
    window._render()
    shown = window.transcript.toPlainText()
    assert "助手" in shown and "工具调用" in shown and "重新生成" in shown
    window.apply_settings(AppSettings(language="en"))
    assert window.welcome.title.text() == "What can I help you with?" and "Assistant" in window.transcript.toPlainText()


def test_theme_follows_the_system_colour_scheme(qtbot, tmp_path, data_dir, restore_globals) -> None:
    app = QApplication.instance()
    window = open_window(qtbot, tmp_path, theme="system")
    window.new_chat()
    window.store.add_message(window.chat_id, "assistant", "```python\nx = 1\n```")
    window._render()
    hints = QGuiApplication.styleHints()
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert is_dark(app) and window.renderer.dark, "dark system: dark palette and dark code colours"
    assert "#272822" in window.transcript.toHtml().lower(), "the transcript was rendered again in dark colours"
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert not is_dark(app) and not window.renderer.dark
    window.apply_settings(AppSettings(theme="light"))
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert not is_dark(app), "a chosen theme does not follow the system"


# ---------------------------------------------------------------- high DPI, cards

def test_formulas_are_typeset_at_the_screens_pixel_ratio(qtbot, tmp_path, data_dir) -> None:
    renderer = MarkdownRenderer(math=MathImages(scale=2.0))
    html = renderer.render("Area $\\pi r^2$").html
    image = renderer.math.image("\\pi r^2", display=False)
    assert image.scale == 2.0 and f'width="{round(image.width / 2)}"' in html, "HTML asks for logical pixels"
    one = MathImages(scale=1.0).image("\\pi r^2", display=False)
    assert image.width >= 1.8 * one.width, "twice the pixels"
    window = open_window(qtbot, tmp_path)
    window.transcript.set_renderer(renderer)
    loaded = window.transcript.loadResource(2, QUrl(f"math:{image.key}"))
    assert loaded.devicePixelRatio() == 2.0 and loaded.width() == image.width


def test_tool_calls_and_results_are_cards() -> None:
    call = ('Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n'
            '</tool_call>')
    result = '<tool_response>\n{"temperature": 21, "sky": "clear"}\n</tool_response>'
    html, _ = transcript_html([MessageView(1, "user", "Weather in Paris?"), MessageView(2, "assistant", call),
                               MessageView(3, "user", result)], MarkdownRenderer())
    assert "Tool call" in html and "get_weather" in html and "&quot;city&quot;: &quot;Paris&quot;" in html
    assert "Tool result" in html and "&quot;sky&quot;: &quot;clear&quot;" in html
    assert "tool_call&gt;" not in html and "tool_response" not in html, "no raw markers shown"
    assert "Let me look." in html
    plain, _ = transcript_html([MessageView(4, "assistant", "No tools here <b>.")], MarkdownRenderer())
    assert "Tool call" not in plain


def test_thinking_section_only_when_there_is_reasoning() -> None:
    streaming = MessageView(1, "assistant", "The answer", status="streaming", thinking_open=True)
    html, _ = transcript_html([streaming], MarkdownRenderer())
    assert "Thinking" not in html and "The answer" in html, "Reasoning off: no Thinking placeholder"
    thinking = replace(streaming, content="", reasoning="Let me see")
    html, _ = transcript_html([thinking], MarkdownRenderer())
    assert "▾ Thinking…" in html and "Let me see" in html
    done = replace(thinking, content="The answer", status="done", thinking_s=1.5, thinking_open=False)
    html, _ = transcript_html([done], MarkdownRenderer())
    assert "▸ Thought for 1.5 s" in html and "Let me see" not in html
