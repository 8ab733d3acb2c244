"""Split a document's blocks into passages by structure: a chunk never spans two pages or two sections, holds
whole paragraphs where it can (sentences, then words, when one paragraph is too long), and repeats the end of
the previous chunk of its section so a fact cut at a boundary is still whole in one of them."""

from __future__ import annotations

import re
from itertools import groupby

from app.docs.blocks import Block, Chunk

TARGET_WORDS = 120
OVERLAP_WORDS = 25
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def chunk_blocks(blocks: list[Block], target: int = TARGET_WORDS, overlap: int = OVERLAP_WORDS) -> list[Chunk]:
    """Chunks in document order, numbered from 0."""
    chunks: list[Chunk] = []
    for (page, heading), section in groupby(blocks, key=lambda b: (b.page, b.heading)):
        for text in _section_chunks([b.text for b in section], target, overlap):
            chunks.append(Chunk(len(chunks), text, page, heading))
    return chunks


def _pieces(paragraph: str, target: int) -> list[list[str]]:
    """A paragraph as word lists of at most `target` words, split at sentence ends where possible."""
    words = paragraph.split()
    if len(words) <= target:
        return [words]
    pieces: list[list[str]] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        sentence_words = sentence.split()
        while len(sentence_words) > target:  # one enormous sentence: cut by words
            if current:
                pieces.append(current)
                current = []
            pieces.append(sentence_words[:target])
            sentence_words = sentence_words[target:]
        if current and len(current) + len(sentence_words) > target:
            pieces.append(current)
            current = []
        current = current + sentence_words
    if current:
        pieces.append(current)
    return pieces


def _section_chunks(paragraphs: list[str], target: int, overlap: int) -> list[str]:
    pieces = [piece for paragraph in paragraphs for piece in _pieces(paragraph, target)]
    chunks: list[str] = []
    current: list[list[str]] = []
    size = 0
    for piece in pieces:
        if current and size + len(piece) > target:
            chunks.append("\n".join(" ".join(p) for p in current))
            tail = [w for p in current for w in p][-overlap:] if overlap else []
            current, size = ([tail] if tail else []), len(tail)
        current.append(piece)
        size += len(piece)
    if current:
        chunks.append("\n".join(" ".join(p) for p in current))
    return chunks


def join_chunks(chunks: list[Chunk], overlap: int = OVERLAP_WORDS) -> str:
    """A document's text again from its chunks in order: the repeated tail that opens a chunk of the same section
    (chunk_blocks' overlap) dropped, each new heading on a line of its own, sections apart by a blank line."""
    parts: list[str] = []
    previous: Chunk | None = None
    for chunk in chunks:
        text = chunk.text
        if previous is not None and (previous.page, previous.heading) == (chunk.page, chunk.heading):
            first, _, rest = text.partition("\n")
            tail = previous.text.split()[-overlap:] if overlap else []
            if rest and tail and first.split() == tail:
                text = rest
            parts.append("\n" + text)
        else:
            if parts:
                parts.append("\n\n")
            parts.append(f"{chunk.heading}\n{text}" if chunk.heading else text)
        previous = chunk
    return "".join(parts)
