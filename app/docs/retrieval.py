"""Hybrid retrieval: vector cosine (all chunks, exact) and FTS5 BM25 keyword search, fused by reciprocal rank,
filtered by a relevance floor, and packed into a token budget. An optional reranker reorders the fused list."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.docs.embedder import Embedder
from app.docs.store import DocStore

RRF_K = 60
CANDIDATES = 40
# Cosine floor for "relevant": MiniLM gives 0.45–0.9 to a passage that answers the question and mostly below 0.2
# to unrelated text. Below the floor nothing is passed to the model and the answer says so.
MIN_COSINE = 0.30
# A passage that the keyword search ranks in its top 3 (exact names, codes) may pass with this lower floor.
MIN_COSINE_KEYWORD = 0.20
_STOPWORDS = frozenset("""a an and are as at be by can did do does for from has have how i in is it its me my of on or
our so that the their them there these they this to was we were what when where which who whom why will with you
your about tell please give list find show any""".split())  # noqa: SIM905
_WORD = re.compile(r"\w+", re.UNICODE)

Reranker = Callable[[str, list[str]], list[float]]  # (query, passages) -> one relevance score each


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk, numbered as the prompt and the citations show it."""

    n: int
    chunk_id: int
    path: str
    page: int | None
    heading: str
    text: str
    cosine: float
    score: float  # fused (RRF) score, or the reranker's

    def where(self) -> str:
        """`name.pdf, page 3` / `name.md, Heading`."""
        name = self.path.replace("\\", "/").rsplit("/", 1)[-1]
        if self.page is not None:
            return f"{name}, page {self.page}"
        return f"{name}, {self.heading}" if self.heading else name


def keyword_query(question: str) -> str:
    """An FTS5 MATCH expression: the question's content words, any of them (OR), each quoted."""
    words = [w for w in _WORD.findall(question.lower()) if w not in _STOPWORDS and len(w) > 1]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def within(path: str, paths: tuple[str, ...]) -> bool:
    """Whether `path` is one of `paths` or lies in a folder among them."""
    return any(path == p or path.startswith(p.rstrip("/\\") + ("\\" if "\\" in p else "/")) for p in paths)


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def retrieve(store: DocStore, embedder: Embedder, question: str, top_k: int = 4, token_budget: int = 1200,
             count_tokens: Callable[[str], int] = _approx_tokens, min_cosine: float = MIN_COSINE,
             reranker: Reranker | None = None, paths: tuple[str, ...] | None = None) -> list[Passage]:
    """The best passages for `question`, at most `top_k` and `token_budget` tokens; [] when none is relevant.
    `paths`: only passages of these files, or of files under these folders."""
    ids, matrix = store.vectors()
    if len(ids) == 0:
        return []
    query = embedder.embed_query(question)
    cosines = matrix @ query
    vector_rank = np.argsort(-cosines)[:CANDIDATES]
    keyword_ids = store.keyword_search(keyword_query(question), CANDIDATES)
    position = {int(chunk_id): i for i, chunk_id in enumerate(ids)}
    fused: dict[int, float] = {}
    for rank, row in enumerate(vector_rank):
        fused[int(ids[row])] = fused.get(int(ids[row]), 0.0) + 1.0 / (RRF_K + rank + 1)
    for rank, chunk_id in enumerate(keyword_ids):
        fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    top_keywords = set(keyword_ids[:3])

    def relevant(chunk_id: int) -> bool:
        cosine = float(cosines[position[chunk_id]])
        return cosine >= min_cosine or (chunk_id in top_keywords and cosine >= MIN_COSINE_KEYWORD)

    ranked = sorted((c for c in fused if c in position and relevant(c)), key=lambda c: -fused[c])
    rows = store.chunks_by_id(ranked if paths else ranked[: top_k * 3])  # filtering by path needs every row
    if paths:
        ranked = [c for c in ranked if c in rows and within(rows[c].path, paths)]
    ranked = [c for c in ranked[: top_k * 3] if c in rows]
    scores = {c: fused[c] for c in ranked}
    if reranker is not None and ranked:
        for chunk_id, score in zip(ranked, reranker(question, [rows[c].text for c in ranked]), strict=True):
            scores[chunk_id] = float(score)
        ranked.sort(key=lambda c: -scores[c])
    passages: list[Passage] = []
    used = 0
    for chunk_id in ranked:
        row = rows[chunk_id]
        cost = count_tokens(row.text) + 12  # the "[n] (file, page)" header
        if used + cost > token_budget:
            continue
        used += cost
        passages.append(Passage(len(passages) + 1, chunk_id, row.path, row.page, row.heading, row.text,
                                float(cosines[position[chunk_id]]), scores[chunk_id]))
        if len(passages) == top_k:
            break
    return passages
