"""The think parser against a table of chunkings: split tags, missing opening tag, unterminated blocks."""

from __future__ import annotations

import pytest

from app.engine.think_parser import ThinkParser

TEXT = "<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4."


def _run(chunks: list[str], starts_in_think: bool = False):
    parser = ThinkParser(starts_in_think)
    deltas = [d for chunk in chunks for d in parser.feed(chunk)]
    return parser.finish(), deltas


def _every_split(text: str):
    for i in range(1, len(text)):
        yield [text[:i], text[i:]]


@pytest.mark.parametrize("chunks", [
    [TEXT],
    list(TEXT),  # one character at a time
    ["<th", "ink>\nLet me add 2 and 2.\n</th", "ink>\n\nThe answer is 4."],
    ["<", "think", ">", "\nLet me add 2 and 2.\n<", "/", "think", ">\n\nThe answer is 4."],
    ["<think>\nLet me add 2 and 2.\n</think", ">", "\n\nThe answer is 4."],
])
def test_split_tags(chunks) -> None:
    parsed, deltas = _run(chunks)
    assert parsed.reasoning == "Let me add 2 and 2."
    assert parsed.answer == "The answer is 4."
    assert not parsed.unterminated
    assert "".join(d.text for d in deltas if d.kind == "answer").strip() == "The answer is 4."
    assert "".join(d.text for d in deltas if d.kind == "reasoning").strip() == "Let me add 2 and 2."


def test_every_two_way_split() -> None:
    for chunks in _every_split(TEXT):
        parsed, _ = _run(chunks)
        assert (parsed.reasoning, parsed.answer) == ("Let me add 2 and 2.", "The answer is 4."), chunks


def test_template_opened_the_block() -> None:
    parsed, deltas = _run(["Let me add", " 2 and 2.\n</th", "ink>\n\nIt is 4."], starts_in_think=True)
    assert (parsed.reasoning, parsed.answer) == ("Let me add 2 and 2.", "It is 4.")
    assert deltas[0].kind == "reasoning"


def test_missing_opening_tag_is_recovered_at_the_end() -> None:
    parsed, _ = _run(["Let me add 2 and 2.", "</think>", "\n\nIt is 4."])
    assert (parsed.reasoning, parsed.answer) == ("Let me add 2 and 2.", "It is 4.")


def test_unterminated_think_block_at_cancel() -> None:
    parsed, _ = _run(["<think>\nLet me add", " 2 and 2"])
    assert parsed.unterminated
    assert parsed.reasoning == "Let me add 2 and 2"
    assert parsed.answer == ""


def test_no_tags_is_all_answer() -> None:
    parsed, deltas = _run(["The answer", " is 4 <b>bold</b> a<", "b"])
    assert parsed == parsed.__class__("", "The answer is 4 <b>bold</b> a<b", False)
    assert {d.kind for d in deltas} == {"answer"}


def test_partial_tag_lookalike_is_released() -> None:
    parsed, _ = _run(["x <thin", "g> y"])
    assert parsed.answer == "x <thing> y" and parsed.reasoning == ""


def test_empty_think_block_then_answer() -> None:
    parsed, _ = _run(["<think>\n\n</think>\n\nHi there."])
    assert (parsed.reasoning, parsed.answer) == ("", "Hi there.")
