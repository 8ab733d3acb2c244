"""The pieces a document is made of: blocks (paragraphs) from extraction, chunks for the index."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    """A paragraph of a document."""

    text: str
    page: int | None = None  # 1-based, PDFs only
    heading: str = ""  # the nearest heading above it


@dataclass(frozen=True)
class Chunk:
    """A passage of the index: a few paragraphs of one section (and one page), overlapping the previous one."""

    ord: int
    text: str
    page: int | None
    heading: str
