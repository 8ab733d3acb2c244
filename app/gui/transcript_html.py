"""The conversation as HTML for QTextBrowser: messages, a collapsible Thinking section, action links."""

from __future__ import annotations

import html
from dataclasses import dataclass

from app.gui.docs_html import link_markers, sources_html
from app.gui.markdown_render import MarkdownRenderer, Rendered
from app.gui.tool_card import tool_card_html

STATUS_NOTES = {"stopped": "Stopped", "interrupted": "Interrupted: the app closed while answering",
                "failed": "Failed"}


@dataclass
class MessageView:
    """What the transcript shows of one message."""

    id: int
    role: str
    content: str
    reasoning: str = ""
    status: str = "done"
    thinking_s: float | None = None  # how long the model reasoned
    thinking_open: bool = False
    sources: list[dict] | None = None  # Documents mode: the passages behind the answer
    sources_note: str = ""  # Documents mode: how the documents were given (whole, when they fit the context)
    tool: dict | None = None  # a tool turn: the call as stored (its card is open when thinking_open)


def transcript_html(messages: list[MessageView], renderer: MarkdownRenderer) -> tuple[str, list[str]]:
    """HTML of the whole conversation and the code blocks it holds (link `copy:ID:N` serves block N of message ID;
    the list holds them all, in order)."""
    last_assistant = max((m.id for m in messages if m.role == "assistant"), default=None)
    parts: list[str] = []
    code: list[str] = []
    for message in messages:
        rendered = message_html(message, renderer, message.id == last_assistant)
        parts.append(rendered.html)
        code += rendered.code_blocks
    return "\n".join(parts), code


def message_html(message: MessageView, renderer: MarkdownRenderer, last_assistant: bool = False) -> Rendered:
    """One message's HTML (`last_assistant`: it gets the Regenerate link) and its code blocks (`copy:ID:N`)."""
    if message.role == "tool":
        return Rendered(tool_card_html(message.id, message.tool, message.content, message.thinking_open))
    if message.role == "user":
        text = html.escape(message.content).replace("\n", "<br>")
        return Rendered(f'<div style="margin:8px 0 2px 0"><b>You</b></div><div>{text}</div>'
                        f'<div><small><a href="edit:{message.id}">Edit</a> · '
                        f'<a href="copymsg:{message.id}">Copy</a></small></div>')
    parts = ['<div style="margin:8px 0 2px 0"><b>Assistant</b></div>']
    if message.reasoning or (message.status == "streaming" and message.thinking_open):
        parts.append(_thinking_html(message))
    rendered = renderer.render(message.content, 0, f"{message.id}:")
    body = rendered.html or "<p><i>…</i></p>"
    parts.append(link_markers(body, message.id, message.sources) if message.sources else body)
    if message.sources is not None:
        parts.append(sources_html(message.id, message.sources))
    if message.sources_note:
        parts.append(f"<div><small><i>{html.escape(message.sources_note)}</i></small></div>")
    links = [f'<a href="copymsg:{message.id}">Copy</a>']
    if last_assistant and message.status != "streaming":
        links.append('<a href="regenerate:">Regenerate</a>')
    note = STATUS_NOTES.get(message.status)
    footer = (f"<i>{note}</i> · " if note else "") + " · ".join(links)
    parts.append(f"<div><small>{footer}</small></div>")
    return Rendered("\n".join(parts), rendered.code_blocks)


def _thinking_html(message: MessageView) -> str:
    title = "Thinking…" if message.thinking_s is None else f"Thought for {message.thinking_s:.1f} s"
    arrow = "▾" if message.thinking_open else "▸"
    head = f'<div><a href="think:{message.id}" style="color:gray">{arrow} {title}</a></div>'
    if not message.thinking_open:
        return head
    body = html.escape(message.reasoning).replace("\n", "<br>")
    return head + f'<div style="color:gray; margin-left:12px"><i>{body}</i></div>'
