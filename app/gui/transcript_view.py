"""The conversation pane. Each finished message's HTML is rendered once and kept; while an answer streams only that
answer's block at the end of the document is replaced, frame by frame, with no database read. A long chat opens at
its newest messages (as many as a time budget renders); older ones load when scrolled to the top."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QTimer, QUrl
from PySide6.QtGui import QImage, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import QTextBrowser

from app.gui.markdown_render import MarkdownRenderer, Rendered
from app.gui.transcript_html import MessageView, message_html

PAGE = 40  # messages shown at most when a chat opens, and added per "earlier" step
OPEN_BUDGET_S = 0.12  # rendering time a chat's opening may spend on messages not rendered before
MIN_SHOWN = 4  # shown whatever the budget


class Transcript(QTextBrowser):
    """Shows a chat's MessageViews; `show_messages` for a whole chat, `update_streaming` for one frame of an answer."""

    def __init__(self, renderer: MarkdownRenderer) -> None:
        super().__init__(openLinks=False)
        self.document().setUndoRedoEnabled(False)  # edits by cursor would otherwise pile up in the undo stack
        self.renderer = renderer
        self._cache: dict[int, tuple[tuple, Rendered]] = {}
        self._views: list[MessageView] = []
        self._chat: int | None = None
        self._first_id: int | None = None  # the oldest message shown
        self._tail: int | None = None  # where the streaming answer's block starts in the document
        self.renders = 0  # messages rendered to HTML (cache misses), for tests and benchmarks
        self.anchorClicked.connect(self._on_anchor)
        self.verticalScrollBar().valueChanged.connect(self._on_scroll)
        self._warm_up()

    def _warm_up(self) -> None:
        """Load the formula renderer off the UI thread, so the first formula shown does not wait ~1 s for it."""
        threading.Thread(target=self.renderer.math.warm_up, name="math-warm-up", daemon=True).start()

    # ---------------------------------------------------------------- whole chat

    def set_renderer(self, renderer: MarkdownRenderer) -> None:
        """A new look (theme): every message is rendered again on the next show."""
        self.renderer = renderer
        self._cache.clear()
        self.document().clear()
        self._warm_up()

    def show_messages(self, views: list[MessageView], chat_id: int | None) -> None:
        """Show a chat; the last view may be a streaming answer. The same chat keeps its shown range."""
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        if chat_id != self._chat:
            self._chat, self._first_id, at_bottom = chat_id, None, True
        self._views = views
        last_assistant = max((v.id for v in views if v.role == "assistant"), default=None)
        streaming = views[-1] if views and views[-1].status == "streaming" else None
        finished = views[:-1] if streaming is not None else views
        first = self._first_index(finished, last_assistant)
        self._first_id = finished[first].id if first < len(finished) else None
        parts = [self._earlier_link(first)] if first else []
        parts += [self._html(v, v.id == last_assistant).html for v in finished[first:]]
        self.setHtml("\n".join(parts))
        self._tail = None
        if streaming is not None:
            self._start_tail()
            self.update_streaming(streaming)
        if at_bottom:
            bar.setValue(bar.maximum())

    def _first_index(self, finished: list[MessageView], last_assistant: int | None) -> int:
        """The oldest message to show: the one shown before, or the newest ones that the opening budget renders."""
        ids = [v.id for v in finished]
        if self._first_id in ids:
            return ids.index(self._first_id)
        start = time.perf_counter()
        for shown, index in enumerate(range(len(finished) - 1, -1, -1)):
            if shown >= PAGE or (shown >= MIN_SHOWN and time.perf_counter() - start > OPEN_BUDGET_S):
                return index + 1
            self._html(finished[index], finished[index].id == last_assistant)
        return 0

    def show_earlier(self) -> None:
        """Add older messages above (up to PAGE, within the opening's time budget), keeping the view in place."""
        ids = [v.id for v in self._views]
        if self._first_id not in ids or ids.index(self._first_id) == 0:
            return
        bar = self.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        last_assistant = max((v.id for v in self._views if v.role == "assistant"), default=None)
        first, start = ids.index(self._first_id), time.perf_counter()
        while first > 0 and ids.index(self._first_id) - first < PAGE and time.perf_counter() - start < OPEN_BUDGET_S:
            first -= 1
            self._html(self._views[first], self._views[first].id == last_assistant)
        self._first_id = ids[first]
        self.show_messages(self._views, self._chat)
        bar.setValue(bar.maximum() - from_bottom)

    def _earlier_link(self, count: int) -> str:
        text = self.tr("Show %n earlier message(s)", "", count)
        return f'<p align="center"><small><a href="earlier:">{text}</a></small></p>'

    def _html(self, view: MessageView, last_assistant: bool) -> Rendered:
        key = (view.role, view.content, view.reasoning, view.status, view.thinking_s, view.thinking_open,
               repr(view.sources), view.sources_note, last_assistant)
        cached = self._cache.get(view.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        self.renders += 1
        rendered = message_html(view, self.renderer, last_assistant)
        self._cache[view.id] = (key, rendered)
        return rendered

    # ---------------------------------------------------------------- the streaming answer

    def _start_tail(self) -> None:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if self.document().characterCount() > 1:  # below the finished messages, in a block of its own
            cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        self._tail = cursor.position()

    def update_streaming(self, view: MessageView) -> None:
        """Replace the streaming answer's block with `view` as it stands (the rest of the document is untouched)."""
        if self._tail is None:
            return
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        if self._views and self._views[-1].id == view.id:
            self._views[-1] = view
        self.renders += 1
        rendered = message_html(view, self.renderer)
        self._cache[view.id] = ((), rendered)  # its code blocks serve Copy; never matches a finished key
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._tail)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertHtml(rendered.html)
        if at_bottom:
            bar.setValue(bar.maximum())

    # ---------------------------------------------------------------- links and images

    def code_block(self, link: str) -> str | None:
        """The code behind a `copy:ID:N` link."""
        message_id, _, index = link.partition(":")
        cached = self._cache.get(int(message_id)) if message_id.isdigit() else None
        blocks = cached[1].code_blocks if cached else []
        return blocks[int(index)] if index.isdigit() and int(index) < len(blocks) else None

    def loadResource(self, kind: int, url: QUrl):
        """Formulas (`math:KEY`) from the renderer's cache; everything else as QTextBrowser loads it."""
        if url.scheme() == "math" and kind == QTextDocument.ResourceType.ImageResource.value:
            image = self.renderer.math.by_key(url.path())
            if image is not None:
                qimage = QImage(image.rgba, image.width, image.height, image.width * 4,
                                QImage.Format.Format_RGBA8888).copy()
                qimage.setDevicePixelRatio(image.scale)
                return qimage
        return super().loadResource(kind, url)

    def _on_anchor(self, url: QUrl) -> None:
        if url.scheme() == "earlier":
            self.show_earlier()

    def _on_scroll(self, value: int) -> None:
        if value == 0 and self.verticalScrollBar().maximum() > 0 and self._first_id is not None \
                and self._views and self._views[0].id != self._first_id:
            QTimer.singleShot(0, self._earlier_if_at_top)

    def _earlier_if_at_top(self) -> None:
        if self.verticalScrollBar().value() == 0:  # still there (a chat opening passes 0 on its way to the bottom)
            self.show_earlier()
