"""The engine's own assisted (speculative) decoding over two StatefulLMs.

Each round the draft proposes a few tokens one at a time, the target scores the last accepted token and all the
proposals in one step, and both models rewind past what is rejected.

* Greedy: the longest prefix of proposals equal to the target's own greedy choices is kept, plus the target's
  choice after it. The target's logits do not depend on how many tokens a step feeds (see stateful_lm), so the
  answer is token for token the target alone's.
* Sampled: speculative sampling (Leviathan et al. 2023; Chen et al. 2023). The draft samples its proposals from
  its own distribution q; proposal x is kept with probability min(1, p(x)/q(x)) under the target's distribution
  p, the first rejected one is replaced by a sample of max(0, p - q) renormalized, and after all are kept one
  more token is sampled from p. Every token is then distributed exactly as if the target alone had sampled it.

Without a draft the same loop is the target alone, one token per step.

Both models keep their cache between answers: a prompt that starts with the tokens a model's cache holds (the
next turn of a chat) feeds only the rest; one that differs (an edited or regenerated turn) truncates the cache
to the common prefix first (StatefulLM.resume).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.engine.settings import GenerationSettings
from app.engine.speculative import DEFAULT_ASSISTANT_TOKENS
from app.engine.stateful_lm import StatefulLM
from app.engine.token_choice import penalize, probabilities, sample

MAX_DRAFT_TOKENS = 8  # confidence-threshold drafting stops here even while the draft stays sure
OnTokens = Callable[[list[int]], bool]  # new answer tokens -> keep going?


@dataclass(frozen=True)
class Decoding:
    """What to decode: the answer's settings (length, sampling, penalty, seed), its end tokens, and how much to
    draft per step."""

    settings: GenerationSettings
    eos: frozenset[int]
    draft_tokens: int = DEFAULT_ASSISTANT_TOKENS  # per step, when confidence_threshold is None
    confidence_threshold: float | None = None  # draft while the draft's top probability is at least this


@dataclass
class DecodeResult:
    """An answer's tokens and what producing them took."""

    tokens: list[int]
    prompt_seconds: float  # prompt to first token
    prefilled: int = 0  # prompt tokens the target fed (the others were in its cache from the previous answer)
    decode_seconds: float = 0.0  # after the first token
    drafted: int = 0
    accepted: int = 0
    target_steps: int = 0  # target forward passes after the prompt
    stopped: bool = False  # on_tokens asked to stop


@dataclass
class _History:
    prompt: frozenset[int]
    answer: Counter  # answer token -> how often it came


@dataclass
class _Proposal:
    tokens: list[int]
    q: list[np.ndarray]  # sampled answers: the draft's distribution at each proposed token


class AssistedDecoder:
    """Decoding of `target`, assisted by `draft` when there is one (see the module docstring)."""

    def __init__(self, target: StatefulLM, draft: StatefulLM | None) -> None:
        self.target, self.draft = target, draft

    def generate(self, prompt: Sequence[int], decoding: Decoding, on_tokens: OnTokens) -> DecodeResult:
        """Decode an answer to `prompt` (token ids), passing each round's new tokens to `on_tokens`."""
        target, draft = self.target, self.draft
        rng = np.random.default_rng(decoding.settings.seed)
        history = _History(frozenset(prompt), Counter())  # for the penalties
        start = time.perf_counter()
        cached = target.resume(prompt)  # a chat's earlier turns stay in the cache: only the rest is fed
        first = self._verify(target.feed(prompt[cached:])[-1:], _Proposal([], []), history, decoding, rng)[0]
        if draft is not None:  # the draft reads the prompt too before the answer starts (part of its first token)
            draft.feed(prompt[draft.resume(prompt):])
        result = DecodeResult([first], time.perf_counter() - start, prefilled=len(prompt) - cached)
        decode_start = time.perf_counter()
        context = [*prompt, first]
        history.answer[first] += 1
        go_on = on_tokens([first])
        while go_on and not self._finished(result.tokens, decoding):
            room = decoding.settings.max_new_tokens - len(result.tokens) - 1  # the target's own token comes on top
            proposal = (_Proposal([], []) if draft is None else
                        self._propose(context, min(room, self._budget(decoding)), decoding, rng))
            scores = self._score(context[-1], proposal.tokens, decoding)
            new = self._verify(scores, proposal, history, decoding, rng)
            kept = len(new) - 1
            target.rewind(len(context) + kept)
            if draft is not None:
                draft.rewind(len(context) + kept)
            result.target_steps += 1
            result.drafted += len(proposal.tokens)
            result.accepted += kept
            new = self._cut(new, result.tokens, decoding)
            result.tokens.extend(new)
            context.extend(new)
            history.answer.update(new)
            go_on = on_tokens(new)
        result.decode_seconds = time.perf_counter() - decode_start
        result.stopped = not go_on
        return result

    def _score(self, last: int, proposal: list[int], decoding: Decoding) -> np.ndarray:
        """The target's logits after `last` and after each proposed token, [len(proposal) + 1, vocab].

        A short proposal (the answer's end is near, or the draft proposed its end) is padded to the step's usual
        size: OpenVINO's CPU plugin pays for a new input shape (up to a few plain steps here), rows after the real
        ones change nothing before them, and the rewind drops them."""
        steps = [last, *proposal]
        usual = 1 if self.draft is None or decoding.confidence_threshold is not None else decoding.draft_tokens + 1
        rows = max(usual, len(steps))
        return self.target.feed(steps + [last] * (rows - len(steps)), keep=rows)[:len(steps)]

    @staticmethod
    def _budget(decoding: Decoding) -> int:
        return MAX_DRAFT_TOKENS if decoding.confidence_threshold is not None else decoding.draft_tokens

    def _propose(self, context: list[int], budget: int, decoding: Decoding, rng: np.random.Generator) -> _Proposal:
        """Up to `budget` draft tokens continuing `context` (fewer where the draft is unsure or ends the answer)."""
        draft, settings, proposal = self.draft, decoding.settings, _Proposal([], [])
        if budget <= 0:
            return proposal
        logits = draft.feed(context[draft.length:])[-1]
        while True:
            if settings.greedy:
                token = int(logits.argmax())
            else:
                q = probabilities(logits, settings)
                token = sample(q, rng)
                proposal.q.append(q)
            proposal.tokens.append(token)
            if len(proposal.tokens) >= budget or (token in decoding.eos and not settings.ignore_eos):
                return proposal
            logits = draft.feed([token])[-1]
            threshold = decoding.confidence_threshold
            if threshold is not None and _top_probability(logits) < threshold:
                return proposal

    @staticmethod
    def _verify(scores: np.ndarray, proposal: _Proposal, history: _History, decoding: Decoding,
                rng: np.random.Generator) -> list[int]:
        """The tokens this step adds: the kept proposals, then the target's own token after them. Row i of
        `scores` is the target's logits after proposals[:i]."""
        settings, tokens = decoding.settings, proposal.tokens
        new: list[int] = []
        for i, row in enumerate(scores):
            row = penalize(row, settings, history.prompt, history.answer + Counter(new) if new else history.answer)
            if settings.greedy:
                token = int(row.argmax())
                new.append(token)
                if i == len(tokens) or token != tokens[i]:
                    return new
                continue
            p = probabilities(row, settings)
            if i == len(tokens):
                return [*new, sample(p, rng)]
            x, q = tokens[i], proposal.q[i]
            if rng.random() * q[x] < p[x]:
                new.append(x)
                continue
            residual = p.copy()
            residual[:q.size] -= q
            np.maximum(residual, 0.0, out=residual)
            return [*new, sample(residual if residual.sum() > 0 else p, rng)]
        return new

    @staticmethod
    def _finished(tokens: list[int], decoding: Decoding) -> bool:
        settings = decoding.settings
        return len(tokens) >= settings.max_new_tokens or (not settings.ignore_eos and tokens[-1] in decoding.eos)

    @staticmethod
    def _cut(new: list[int], tokens: list[int], decoding: Decoding) -> list[int]:
        """`new` up to the answer's end: its EOS (kept, as GenAI does) or max_new_tokens."""
        new = new[:decoding.settings.max_new_tokens - len(tokens)]
        if not decoding.settings.ignore_eos:
            for i, token in enumerate(new):
                if token in decoding.eos:
                    return new[:i + 1]
        return new


def _top_probability(logits: np.ndarray) -> float:
    """The draft's confidence: the probability of its most likely token."""
    shifted = logits.astype(np.float64) - float(logits.max())
    return float(1.0 / np.exp(shifted).sum())
