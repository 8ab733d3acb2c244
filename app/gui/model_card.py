"""What the header's model picker and the welcome card say about a model: name, size, quantization, draft and
context, from its manifest and config (Qt-free)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from app.models.library import ModelInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCard:
    """One model as the picker lists it."""

    folder: Path
    name: str
    size: str  # "129 MiB"
    quantization: str  # "int4 g64 sym AWQ"
    draft: str  # "draft on" / "draft off" / the loaded engine's draft state
    context: int  # tokens (the loaded engine's, else the model's trained length; 0 when unknown)

    def context_label(self) -> str:
        """`8,192 tokens` (or "" when unknown)."""
        return f"{self.context:,} tokens" if self.context else ""

    def summary(self) -> str:
        """One line: `name · 129 MiB · int4 g64 · draft off · 8,192 tokens`."""
        return " · ".join(filter(None, (self.name, self.size, self.quantization, self.draft, self.context_label())))


def describe_quantization(manifest: dict) -> str:
    """E.g. 'int4 g64 sym AWQ'; a ternary model's (BitCPM4) 'ternary int4' or 'ternary int2 + int4 g128'."""
    q = manifest.get("quantization", {})
    text = q.get("weight_format", "?")
    if text == "int4":
        text += f" g{q.get('group_size')}" + (" sym" if q.get("sym") else "") + (" AWQ" if q.get("awq") else "")
    ternary = manifest.get("ternary")
    if isinstance(ternary, dict):
        whole = ternary.get("tensors") == ternary.get("linear_tensors")
        return f"ternary {ternary.get('storage', '?')}" + ("" if whole else f" + {text}")
    return text


def trained_context(folder: Path) -> int:
    """The model's trained context (config.json's max_position_embeddings); 0 when unreadable (logged)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return int(config.get("max_position_embeddings") or 0)
    except (OSError, ValueError, TypeError, AttributeError) as err:
        log.warning("no context length for %s: %s", folder.name, err)
        return 0


def model_card(model: ModelInfo, use_draft: bool, loaded_draft: str | None = None,
               loaded_context: int | None = None) -> ModelCard:
    """The card of `model`; `loaded_draft`/`loaded_context`: what the engine reports when this model is loaded."""
    if loaded_draft is not None:
        draft = loaded_draft or "draft off"
    else:
        draft = "draft on" if use_draft and model.manifest.get("draft") else "draft off"
    context = loaded_context or trained_context(model.folder)
    return ModelCard(model.folder, model.name, f"{model.size_bytes / 2**20:.0f} MiB",
                     describe_quantization(model.manifest), draft, context)
