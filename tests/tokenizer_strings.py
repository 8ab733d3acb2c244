"""Deterministic varied strings for tokenizer fidelity checks: scripts, code, emoji, whitespace, specials."""

from __future__ import annotations

import random

_PIECES = (
    "Hello world", "the quick brown fox", "Paris is the capital of France.", "北京是中国的首都", "上海 欢迎你",
    "東京タワー", "こんにちは世界", "안녕하세요", "Привет, мир", "مرحبا بالعالم", "שלום", "γειά σου κόσμε",
    "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "SELECT * FROM t WHERE id=1;",
    "print('hi')", "<div class=\"a\">x</div>", "$ ls -la ~/", "a_b-c.d/e\\f", "#include <stdio.h>",
    "😀", "🎉🎉", "👩‍💻 coding", "🇫🇷", "❤️", "3.14159", "1,234,567", "2026-12-03", "0x1F", "1e-5", "100%",
    "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<unk>", "<think>", "</think>", "<|tool_call|>",
    " ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n", "\u3000", "\u00a0", "café", "naïve", "Ünïcödé",
    "ﬁ", "Ⅻ", "①②", "Ａｂｃ", "½", "µ", "∑∫√", "→", "—", "…", "«»", "\u200b", "A", "I", "'", '"', "?!",
)


def fidelity_strings(count: int = 600, seed: int = 18) -> list[str]:
    """`count` distinct strings: every piece alone, then random joins of 1-6 pieces with varied separators."""
    rng = random.Random(seed)
    seps = ("", " ", "  ", "\n", "\t", " \n", ", ")
    out = list(dict.fromkeys(_PIECES))
    while len(out) < count:
        parts = [rng.choice(_PIECES) for _ in range(rng.randint(1, 6))]
        text = "".join(p + rng.choice(seps) for p in parts)
        if rng.random() < 0.3:
            text = rng.choice((" ", "  ", "\n")) + text
        if text not in out:
            out.append(text)
    return out[:count]
