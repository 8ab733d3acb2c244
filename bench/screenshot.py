"""Screenshot of the window mid-answer, with a Thinking section and a code block: resources/screenshot.png.

Run it under a real X server (Xvfb):  xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python bench/screenshot.py
Everything shown is real model output: the default model writes a code block, then the window switches to
the thinking-trained tiny Llama of the tests and the shot is taken while its reasoning streams.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QObject, Slot  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.default_model import ensure_default_model  # noqa: E402
from app.engine import GenerationSettings  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from app.store import ChatStore  # noqa: E402
from export.exporter import ExportRequest, run_export  # noqa: E402
from tests.conftest import EXPORTS, _cached_build  # noqa: E402
from tests.model_builders import build_tiny_llama  # noqa: E402

OUT = REPO / "resources" / "screenshot.png"


def thinking_model() -> Path:
    """The thinking-trained tiny Llama of the tests, exported to int4 (cached with the tests' models)."""
    source = _cached_build("tiny-llama", lambda p: build_tiny_llama(p, steps=300))
    ir = EXPORTS / f"{source.name}-int4"
    if not (ir / "manifest.json").is_file():
        run_export(ExportRequest(str(source), ir, force=True))
    return ir


class Shooter(QObject):
    """Lives on the UI thread; grabs the window at the first reasoning delta that mentions a step."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window, self.done = window, False

    @Slot(str, str)
    def on_delta(self, kind: str, _text: str) -> None:
        streaming = self.window._streaming
        if self.done or kind != "reasoning" or streaming is None or "Add" not in streaming.reasoning:
            return
        self.done = True
        self.window._render()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        self.window.grab().save(str(OUT))
        print(f"saved {OUT}", flush=True)


def main() -> int:
    app = QApplication(sys.argv)
    store = ChatStore(Path(tempfile.mkdtemp()) / "chats.sqlite3")
    window = MainWindow(store, ensure_default_model(), settings=GenerationSettings(max_new_tokens=160))
    window.resize(1280, 820)
    window.show()
    shooter = Shooter(window)
    steps = iter(["code", "switch", "think", "quit"])

    def next_step() -> None:
        step = next(steps)
        if step == "code":  # 1: the default model writes code (a highlighted block with a Copy link)
            window.new_chat()
            window.composer.setPlainText("Write a Python function that returns the square of a number.")
            window.send()
        elif step == "switch":  # 2: switch to the thinking model without restarting
            window.load_model(thinking_model())
        elif step == "think":  # 3: reasoning on; the shot is taken while the Thinking section streams
            # The tiny model only knows single-turn arithmetic chats: give it a context that holds just the
            # new question (the app leaves the older turns out of the prompt and says so).
            window.engine.context_tokens = 110
            window.settings = GenerationSettings(max_new_tokens=60)
            window.think_toggle.setChecked(True)
            window.composer.setPlainText("I have 3 apples and get 4 more. How many apples do I have?")
            window.answer_started.connect(lambda worker: worker.delta.connect(shooter.on_delta))
            window.send()
        else:
            app.quit()

    window.model_ready.connect(next_step)
    window.answer_finished.connect(next_step)
    app.exec()
    window.threads.wait_all()
    sys.stdout.flush()
    os._exit(0 if shooter.done else 1)  # skip interpreter teardown of Qt/OpenVINO objects


if __name__ == "__main__":
    raise SystemExit(main())
