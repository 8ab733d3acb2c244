"""Which sources an answer rests on, checked sentence by sentence against the text the model was given.

Three marks, each with one rule:

* **cited**: the model wrote `[n]` (also `[n, m]`, `[n][m]`, `[n-m]`) for source n.
* **supported**: some sentence of the answer is supported by source n. A sentence is supported by a source when,
  within two consecutive sentences of the source:
  1. every number of the sentence (price, time, date, year, quantity; `07:15` = `7:15`, `1,200` = `1200`,
     `seven` = `7` before a unit) and every name (a capitalised word that does not start the sentence) appears;
  2. at least half of the sentence's own content words that the question does not already hold appear
     (a crude stem match: "leaves" = "leave"); and
  3. at least half, and at least one, of the topic words (the sentence's content words and the question's)
     appear, so that a short answer such as "At 07:15." counts only where the source speaks of what was asked.
  A sentence with no number and no name or content word beyond the question's states nothing and supports
  nothing. Sharing words alone is never enough: a number or a name the source lacks breaks the support.
* **not supported by the sources**: a sentence that no source supports gives a number that the source it cites
  (else the source closest to it by topic words) contradicts: the source has a different number in the same role,
  that is the same unit ("120 EUR" against "140 EUR"), the same kind (two times, two years, two dates, two
  percentages) or, for a bare number, a content word in common within four words of each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.docs.claims import MARKER, Claims, Number, claims, content_words, same_word, sentences, stem
from app.docs.retrieval import Passage

MIN_SHARE = 0.5  # share of a sentence's words (rules 2 and 3) found in the source
WINDOW = 2  # consecutive source sentences a supported sentence's facts and words must lie in


@dataclass(frozen=True)
class Conflict:
    """A number of the answer that its source contradicts."""

    sentence: str  # the answer's sentence
    answer: str  # the number as the answer writes it: "120 EUR"
    source: str  # the source's number in the same role: "140 EUR"

    def to_dict(self) -> dict:
        """What the chat store keeps."""
        return {"sentence": self.sentence, "answer": self.answer, "source": self.source}


@dataclass(frozen=True)
class Citation:
    """A source the model was given, and what the answer does with it."""

    passage: Passage
    cited: bool  # the model wrote [n]
    supported: bool  # a sentence of the answer is supported by it (see the module docstring)
    conflicts: tuple[Conflict, ...] = field(default_factory=tuple)  # numbers of the answer it contradicts

    def to_dict(self) -> dict:
        """What the chat store keeps with the answer: `text` is exactly what the prompt held for source n."""
        p = self.passage
        return {"n": p.n, "path": p.path, "page": p.page, "heading": p.heading, "text": p.text,
                "cosine": round(p.cosine, 4), "given": True, "cited": self.cited, "supported": self.supported,
                "conflicts": [c.to_dict() for c in self.conflicts]}


@dataclass(frozen=True)
class _Window:
    """Consecutive sentences of a source, as one bag of facts and words."""

    values: frozenset[str]
    vocabulary: frozenset[str]  # every word's stem, names included
    numbers: tuple[Number, ...]


def cited_numbers(text: str, count: int) -> list[int]:
    """The source numbers the markers in `text` name (1..`count` only), in order of appearance."""
    numbers: list[int] = []
    for group in MARKER.findall(text):
        for part in re.split(r"[,;]", group):
            ends = [int(x) for x in re.split(r"[-–]", part)]
            span = range(ends[0], ends[-1] + 1) if len(ends) == 2 and ends[-1] - ends[0] < count else ends[:1]
            numbers += [n for n in span if 1 <= n <= count and n not in numbers]
    return numbers


def _windows(text: str) -> list[_Window]:
    parts = sentences(text) or [text]
    windows = []
    for i in range(max(1, len(parts) - WINDOW + 1)):
        chunk = " ".join(parts[i:i + WINDOW])
        found = claims(chunk)
        vocabulary = {stem(w) for w in re.findall(r"[^\W\d_]+(?:['’][^\W\d_]+)*", chunk)}
        windows.append(_Window(frozenset(n.value for n in found.numbers), frozenset(vocabulary), found.numbers))
    return windows


def _found(words: frozenset[str] | set[str], vocabulary: frozenset[str]) -> int:
    return sum(any(same_word(w, v) for v in vocabulary) for w in words)


def _topic_words(said: Claims, question: set[str]) -> set[str]:
    return set(said.words) | question


def _new_words(said: Claims, question: set[str]) -> set[str]:
    return {w for w in said.words if not any(same_word(w, q) for q in question)}


def states_something(said: Claims, question: set[str]) -> bool:
    """Whether a sentence holds a number, or a name or a content word the question does not already hold."""
    return bool(said.numbers or said.names - question or _new_words(said, question))


def supports(window: _Window, said: Claims, question: set[str]) -> bool:
    """Rules 1-3 of the module docstring for one window of a source."""
    if any(n.value not in window.values for n in said.numbers) or not said.names <= window.vocabulary:
        return False
    new = _new_words(said, question)
    if new and _found(new, window.vocabulary) < MIN_SHARE * len(new):
        return False
    topic = _topic_words(said, question)
    found = _found(topic, window.vocabulary)
    return found >= 1 and found >= MIN_SHARE * len(topic)


def _same_role(said: Number, other: Number) -> bool:
    if said.unit or other.unit:
        return said.unit == other.unit
    if said.kind != "number" or other.kind != "number":
        return said.kind == other.kind
    return any(same_word(a, b) for a in said.context for b in other.context)


def contradiction(said: Number, windows: list[_Window]) -> Number | None:
    """The source's number in the same role as `said` with another value, when the source lacks `said`'s value."""
    if any(said.value in w.values for w in windows):
        return None
    rivals = [n for w in windows for n in w.numbers if n.value != said.value and _same_role(said, n)]
    return max(rivals, key=lambda n: len(n.context & said.context), default=None)


def attribute(answer: str, passages: list[Passage], question: str = "") -> list[Citation]:
    """The sources the answer rests on or contradicts: cited and supported first, then supported, then cited or
    contradicted only. `passages` are the sources exactly as the prompt held them."""
    asked = content_words(question)
    windows = {p.n: _windows(p.text) for p in passages}
    cited = set(cited_numbers(answer, max((p.n for p in passages), default=0)))
    supported: set[int] = set()
    conflicts: dict[int, list[Conflict]] = {}
    for sentence in sentences(answer):
        said = claims(sentence)
        if not states_something(said, asked):
            continue
        backing = {n for n, ws in windows.items() if any(supports(w, said, asked) for w in ws)}
        supported |= backing
        if backing or not said.numbers:
            continue
        for n in _checked_against(sentence, said, asked, windows):
            for number in said.numbers:
                rival = contradiction(number, windows[n])
                if rival is not None:
                    conflicts.setdefault(n, []).append(Conflict(sentence, number.written, rival.written))
    order = sorted(passages, key=lambda p: (-(p.n in cited and p.n in supported), -(p.n in supported),
                                            -(p.n in cited), p.n))
    return [Citation(p, p.n in cited, p.n in supported, tuple(conflicts.get(p.n, ())))
            for p in order if p.n in cited or p.n in supported or p.n in conflicts]


def _checked_against(sentence: str, said: Claims, asked: set[str], windows: dict[int, list[_Window]]) -> list[int]:
    """The sources a sentence's numbers are checked against: those it cites, else the closest by topic words."""
    named = [n for n in cited_numbers(sentence, max(windows, default=0)) if n in windows]
    if named:
        return named
    topic = _topic_words(said, asked)
    scores = {n: max(_found(topic, w.vocabulary) for w in ws) for n, ws in windows.items() if ws}
    best = max(scores.values(), default=0)
    return [min(n for n, s in scores.items() if s == best)] if best > 0 else []
