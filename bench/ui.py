"""The window under a streaming answer: event-loop lateness while an answer streams at 50 tokens/s into a chat of
200 long messages (text, a code block, inline and display math each), and the time to open that chat.

Real widgets, the real window and chat store (SQLite in a temporary folder); the tokens come from a clock
(bench/paced_tokens.py), not the model, so the numbers are the UI's. Offscreen unless QT_QPA_PLATFORM says otherwise.

    .venv/bin/python bench/ui.py [--messages 200] [--rate 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from app.app_settings import AppSettings
from app.gui.main_window import MainWindow
from app.store import ChatStore
from bench.paced_tokens import PacedTokens, long_answer, tokens

TICK_MS = 10  # the lateness probe's interval


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def fill_chat(store: ChatStore, count: int) -> int:
    """A chat of `count` long messages, alternating question and answer, every one with text, code and math."""
    chat = store.create_chat(title="Long chat")
    for n in range(count):
        store.add_message(chat, "user" if n % 2 == 0 else "assistant", long_answer(n))
    return chat


def run_until(condition, seconds: float) -> None:
    loop = QEventLoop()
    poll = QTimer(interval=5)
    poll.timeout.connect(lambda: loop.quit() if condition() else None)
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    poll.start()
    loop.exec()
    poll.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        store = ChatStore(Path(folder) / "chats.sqlite3")
        big = fill_chat(store, args.messages)
        store.create_chat(title="Other chat")  # the newest: the window opens on it
        window = MainWindow(store, None, app_settings=AppSettings())
        window.resize(1100, 760)
        window.show()
        window.renderer.math.ready.wait(60)  # the window loads the formula renderer in the background at start
        run_until(lambda: False, 0.2)

        start = time.perf_counter()
        window.select_chat(big)
        window.transcript.viewport().repaint()  # laid out and painted, formulas on screen included
        open_ms = (time.perf_counter() - start) * 1000
        emit({"bench": "ui-open", "messages": args.messages, "open_chat_ms": round(open_ms, 1),
              "messages_rendered": window.transcript.renders,  # the newest; older ones load on scrolling up
              "formulas_typeset": window.renderer.math.renders})

        answer = "\n\n".join(long_answer(1000 + n) for n in range(3))
        engine = PacedTokens(answer, args.rate)
        window.engine = engine
        window._set_ready(True)
        reads = {"messages": 0}
        original = store.messages

        def counted(chat_id: int):
            reads["messages"] += 1
            return original(chat_id)

        store.messages = counted
        lateness: list[float] = []
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            lateness.append(max(0.0, now - last[0] - TICK_MS / 1000) * 1000)
            last[0] = now

        probe = QTimer(interval=TICK_MS)
        probe.timeout.connect(tick)
        done = []
        window.answer_finished.connect(lambda: done.append(True))
        window.composer.setPlainText("Three more parts, please.")
        probe.start()
        run_until(lambda: False, 0.3)  # the probe runs before, during and after the send (its render included)
        started = time.perf_counter()
        window.send()
        reads_at_start = reads["messages"]
        run_until(lambda: bool(done) or window._streaming is None, 600)
        probe.stop()
        seconds = time.perf_counter() - started
        p95 = statistics.quantiles(lateness, n=20)[-1]
        stored = original(big)[-1]
        emit({"bench": "ui-stream", "tokens": len(tokens(answer)), "rate": args.rate, "seconds": round(seconds, 2),
              "ticks": len(lateness), "lateness_p50_ms": round(statistics.median(lateness), 2),
              "lateness_p95_ms": round(p95, 2), "lateness_max_ms": round(max(lateness), 2),
              "chat_reads_while_streaming": reads["messages"] - reads_at_start - 1,  # less the final render's one
              "answer_stored": stored.content == answer})
        emit({"bench": "ui-summary", "messages": args.messages, "lateness_p95_ms": round(p95, 1),
              "lateness_max_ms": round(max(lateness), 1), "open_chat_ms": round(open_ms, 1)})
        window.close()
        store.close()
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
