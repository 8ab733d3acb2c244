"""Choosing the next token from logits the way GenerationSettings say: the repetition, presence and frequency
penalties (GenAI's math), then greedy or a sample of softmax(logits / temperature) cut by top-k and top-p."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet

import numpy as np

from app.engine.settings import GenerationSettings

NUCLEUS_CANDIDATES = 1024  # top-p looks at the most likely tokens first and sorts the whole row only if it must


def penalize(logits: np.ndarray, settings: GenerationSettings, prompt: AbstractSet[int],
             answer: Mapping[int, int]) -> np.ndarray:
    """GenAI's penalties, in its order (a copy; `logits` is left alone; unchanged when all are off).

    `prompt` holds the prompt's token ids, `answer` counts each answer token so far. The repetition penalty divides
    the logits of prompt and answer tokens by `repetition_penalty` when non-negative and multiplies them otherwise;
    the presence penalty moves each answer token's logit `presence_penalty` towards zero (past it, when larger),
    the frequency penalty `frequency_penalty` times its count, each judged on the sign the logit has by then."""
    rep, presence, frequency = settings.repetition_penalty, settings.presence_penalty, settings.frequency_penalty
    if rep == 1.0 and presence == 0.0 and frequency == 0.0:
        return logits
    row = logits.astype(np.float32, copy=True)
    if rep != 1.0:
        ids = _ids(set(prompt).union(answer), row.size)
        picked = row[ids]
        row[ids] = np.where(picked >= 0, picked / np.float32(rep), picked * np.float32(rep))
    ids = _ids(answer, row.size)
    counts = np.array([answer[int(i)] for i in ids], np.float32)
    for amount in (np.float32(presence) if presence else None,
                   np.float32(frequency) * counts if frequency else None):
        if amount is not None:
            picked = row[ids]
            row[ids] = np.where(picked >= 0, picked - amount, picked + amount)
    return row


def _ids(tokens: Iterable[int], vocab: int) -> np.ndarray:
    ids = np.fromiter(tokens, np.int64)
    return ids[(ids >= 0) & (ids < vocab)]


def probabilities(logits: np.ndarray, settings: GenerationSettings) -> np.ndarray:
    """The distribution a sampled token is drawn from: softmax(logits / temperature), cut to the top_k most likely
    and then to the smallest set holding top_p of the probability, renormalized (float64)."""
    x = logits.astype(np.float64) / settings.temperature
    if 0 < settings.top_k < x.size:
        x[np.argpartition(x, -settings.top_k)[:-settings.top_k]] = -np.inf
    p = np.exp(x - x.max())
    p /= p.sum()
    if settings.top_p < 1.0:
        p = _nucleus(p, settings.top_p)
    return p


def _nucleus(p: np.ndarray, top_p: float) -> np.ndarray:
    """Keep the most likely tokens whose probabilities first reach top_p (the one that crosses it included)."""
    count = min(NUCLEUS_CANDIDATES, p.size)
    top = np.argpartition(p, -count)[-count:] if count < p.size else np.arange(p.size)
    order = top[np.argsort(-p[top], kind="stable")]
    cumulative = np.cumsum(p[order])
    if cumulative[-1] < top_p and count < p.size:  # a flat distribution: sort everything
        order = np.argsort(-p, kind="stable")
        cumulative = np.cumsum(p[order])
    keep = order[:int(np.searchsorted(cumulative, top_p)) + 1]
    out = np.zeros_like(p)
    out[keep] = p[keep]
    return out / out.sum()


def sample(p: np.ndarray, rng: np.random.Generator) -> int:
    """One token id drawn from the distribution `p`."""
    cumulative = np.cumsum(p)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), p.size - 1))
