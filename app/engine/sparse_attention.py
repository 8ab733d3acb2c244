"""Loading models exported with InfLLM v2 sparse attention: the op library and the pipeline settings."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from app.engine.model_folder import ModelFolderError
from app.resources import bundled_ops_library

log = logging.getLogger(__name__)


class OpLibraryMissingError(ModelFolderError):
    """cpmdesk's op library is not available here (not built, not buildable, or not shipped for this platform)."""


def uses_sparse_attention(manifest: dict) -> bool:
    """Whether the export's IR holds cpmdesk's InfLLMv2Attention op (manifest key `sparse_attention`)."""
    return bool(manifest.get("sparse_attention"))


def op_library() -> str:
    """Path of cpmdesk's op library: CPMDESK_OV_OPS_LIBRARY, the bundle's copy, or the source tree's build (built
    on first use); OpLibraryMissingError says why there is none."""
    for library in (Path(os.environ.get("CPMDESK_OV_OPS_LIBRARY") or bundled_ops_library()), bundled_ops_library()):
        if library.is_file():
            return str(library)
    try:
        from ov_ops.build import library_path

        return str(library_path())
    except (ImportError, RuntimeError) as err:
        raise OpLibraryMissingError(f"cpmdesk's attention op library is missing: {err}") from err


def op_library_problem() -> str | None:
    """Why the op library cannot be loaded here (logged with the details), or None when it can."""
    try:
        op_library()
    except OpLibraryMissingError as err:
        log.warning("%s", err)
        return str(err)
    return None


def pipeline_properties(manifest: dict) -> dict:
    """Extra LLMPipeline properties: the op library and the stateful SDPA backend (PagedAttention cannot host a
    custom attention op: openvino-genai's SDPA-to-PagedAttention conversion needs built-in SDPA nodes)."""
    if not uses_sparse_attention(manifest):
        return {}
    return {"extensions": [op_library()], "ATTENTION_BACKEND": "SDPA"}
