"""Tool calls and their results as cards in the transcript (Qt-free), one definition for both places they come
from: a stored tool turn of the app's tool loop (`tool_card_html`, collapsible by its `tool:ID` link), and calls
and results written in a message's text (`split_tools`: calls found by the engine's parser,
app/engine/tool_calls.py, in MiniCPM4's and the Hermes/Qwen format; results in Hermes/Qwen's
`<tool_response>…</tool_response>` blocks)."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

from app.engine.tool_calls import ToolCall, parse_tool_calls
from app.gui.html_style import card_html, colours

OUTCOMES = {"allowed": "allowed once", "always": "always allowed", "denied": "denied", "unknown": "no such tool",
            "repeated": "asked again; not run"}
_RESPONSE = re.compile(r"<tool_response>\s*(.*?)\s*(?:</tool_response>|$)", re.DOTALL)
_MARKERS = ("<tool_call>", "<|tool_call_start|>", "<tool_response>")


@dataclass(frozen=True)
class ToolParts:
    """A message split into its prose and its tool calls and results."""

    text: str
    calls: list[ToolCall] = field(default_factory=list)
    results: list[str] = field(default_factory=list)


def split_tools(text: str) -> ToolParts:
    """The prose of `text` and the tool calls and results it carries (text without markers is returned as is;
    a malformed call block stays in the prose, as the parser keeps it)."""
    if not any(marker in text for marker in _MARKERS):
        return ToolParts(text)
    results = [m.group(1) for m in _RESPONSE.finditer(text)]
    parsed = parse_tool_calls(_RESPONSE.sub("", text))
    return ToolParts(parsed.content, parsed.calls, results)


def arguments_html(arguments: dict, dark: bool) -> str:
    """A call's arguments as indented JSON."""
    shown = json.dumps(arguments, ensure_ascii=False, indent=2)
    return f'<pre style="margin:4px 0 0 0; color:{colours(dark).text}">{html.escape(shown)}</pre>'


def result_html(result: str) -> str:
    """A result: pretty JSON when it is JSON, the text otherwise."""
    try:
        shown = json.dumps(json.loads(result), ensure_ascii=False, indent=2)
    except ValueError:
        shown = result
    return f'<pre style="margin:4px 0 0 0">{html.escape(shown)}</pre>'


def call_card(call: ToolCall, dark: bool, title: str = "Tool call") -> str:
    """A call written in a message: the function's name, then its arguments."""
    return card_html(title, f"<code><b>{html.escape(call.name)}</b></code>{arguments_html(call.arguments, dark)}",
                     dark, "⚙")


def result_card(result: str, dark: bool, title: str = "Tool result") -> str:
    """A result written in a message."""
    return card_html(title, result_html(result), dark, "↩")


def tool_card_html(message_id: int, record: dict | None, result: str, expanded: bool, dark: bool = False) -> str:
    """The card of stored tool turn `message_id`: `record` is what the tool loop stored (name, server, arguments,
    outcome, is_error, truncated), `result` the text the model got back; collapsed, only its title line."""
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
    body = (f"<small><b>Arguments</b></small>{arguments_html(record.get('arguments', {}), dark)}"
            f"<small><b>Result</b></small>{result_html(result)}")
    return head + card_html(record.get("name", "?"), body, dark, "⚙")
