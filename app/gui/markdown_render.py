"""Markdown to the HTML subset QTextBrowser shows: markdown-it-py for structure, Pygments for code colours.

Code blocks get a "Copy" link (`copy:N`); the caller keeps the returned code texts to serve it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound


@dataclass
class Rendered:
    """HTML plus the code blocks it contains, in order (index N serves link `copy:N`)."""

    html: str
    code_blocks: list[str] = field(default_factory=list)


class MarkdownRenderer:
    """One renderer per window; `dark` picks the code colour scheme."""

    def __init__(self, dark: bool = False) -> None:
        self._md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
        self._formatter = HtmlFormatter(noclasses=True, nowrap=True, style="monokai" if dark else "friendly")
        self._code_background = "#272822" if dark else "#f6f8fa"

    def render(self, text: str, first_code_index: int = 0) -> Rendered:
        """Render `text`; code-copy links are numbered from `first_code_index`."""
        tokens = self._md.parse(text)
        blocks: list[str] = []
        for token in tokens:
            if token.type in ("fence", "code_block"):
                index = first_code_index + len(blocks)
                blocks.append(token.content)
                token.type = "html_block"
                token.content = self._code_html(token.content, token.info.strip(), index)
        body = self._md.renderer.render(tokens, self._md.options, {})  # html_block tokens pass through as they are
        return Rendered(body, blocks)

    def _code_html(self, code: str, language: str, index: int) -> str:
        lexer = _lexer(code, language)
        coloured = highlight(code, lexer, self._formatter).rstrip("\n")
        label = html.escape(language or lexer.name.lower())
        return (f'<table width="100%" cellspacing="0" cellpadding="6" style="background:{self._code_background};">'
                f'<tr><td><small>{label}</small></td><td align="right"><a href="copy:{index}">Copy</a></td></tr>'
                f'<tr><td colspan="2"><pre style="margin:0">{coloured}</pre></td></tr></table>\n')


def _lexer(code: str, language: str):
    if language:
        try:
            return get_lexer_by_name(language)
        except ClassNotFound:
            pass
    try:
        return guess_lexer(code)
    except ClassNotFound:
        return TextLexer()
