"""Issue 20's first part, on the real window (offscreen) and chat store: math typeset as images, incremental
streaming (only the answer's block changes, no database read per frame), a long chat opening at its newest
messages, max new tokens bounded by the context, and device/draft/context changes kept for after the answer.
Tokens come from bench/paced_tokens.py (a clock, not a model): these tests are about the window."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication

from app.app_settings import AppSettings
from app.gui.main_window import MainWindow
from app.gui.markdown_render import MarkdownRenderer
from app.gui.settings_dialog import SettingsDialog
from app.store import ChatStore
from bench.paced_tokens import PacedTokens, long_answer

MATH_AND_CODE = ("Euler: $e^{i\\pi} + 1 = 0$, and \\(a_1 * b_2 * c\\) stays math.\n\n$$\n\\frac{n(n+1)}{2}\n$$\n\n"
                 "It costs $5 and $10.\n\n```bash\necho \"$HOME\" $PATH '$x$' \\(y\\)\n```\n")


def make_window(qtbot, tmp_path: Path, messages: list[tuple[str, str]] = ()) -> MainWindow:
    store = ChatStore(tmp_path / "chats.sqlite3")
    if messages:
        chat = store.create_chat()
        for role, text in messages:
            store.add_message(chat, role, text)
    window = MainWindow(store, None, app_settings=AppSettings())
    qtbot.addWidget(window, before_close_func=lambda w: w.threads.wait_all())
    window.show()
    return window


def stream(qtbot, window: MainWindow, engine: PacedTokens, text: str = "Go on") -> None:
    window.engine = engine
    window._set_ready(True)
    window.composer.setPlainText(text)
    with qtbot.waitSignal(window.answer_finished, timeout=60_000):
        window.send()


def test_math_is_typeset_and_code_is_left_alone(qtbot, tmp_path) -> None:
    window = make_window(qtbot, tmp_path, [("user", "Show me"), ("assistant", MATH_AND_CODE)])
    html = window.transcript.toHtml()
    assert html.count('src="math:') == 3, "two inline formulas and one display formula, as images"
    shown = window.transcript.toPlainText()
    assert "\\pi" not in shown and "\\frac" not in shown and "a_1" not in shown, "no TeX source shown raw"
    assert "$5 and $10" in shown, "prices stay text"
    assert "echo \"$HOME\" $PATH '$x$' \\(y\\)" in shown, "the code block is shown as written"
    answer = window.store.messages(window.chat_id)[-1]
    window._on_link(QUrl(f"copy:{answer.id}:0"))
    assert QGuiApplication.clipboard().text() == "echo \"$HOME\" $PATH '$x$' \\(y\\)\n"
    image = window.transcript.loadResource(2, QUrl(html.split('src="')[1].split('"')[0]))
    assert not image.isNull() and image.width() > 20, "the formula's image is there to paint"


def test_renderer_keeps_code_spans_and_bad_tex_readable() -> None:
    renderer = MarkdownRenderer()
    html = renderer.render("`$x$` then $\\frac{a}{$ and \\$ and $y$").html
    assert "<code>$x$</code>" in html, "a code span is never math"
    assert "<code>$\\frac{a}{$</code>" in html, "TeX that cannot be typeset is shown as its source, as code"
    assert html.count('src="math:') == 1
    typeset = renderer.math.renders
    renderer.render("$y$ again")
    assert renderer.math.renders == typeset, "formulas are cached"


def test_streaming_changes_only_the_answer_and_reads_no_chat(qtbot, tmp_path, monkeypatch) -> None:
    history = [("user" if n % 2 == 0 else "assistant", long_answer(n)) for n in range(12)]
    window = make_window(qtbot, tmp_path, history)
    before = window.transcript.toPlainText()
    calls: list[str] = []
    for name in ("messages", "conversation", "list_chats"):
        original = getattr(window.store, name)
        monkeypatch.setattr(window.store, name, lambda *a, _o=original, _n=name: (calls.append(_n), _o(*a))[1])
    frames: list[tuple[int, str, int]] = []  # (chat reads so far, text shown, messages rendered so far)
    window.transcript.textChanged.connect(
        lambda: frames.append((len(calls), window.transcript.toPlainText(), window.transcript.renders)))
    answer = long_answer(99)
    window.answer_started.connect(lambda _w: frames.clear())
    stream(qtbot, window, PacedTokens(answer, rate=400))
    streaming = [f for f in frames if "Part 99" in f[1] and "Regenerate" not in f[1].rsplit("Assistant", 1)[-1]]
    assert len(streaming) >= 5, "the answer appeared frame by frame"
    reads = {f[0] for f in streaming}
    assert len(reads) == 1, f"no chat read from the database while streaming: {calls}"
    prefix = before.rsplit(" · Regenerate", 1)[0]  # the earlier answer's Regenerate link went when this one began
    assert all(f[1].startswith(prefix) for f in streaming), "the messages above the answer stay as they were"
    assert [b[2] - a[2] for a, b in itertools.pairwise(streaming)] == [1] * (len(streaming) - 1), \
        "each frame renders one message: the streaming answer"
    final = window.transcript.toPlainText()
    window.transcript.set_renderer(window.renderer)
    window._render()  # a full render from the database shows exactly the same
    assert window.transcript.toPlainText() == final
    assert window.store.messages(window.chat_id)[-1].content == answer


def test_long_chat_opens_at_its_newest_messages(qtbot, tmp_path) -> None:
    history = [("user" if n % 2 == 0 else "assistant", long_answer(n)) for n in range(200)]
    window = make_window(qtbot, tmp_path, history)
    shown = window.transcript.toPlainText()
    assert "Part 199" in shown and "Part 0\n" not in shown
    assert "earlier message" in shown
    rendered = window.transcript.renders
    assert rendered < 200, "only the newest messages were rendered"
    bar = window.transcript.verticalScrollBar()
    bar.setValue(bar.maximum())
    bar.setValue(0)  # scrolled to the top: older messages load
    qtbot.waitUntil(lambda: window.transcript.renders > rendered, timeout=5000)
    assert "Part 199" in window.transcript.toPlainText()


def test_max_new_tokens_is_bounded_by_the_context(qtbot, tmp_path) -> None:
    dialog = SettingsDialog(AppSettings(max_new_tokens=65536), ["CPU"], context=2048)
    qtbot.addWidget(dialog)
    assert dialog.max_new_tokens.maximum() == 1536 and dialog.max_new_tokens.value() == 1536
    assert "1536" in dialog.max_tokens_hint.text()
    dialog.context.setValue(1024)
    assert dialog.max_new_tokens.maximum() == 512 and dialog.result_settings().max_new_tokens == 512
    window = make_window(qtbot, tmp_path)
    window.engine = PacedTokens("hi")
    window.engine.context_tokens = 4096
    window.apply_settings(AppSettings(max_new_tokens=65536))
    assert window.settings.max_new_tokens == 3584
    assert "3584" in window.statusBar().currentMessage()


def test_device_change_during_an_answer_applies_after_it(qtbot, tmp_path, monkeypatch) -> None:
    window = make_window(qtbot, tmp_path)
    window.model_folder = tmp_path / "model"
    loads: list[tuple[Path, str]] = []
    monkeypatch.setattr(window, "load_model", lambda folder, device="CPU": loads.append((folder, device)))
    window.engine = PacedTokens(long_answer(1), rate=100)
    window._set_ready(True)
    window.composer.setPlainText("Go on")
    window.send()
    assert window.is_generating
    window.apply_settings(AppSettings(device="GPU", use_draft=False))
    assert loads == [] and "when this answer ends" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.answer_finished, timeout=60_000):
        pass
    assert loads == [(tmp_path / "model", "GPU")]
    assert "changed during the answer" in window.statusBar().currentMessage()
    assert AppSettings.load(window.store).device == "GPU"


@pytest.fixture(autouse=True)
def _settings_back_to_defaults():
    yield
    from app.gui.appearance import apply_language

    apply_language(QGuiApplication.instance(), "en")
