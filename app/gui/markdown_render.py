"""Markdown to the HTML subset QTextBrowser shows: markdown-it-py for structure, Pygments for code colours, formulas
as images (app/gui/math_render.py) linked as `math:KEY`.

Code blocks get a "Copy" link (`copy:PREFIXN`); the caller keeps the returned code texts to serve it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.utils import OptionsDict
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound

from app.gui.markdown_math import math_plugin
from app.gui.math_render import MathImages


@dataclass
class Rendered:
    """HTML plus the code blocks it contains, in order (index N serves link `copy:PREFIXN`)."""

    html: str
    code_blocks: list[str] = field(default_factory=list)


class MarkdownRenderer:
    """One renderer per window; `dark` picks the code colour scheme and the formulas' colour, `scale` the formulas'
    pixels per logical pixel (the screen's device pixel ratio)."""

    def __init__(self, dark: bool = False, math: MathImages | None = None, scale: float = 1.0) -> None:
        self.dark = dark
        self._md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").use(math_plugin)
        for kind, display, block in (("math_inline", False, False), ("math_display", True, False),
                                     ("math_block", True, True)):
            self._md.add_render_rule(kind, lambda _r, tokens, i, *_, d=display, b=block:
                                     self.math_html(tokens[i].content, d, b))
        self._formatter = HtmlFormatter(noclasses=True, nowrap=True, style="monokai" if dark else "friendly")
        self._code_background = "#272822" if dark else "#f6f8fa"
        self.math = math or MathImages((230, 232, 235) if dark else (31, 35, 40), scale)

    def render(self, text: str, first_code_index: int = 0, copy_prefix: str = "", breaks: bool = False) -> Rendered:
        """Render `text`; code-copy links are `copy:{copy_prefix}{N}`, N numbered from `first_code_index`;
        `breaks`: every new line is a line break (what people type), not a space."""
        tokens = self._md.parse(text)
        blocks: list[str] = []
        for token in tokens:
            if token.type in ("fence", "code_block"):
                index = first_code_index + len(blocks)
                blocks.append(token.content)
                token.type = "html_block"
                token.content = self._code_html(token.content, token.info.strip(), f"{copy_prefix}{index}")
        options = OptionsDict({**self._md.options, "breaks": True}) if breaks else self._md.options
        body = self._md.renderer.render(tokens, options, {})  # html_block tokens pass through as they are
        return Rendered(body, blocks)

    def math_html(self, tex: str, display: bool, block: bool = False) -> str:
        """A formula as an image (its TeX source as the image's text), or as code when it cannot be typeset; `block`:
        a paragraph of its own, centred."""
        image = self.math.image(tex, display)
        if image is None:
            source = html.escape(f"$${tex}$$" if display else f"${tex}$")
            return f'<p align="center"><code>{source}</code></p>\n' if block else f"<code>{source}</code>"
        # the baseline: Qt aligns an image's bottom with the text's; "middle" is the nearest of its choices
        width, height = image.logical_size
        img = (f'<img src="math:{image.key}" width="{width}" height="{height}" '
               f'alt="{html.escape(tex, quote=True)}" style="vertical-align: middle">')
        return f'<p align="center">{img}</p>\n' if block else img

    def _code_html(self, code: str, language: str, link: str) -> str:
        lexer = _lexer(code, language)
        coloured = highlight(code, lexer, self._formatter).rstrip("\n")
        label = html.escape(language or lexer.name.lower())
        muted = "#9aa1ab" if self.dark else "#6b7280"
        return (f'<table width="100%" cellspacing="0" cellpadding="8" style="background:{self._code_background}; '
                f'margin-top:6px; margin-bottom:6px"><tr><td><small style="color:{muted}">{label}</small></td>'
                f'<td align="right"><small><a href="copy:{link}" style="color:{muted}">Copy</a></small></td></tr>'
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
