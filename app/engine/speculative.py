"""Assisted generation: when a model folder carries a draft (OUT/draft), the engine's own speculative decoding.

The draft proposes a few tokens, the target checks them in one step and keeps the longest agreeing prefix, so
greedy output is token for token what the target gives through the same loop without drafting (DraftConfig.exact);
plain mode (GenAI's pipeline, what "draft off" runs) rounds differently and may part ways at a near-tie. The loop
is the engine's (app/engine/assisted.py), over stateful models whose attention runs in cpmdesk's op
(app/engine/stateful_lm.py), not openvino-genai's speculative pipeline: GenAI's verification steps round
differently from its one-token steps unless the target runs at slow exact settings (f32, no dynamic quantization:
~1.25x slower per token here), which ate the draft's gain, and its speculative sampling fails an internal check on
most answers (bench/RESULTS.md, issue 6).

The engine answers in one of two modes (DraftPlan): "assisted" (that loop, greedy answers verified, sampled ones
by speculative sampling) and "plain" (GenAI's pipeline, the target alone at the plugin's defaults) whenever the
draft is off or blocked. DraftConfig(sampled_answers=False) sends sampled answers to plain mode; the engine then
switches mode when an answer needs the other one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.engine.model_folder import REQUIRED, ModelFolderError
from app.engine.sparse_attention import op_library_problem, uses_sparse_attention

DEFAULT_ASSISTANT_TOKENS = 3  # a draft ~1/4 of a target step at ~0.7 acceptance pays best at 2-3 (bench/RESULTS.md)


@dataclass(frozen=True)
class DraftConfig:
    """How to use a model's draft. `enabled=False` decodes with the target alone; `exact` then still decodes
    through the assisted loop, without drafting, so greedy answers can be compared token for token with the
    draft's and speeds measured on the same runtime (the benchmark's and the tests' "target alone")."""

    enabled: bool = True
    num_assistant_tokens: int | None = DEFAULT_ASSISTANT_TOKENS  # tokens drafted per step
    confidence_threshold: float | None = None  # instead of a fixed count: draft while the draft is this sure
    exact: bool = False
    sampled_answers: bool = True  # sampled answers use the draft too (speculative sampling); False: plain
    model: Path | None = None  # a draft from the user's models, for a folder that carries none (picked above)

    def drafts(self, sampled: bool) -> bool:
        """Whether an answer (sampled or greedy) is decoded with the draft, when the draft is usable."""
        return self.enabled and (self.sampled_answers or not sampled)


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


def draft_stats(drafted: int, accepted: int, target_steps: int, answer_tokens: int) -> DraftStats:
    """An answer's DraftStats; tokens per step counts the answer's tokens after the first (the prompt's step).

    Tokens per target step is the ceiling of the answer's speed-up (reached only if drafting were free and a
    verification step cost what a plain step does). The speed-up itself needs the same answer without the draft:
    bench/speculative.py measures it. Timing one step of the target alone inside the answer was tried and missed
    by up to 50 % on a 2-core VM (one step's noise, and the first step in a new input shape costs ~15 % more)."""
    after_first = max(0, answer_tokens - 1)
    return DraftStats(accepted_tokens=accepted, draft_tokens=drafted,
                      acceptance_rate=accepted / drafted if drafted else 0.0, target_steps=target_steps,
                      tokens_per_step=after_first / target_steps if target_steps else 1.0)


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


def draft_blocker(manifest: dict, device: str) -> str | None:
    """Why a folder's draft cannot assist its target here, or None when it can."""
    if device != "CPU":
        return "CPU only"  # cpmdesk's attention op, which the assisted loop runs on, is a CPU op
    if manifest.get("draft", {}).get("kind") == "eagle3":
        return "EAGLE-3 heads are not run yet"  # they need the target's hidden states, which the loop does not pass
    return None


ASSISTED, PLAIN = "assisted", "plain"  # the engine's pipeline modes
NO_OP_LIBRARY = "no attention op library on this system"  # the status line's reason (the details are logged)


@dataclass(frozen=True)
class DraftPlan:
    """What the engine does with a folder's draft: which mode each answer needs and what assisted mode loads."""

    draft: Path | None  # the draft assisted mode loads; None: no drafting
    off: str  # the status line when `draft` is None: "" (no draft), "draft off", "draft off: <reason>"
    config: DraftConfig
    exact: bool = False  # answers take the assisted loop even without a draft (DraftConfig.exact)
    paired: str = ""  # the name of a draft from the user's models (DraftConfig.model), "" for the folder's own

    def mode_for(self, sampled: bool | None) -> str:
        """The mode an answer needs (None: not known yet, taken as greedy, the engine's default settings)."""
        if self.draft is not None and self.config.drafts(bool(sampled)):
            return ASSISTED
        return ASSISTED if self.exact else PLAIN

    def status(self, mode: str | None) -> str:
        """What is true in `mode` (None: nothing loaded): "draft on", "draft idle: sampled answers",
        "draft off…", or "" for a model without a draft."""
        if self.draft is None:
            return self.off
        if mode is None:
            return "draft not loaded"
        state = "draft on" if mode == ASSISTED else "draft idle: sampled answers"
        return f"{state} ({self.paired})" if self.paired else state


def plan_draft(folder: Path, manifest: dict, config: DraftConfig, device: str) -> DraftPlan:
    """Decide whether the target can load with its draft (enabled, present, not blocked): the folder's own, else
    the one `config.model` names (a smaller model with the same tokenizer from the user's models).

    The assisted loop runs on cpmdesk's op library; where it is missing (not built, or a platform it is not built
    for) the target answers alone through GenAI's pipeline and the status says so. A sparse-attention export
    cannot load without it: that is a ModelFolderError saying what to do."""
    sparse = uses_sparse_attention(manifest)
    if sparse:
        problem = op_library_problem()
        if problem:
            raise ModelFolderError(f"{folder.name} was exported with InfLLM v2 sparse attention, which runs in "
                                   f"cpmdesk's op library ({problem}); export it again with --no-sparse-attention "
                                   "to use it here")
    draft = draft_folder(folder, manifest)
    paired = draft is None and config.model is not None
    if paired:
        draft = Path(config.model)
        missing = [name for name in REQUIRED if not (draft / name).is_file()]
        if missing:
            raise ModelFolderError(f"The draft model {draft.name} is incomplete (missing {', '.join(missing)}); "
                                   "remove it in Models…, or turn the draft off in Settings")
    # sparse exports always answer through the assisted loop, whose op cache a chat keeps between turns
    exact = (config.exact or sparse) and device == "CPU"
    if draft is None:
        if exact and not sparse and op_library_problem():
            return DraftPlan(None, f"draft off: {NO_OP_LIBRARY}", config)
        return DraftPlan(None, "", config, exact)
    blocker = draft_blocker(manifest, device)
    if blocker is None and (config.enabled or exact) and not sparse and op_library_problem():
        blocker = NO_OP_LIBRARY
    if blocker:
        return DraftPlan(None, f"draft off: {blocker}", config)
    return DraftPlan(draft if config.enabled else None, "" if config.enabled else "draft off", config, exact,
                     draft.name if paired else "")
