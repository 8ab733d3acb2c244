"""The default model with its new defaults stops looping: on 20 open prompts no answer repeats a sentence more than
twice (main's defaults, without the repetition guard, repeated one 12 times at this seed; bench/RESULTS.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.app_settings import AppSettings
from app.engine import ChatEngine, Conversation
from app.engine.model_defaults import REPETITION_GUARD
from tests.repeat_prompts import PROMPTS, max_repeats, sentences

SEED = 1
MAX_NEW_TOKENS = 200
MOST_REPEATS = 2


def test_sentences_are_normalised_and_short_fragments_left_out() -> None:
    text = "The sky is blue.  the SKY is\tblue!\nStep 1:\nWhy is the sky blue? Yes."
    assert sentences(text) == ["the sky is blue", "the sky is blue", "why is the sky blue"]
    assert max_repeats(text) == (2, "the sky is blue")
    assert max_repeats("Short. Bits.") == (0, "")


@pytest.mark.slow
def test_default_model_repeats_no_sentence_more_than_twice(default_model: Path) -> None:
    settings = replace(AppSettings().generation(default_model), max_new_tokens=MAX_NEW_TOKENS, seed=SEED)
    assert all(getattr(settings, name) == value for name, value in REPETITION_GUARD.items())
    engine = ChatEngine(default_model)
    counts = []
    for prompt in PROMPTS:
        count, sentence = max_repeats(engine.send(Conversation(), prompt, settings).answer)
        counts.append((count, prompt, sentence))
    assert len(PROMPTS) == 20
    assert not [c for c in counts if c[0] > MOST_REPEATS], counts
