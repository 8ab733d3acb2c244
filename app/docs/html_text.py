"""Readable text out of HTML with the standard library's parser: paragraphs, headings, no scripts or styles."""

from __future__ import annotations

import logging
from html.parser import HTMLParser

from app.docs.blocks import Block
from app.docs.formats import DocumentError

log = logging.getLogger(__name__)

_BLOCK_TAGS = {"p", "div", "li", "tr", "br", "section", "article", "blockquote", "pre", "td", "th", "dd", "dt",
               "table", "ul", "ol", "header", "footer", "main", "nav", "aside", "figure", "figcaption"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6", "title"}
_SKIP = {"script", "style", "noscript", "template", "svg", "head"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[str, str]] = []  # ("h" | "p", text)
        self._parts: list[str] = []
        self._skip = 0
        self._in_heading = False

    def _flush(self) -> None:
        text = " ".join("".join(self._parts).split())
        if text:
            self.items.append(("h" if self._in_heading else "p", text))
        self._parts.clear()

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP and tag != "head":
            self._skip += 1
        elif tag in _HEADINGS:
            self._flush()
            self._in_heading = True
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and tag != "head":
            self._skip = max(0, self._skip - 1)
        elif tag in _HEADINGS:
            self._flush()
            self._in_heading = False
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._parts.append(data)

    def parse_marked_section(self, i: int, report: int = 1) -> int:
        """`<![…` that is not CDATA or an MS Office conditional: skipped to its `>` like a bogus comment, where
        the standard library (before Python 3.13) raises AssertionError."""
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            end = self.rawdata.find(">", i + 3)
            return -1 if end < 0 else end + 1


def html_blocks(markup: str) -> list[Block]:
    """Paragraph blocks, each under the nearest heading (h1–h6 or the title) above it."""
    collector = _Collector()
    try:
        collector.feed(markup)
        collector.close()
    except AssertionError as err:  # the standard library's parser signals markup it cannot place this way
        log.warning("HTML parser gave up: %s", err)
        raise DocumentError(f"the HTML cannot be parsed ({err}); open it in a browser and save it again") from err
    collector._flush()
    blocks, heading = [], ""
    for kind, text in collector.items:
        if kind == "h":
            heading = text
        else:
            blocks.append(Block(text, None, heading))
    return blocks
