"""The sources kept with a Documents-mode answer, and dropping their copied text when the documents go.

An answer keeps copies of its passages (not references into the index) so its sources still open after a document
is re-indexed under new chunk ids; when the user removes a document or deletes the index, the copies go too.
"""

from __future__ import annotations

KEPT_TEXT_KEYS = frozenset({"path"})  # the only text a scrubbed source keeps: which file it came from


def scrub_source(source: dict) -> dict:
    """The source without any text of the passage: numbers and flags stay, strings other than the path and any
    nested values go, and `removed` says why the passage can no longer be shown."""
    kept = {k: v for k, v in source.items()
            if k in KEPT_TEXT_KEYS or v is None or isinstance(v, bool | int | float)}
    return {**kept, "text": "", "heading": "", "removed": True}


def scrub_sources(metrics: dict, paths: set[str] | None) -> dict | None:
    """`metrics` with the sources from `paths` (None: every source) scrubbed, or None when nothing changes."""
    sources = metrics.get("sources")
    if not isinstance(sources, list):
        return None
    changed = False
    scrubbed = []
    for source in sources:
        if isinstance(source, dict) and not source.get("removed") and (paths is None or source.get("path") in paths):
            source, changed = scrub_source(source), True
        scrubbed.append(source)
    return {**metrics, "sources": scrubbed} if changed else None
