"""Generation settings the user controls."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings; temperature 0 means greedy."""

    max_new_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0  # GenAI's: logits of prompt and answer tokens divided (positive) or multiplied
    presence_penalty: float = 0.0  # GenAI's: |logit| of each answer token reduced by this once
    frequency_penalty: float = 0.0  # GenAI's: |logit| of each answer token reduced by this per occurrence
    seed: int | None = None
    stop_strings: tuple[str, ...] = field(default_factory=tuple)
    ignore_eos: bool = False  # benchmarks: always generate max_new_tokens

    @property
    def greedy(self) -> bool:
        """Whether answers are decoded greedily (temperature 0) rather than sampled."""
        return not self.temperature > 0

    def apply(self, config) -> None:
        """Copy these settings onto an openvino_genai.GenerationConfig."""
        config.max_new_tokens = self.max_new_tokens
        config.repetition_penalty = self.repetition_penalty
        config.presence_penalty = self.presence_penalty
        config.frequency_penalty = self.frequency_penalty
        config.do_sample = not self.greedy
        if config.do_sample:
            config.temperature = self.temperature
            config.top_p = self.top_p
            config.top_k = self.top_k
        if self.seed is not None:
            config.rng_seed = self.seed
        config.ignore_eos = self.ignore_eos
        if self.stop_strings:
            config.stop_strings = set(self.stop_strings)
