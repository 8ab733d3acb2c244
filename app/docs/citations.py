"""Which passages an answer rests on. Small models write `[n]` markers unreliably, so two signals are kept apart
and both shown: markers the model wrote ("cited"), and passages whose distinctive words the answer repeats
("matched"). Nothing is claimed that neither signal supports."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.docs.retrieval import Passage

_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_COMMON = frozenset("""the a an and or of to in on at is are was were be been for with by from as that this these those
it its he she they we you i his her their our your not no yes but if then than so such which who what when where why how
there here has have had do does did can could would should will may might also into about over under more most
some any all each both one two three answer question source sources document documents passage text""".split())  # noqa: SIM905
MIN_MATCH = 0.5  # share of the answer's content words found in a passage for it to count as the source


@dataclass(frozen=True)
class Citation:
    """A passage shown under an answer, and why."""

    passage: Passage
    cited: bool  # the model wrote [n]
    matched: bool  # the answer repeats the passage's words

    def to_dict(self) -> dict:
        """What the chat store keeps with the answer."""
        p = self.passage
        return {"n": p.n, "path": p.path, "page": p.page, "heading": p.heading, "text": p.text,
                "cosine": round(p.cosine, 4), "cited": self.cited, "matched": self.matched}


def cited_numbers(answer: str, count: int) -> list[int]:
    """The [n] / [n, m] markers in an answer that name one of the `count` passages, in order of appearance."""
    numbers: list[int] = []
    for group in _MARKER.findall(answer):
        for part in re.split(r"[,;]", group):
            n = int(part)
            if 1 <= n <= count and n not in numbers:
                numbers.append(n)
    return numbers


def _content_words(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in _COMMON and (len(w) > 2 or w.isdigit())}


def match_scores(answer: str, passages: list[Passage], question: str = "") -> dict[int, float]:
    """For each passage: the share of the answer's own content words (not the question's, markers removed) that
    it contains. Repeating the question proves nothing, so those words do not count."""
    words = _content_words(_MARKER.sub(" ", answer)) - _content_words(question)
    if not words:
        return {p.n: 0.0 for p in passages}
    return {p.n: len(words & _content_words(p.text)) / len(words) for p in passages}


def attribute(answer: str, passages: list[Passage], question: str = "") -> list[Citation]:
    """The passages the answer rests on: cited and matched first, then matched only, then cited only."""
    cited = set(cited_numbers(answer, max((p.n for p in passages), default=0)))
    scores = match_scores(answer, passages, question)
    best = max(scores.values(), default=0.0)
    matched = {n for n, s in scores.items() if s >= MIN_MATCH and s >= 0.8 * best}
    order = sorted(passages, key=lambda p: (-(p.n in cited and p.n in matched), -(p.n in matched), -scores[p.n],
                                            p.n))
    return [Citation(p, p.n in cited, p.n in matched) for p in order if p.n in cited or p.n in matched]
