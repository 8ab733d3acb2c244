"""Loading models exported with InfLLM v2 sparse attention: the op library and the pipeline settings."""

from __future__ import annotations

from app.engine.model_folder import ModelFolderError


def uses_sparse_attention(manifest: dict) -> bool:
    """Whether the export's IR holds cpmdesk's InfLLMv2Attention op (manifest key `sparse_attention`)."""
    return bool(manifest.get("sparse_attention"))


def pipeline_properties(manifest: dict) -> dict:
    """Extra LLMPipeline properties: the op library and the stateful SDPA backend (PagedAttention cannot host a
    custom attention op: openvino-genai's SDPA-to-PagedAttention conversion needs built-in SDPA nodes)."""
    if not uses_sparse_attention(manifest):
        return {}
    from ov_ops.build import OpsBuildError, library_path

    try:
        library = library_path()
    except OpsBuildError as err:
        raise ModelFolderError(f"This model uses sparse attention, whose op library is missing: {err}") from err
    return {"extensions": [str(library)], "ATTENTION_BACKEND": "SDPA"}
