"""Open prompts that make small models loop, and the count of repeated sentences in an answer."""

from __future__ import annotations

import re
from collections import Counter

PROMPTS = (
    "Explain in two short paragraphs why the sky is blue.",
    "Explain how a rainbow forms.",
    "Why do we have seasons on Earth?",
    "Explain what photosynthesis is to a ten-year-old.",
    "How does a computer store information?",
    "List ten healthy breakfast ideas.",
    "Give me a list of things to pack for a beach holiday.",
    "List some tips for learning a new language.",
    "Write a short story about a lost cat who finds its way home.",
    "Tell me a story about a robot who wants to become a painter.",
    "Write a short fairy tale about a brave little mouse.",
    "How do I make a cup of tea?",
    "How do I change a flat tyre on a bicycle?",
    "Explain step by step how to plant a tree.",
    "How can I improve my sleep?",
    "Compare cats and dogs as pets.",
    "What are the differences between summer and winter?",
    "Compare reading a book with watching a film.",
    "Describe your ideal city.",
    "What makes a good friend?",
)
MIN_WORDS = 4  # shorter fragments ("Step 1:", "Yes.") repeat legitimately


def sentences(text: str) -> list[str]:
    """The answer's sentences (split on . ! ? and newlines), whitespace collapsed and lower-cased, fragments of
    fewer than MIN_WORDS words left out."""
    parts = (" ".join(part.split()).lower() for part in re.split(r"[.!?\n]", text))
    return [part for part in parts if len(part.split()) >= MIN_WORDS]


def max_repeats(text: str) -> tuple[int, str]:
    """How often the answer's most repeated sentence comes, and that sentence ((0, "") when it has none)."""
    counts = Counter(sentences(text))
    return max(((n, s) for s, n in counts.items()), default=(0, ""))
