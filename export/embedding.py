"""The embedding task: a sentence-embedding encoder (BERT family, e.g. all-MiniLM-L6-v2) to an OpenVINO IR that
openvino-genai's TextEmbeddingPipeline loads (one `last_hidden_state` output, OpenVINO tokenizer beside it).

Validated like the chat export: mean-pooled, normalized OpenVINO embeddings must match the PyTorch model's.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from export.config_file import read_config
from export.errors import (
    ConfigFileError,
    ExportError,
    MissingFilesError,
    UnsupportedArchitectureError,
    ValidationFailedError,
)
from export.manifest import folder_sizes, tool_versions, write_manifest
from export.settings import Quantization

TASK = "feature-extraction"
ENCODERS = ("bert", "roberta", "xlm-roberta", "mpnet", "distilbert")
MIN_COSINE = {"fp32": 0.999, "fp16": 0.995, "int8": 0.99, "int4": 0.95}
# Sentences for validation: each query's best match must be the same document in OpenVINO as in PyTorch.
_QUERIES = ("Where is the Eiffel Tower?", "How do plants make food?", "What does a compiler do?")
_DOCS = ("The Eiffel Tower stands in Paris, France.", "Photosynthesis turns light, water and CO2 into sugar.",
         "A compiler translates source code into machine code.", "Cats sleep for most of the day.")
Log = Callable[[str], None]


def run_embedding_export(source: Path, out: Path, quant: Quantization, force: bool = False, log: Log = print) -> dict:
    """Export and validate an embedding model folder into OUT (staged beside it, renamed into place)."""
    started = time.monotonic()
    source, out = Path(source).expanduser().resolve(), Path(out).expanduser().resolve()
    config = _check_source(source)
    max_length = _max_length(source)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} is not empty; choose another OUT or pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        staging.mkdir()
        log(f"[1/3] Converting {source.name} ({config['model_type']}) to OpenVINO IR ({quant.weight_format})")
        ir = staging / "ir"
        _convert(source, ir, quant)
        log("[2/3] Validating embeddings against the source model")
        validation = validate_embeddings(ir, source, MIN_COSINE[quant.weight_format])
        log(f"      min cosine {validation['min_cosine']:.5f} (needs {validation['threshold']}), "
            f"same ranking {validation['same_ranking']}")
        if not validation["passed"]:
            raise ValidationFailedError(f"The exported embedding model does not match the source (min cosine "
                                        f"{validation['min_cosine']:.4f}); try --weight-format fp16")
        from export.source import folder_fingerprint

        manifest = {
            "task": "embedding",
            "source": {"kind": "folder", "spec": str(source), "path": str(source), "revision": None,
                       "sha256": folder_fingerprint(source)},
            "architecture": {"model_type": config["model_type"], "route": "embedding",
                             "hidden_size": config.get("hidden_size")},
            "embedding": {"pooling": "mean", "normalize": True, "max_length": max_length},
            "quantization": quant.describe(),
            "sizes": folder_sizes(ir),
            "tools": tool_versions(),
            "validation": validation,
            "export_seconds": round(time.monotonic() - started, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        log("[3/3] Writing manifest and moving into place")
        write_manifest(ir, manifest)
        if out.exists():
            os.replace(out, staging / "replaced")
        os.replace(ir, out)
        log(f"Exported to {out} ({manifest['sizes']['total_bytes'] / 2**20:.1f} MiB)")
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_source(source: Path) -> dict:
    config_path = source / "config.json"
    if not config_path.is_file():
        raise MissingFilesError(f"{source} has no config.json; pass the folder of a sentence-embedding model")
    config = read_config(config_path)
    if config.get("model_type") not in ENCODERS:
        raise UnsupportedArchitectureError(f"Embedding export supports encoders ({', '.join(ENCODERS)}), "
                                           f"not {config.get('model_type')!r}")
    if not (source / "tokenizer.json").is_file() and not (source / "vocab.txt").is_file():
        raise MissingFilesError(f"{source} has no tokenizer (tokenizer.json or vocab.txt)")
    return config


def _max_length(source: Path) -> int:
    """sentence-transformers' max_seq_length (256 without its config); read before any conversion."""
    sbert = source / "sentence_bert_config.json"
    if not sbert.exists():
        return 256
    value = read_config(sbert).get("max_seq_length", 256)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigFileError(f"{sbert}: max_seq_length {value!r} is not a positive whole number; fix or remove it")
    return value


def _convert(source: Path, out: Path, quant: Quantization) -> None:
    from optimum.exporters.openvino import main_export
    from optimum.exporters.openvino.__main__ import _main_quantize
    from optimum.intel import OVConfig

    wc_config = quant.nncf_config()
    ov_config = OVConfig(quantization_config=wc_config) if wc_config else OVConfig(dtype=quant.weight_format)
    main_export(str(source), out, task=TASK, ov_config=ov_config, convert_tokenizer=True,
                library_name="transformers")
    if wc_config:
        _main_quantize(model_name_or_path=str(source), task=TASK, library_name="transformers",
                       quantization_config=wc_config, output=out, cache_dir=None)


def validate_embeddings(ir: Path, source: Path, threshold: float) -> dict:
    """Cosine between OpenVINO (TextEmbeddingPipeline, mean pooling) and PyTorch embeddings, and top-1 ranking."""
    import numpy as np
    import openvino_genai as og
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = list(_QUERIES) + list(_DOCS)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(source, dtype=torch.float32).eval()
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    config = og.TextEmbeddingPipeline.Config()
    config.pooling_type = og.TextEmbeddingPipeline.PoolingType.MEAN
    config.normalize = True
    config.max_length = 256
    try:
        pipe = og.TextEmbeddingPipeline(str(ir), "CPU", config)
    except RuntimeError as err:
        raise ExportError(f"openvino-genai cannot load the exported embedding model: {str(err).splitlines()[0]}") \
            from err
    got = np.asarray(pipe.embed_documents(texts), dtype=np.float32)
    cosines = (got * ref).sum(1)
    q = len(_QUERIES)
    same = bool(((got[:q] @ got[q:].T).argmax(1) == (ref[:q] @ ref[q:].T).argmax(1)).all())
    min_cos = float(cosines.min())
    return {"min_cosine": round(min_cos, 6), "threshold": threshold, "same_ranking": same,
            "passed": bool(min_cos >= threshold and same)}
