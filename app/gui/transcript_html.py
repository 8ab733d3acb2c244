"""The conversation as HTML for QTextBrowser: messages with their roles, a collapsible Thinking section, sources,
tool calls and tool results as cards, and action links."""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication

from app.gui.docs_html import link_markers, sources_html
from app.gui.html_style import card_html, colours
from app.gui.markdown_render import MarkdownRenderer, Rendered
from app.gui.tool_cards import call_card, result_card, split_tools, tool_card_html

STATUS_NOTES = {"stopped": "Stopped", "interrupted": "Interrupted: the app closed while answering",
                "failed": "Failed"}


def _t(text: str) -> str:
    """`text` in the app's language (context "Transcript" of the translation files)."""
    return QCoreApplication.translate("Transcript", text)


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
    c = colours(renderer.dark)
    if message.role == "tool":
        return Rendered(tool_card_html(message.id, message.tool, message.content, message.thinking_open,
                                       renderer.dark))
    tools = split_tools(message.content)
    cards = "".join([call_card(call, renderer.dark, _t("Tool call")) for call in tools.calls]
                    + [result_card(result, renderer.dark, _t("Tool result")) for result in tools.results])
    if message.role == "user":  # Markdown too (formulas, code), each new line kept
        typed = renderer.render(tools.text, 0, f"{message.id}:", breaks=True)
        bubble = (f'<table align="right" cellspacing="0" cellpadding="10" bgcolor="{c.user_bubble}">'
                  f'<tr><td>{typed.html}</td></tr></table>') if typed.html.strip() else ""
        return Rendered(f'<p align="right" style="margin:20px 0 4px 0; color:{c.muted}"><small><b>{_t("You")}'
                        f'</b></small></p>{bubble}{cards}'
                        f'<p align="right" style="margin:2px 0 0 0"><small>'
                        f'<a href="edit:{message.id}" style="color:{c.muted}">{_t("Edit")}</a> · '
                        f'<a href="copymsg:{message.id}" style="color:{c.muted}">{_t("Copy")}</a></small></p>',
                        typed.code_blocks)
    parts = [f'<p style="margin:20px 0 4px 0"><span style="color:{c.accent}">✦</span> '
             f'<b>{_t("Assistant")}</b></p>']
    if message.reasoning:  # a streaming answer without reasoning (Reasoning off) shows no Thinking section
        parts.append(_thinking_html(message, renderer.dark))
    rendered = renderer.render(tools.text, 0, f"{message.id}:")
    body = rendered.html or ("" if cards else "<p><i>…</i></p>")
    parts.append(link_markers(body, message.id, message.sources) if message.sources else body)
    parts.append(cards)
    if message.sources is not None:
        parts.append(card_html(_t("Sources"), sources_html(message.id, message.sources), renderer.dark, "§"))
    if message.sources_note:
        parts.append(f'<p style="color:{c.muted}"><small><i>{html.escape(message.sources_note)}</i></small></p>')
    links = [f'<a href="copymsg:{message.id}" style="color:{c.muted}">{_t("Copy")}</a>']
    if last_assistant and message.status != "streaming":
        links.append(f'<a href="regenerate:" style="color:{c.muted}">{_t("Regenerate")}</a>')
    note = STATUS_NOTES.get(message.status)
    footer = (f"<i>{_t(note)}</i> · " if note else "") + " · ".join(links)
    parts.append(f'<p style="margin:4px 0 0 0; color:{c.muted}"><small>{footer}</small></p>')
    return Rendered("\n".join(p for p in parts if p), rendered.code_blocks)


def _thinking_html(message: MessageView, dark: bool) -> str:
    c = colours(dark)
    title = (_t("Thinking…") if message.thinking_s is None
             else _t("Thought for {0} s").format(f"{message.thinking_s:.1f}"))
    arrow = "▾" if message.thinking_open else "▸"
    head = (f'<p style="margin:2px 0 6px 0"><a href="think:{message.id}" style="color:{c.muted}; '
            f'text-decoration:none">{arrow} {title}</a></p>')
    if not message.thinking_open:
        return head
    body = html.escape(message.reasoning).replace("\n", "<br>")
    return head + (f'<table width="100%" cellspacing="0" cellpadding="0"><tr><td width="3" bgcolor="{c.border}">'
                   f'</td><td style="padding-left:10px; color:{c.muted}"><i>{body}</i></td></tr></table>')
