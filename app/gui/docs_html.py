"""How a Documents-mode answer shows its sources: numbered links under the answer, and [n] markers made links.
Each link (`source:MESSAGE:N`) opens the passage."""

from __future__ import annotations

import html
import re
from pathlib import Path

_MARKER = re.compile(r"\[(\d+)\]")


def link_markers(body: str, message_id: int, sources: list[dict]) -> str:
    """Turn the [n] markers the model wrote into links to passage n (only numbers that exist)."""
    numbers = {s["n"] for s in sources}
    return _MARKER.sub(lambda m: f'<a href="source:{message_id}:{m.group(1)}">[{m.group(1)}]</a>'
                       if int(m.group(1)) in numbers else m.group(0), body)


def place(source: dict) -> str:
    """`file.pdf, page 2` or `notes.md — Heading`."""
    name = Path(source["path"]).name
    if source.get("page") is not None:
        return f"{name}, page {source['page']}"
    return f"{name} — {source['heading']}" if source.get("heading") else name


def sources_html(message_id: int, sources: list[dict]) -> str:
    """The list under the answer. Sources the answer rests on come first and say why; when it rests on none,
    the passages the model was given are listed as such (nothing is claimed)."""
    if not sources:
        return '<div><small><i>No passage of your documents matched this question.</i></small></div>'
    used = [s for s in sources if s.get("cited") or s.get("matched")]
    rows = []
    for source in used or sources:
        how = []
        if source.get("cited"):
            how.append("cited")
        if source.get("matched"):
            how.append("quoted")
        label = f' <span style="color:gray">({", ".join(how)})</span>' if how else ""
        rows.append(f'<a href="source:{message_id}:{source["n"]}">[{source["n"]}]</a> '
                    f"{html.escape(place(source))}{label}")
    title = "Sources" if used else "Passages given to the model (the answer does not quote them)"
    others = len(sources) - len(used) if used else 0
    more = f" · {others} more passage(s) were given to the model" if others else ""
    return f'<div><small><b>{title}:</b><br>{"<br>".join(rows)}{more}</small></div>'
