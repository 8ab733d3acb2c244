"""Streaming text from token ids in the assisted loop: whole characters only, and stop strings left out."""

from __future__ import annotations

from app.engine.token_text import TokenText


def _ids(tokenizer, text: str) -> list[int]:
    return [int(i) for i in tokenizer.encode([text], add_special_tokens=False).input_ids.data[0]]


def test_pieces_hold_whole_characters_and_end_before_a_stop_string(tiny_llama, exported) -> None:
    import openvino_genai as og

    tokenizer = og.Tokenizer(str(exported(tiny_llama, "int4")))
    text = "Waves 🌊 and books. END of it"
    ids = _ids(tokenizer, text)
    assert tokenizer.decode(ids) == text and len(ids) > len(text.split())
    stream = TokenText(tokenizer, ("END",))
    pieces = []
    for token in ids:
        pieces.append(stream.push([token]))
        if stream.stopped:
            break
    assert stream.stopped and "".join(pieces) == "Waves 🌊 and books. " and stream.finish() == ""
    assert all("\ufffd" not in piece for piece in pieces)
    plain = TokenText(tokenizer, ("never there",))
    assert "".join(plain.push([token]) for token in ids) + plain.finish() == text and not plain.stopped
