"""Assisted generation: when a model folder carries a draft (OUT/draft), openvino-genai's speculative decoding.

The draft proposes a few tokens, the target checks them in one step and keeps the longest agreeing prefix,
so greedy output stays the target's own. It runs on GenAI's PagedAttention path only; a model exported with
the sparse-attention custom op (manifest `sparse_attention`) runs on the stateful SDPA backend instead,
where GenAI cannot host a draft, so such models decode plainly and say why.

The engine holds one pipeline in one of two modes (DraftPlan): "assisted" (target + draft, the target at the
exact settings below) for greedy answers, and "plain" (the target alone at the plugin's fast defaults) for
sampled answers, which skip the draft (DraftConfig.greedy_only), and whenever the draft is off. It switches
mode when an answer needs the other one, so sampled chats never pay the exact settings for a draft they
do not use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.engine.model_folder import REQUIRED, ModelFolderError

DEFAULT_ASSISTANT_TOKENS = 3  # a draft ~1/4 of a target step at ~0.7 acceptance pays best at 2-3 (bench/RESULTS.md)


@dataclass(frozen=True)
class DraftConfig:
    """How to use a model's draft. `enabled=False` decodes with the target alone, at the plugin's fast defaults
    unless `exact` keeps the settings the target runs with under its draft (to compare answers token for token);
    `exact` applies likewise to the sampled answers that skip the draft."""

    enabled: bool = True
    num_assistant_tokens: int | None = DEFAULT_ASSISTANT_TOKENS  # tokens drafted per step
    confidence_threshold: float | None = None  # instead of a fixed count: draft while the draft is this sure
    exact: bool = False  # without the draft: still the exact settings (greedy answers equal to the draft's)
    # Sampled answers skip the draft: openvino-genai 2026.4.1's speculative sampling fails an internal check on
    # most answers with a real pair (bench/RESULTS.md, issue 6: 13-17 of 20), each costing two pipeline loads.
    # They run on the plain pipeline (the target alone at its fast defaults); False drafts them too (the bench).
    greedy_only: bool = True

    def drafts(self, sampled: bool) -> bool:
        """Whether an answer (sampled or greedy) uses an enabled, usable draft."""
        return not (self.greedy_only and sampled)

    def apply(self, config) -> None:
        """Set the drafting parameters on an openvino_genai.GenerationConfig of an assisted pipeline."""
        if self.confidence_threshold is not None:
            config.assistant_confidence_threshold = float(self.confidence_threshold)
        else:
            config.num_assistant_tokens = int(self.num_assistant_tokens or DEFAULT_ASSISTANT_TOKENS)


@dataclass(frozen=True)
class DraftStats:
    """How the draft did on one answer."""

    accepted_tokens: int
    draft_tokens: int
    acceptance_rate: float  # accepted / drafted
    target_steps: int  # target-model forward passes after the prompt
    tokens_per_step: float  # answer tokens per target forward pass after the prompt (1.0 = no gain)

    def describe(self) -> str:
        """Short status text, e.g. "draft 72 % accepted · 2.9 tokens/step"."""
        if self.draft_tokens == 0:
            return "draft: nothing drafted"
        return f"draft {self.acceptance_rate:.0%} accepted · {self.tokens_per_step:.1f} tokens/step"


def draft_folder(folder: Path, manifest: dict) -> Path | None:
    """The folder's draft model when its manifest records one, else None; an incomplete draft is an error."""
    entry = manifest.get("draft")
    if not entry:
        return None
    draft = folder / entry.get("path", "draft")
    missing = [name for name in REQUIRED if not (draft / name).is_file()]
    if missing:
        raise ModelFolderError(f"The draft model in {draft} is incomplete (missing {', '.join(missing)}); export "
                               "the model again, or turn the draft off in Settings")
    return draft


def draft_blocker(manifest: dict) -> str | None:
    """Why a folder's draft cannot be used on GenAI's speculative path, or None when it can."""
    if manifest.get("sparse_attention"):
        return "sparse attention"
    return None


def draft_stats(perf, extended) -> DraftStats:
    """Acceptance and tokens per target step from a speculative answer's metrics.

    GenAI reports the drafted and accepted counts and the target's forward passes, but not what the same answer
    would have cost without the draft, so no speed-up can be measured per answer. Tokens per target step is
    the ceiling of the speed-up (reached only if drafting were free and a verification step cost what a plain
    step does); bench/speculative.py measures the real speed-up against the target alone.
    """
    drafted = int(extended.get_num_draft_tokens())
    accepted = int(extended.get_num_accepted_tokens())
    steps = max(0, len(extended.main_model_metrics.raw_metrics.m_durations) - 1)  # the first pass is the prompt
    after_prompt = max(0, int(perf.get_num_generated_tokens()) - 1)
    return DraftStats(accepted_tokens=accepted, draft_tokens=drafted,
                      acceptance_rate=accepted / drafted if drafted else 0.0, target_steps=steps,
                      tokens_per_step=after_prompt / steps if steps else 1.0)


# Greedy answers with the draft must be the target's own, yet a verification step scores several tokens in
# one pass, and OpenVINO's CPU kernels round a several-row step differently from a one-row step unless they
# compute in f32 without dynamic activation quantization: measured on a bf16-capable CPU (bench/RESULTS.md,
# issue 6), bf16 inference and activation quantization (groups of 32, the CPU default) both make greedy texts
# drift. So under its draft the target runs f32, f32 KV cache, no activation quantization: greedy answers are
# those of the target alone at these settings (DraftConfig.exact), which are about 1.25x slower per token than
# the plugin's defaults on that CPU. Only the assisted pipeline pays that: with the draft turned off, and for
# sampled answers (which skip the draft), the target runs plain at the defaults.
EXACT_PROPERTIES = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32",
                    "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}
# The draft's numerics never change the answer (the target checks every token), so it keeps the plugin's fast
# defaults. The map must not be empty: GenAI gives a draft without properties the target's.
DRAFT_PROPERTIES = {"DYNAMIC_QUANTIZATION_GROUP_SIZE": 32, "KV_CACHE_PRECISION": "u8"}


ASSISTED, PLAIN = "assisted", "plain"  # the engine's pipeline modes


@dataclass(frozen=True)
class DraftPlan:
    """What the engine does with a folder's draft: which mode each answer needs, and how each mode loads."""

    draft: Path | None  # the draft the target loads with in assisted mode; None: always plain
    off: str  # the status line when `draft` is None: "" (no draft), "draft off", "draft off: sparse attention"
    config: DraftConfig
    device: str
    plain_exact: bool = False  # plain mode keeps the exact settings too (DraftConfig.exact, a usable draft folder)

    def mode_for(self, sampled: bool | None) -> str:
        """The mode an answer needs (None: not known yet, taken as greedy, the engine's default settings)."""
        return ASSISTED if self.draft is not None and self.config.drafts(bool(sampled)) else PLAIN

    def status(self, mode: str | None) -> str:
        """What is true in `mode` (None: no pipeline loaded): "draft on", "draft idle: sampled answers",
        "draft off…", or "" for a model without a draft."""
        if self.draft is None:
            return self.off
        if mode is None:
            return "draft not loaded"
        return "draft on" if mode == ASSISTED else "draft idle: sampled answers"

    def pipeline_kwargs(self, mode: str, og, with_draft: bool = True) -> dict:
        """LLMPipeline keyword arguments for `mode` (a fresh draft_model each time: GenAI transforms the one it
        gets); `with_draft=False` gives assisted mode's target settings without the draft (crash recovery)."""
        on_cpu = self.device == "CPU"
        if mode == ASSISTED:
            kwargs = dict(EXACT_PROPERTIES) if on_cpu else {}
            if with_draft:
                fast = dict(DRAFT_PROPERTIES) if on_cpu else {}
                kwargs["draft_model"] = og.draft_model(str(self.draft), self.device, **fast)
            return kwargs
        return dict(EXACT_PROPERTIES) if on_cpu and self.plain_exact else {}


def plan_draft(folder: Path, manifest: dict, config: DraftConfig, device: str) -> DraftPlan:
    """Decide whether the target can load with its draft (enabled, present, not blocked)."""
    draft = draft_folder(folder, manifest)
    if draft is None:
        return DraftPlan(None, "", config, device)
    blocker = draft_blocker(manifest)
    if blocker:
        return DraftPlan(None, f"draft off: {blocker}", config, device)
    return DraftPlan(draft if config.enabled else None, "" if config.enabled else "draft off", config, device,
                     plain_exact=config.exact)


def is_sampling_crash(err: Exception) -> bool:
    """GenAI 2026.4's intermittent check failure in speculative decoding with sampling (sequence_group.cpp)."""
    return "content_length <= prompt_ids.size()" in str(err)
