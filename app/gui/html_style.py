"""Colours of the light and dark themes and the generic card the transcript draws for sources, tool calls and tool
results (Qt-free: HTML for QTextBrowser, which knows tables, bgcolor and borders but not rounded corners)."""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Colours:
    """One theme's colours (CSS hex)."""

    window: str
    base: str
    text: str
    muted: str
    accent: str
    accent_text: str
    border: str
    user_bubble: str
    card: str
    code: str
    danger: str


LIGHT = Colours(window="#f6f7f9", base="#ffffff", text="#1f2328", muted="#6b7280", accent="#2563eb",
                accent_text="#ffffff", border="#dfe3ea", user_bubble="#eef2ff", card="#f8fafc", code="#f6f8fa",
                danger="#b3261e")
DARK = Colours(window="#1d1f23", base="#16181c", text="#e6e8eb", muted="#9aa1ab", accent="#5b8def",
               accent_text="#ffffff", border="#30343b", user_bubble="#26324a", card="#1f2329", code="#272822",
               danger="#f28b82")


def colours(dark: bool) -> Colours:
    """The dark or the light theme's colours."""
    return DARK if dark else LIGHT


def card_html(title: str, body_html: str, dark: bool, glyph: str = "", note: str = "") -> str:
    """A bordered card: `glyph title` (escaped) over `body_html` (already HTML), with an optional muted `note`
    beside the title. Other code (sources, tool calls, tool results, MCP) uses it for anything shown as a card."""
    c = colours(dark)
    head = html.escape(f"{glyph} {title}".strip())
    aside = f' <span style="color:{c.muted}">{html.escape(note)}</span>' if note else ""
    return (f'<table width="100%" cellspacing="0" cellpadding="8" border="1" '
            f'style="border-collapse:collapse; border-color:{c.border}; border-style:solid; '
            f'background-color:{c.card}; margin-top:6px; margin-bottom:6px">'
            f'<tr><td><small><b>{head}</b>{aside}</small><br>{body_html}</td></tr></table>\n')
