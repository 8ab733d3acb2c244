"""Tool calls and tool results in a message's text, as cards: calls found by the engine's parser
(app/engine/tool_calls.py: MiniCPM4's and the Hermes/Qwen format), results in Hermes/Qwen's
`<tool_response>…</tool_response>` blocks (Qt-free)."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

from app.engine.tool_calls import ToolCall, parse_tool_calls
from app.gui.html_style import card_html, colours

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


def call_card(call: ToolCall, dark: bool, title: str = "Tool call") -> str:
    """A call: the function's name, then its arguments as indented JSON."""
    arguments = json.dumps(call.arguments, ensure_ascii=False, indent=2)
    body = (f'<code><b>{html.escape(call.name)}</b></code>'
            f'<pre style="margin:4px 0 0 0; color:{colours(dark).text}">{html.escape(arguments)}</pre>')
    return card_html(title, body, dark, "⚙")


def result_card(result: str, dark: bool, title: str = "Tool result") -> str:
    """A result: pretty JSON when it is JSON, the text otherwise."""
    try:
        shown = json.dumps(json.loads(result), ensure_ascii=False, indent=2)
    except ValueError:
        shown = result
    body = f'<pre style="margin:4px 0 0 0">{html.escape(shown)}</pre>'
    return card_html(title, body, dark, "↩")
