"""A token source for measuring and testing the window, not the model: it stands where ChatEngine stands (the window
and GenerationWorker call the same generate()) and streams a fixed Markdown answer (text, code, math) at a set rate,
paced by the clock on the worker thread."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from app.engine import Conversation, Delta, GenerationSettings, Reply


def long_answer(n: int) -> str:
    """A long answer: paragraphs, a code block with `$` in it, inline and display math (formulas differ per n)."""
    return (f"## Part {n}\n\nThe sum of the first $n$ squares is "
            f"$\\sum_{{k=1}}^{{n}} k^2 = \\frac{{n(n+1)(2n+1)}}{{6}}$, so for $n = {n}$ "
            f"it is ${n * (n + 1) * (2 * n + 1) // 6}$. *Emphasis*, **bold** and a list follow.\n\n"
            "- first point, with `inline code` and $5 prices that stay text\n- second point\n- third point\n\n"
            f"$$\n\\int_0^{{{n}}} x^2\\,dx = \\frac{{{n}^3}}{{3}}\n$$\n\n"
            "```python\n"
            f"def squares(n: int = {n}) -> int:\n"
            "    \"\"\"Sum of squares; costs $0.\"\"\"\n"
            "    total = 0\n"
            "    for k in range(1, n + 1):\n"
            "        total += k * k\n"
            "    return total\n"
            "```\n\n"
            "That closes this part; " + "the derivation is checked line by line against the formula above. " * 4)


def tokens(text: str) -> list[str]:
    """Word-sized pieces, the way a tokenizer streams them (spaces stay with the word after them)."""
    return re.findall(r"\s*\S+|\s+", text)


class PacedTokens:
    """`generate()` streams `text` at `rate` tokens per second; nothing is loaded, nothing is modelled."""

    supports_thinking = False
    device = "CPU"
    draft_state = ""
    context_note = ""
    context_tokens = 8192

    def __init__(self, text: str, rate: float = 50.0, name: str = "paced-tokens") -> None:
        self.text, self.rate, self.name = text, rate, name
        self.sent: list[float] = []  # when each token was handed to the window (monotonic seconds)

    def generate(self, conversation: Conversation, settings: GenerationSettings | None, think: bool | None,
                 on_delta: Callable[[Delta], None], cancel: threading.Event) -> Reply:
        """Stream the text token by token on the clock; stops early when `cancel` is set."""
        pieces, start, answer = tokens(self.text), time.monotonic(), []
        for index, piece in enumerate(pieces):
            if cancel.is_set():
                break
            delay = start + index / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            answer.append(piece)
            self.sent.append(time.monotonic())
            on_delta(Delta("answer", piece))
        seconds = max(time.monotonic() - start, 1e-6)
        return Reply("".join(answer), "", len(answer), 0, 1000 / self.rate, len(answer) / seconds,
                     cancel.is_set(), False, 0)
