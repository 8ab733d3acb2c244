"""Documents mode: retrieve passages, put them numbered into the prompt, ask for citations, attribute the answer.
When the documents the passages come from fit in the model's context whole, the model reads them whole instead
(and the answer says so). When nothing relevant is found the model is not called: the answer says so instead of
inventing one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from app.docs.chunker import join_chunks
from app.docs.citations import Citation, attribute
from app.docs.claims import SENTENCE_END
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


@dataclass
class DocsAnswer:
    """An answer from the documents: its text, the sources exactly as the prompt held them, the citations shown."""

    text: str
    passages: list[Passage]  # numbered as in the prompt, `text` exactly as sent; passages not sent are not here
    citations: list[Citation] = field(default_factory=list)
    reply: Reply | None = None  # None when the model was not called
    note: str = ""  # shown under the answer: how the documents were given to the model, when not as passages
    prompt: str = ""  # the user turn the model was given (question, sources, instructions)

    def sources_metadata(self) -> list[dict]:
        """Citations first (cited/supported/contradicted), then the other sources the prompt held: stored with the
        answer. Every entry was given to the model, with `text` exactly as it was given."""
        shown = [c.to_dict() for c in self.citations]
        seen = {c.passage.n for c in self.citations}
        shown += [Citation(p, False, False).to_dict() for p in self.passages if p.n not in seen]
        return shown


def focus(question: str, passages: list[Passage], embedder: Embedder, keep: int = FOCUS_SENTENCES) -> list[Passage]:
    """The passages cut to the `keep` sentences closest to the question (in document order), renumbered from 1;
    a passage none of whose sentences is kept is left out. What the prompt holds, exactly."""
    sentences = [(p.n, s.strip()) for p in passages for s in SENTENCE_END.split(p.text.replace("\n", " "))
                 if s.strip()]
    if len(sentences) <= keep:
        kept = {p.n: [p.text.replace("\n", " ")] for p in passages}
    else:
        scores = embedder.embed([s for _, s in sentences]) @ embedder.embed_query(question)
        best = set(sorted(range(len(sentences)), key=lambda i: -scores[i])[:keep])
        kept = {}
        for i, (n, sentence) in enumerate(sentences):
            if i in best:
                kept.setdefault(n, []).append(sentence)
    given = [p for p in passages if p.n in kept]
    return [replace(p, n=i, text=" ".join(kept[p.n])) for i, p in enumerate(given, start=1)]


def build_prompt(question: str, sources: list[Passage]) -> str:
    """The user turn the model sees: the question, the numbered sources (their text as it is), the instructions."""
    listed = "\n".join(f"[{p.n}] {p.text}" for p in sources)
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
    given = whole_documents(store, passages)
    prompt = build_prompt(question, given)
    note = whole_note(given)
    if not (read_whole and engine.fits(_asking(conversation, prompt), settings.max_new_tokens, think)):
        given, note = focus(question, passages, embedder), ""
        prompt = build_prompt(question, given)
    reply = engine.generate(_asking(conversation, prompt), settings, think, on_delta, cancel)
    conversation.messages.append(Message("assistant", reply.answer, reply.reasoning))
    return DocsAnswer(reply.answer, given, attribute(reply.answer, given, question), reply, note, prompt)


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
