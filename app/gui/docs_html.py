"""How a Documents-mode answer shows its sources: the list under the answer with each source's marks, a warning
for numbers the sources contradict, and every number of the [n] / [n, m] / [n][m] markers made a link.
Each link (`source:MESSAGE:N`) opens the source."""

from __future__ import annotations

import html
import re
from pathlib import Path

from app.docs.claims import MARKER
from app.docs.source_marks import NOT_SUPPORTED, conflict_lines, marks, title, unsupported_note

_KEPT = re.compile(r"<(pre|code|a)\b.*?</\1>|<[^>]+>", re.DOTALL | re.IGNORECASE)  # code, links and tags stay as is
_DIGITS = re.compile(r"\d+")


def link_markers(body: str, message_id: int, sources: list[dict]) -> str:
    """Make each number of the markers the model wrote a link to that source (numbers with no source stay text)."""
    numbers = {s["n"] for s in sources}

    def link(number: re.Match) -> str:
        n = number.group(0)
        return f'<a href="source:{message_id}:{int(n)}">{n}</a>' if int(n) in numbers else n

    def group(marker: re.Match) -> str:
        return "[" + _DIGITS.sub(link, marker.group(1)) + "]"

    parts, start = [], 0
    for kept in _KEPT.finditer(body):
        parts += [MARKER.sub(group, body[start:kept.start()]), kept.group(0)]
        start = kept.end()
    parts.append(MARKER.sub(group, body[start:]))
    return "".join(parts)


def place(source: dict) -> str:
    """`file.pdf, page 2` or `notes.md — Heading`."""
    name = Path(source["path"]).name
    if source.get("page") is not None:
        return f"{name}, page {source['page']}"
    return f"{name} — {source['heading']}" if source.get("heading") else name


def sources_html(message_id: int, sources: list[dict]) -> str:
    """The list under the answer: a warning for each number a source contradicts, then every source the prompt
    held (sources the answer rests on first) with its marks."""
    if not sources:
        return '<div><small><i>No passage of your documents matched this question.</i></small></div>'
    parts = []
    conflicts = conflict_lines(sources)
    if conflicts:
        listed = "<br>".join(html.escape(line) for line in conflicts)
        parts.append(f'<div style="color:#b3261e"><small><b>⚠ {NOT_SUPPORTED}:</b> {listed}</small></div>')
    rows = []
    for source in sources:
        how = marks(source)
        label = f' <span style="color:gray">({", ".join(how)})</span>' if how else ""
        rows.append(f'<a href="source:{message_id}:{source["n"]}">[{source["n"]}]</a> '
                    f"{html.escape(place(source))}{label}")
    note = unsupported_note(sources)
    more = f"<br><i>{html.escape(note)}</i>" if note else ""
    parts.append(f'<div><small><b>{title(sources)}:</b><br>{"<br>".join(rows)}{more}</small></div>')
    return "".join(parts)
