"""One section of a report: search queries, hybrid retrieval, the section written with [n] citations, and every
cited sentence checked against its passage by the citations' support check (app/docs/citations.py): a sentence
its passage does not support gets the passage that does, else one rewrite from the passage, else it is dropped."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, replace

from app.docs.answer import focus
from app.docs.citations import attribute, cited_numbers, states_something
from app.docs.claims import MARKER, claims, content_words, same_word, sentences
from app.docs.embedder import Embedder
from app.docs.report.outline import Section
from app.docs.report.state import ReportState, SectionResult
from app.docs.retrieval import Passage, retrieve
from app.docs.store import DocStore
from app.engine import ChatEngine, Conversation, GenerationSettings, Message

log = logging.getLogger(__name__)

PASSAGES_PER_SECTION = 4
LONG_CONTEXT = 16384  # from this context on (MiniCPM4 with InfLLM v2: 32k+), sections read more passages, whole
LONG_PASSAGES = 8
QUERIES_PER_SECTION = 2  # the model's own, besides the section's title and what it covers
FOCUS_SENTENCES = 8  # sentences of the passages the model writes from (small models stay on them; app/docs/answer.py)
MAX_REWRITES = 3  # per section: each costs a generation
REWRITE_TOKENS = 60


@dataclass(frozen=True)
class Writing:
    """What writing a section needs: the model, the index, the settings and the stop flag."""

    engine: ChatEngine
    store: DocStore
    embedder: Embedder
    settings: GenerationSettings
    cancel: threading.Event
    docs: tuple[str, ...] = ()  # only passages of these files/folders (empty: all)

    def ask(self, prompt: str, max_new_tokens: int | None = None) -> str:
        """The model's answer to one user turn (no reasoning, greedy as the settings say)."""
        settings = self.settings
        if max_new_tokens is not None:
            settings = replace(settings, max_new_tokens=max_new_tokens)
        conversation = Conversation(messages=[Message("user", prompt)])
        return self.engine.generate(conversation, settings, False, None, self.cancel).answer.strip()

    @property
    def long_context(self) -> bool:
        """The model reads long prompts: a section gets LONG_PASSAGES whole passages instead of a few sentences."""
        return self.engine.context_tokens >= LONG_CONTEXT

    def search(self, query: str, top_k: int = PASSAGES_PER_SECTION) -> list[Passage]:
        """Hybrid retrieval as Documents mode does it (no reranker ships with the app), limited to `docs`."""
        return retrieve(self.store, self.embedder, query, top_k, token_budget=self.token_budget(),
                        count_tokens=self.engine.count_tokens, paths=self.docs or None)

    def token_budget(self) -> int:
        """Tokens of passages per search: a quarter of what the context leaves beside the answer (long-context
        models, MiniCPM4 with InfLLM v2 among them, read more), at least 600, at most 6000."""
        room = self.engine.context_tokens - self.settings.max_new_tokens
        return max(600, min(6000, room // 4))


def queries_prompt(topic: str, section: Section) -> str:
    """The user turn that asks for search queries."""
    return (f"A report on '{topic}' has a section '{section.title}'"
            + (f" about {section.covers}" if section.covers else "")
            + f". Write {QUERIES_PER_SECTION} short search queries for it, one per line. Write only the queries.")


def parse_queries(text: str) -> list[str]:
    """Search queries from the model's lines (bullets, numbers and quotes off; at most QUERIES_PER_SECTION)."""
    found: list[str] = []
    for line in text.splitlines():
        query = re.sub(r"^\s*(?:\d+[.)]|[-*•]|query\s*\d*:)\s*", "", line, flags=re.IGNORECASE).strip(" \"'`.")
        if 3 <= len(query) <= 120 and any(c.isalpha() for c in query) and query.lower() not in map(str.lower, found):
            found.append(query)
    return found[:QUERIES_PER_SECTION]


def section_prompt(topic: str, section: Section, given: list[Passage]) -> str:
    """The user turn that asks for the section, its sources numbered as the citations must name them."""
    listed = "\n".join(f"[{p.n}] {p.text}" for p in given)
    covers = f" It covers {section.covers}." if section.covers else ""
    return (f"Sources:\n{listed}\n\nWrite the section '{section.title}' of a report on '{topic}'.{covers} "
            "Write 2 to 4 sentences using only facts from the sources. End every sentence with the number of its "
            "source, like [1].")


def rewrite_prompt(sentence: str, source: str) -> str:
    """The user turn that asks for one sentence restated from its source."""
    return (f"Source: {source}\n\nSentence: {sentence}\n\nRewrite the sentence so that it states only what the "
            "source says, with the source's own names and numbers. Write only the new sentence.")


def supported_by(sentence: str, text: str, question: str) -> bool:
    """Whether `text` supports the sentence, by the citations' support check (markers are ignored)."""
    passage = Passage(1, -1, "", None, "", text, 0.0, 0.0)
    return any(c.supported for c in attribute(MARKER.sub("", sentence), [passage], question))


def on_topic(sentence: str, question: str) -> bool:
    """Whether the sentence states a fact (a number or a name) or shares a content word with the topic and section:
    a passage's generic filler ("the committee approved the minutes") does neither."""
    said = claims(MARKER.sub("", sentence))
    if said.numbers or said.names:
        return True
    wanted = content_words(question)
    return any(same_word(w, q) for w in content_words(sentence) for q in wanted)


def _with_markers(sentence: str, numbers: list[int]) -> str:
    body = MARKER.sub("", sentence).strip()
    body = re.sub(r"\s+([.,;:!?])", r"\1", body)
    marks = "".join(f"[{n}]" for n in numbers)
    if not marks:
        return body
    return f"{body[:-1]} {marks}{body[-1]}" if body[-1:] in ".!?" else f"{body} {marks}."


def gather(writing: Writing, topic: str, section: Section, queries: list[str]) -> list[Passage]:
    """The section's passages: each query's hits merged (best first, each chunk once), renumbered from 1."""
    merged: dict[int, Passage] = {}
    for query in [f"{section.title}. {section.covers}".strip(" ."), f"{topic}: {section.title}", *queries]:
        for passage in writing.search(query, LONG_PASSAGES if writing.long_context else PASSAGES_PER_SECTION):
            if passage.chunk_id not in merged or passage.cosine > merged[passage.chunk_id].cosine:
                merged[passage.chunk_id] = passage
    best = sorted(merged.values(), key=lambda p: -p.cosine)[:LONG_PASSAGES if writing.long_context
                                                            else PASSAGES_PER_SECTION]
    return [Passage(i, p.chunk_id, p.path, p.page, p.heading, p.text, p.cosine, p.score)
            for i, p in enumerate(best, start=1)]


def check_section(writing: Writing | None, draft: str, given: list[Passage], full: dict[int, Passage],
                  state: ReportState, question: str) -> SectionResult:
    """The section as kept: every cited sentence supported by its passage (moved, rewritten once or dropped),
    citations renumbered to the report's references. `writing` None: no rewrites (no model)."""
    by_n = {p.n: p for p in given}

    def holds(sentence: str, n: int) -> bool:
        passage = by_n[n]
        return supported_by(sentence, passage.text, question) or supported_by(
            sentence, full[passage.chunk_id].text, question)

    result = SectionResult("", "", [])
    kept: list[str] = []
    asked = content_words(question)
    seen: set[str] = set()
    written: set[str] = set()
    for sentence in sentences(draft):
        plain = " ".join(MARKER.sub("", sentence).lower().split()).strip(" .,;:-*#")
        if len(plain) < 3 or plain in seen:  # small models repeat themselves
            continue
        seen.add(plain)
        cited = [n for n in cited_numbers(sentence, len(given)) if n in by_n]
        result.draft_cited += bool(cited)
        good = [n for n in cited if holds(sentence, n)]
        result.draft_supported += bool(cited) and bool(good)
        if not states_something(claims(MARKER.sub("", sentence)), asked):
            continue  # states nothing the sources could back: not a claim, left out
        result.draft_claims += 1
        if not on_topic(sentence, question):
            result.off_topic += 1
            continue
        if not good:
            good = [n for n in by_n if holds(sentence, n)][:1]
            result.rebound += bool(good)
        if not good and writing is not None and result.rewritten + result.dropped < MAX_REWRITES \
                and not writing.cancel.is_set():
            n = cited[0] if cited else 1
            rewrite = writing.ask(rewrite_prompt(MARKER.sub("", sentence).strip(), by_n[n].text), REWRITE_TOKENS)
            rewrite = (sentences(rewrite) or [""])[0]
            if rewrite and on_topic(rewrite, question) and holds(rewrite, n):
                sentence, good = rewrite, [n]
                result.rewritten += 1
        if not good:
            result.dropped += 1
            continue
        final = " ".join(MARKER.sub("", sentence).lower().split()).strip(" .,;:-*#")
        if final in written:  # a rewrite or a moved citation can repeat a sentence already kept
            continue
        written.add(final)
        numbers = [state.reference(by_n[n].chunk_id, full[by_n[n].chunk_id].path, full[by_n[n].chunk_id].page,
                                   full[by_n[n].chunk_id].heading, full[by_n[n].chunk_id].text) for n in good]
        kept.append(_with_markers(sentence, numbers))
        result.citations += [n for n in numbers if n not in result.citations]
    if not kept and given:  # nothing held up: quote the passages' sentence closest to the section
        quote = _quote(writing, given, full, state, question)
        if quote is not None:
            passage, sentence = quote
            n = state.reference(passage.chunk_id, passage.path, passage.page, passage.heading, passage.text)
            kept.append(_with_markers(f"The documents say: “{sentence.rstrip('.')}”.", [n]))
            result.citations.append(n)
            result.quoted = True
    result.text = " ".join(kept)
    result.cited = len(kept)
    result.supported = sum(bool(cited_numbers(s, len(state.references))) and all(
        supported_by(s, state.references[n - 1].text, question) for n in cited_numbers(s, len(state.references)))
        for s in kept)
    return result


def _quote(writing: Writing | None, given: list[Passage], full: dict[int, Passage], state: ReportState,
           question: str) -> tuple[Passage, str] | None:
    """The sentence (of five words or more, not quoted yet in the report) of the section's passages closest to
    the section, with its passage."""
    quoted = " ".join(s.text for s in state.sections if s is not None)
    candidates = [(full[p.chunk_id], s) for p in given for s in sentences(full[p.chunk_id].text)
                  if len(s.split()) >= 5 and s.rstrip(".") not in quoted and on_topic(s, question)]
    if not candidates:
        return None
    if writing is None:
        return candidates[0]
    scores = writing.embedder.embed([s for _, s in candidates]) @ writing.embedder.embed_query(question)
    return candidates[int(scores.argmax())]


def write_section(writing: Writing, topic: str, section: Section, state: ReportState) -> SectionResult | None:
    """Retrieve, write and check one section; None when cancelled before it was finished."""
    started = time.monotonic()
    queries = parse_queries(writing.ask(queries_prompt(topic, section), 48))
    if writing.cancel.is_set():
        return None
    passages = gather(writing, topic, section, queries)
    if not passages:
        return SectionResult(section.title, "Your documents say nothing about this.", [],
                             seconds=round(time.monotonic() - started, 2))
    full = {p.chunk_id: p for p in passages}
    question = f"{topic} {section.title}"
    given = passages if writing.long_context else focus(question, passages, writing.embedder, FOCUS_SENTENCES)
    draft = writing.ask(section_prompt(topic, section, given))
    if writing.cancel.is_set():
        return None
    log.debug("section %r: queries %s, %d passages, draft %d chars", section.title, queries, len(given), len(draft))
    result = check_section(writing, draft, given, full, state, question)
    if writing.cancel.is_set():
        return None
    result.title, result.seconds = section.title, round(time.monotonic() - started, 2)
    return result

