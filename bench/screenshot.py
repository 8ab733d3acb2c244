"""Screenshots for the README, from real model output: resources/screenshots/*.png.

Run it under a real X server (Xvfb):  xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python bench/screenshot.py
(without one it falls back to Qt's offscreen platform). Uses the tests' cached data folder (the embedded default
model, SmolLM2-135M-Instruct int4, and the documents' embedding model; built there on first use).

  welcome.png    an empty chat: the model's card, example prompts, adding documents and models (light)
  light.png      a code answer (light theme)
  math-code.png  math and code: the user's message has the formulas, the model's answer the code
  dark.png       the same chat in the dark theme
  zh_CN.png      the window in 简体中文 (the welcome state)
  tool-card.png  a real tool call through the window's tool loop: Qwen2.5-Coder-1.5B-Instruct int4 (the export
                 bench/tools.py caches in .cache/bench-tools/, or --tool-model FOLDER) calls mcp-server-time (PyPI),
                 the approval dialog is answered "Allow once", and the call, its result card and the model's
                 answer are shown. Without that model the card is skipped (the 135M default model cannot call tools)
  tool-approval.png  that call's approval dialog (Allow once / Always for this tool / Deny)
  sources.png    Documents mode: the tests' corpus indexed, the model's answer with its sources card
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import CACHE, DATA_SOURCES, EXPORTER_PACKAGES, code_key, keyed_cache  # noqa: E402

os.environ["CPMDESK_DATA_DIR"] = str(keyed_cache(CACHE / "test-data", code_key(DATA_SOURCES, EXPORTER_PACKAGES)))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from app.app_settings import AppSettings  # noqa: E402
from app.default_model import ensure_default_model  # noqa: E402
from app.docs.embedder import ensure_embedding_model  # noqa: E402
from app.gui.appearance import apply_theme  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from app.store import ChatStore  # noqa: E402
from tests.docs_corpus import write_corpus  # noqa: E402
from tests.qt_wait import wait  # noqa: E402

OUT = REPO / "resources" / "screenshots"
TOOL_MODEL = CACHE / "bench-tools" / "qwen2.5-coder-1.5b-instruct-int4"


def shoot(window, name: str) -> None:
    """Save the window (or a dialog) as OUT/NAME.png (highest PNG compression)."""
    QApplication.processEvents()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    window.grab().toImage().save(str(path), "PNG", 0)
    print(f"saved {path} ({path.stat().st_size // 1024} KB)", flush=True)


def ask(window: MainWindow, text: str) -> None:
    """Type `text`, send it and wait for the whole answer."""
    window.composer.setPlainText(text)
    window.send()
    wait(lambda: not window.is_generating, 300)


def answer_again(window: MainWindow) -> None:
    """Answer the chat's last message (the model's turn after a tool result)."""
    window.regenerate()
    wait(lambda: not window.is_generating, 300)


def tool_card(window: MainWindow, folder: Path) -> None:
    """A real call: the tool model asks mcp-server-time, the dialog is answered Allow once, the card is opened."""
    import json

    from PySide6.QtCore import QUrl

    config = window.tools.config_path
    server = {"command": str(Path(sys.executable).parent / "mcp-server-time"),
              "args": ["--local-timezone", "Europe/Paris"]}
    config.write_text(json.dumps({"mcpServers": {"time": server}}))
    window.tools.reload()
    window.switch_model(folder)
    wait(lambda: window.engine is not None and window.engine.folder == folder, 600)
    window.new_chat()
    window.tools.toggle.setChecked(True)
    window.composer.setPlainText("What time is it in Tokyo right now?")
    window.send()
    wait(lambda: window.tools.dialog is not None and window.tools.dialog.isVisible(), 300)
    shoot(window.tools.dialog, "tool-approval")  # the approval dialog, a window of its own
    window.tools.dialog.allow_button.click()
    wait(lambda: not window.is_generating, 300)
    for message in window.store.messages(window.chat_id):
        if message.role == "tool":
            window._on_link(QUrl(f"tool:{message.id}"))  # open the card, as a click on it does
    shoot(window, "tool-card")
    window.tools.toggle.setChecked(False)


def theme(window: MainWindow, name: str, language: str = "en") -> None:
    """Switch theme and language as Settings does."""
    window.apply_settings(AppSettings(theme=name, language=language, max_new_tokens=window.app_settings.max_new_tokens,
                                      model_folder=window.app_settings.model_folder))


def main() -> int:
    app = QApplication(sys.argv)
    apply_theme(app, "light")
    model = ensure_default_model()
    store = ChatStore(Path(tempfile.mkdtemp()) / "chats.sqlite3")
    window = MainWindow(store, model, app_settings=AppSettings(theme="light", max_new_tokens=220,
                                                               model_folder=str(model)))
    window.resize(1280, 820)
    window.show()
    wait(lambda: window.engine is not None, 300)
    window.new_chat()
    shoot(window, "welcome")

    ask(window, "Write a Python function that returns the square of a number.")
    shoot(window, "light")

    window.new_chat()
    ask(window, "The area of a circle is $A = \\pi r^2$, and its circumference is $$C = 2 \\pi r$$\n"
                "Write a Python function that computes the area of a circle.")
    shoot(window, "math-code")
    theme(window, "dark")
    shoot(window, "dark")
    theme(window, "light", "zh_CN")
    window.new_chat()
    shoot(window, "zh_CN")
    theme(window, "light")

    tool_model = Path(sys.argv[sys.argv.index("--tool-model") + 1]) if "--tool-model" in sys.argv else TOOL_MODEL
    if (tool_model / "manifest.json").is_file():
        tool_card(window, tool_model)
        window.switch_model(model)
        wait(lambda: window.engine is not None and window.engine.folder == model, 300)
    else:
        print(f"tool-card.png skipped: no tool-calling model in {tool_model} (run bench/tools.py once)", flush=True)

    ensure_embedding_model()
    window.new_chat()
    window.docs.toggle.setChecked(True)
    dialog = window.docs.dialog
    dialog.add_paths([write_corpus(Path(tempfile.mkdtemp()) / "corpus")])
    wait(lambda: not dialog.is_indexing and dialog.last_report is not None, 600)
    dialog.close()
    ask(window, "When does the ferry to Corvin Island leave?")
    shoot(window, "sources")
    window.close()
    window.threads.wait_all()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown of Qt/OpenVINO objects


if __name__ == "__main__":
    raise SystemExit(main())
