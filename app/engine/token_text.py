"""Streaming text from generated token ids: incremental detokenization with stop strings."""

from __future__ import annotations

from collections.abc import Sequence


class TokenText:
    """Turns an answer's tokens, as they come, into text pieces, the way GenAI's streamer does: a piece ending in
    an incomplete UTF-8 character waits for the next token, and text that could begin a stop string is held back
    until it cannot (a found stop string ends the answer and is left out of it)."""

    def __init__(self, tokenizer, stop_strings: Sequence[str] = ()) -> None:
        self._tokenizer = tokenizer
        self._stops = tuple(s for s in stop_strings if s)
        self._ids: list[int] = []
        self._sent = 0  # characters of the decoded text already handed out
        self.stopped = False  # a stop string was found

    def push(self, ids: Sequence[int]) -> str:
        """Add tokens; returns the new text that is safe to show."""
        self._ids.extend(int(i) for i in ids)
        text = self._tokenizer.decode(self._ids)
        if text.endswith("\ufffd"):
            return ""
        end = len(text)
        for stop in self._stops:
            found = text.find(stop, max(0, self._sent - len(stop) + 1))
            if found >= 0:
                self.stopped, end = True, min(end, found)
        if not self.stopped:
            end -= self._held(text)
        return self._take(text, end)

    def finish(self) -> str:
        """The text still held back, once the answer has ended."""
        if self.stopped:
            return ""
        text = self._tokenizer.decode(self._ids)
        return self._take(text, len(text))

    def _held(self, text: str) -> int:
        """How many trailing characters could be the start of a stop string."""
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text) - self._sent), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def _take(self, text: str, end: int) -> str:
        piece = text[self._sent:end] if end > self._sent else ""
        self._sent = max(self._sent, end)
        return piece
