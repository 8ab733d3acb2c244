"""Choosing the next token from logits the way GenerationSettings say: the repetition penalty, then greedy or a
sample of softmax(logits / temperature) cut by top-k and top-p."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from app.engine.settings import GenerationSettings

NUCLEUS_CANDIDATES = 1024  # top-p looks at the most likely tokens first and sorts the whole row only if it must


def penalize(logits: np.ndarray, seen: Iterable[int], penalty: float) -> np.ndarray:
    """GenAI's repetition penalty: logits of tokens already in the prompt or answer divided by `penalty` when
    positive, multiplied when negative (a copy; `logits` is left alone)."""
    if penalty == 1.0:
        return logits
    ids = np.fromiter(seen, np.int64)
    ids = ids[ids < logits.shape[-1]]
    row = logits.astype(np.float32, copy=True)
    picked = row[ids]
    row[ids] = np.where(picked > 0, picked / penalty, picked * penalty)
    return row


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
