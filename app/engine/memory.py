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


MIN_CONTEXT = 2048  # the smallest context a model is loaded with when its full one does not fit
OP_GROWTH = 5 / 4  # the op's cache grows by a quarter of itself (ov_ops/src/infllm_v2_kernel.cpp: append)
GENAI_SCALES = 8  # OpenVINO's CPU plugin keeps K and V in u8 with an f32 scale and zero point per token and head


def kv_bytes_per_token(config: dict, op_cache: bool, kernel_stride: int = 16) -> int:
    """KV cache bytes one token costs a model with this config.json. `op_cache`: cpmdesk's InfLLMv2Attention op
    holds it (f16/bf16 K and V, an int8 copy of K with its scale, f32 compressed keys every `kernel_stride` and
    4 * `kernel_stride` tokens with a bf16 copy of the first, and its growth headroom); otherwise OpenVINO's own
    attention (GenAI's stateful SDPA or PagedAttention: u8 K and V with their scales)."""
    heads = int(config.get("num_attention_heads") or 1)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or int(config.get("hidden_size") or 0) // heads)
    layers = int(config.get("num_hidden_layers") or 0)
    if op_cache:
        per_head = 5 * head_dim + 4 + (6 * head_dim) / kernel_stride + head_dim / kernel_stride
        per_head *= OP_GROWTH
    else:
        per_head = 2 * (head_dim + GENAI_SCALES)
    return round(layers * kv_heads * per_head)


def fit_context(wanted: int, fixed: int, per_token: int, available: int) -> tuple[int, str | None]:
    """The context to load with: `wanted` tokens when the model (`fixed` bytes) and their KV cache (`per_token`
    bytes each) fit in `available`, else the most that fits in whole 1024-token steps, with a note that says so;
    MIN_CONTEXT when even that does not fit (the load's own memory check then reports it)."""
    if fixed + wanted * per_token <= available or per_token <= 0:
        return wanted, None
    fits = max(MIN_CONTEXT, (available - fixed) // per_token // 1024 * 1024)
    if fits >= wanted:
        return wanted, None
    return fits, (f"context reduced to {fits:,} tokens (of {wanted:,}): the KV cache of {wanted:,} tokens needs "
                  f"{wanted * per_token / _GIB:.1f} GiB and {max(0, available - fixed) / _GIB:.1f} GiB is free after "
                  "the model; close other programs for a longer one")
