"""A tool call and its result in the transcript: a collapsible card (link `tool:ID` opens and closes it)."""

from __future__ import annotations

import html
import json

from app.gui.html_style import card_html, colours

OUTCOMES = {"allowed": "allowed once", "always": "always allowed", "denied": "denied", "unknown": "no such tool",
            "repeated": "asked again; not run"}


def tool_card_html(message_id: int, record: dict | None, result: str, expanded: bool, dark: bool = False) -> str:
    """The card of tool turn `message_id`: `record` is what the tool loop stored (name, server, arguments,
    outcome, is_error, truncated), `result` the text the model got back."""
    record = record or {}
    notes = [OUTCOMES.get(record.get("outcome", ""), record.get("outcome", ""))]
    if record.get("is_error") and record.get("outcome") in ("allowed", "always"):
        notes.append("failed")
    if record.get("truncated"):
        notes.append("output cut")
    arrow = "▾" if expanded else "▸"
    title = (f"{arrow} Tool: {html.escape(record.get('name', '?'))} "
             f"<small>({html.escape(record.get('server', '') or '?')} · {html.escape(', '.join(filter(None, notes)))})"
             "</small>")
    head = (f'<div style="margin:4px 0 2px 0"><a href="tool:{message_id}" style="color:{colours(dark).muted}">'
            f"{title}</a></div>")
    if not expanded:
        return head
    arguments = html.escape(json.dumps(record.get("arguments", {}), ensure_ascii=False, indent=2))
    body = (f"<small><b>Arguments</b></small><pre>{arguments}</pre>"
            f"<small><b>Result</b></small><pre>{html.escape(result)}</pre>")
    return head + card_html(record.get("name", "?"), body, dark, "⚙")
