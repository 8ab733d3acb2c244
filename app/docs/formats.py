"""Which files the document index takes, and the limits that protect it."""

from __future__ import annotations

SUFFIXES = {".pdf": "pdf", ".txt": "text", ".md": "markdown", ".markdown": "markdown", ".docx": "docx",
            ".html": "html", ".htm": "html"}
MAX_FILE_BYTES = 100 * 2**20  # bigger files are skipped: they would take hours to embed and a lot of memory


class DocumentError(Exception):
    """A file cannot be indexed; the message says why and what to do (the batch goes on without it)."""


def kind_of(name: str) -> str | None:
    """The format of a file name by its suffix, or None when the index does not take it."""
    dot = name.rfind(".")
    return SUFFIXES.get(name[dot:].lower()) if dot >= 0 else None
