"""Loading models exported with InfLLM v2 sparse attention: the op library and the pipeline settings."""

from __future__ import annotations

import os
from pathlib import Path

from app.engine.model_folder import ModelFolderError
from app.resources import bundled_ops_library


def uses_sparse_attention(manifest: dict) -> bool:
    """Whether the export's IR holds cpmdesk's InfLLMv2Attention op (manifest key `sparse_attention`)."""
    return bool(manifest.get("sparse_attention"))


def pipeline_properties(manifest: dict) -> dict:
    """Extra LLMPipeline properties: the op library and the stateful SDPA backend (PagedAttention cannot host a
    custom attention op: openvino-genai's SDPA-to-PagedAttention conversion needs built-in SDPA nodes)."""
    if not uses_sparse_attention(manifest):
        return {}
    # CPMDESK_OV_OPS_LIBRARY first, then the bundle's copy (the bundle has no ov_ops package and no compiler).
    for library in (Path(os.environ.get("CPMDESK_OV_OPS_LIBRARY") or bundled_ops_library()), bundled_ops_library()):
        if library.is_file():
            return {"extensions": [str(library)], "ATTENTION_BACKEND": "SDPA"}
    try:
        from ov_ops.build import library_path

        library = library_path()
    except (ImportError, RuntimeError) as err:
        raise ModelFolderError(f"This model uses sparse attention, whose op library is missing: {err}") from err
    return {"extensions": [str(library)], "ATTENTION_BACKEND": "SDPA"}
