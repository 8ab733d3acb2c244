"""Readable text out of HTML with the standard library's parser: paragraphs, headings, no scripts or styles."""

from __future__ import annotations

from html.parser import HTMLParser

from app.docs.blocks import Block

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


def html_blocks(markup: str) -> list[Block]:
    """Paragraph blocks, each under the nearest heading (h1–h6 or the title) above it."""
    collector = _Collector()
    collector.feed(markup)
    collector.close()
    collector._flush()
    blocks, heading = [], ""
    for kind, text in collector.items:
        if kind == "h":
            heading = text
        else:
            blocks.append(Block(text, None, heading))
    return blocks
