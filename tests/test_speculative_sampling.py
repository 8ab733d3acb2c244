"""The assisted loop's choice of tokens, checked on known distributions: speculative sampling keeps the target's
distribution whatever the draft proposes, and the sampling filters cut what they should."""

from __future__ import annotations

from collections import Counter

import numpy as np

from app.engine.assisted import AssistedDecoder, Decoding, _History, _Proposal
from app.engine.settings import GenerationSettings
from app.engine.token_choice import penalize, probabilities, sample


def _first_tokens(p_logits: np.ndarray, q_logits: np.ndarray, trials: int, settings: GenerationSettings) -> np.ndarray:
    """How often each token comes first from a step where the draft proposed one token sampled from q."""
    rng = np.random.default_rng(7)
    decoding = Decoding(settings, frozenset())
    q = probabilities(q_logits, settings)
    scores = np.stack([p_logits, p_logits])
    counts = np.zeros(p_logits.size)
    for _ in range(trials):
        proposal = _Proposal([sample(q, rng)], [q])
        counts[AssistedDecoder._verify(scores, proposal, _History(frozenset(), Counter()), decoding, rng)[0]] += 1
    return counts / trials


def test_speculative_sampling_keeps_the_targets_distribution() -> None:
    rng = np.random.default_rng(0)
    p_logits = rng.normal(0, 2, 12).astype(np.float32)
    q_logits = rng.normal(0, 2, 10).astype(np.float32)  # a cut draft vocabulary: the last 2 ids it never proposes
    settings = GenerationSettings(max_new_tokens=8, temperature=0.8)
    p = probabilities(p_logits, settings)
    seen = _first_tokens(p_logits, q_logits, 40_000, settings)
    assert np.abs(seen - p).max() < 0.01, (seen, p)
    assert abs(probabilities(q_logits, settings) - p[:10]).max() > 0.1  # the draft really is a different distribution
    assert seen[10:].sum() > 0  # tokens only the target knows still come, through the rejection sample


def test_top_k_and_top_p_cut_the_distribution() -> None:
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    assert np.allclose(probabilities(logits, GenerationSettings(temperature=1.0, top_p=0.7)), [0.625, 0.375, 0, 0])
    top3 = np.array([0.5, 0.3, 0.15, 0]) / 0.95
    assert np.allclose(probabilities(logits, GenerationSettings(temperature=1.0, top_k=3)), top3)
    assert np.allclose(probabilities(logits, GenerationSettings(temperature=1.0)), [0.5, 0.3, 0.15, 0.05], atol=1e-6)
    repeat = GenerationSettings(repetition_penalty=2.0)
    assert penalize(np.array([2.0, -2.0, 1.0], np.float32), repeat, {0, 1}, {}).tolist() == [1.0, -4.0, 1.0]


def test_presence_and_frequency_penalties_follow_genai() -> None:
    """GenAI's order and signs: repetition (prompt and answer), then presence and frequency (answer only), each
    moving a logit towards zero by its amount, judged on the sign the logit has by then."""
    logits = np.array([3.0, -1.0, 0.25, 2.0], np.float32)
    answer = {0: 2, 1: 1, 2: 3}
    presence = GenerationSettings(presence_penalty=0.5)
    assert penalize(logits, presence, {3}, answer).tolist() == [2.5, -0.5, -0.25, 2.0]
    frequency = GenerationSettings(frequency_penalty=0.25)
    assert penalize(logits, frequency, {3}, answer).tolist() == [2.5, -0.75, -0.5, 2.0]
    both = GenerationSettings(repetition_penalty=2.0, presence_penalty=0.5, frequency_penalty=0.25)
    # 3 -> 1.5 -> 1.0 -> 0.5; -1 -> -2 -> -1.5 -> -1.25; 0.25 -> 0.125 -> -0.375 -> 0.375; 2 (prompt) -> 1
    assert penalize(logits, both, {3}, answer).tolist() == [0.5, -1.25, 0.375, 1.0]
    assert penalize(logits, GenerationSettings(), {3}, answer) is logits
