"""Will this model fit in free memory? Checked before loading, so the app refuses instead of swapping to death."""

from __future__ import annotations

from pathlib import Path

_GIB = 1 << 30
RUNTIME_OVERHEAD = 512 << 20  # runtime, tokenizer, KV cache of a short chat, compiled kernels


def available_memory() -> int:
    """Bytes of memory available to a new allocation now."""
    import psutil

    return int(psutil.virtual_memory().available)


def required_memory(folder: Path, draft_model: Path | None = None) -> int:
    """Rough need for loading an exported model: its weights once (and its draft's twice, when it has one: the
    draft also runs as a static-shape copy), plus a fixed overhead. `draft_model`: a draft from the user's
    models, for a folder without its own."""
    own = folder / "draft"
    draft = (own if own.is_dir() or draft_model is None else draft_model) / "openvino_model.bin"
    drafts = 2 * draft.stat().st_size if draft.is_file() else 0
    return (folder / "openvino_model.bin").stat().st_size + drafts + RUNTIME_OVERHEAD


def memory_problem(needed: int, available: int) -> str | None:
    """A one-line explanation when `needed` does not fit in `available`, else None."""
    if needed <= available:
        return None
    return (f"the model needs about {needed / _GIB:.1f} GiB of memory and {available / _GIB:.1f} GiB is free; "
            "close other programs or export a smaller model (e.g. --weight-format int4)")
