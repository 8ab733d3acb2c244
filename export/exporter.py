"""The export, step by step: resolve, preflight, convert, validate, write the manifest, move into place.

Everything is built in a hidden staging folder beside OUT and renamed into place only once it validated,
so an interrupted or failed export never leaves a folder that looks usable.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from export.draft import DraftRequest, export_draft, resolve_draft
from export.errors import ExportError, OutputExistsError, ValidationFailedError
from export.manifest import folder_sizes, tool_versions, write_manifest
from export.preflight import ModelFacts, check_disk, estimate_export_bytes, inspect_folder, inspect_gguf
from export.settings import (
    AGREEMENT_THRESHOLDS,
    EXACT_PROPERTIES,
    TERNARY_AGREEMENT,
    TERNARY_MAX_LOGIT_DIFF,
    Quantization,
)
from export.source import Source, resolve_source
from export.sparse_attention import apply_for_export, resolve_for_export
from export.tensor_reader import safetensors_files

Log = Callable[[str], None]
_SMALL_MODEL = 3_000_000_000  # below this many parameters work copies and references use fp32


@dataclass
class ExportRequest:
    """One `cpmdesk-export` invocation."""

    source: str
    out: Path
    quant: Quantization = field(default_factory=Quantization)
    trust_remote_code: bool = False
    force: bool = False
    revision: str | None = None
    sparse_attention: bool | dict | None = None  # None: on when the model has sparse_config; dict: overrides
    draft: DraftRequest | None = None  # a draft model exported into OUT/draft (export/draft.py)
    backend: str = "streaming"  # "streaming" (torch-free, export/streaming.py) or "optimum" (optimum-intel + torch)


def run_export(request: ExportRequest, log: Log = print) -> dict:
    """Export and validate; returns the manifest. Raises ExportError with a one-line fix on bad input."""
    started = time.monotonic()
    if request.quant.int4_head and request.backend == "optimum":
        raise ExportError("--int4-head is built by the streaming backend only; leave out --backend optimum")
    out = request.out.expanduser().resolve()
    _check_output(out, request.force)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)

    log(f"[1/5] Resolving {request.source}")
    source = resolve_source(request.source, request.revision)
    draft = resolve_draft(request.draft, source) if request.draft else None  # refused before any heavy work
    model_config = _source_config(source)
    sparse_config = resolve_for_export((model_config or {}).get("sparse_config"), request.sparse_attention,
                                       model_config)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        staging.mkdir()
        log("[2/5] Checking the model")
        ir_dir = staging / "ir"
        ternary = None  # the manifest's `ternary` entry (streaming backend only)
        if request.backend == "optimum":
            hf_dir, facts, reference = _prepare(source, request, staging / "work", log)
            log(f"[3/5] Converting to OpenVINO IR ({request.quant.weight_format}, optimum-intel)")
            from export.convert import convert_to_ir

            convert_to_ir(hf_dir, ir_dir, request.quant,
                          request.trust_remote_code and facts["route"] == "remote-code")
            log("[4/5] Validating the IR against the source model")
            validation = _validate(ir_dir, hf_dir, reference, request.quant.weight_format)
        else:
            facts, model_type = _inspect_streaming(source, request, staging, log)
            log(f"[3/5] Converting to OpenVINO IR ({request.quant.weight_format}, streaming one layer at a time)")
            from export.streaming import convert_streaming

            model = convert_streaming(source.path, model_type, ir_dir, request.quant, staging / "work", log)
            log("[4/5] Validating the IR against the source model (NumPy reference)")
            validation = _validate_streaming(ir_dir, model, request.quant.weight_format)
            ternary = _ternary_entry(model, request.quant)
        log(f"      top-1 agreement {validation.top1_agreement:.1%} (needs {validation.threshold:.0%}), "
            f"in top-5 {validation.top5_containment:.1%}, max |Δlogit| {validation.max_abs_logit_diff:.4f}, "
            f"tokenizer match {validation.tokenizer_match}")
        manifest = {
            "source": source.describe(),
            "backend": request.backend,
            "architecture": facts,
            "quantization": request.quant.describe(),
            "sizes": folder_sizes(ir_dir),
            "tools": tool_versions(request.backend),
            "validation": validation.describe(),
            "export_seconds": round(time.monotonic() - started, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if ternary:
            manifest["ternary"] = ternary
        if not validation.passed:
            raise ValidationFailedError(
                f"The exported IR does not match the source model (top-1 agreement {validation.top1_agreement:.1%}, "
                f"needs {validation.threshold:.0%}; in top-5 {validation.top5_containment:.1%}; tokenizer match "
                f"{validation.tokenizer_match}); try a higher precision (--weight-format int8 or fp16), "
                "a smaller --group-size, or --ratio 0.8")
        sparse = apply_for_export(ir_dir, sparse_config, log)
        if sparse:
            manifest["sparse_attention"] = sparse
            manifest["architecture"]["attention"] = "infllm-v2"
            manifest["sizes"] = folder_sizes(ir_dir)
        if draft is not None:
            manifest["draft"] = export_draft(request.draft, draft, ir_dir, request.trust_remote_code, log,
                                             request.backend)
        log("[5/5] Writing manifest and moving into place")
        write_manifest(ir_dir, manifest)
        _move_into_place(ir_dir, out, staging)
        log(f"Exported to {out} ({manifest['sizes']['total_bytes'] / 2**20:.1f} MiB)")
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _source_config(source: Source) -> dict | None:
    """A folder source's config.json (for the InfLLM v2 variant); None for GGUF files."""
    import json

    try:
        config = json.loads((source.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no folder or no readable config: preflight says what is wrong
        return None
    return config if isinstance(config, dict) else None


def _check_output(out: Path, force: bool) -> None:
    if out.is_file():
        raise OutputExistsError(f"{out} is a file; choose a folder path for OUT")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"{out} is not empty; choose another OUT or pass --force to replace it")


def _remove_stale_staging(out: Path) -> None:
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _work_dtype(params: int) -> str:
    """Precision of work copies and PyTorch references: fp32 for small models, bf16 (half the memory) above."""
    return "float32" if params < _SMALL_MODEL else "bfloat16"


def _work_copy_bytes(params: int) -> int:
    return params * (4 if _work_dtype(params) == "float32" else 2)


def _prepare(source: Source, request: ExportRequest, work: Path, log: Log):
    """Preflight, disk check, and the Hugging Face folder to convert; also the validation reference factory."""
    if source.kind == "gguf":
        arch, params = inspect_gguf(source.path)
        check_disk(work.parent, estimate_export_bytes(params, 0, request.quant.weight_format,
                                                      _work_copy_bytes(params)))
        log(f"      GGUF {arch}, {params / 1e6:.0f}M parameters: dequantizing")
        from export.gguf_source import gguf_to_hf

        gguf_to_hf(source.path, work, _work_dtype(params))
        facts = {"model_type": arch, "route": "gguf", "param_count": params}
        return work, facts, lambda: _hf_reference(work, params)

    model = inspect_folder(source.path, request.trust_remote_code)
    route = model.route.kind
    params = model.param_count
    work_bytes = _work_copy_bytes(params) if route == "minicpm-fold" else 0
    check_disk(work.parent, estimate_export_bytes(params, model.embedding_params, request.quant.weight_format,
                                                  work_bytes))
    facts = _folder_facts(model)
    log(f"      {model.route.model_type} ({route}), {params / 1e6:.0f}M parameters")
    if route == "minicpm-fold":
        from export.model_spec import require_dense_silu

        require_dense_silu(model.config, "minicpm")  # before torch: the fold and its reference are SiLU, dense
        import torch

        from export.minicpm import fold_to_llama

        dtype = getattr(torch, _work_dtype(params))
        log("      folding MiniCPM's muP scales into a Llama-format checkpoint")
        fold_to_llama(source.path, work, dtype)

        def minicpm_reference():
            from export.minicpm import build_reference

            return build_reference(source.path, dtype)

        return work, facts, minicpm_reference
    return source.path, facts, lambda: _hf_reference(source.path, params, request.trust_remote_code)


_NEEDS_OPTIMUM = "; use --backend optimum (needs pip install 'cpmdesk[export]')"


def _inspect_streaming(source: Source, request: ExportRequest, staging: Path, log: Log) -> tuple[dict, str]:
    """Preflight for the streaming backend: what it can build, facts for the manifest, disk for IR + scratch."""
    from export.model_spec import STREAMING_TYPES

    quant = request.quant
    if quant.scale_estimation or quant.dataset:
        raise ExportError("--scale-estimation and --dataset need calibration activations, which the streaming "
                          "exporter does not compute" + _NEEDS_OPTIMUM)
    if source.kind == "gguf":
        arch, params = inspect_gguf(source.path)
        check_disk(staging, estimate_export_bytes(params, 0, quant.weight_format, 0, streaming=True))
        log(f"      GGUF {arch}, {params / 1e6:.0f}M parameters")
        return {"model_type": arch, "route": "gguf", "param_count": params}, arch
    model = inspect_folder(source.path, request.trust_remote_code)
    model_type = model.route.model_type
    if model.route.kind == "remote-code" or model_type not in STREAMING_TYPES:
        raise ExportError(f"The streaming exporter builds {', '.join(STREAMING_TYPES)}, not {model_type!r}"
                          + _NEEDS_OPTIMUM)
    safetensors_files(source.path)  # the reader's own check: .bin-only checkpoints are refused here, before work
    check_disk(staging, estimate_export_bytes(model.param_count, model.embedding_params, quant.weight_format, 0,
                                              streaming=True))
    log(f"      {model_type}, {model.param_count / 1e6:.0f}M parameters")
    return _folder_facts(model), model_type


def _folder_facts(model: ModelFacts) -> dict:
    """The manifest's `architecture` entry of a Hugging Face folder (both backends)."""
    config = model.config
    facts = {"model_type": model.route.model_type, "route": model.route.kind, "param_count": model.param_count,
             "config": {k: config.get(k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                   "num_key_value_heads", "vocab_size", "max_position_embeddings")
                        if k in config}}
    if model.route.kind == "minicpm-fold":
        facts["attention"] = "dense"
        if config.get("sparse_config"):
            facts["sparse_config"] = config["sparse_config"]
    return facts


def _validate_streaming(ir_dir: Path, model, weight_format: str):
    """Validation without torch: the NumPy reference over the source's own weights.

    A model whose linear weights are all ternary is stored without loss: it is run with f32 activations and no
    dynamic quantization, and must agree with its fake-quantized source within rounding (TERNARY_* settings).
    """
    from export.numpy_reference import NumpyReference
    from export.tokenizer import load_tokenizer
    from export.validate import validate_ir

    tokenizer = load_tokenizer(model.tokenizer_dir)
    reference = NumpyReference(model.spec, model.reader).logits
    if model.ternary and len(model.ternary) == len(model.linear_names()):
        return validate_ir(ir_dir, tokenizer, reference, TERNARY_AGREEMENT[weight_format],
                           TERNARY_MAX_LOGIT_DIFF[weight_format], EXACT_PROPERTIES)
    return validate_ir(ir_dir, tokenizer, reference, AGREEMENT_THRESHOLDS[weight_format])


def _ternary_entry(model, quant: Quantization) -> dict | None:
    """The manifest's `ternary` entry of a streaming export (None when no weight was ternary)."""
    from export.ternary import summarize

    if not model.ternary:
        return None
    entry = summarize(model.ternary, len(model.linear_names()), quant.ternary)
    if model.head_scale is not None:
        entry["shared_head"] = True  # the tied head is the stored embedding (export/streaming.py build_ir)
    return entry


def _hf_reference(folder: Path, params: int, trust_remote_code: bool = False):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, _work_dtype(params)),
                                                trust_remote_code=trust_remote_code).eval()


def _validate(ir_dir: Path, hf_dir: Path, make_reference, weight_format: str):
    from export.tokenizer import load_tokenizer
    from export.validate import torch_reference, validate_ir

    tokenizer = load_tokenizer(hf_dir)
    try:
        model = make_reference()
    except (OSError, RuntimeError, ValueError) as err:
        raise ExportError(f"Could not load the source model to validate against ({err}); check its weights") from err
    return validate_ir(ir_dir, tokenizer, torch_reference(model), AGREEMENT_THRESHOLDS[weight_format])


def _move_into_place(ir_dir: Path, out: Path, staging: Path) -> None:
    if out.exists():
        old = staging / "replaced"
        os.replace(out, old)
    os.replace(ir_dir, out)
