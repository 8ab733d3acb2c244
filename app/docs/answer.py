"""Documents mode: retrieve passages, put them numbered into the prompt, ask for citations, attribute the answer.
When the documents the passages come from fit in the model's context whole, the model reads them whole instead
(and the answer says so). When nothing relevant is found the model is not called: the answer says so instead of
inventing one."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from app.docs.chunker import join_chunks
from app.docs.citations import Citation, attribute
from app.docs.embedder import Embedder
from app.docs.retrieval import Passage, retrieve
from app.docs.store import DocStore
from app.engine import ChatEngine, Conversation, Delta, GenerationSettings, Message, Reply

NOTHING_FOUND = ("I found nothing about this in your documents, so I will not guess. Try other words, or add the "
                 "document that covers it (Documents).")
INSTRUCTIONS = ("Answer the question in one sentence using only the sources, and cite the source number like [1]. "
                "If the sources do not contain the answer, say that you do not know.")
DEFAULT_TOKEN_BUDGET = 1200
DEFAULT_TOP_K = 4
FOCUS_SENTENCES = 3  # small models answer from a few sentences far better than from whole passages (RESULTS)
_SENTENCE_END = re.compile(r"(?<!\b[A-Z][a-z]\.)(?<!\b[A-Z]\.)(?<=[.!?])\s+")


@dataclass
class DocsAnswer:
    """An answer from the documents: its text, the passages the model saw, and the citations shown."""

    text: str
    passages: list[Passage]
    citations: list[Citation] = field(default_factory=list)
    reply: Reply | None = None  # None when the model was not called
    note: str = ""  # shown under the answer: how the documents were given to the model, when not as passages

    def sources_metadata(self) -> list[dict]:
        """Citations first (cited/matched), then the other passages the model saw: stored with the answer."""
        shown = [c.to_dict() for c in self.citations]
        seen = {c.passage.n for c in self.citations}
        shown += [Citation(p, False, False).to_dict() for p in self.passages if p.n not in seen]
        return shown


def focus(question: str, passages: list[Passage], embedder: Embedder, keep: int = FOCUS_SENTENCES) -> dict[int, str]:
    """The `keep` sentences of the passages closest to the question, by passage number, in document order."""
    sentences = [(p.n, s) for p in passages for s in _SENTENCE_END.split(p.text.replace("\n", " ")) if s.strip()]
    if len(sentences) <= keep:
        return {p.n: p.text.replace("\n", " ") for p in passages}
    scores = embedder.embed([s for _, s in sentences]) @ embedder.embed_query(question)
    best = set(sorted(range(len(sentences)), key=lambda i: -scores[i])[:keep])
    kept: dict[int, list[str]] = {}
    for i, (n, sentence) in enumerate(sentences):
        if i in best:
            kept.setdefault(n, []).append(sentence)
    return {n: " ".join(parts) for n, parts in sorted(kept.items())}


def build_prompt(question: str, sources: dict[int, str]) -> str:
    """The user turn the model sees: the question, the numbered sources, the instructions."""
    listed = "\n".join(f"[{n}] {text}" for n, text in sources.items())
    return f"Question: {question}\n\nSources:\n{listed}\n\n{INSTRUCTIONS}"


def nothing_found_reply() -> Reply:
    """The Reply of an answer given without the model."""
    return Reply(answer=NOTHING_FOUND, reasoning="", num_tokens=0, prompt_tokens=0, ttft_ms=0.0,
                 tokens_per_second=0.0, stopped=False, unterminated_reasoning=False, dropped_messages=0)


def answer_from_documents(engine: ChatEngine, store: DocStore, embedder: Embedder, conversation: Conversation,
                          settings: GenerationSettings | None = None, think: bool | None = None,
                          on_delta: Callable | None = None, cancel: threading.Event | None = None,
                          top_k: int = DEFAULT_TOP_K, token_budget: int = DEFAULT_TOKEN_BUDGET,
                          read_whole: bool = True) -> DocsAnswer:
    """Answer the conversation's last user message from the documents; the conversation gets the plain answer.

    Earlier turns are sent as they are; only the last question carries the sources (they are not stored). The
    sources are the documents the retrieved passages come from, whole, when they fit in the context with the
    answer (and `read_whole`), else the passages.
    """
    question = conversation.messages[-1].content
    passages = retrieve(store, embedder, question, top_k, token_budget, engine.count_tokens)
    if not passages:
        conversation.messages.append(Message("assistant", NOTHING_FOUND))
        if on_delta is not None:
            on_delta(Delta("answer", NOTHING_FOUND))
        return DocsAnswer(NOTHING_FOUND, [], [], None)
    settings = settings or GenerationSettings()
    documents = whole_documents(store, passages)
    prompted = _asking(conversation, build_prompt(question, {d.n: d.text for d in documents}))
    note = whole_note(documents)
    if not (read_whole and engine.fits(prompted, settings.max_new_tokens, think)):
        documents, note = passages, ""
        prompted = _asking(conversation, build_prompt(question, focus(question, passages, embedder)))
    reply = engine.generate(prompted, settings, think, on_delta, cancel)
    conversation.messages.append(Message("assistant", reply.answer, reply.reasoning))
    return DocsAnswer(reply.answer, documents, attribute(reply.answer, documents, question), reply, note)


def whole_documents(store: DocStore, passages: list[Passage]) -> list[Passage]:
    """The documents the passages come from, whole, numbered in the order of their best passage."""
    documents: list[Passage] = []
    for passage in passages:
        if all(d.path != passage.path for d in documents):
            documents.append(Passage(len(documents) + 1, -1, passage.path, None, "",
                                     join_chunks(store.document_chunks(passage.path)), passage.cosine, passage.score))
    return documents


def whole_note(documents: list[Passage]) -> str:
    """The line under an answer read from whole documents."""
    names = ", ".join(d.where() for d in documents)
    return f"Answered from the whole {'document' if len(documents) == 1 else 'documents'} ({names}): they fit " \
           "in the model's context."


def _asking(conversation: Conversation, user_turn: str) -> Conversation:
    """The conversation with its last user message replaced by `user_turn` (earlier turns as they are)."""
    return Conversation(conversation.system, [*conversation.messages[:-1], Message("user", user_turn)])
