"""Split a streamed reply into reasoning (`<think>…</think>`) and answer, whatever way the text is chunked.

Handles tags split across chunks, a missing opening tag (the template already opened the block, or the
model skipped it), and a think block still open when generation stops.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Delta:
    """A piece of streamed text and where it belongs."""

    kind: str  # "reasoning" | "answer"
    text: str


@dataclass(frozen=True)
class ParsedReply:
    """The final split of a reply."""

    reasoning: str
    answer: str
    unterminated: bool  # the think block was still open when generation ended


class ThinkParser:
    """Incremental parser: `feed(chunk)` returns the deltas that are certain so far; `finish()` the final split."""

    def __init__(self, starts_in_think: bool = False) -> None:
        self._in_think = starts_in_think
        self._pending = ""  # text that might be the start of a tag
        self._reasoning: list[str] = []
        self._answer: list[str] = []
        self._opened = starts_in_think
        self._stray_close_at: int | None = None  # answer length when a `</think>` came with no `<think>`

    def feed(self, chunk: str) -> list[Delta]:
        """Consume a chunk; return the deltas it settles."""
        text = self._pending + chunk
        self._pending = ""
        deltas: list[Delta] = []
        while text:
            tag = CLOSE if self._in_think else OPEN
            index = text.find(tag)
            other = text.find(CLOSE) if not self._in_think else -1
            if other != -1 and (index == -1 or other < index):  # `</think>` with no `<think>` before it
                self._emit(deltas, text[:other])
                self._stray_close_at = sum(len(part) for part in self._answer)
                text = text[other + len(CLOSE):]
                continue
            if index == -1:
                keep = _partial_tag_suffix(text)
                self._emit(deltas, text[: len(text) - keep])
                self._pending = text[len(text) - keep:]
                break
            self._emit(deltas, text[:index])
            self._in_think = not self._in_think
            self._opened |= self._in_think
            text = text[index + len(tag):]
        return deltas

    def _emit(self, deltas: list[Delta], text: str) -> None:
        if not text:
            return
        kind = "reasoning" if self._in_think else "answer"
        (self._reasoning if self._in_think else self._answer).append(text)
        deltas.append(Delta(kind, text))

    def finish(self) -> ParsedReply:
        """The final split. A `</think>` with no opening tag makes everything before it reasoning."""
        if self._pending:
            (self._reasoning if self._in_think else self._answer).append(self._pending)
            self._pending = ""
        reasoning, answer = "".join(self._reasoning), "".join(self._answer)
        if self._stray_close_at is not None and not self._opened:
            # The block was opened by the template, not the model: what came before `</think>` was reasoning.
            reasoning, answer = answer[: self._stray_close_at], answer[self._stray_close_at:]
        return ParsedReply(reasoning.strip(), answer.lstrip("\n").rstrip(), self._in_think)


def _partial_tag_suffix(text: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of a tag."""
    for size in range(min(len(CLOSE) - 1, len(text)), 0, -1):
        tail = text[-size:]
        if OPEN.startswith(tail) or CLOSE.startswith(tail):
            return size
    return 0
