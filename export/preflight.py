"""Checks made before any heavy work: files present, weights intact, architecture supported, disk free."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from export.architectures import GGUF, Route, model_type_of, route_for, supported_list
from export.config_file import read_config
from export.errors import (
    CorruptWeightsError,
    MissingFilesError,
    NotEnoughDiskError,
    TrustRemoteCodeError,
    UnsupportedArchitectureError,
)
from export.tensor_reader import read_safetensors_header, shard_files

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
_GIB = 1 << 30


@dataclass(frozen=True)
class ModelFacts:
    """What preflight learned about a source model."""

    route: Route
    config: dict
    param_count: int
    embedding_params: int
    weight_bytes: int


def inspect_folder(folder: Path, trust_remote_code: bool) -> ModelFacts:
    """Validate a Hugging Face folder without loading any weights."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise MissingFilesError(f"{folder} has no config.json; pass the folder of a Hugging Face model (with "
                                "config.json, weights and tokenizer files)")
    config = read_config(config_path)
    model_type = model_type_of(config)
    auto_map = config.get("auto_map") or {}
    has_remote_code = any("CausalLM" in key or key == "AutoModel" for key in auto_map)
    route = route_for(model_type, has_remote_code, trust_remote_code)
    if route is None:
        if has_remote_code and not _known_to_transformers(model_type):
            raise TrustRemoteCodeError(
                f"{model_type or 'this model'} runs its own Python code from the model folder; if you trust it, "
                "re-run with --trust-remote-code")
        raise UnsupportedArchitectureError(
            f"Unsupported architecture {model_type or '(no model_type)'!r}; "
            f"cpmdesk-export supports: {supported_list()}")
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise MissingFilesError(f"{folder} has no tokenizer (tokenizer.json or tokenizer.model); copy the model's "
                                "tokenizer files into the folder")
    weights = _weight_files(folder)
    params, weight_bytes = 0, 0
    for file in weights:
        if file.suffix == ".safetensors":
            params += count_safetensors_params(file)
        weight_bytes += file.stat().st_size
    if params == 0:  # .bin checkpoints: estimate from the file size (bf16/fp16 is the common case)
        params = weight_bytes // 2
    hidden = int(config.get("hidden_size", 0))
    embedding = int(config.get("vocab_size", 0)) * hidden
    return ModelFacts(route, config, params, embedding, weight_bytes)


def _known_to_transformers(model_type: str) -> bool:
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    except ImportError:
        return False
    return model_type in CONFIG_MAPPING


def _weight_files(folder: Path) -> list[Path]:
    files = (shard_files(folder, "model.safetensors.index.json", "*.safetensors")
             or shard_files(folder, "pytorch_model.bin.index.json", "pytorch_model*.bin"))
    if not files:
        raise MissingFilesError(f"{folder} has no weights (*.safetensors); finish the download or copy the "
                                "weight files into the folder")
    return files


def count_safetensors_params(file: Path) -> int:
    """Parameter count from a safetensors header; raises CorruptWeightsError if the file is truncated or mangled."""
    header, _ = read_safetensors_header(file)
    return sum(math.prod(int(dim) for dim in entry["shape"]) for entry in header.values())


def inspect_gguf(path: Path) -> tuple[str, int]:
    """Architecture and parameter count of a GGUF file; raises on corrupt or unsupported files."""
    from export.gguf_header import open_gguf

    reader = open_gguf(path)  # a CorruptWeightsError (one line) for a mangled or truncated file
    try:
        arch = reader.fields["general.architecture"].contents()
        params = sum(int(t.n_elements) for t in reader.tensors)
    except Exception as err:  # GGUFReader raises ValueError/struct.error/KeyError/IndexError on bad files
        raise CorruptWeightsError(f"{path.name} is not a readable GGUF file ({type(err).__name__}: {err}); "
                                  "re-download it") from err
    if arch not in GGUF:
        raise UnsupportedArchitectureError(
            f"Unsupported GGUF architecture {arch!r}; GGUF sources can be: {', '.join(GGUF)}")
    return str(arch), params


def bytes_per_param(weight_format: str) -> float:
    """Average stored bytes per parameter of an exported IR."""
    return {"fp32": 4.0, "fp16": 2.0, "int8": 1.03, "int4": 0.56}[weight_format]


def estimate_export_bytes(params: int, embedding_params: int, weight_format: str, work_copy_bytes: int,
                          streaming: bool = False) -> int:
    """Peak extra disk an export needs, plus 10 %: the final IR and, through optimum-intel, a work copy and an
    fp16 intermediate IR; streaming, a scratch file the size of the IR's weights."""
    body = max(params - embedding_params, 0)
    final = int(body * bytes_per_param(weight_format) + embedding_params * max(bytes_per_param(weight_format), 1.03))
    if streaming:
        return int(2 * final * 1.1)
    intermediate = 2 * params if weight_format in ("int4", "int8") else 0
    return int((work_copy_bytes + intermediate + final) * 1.1)


def check_disk(target_dir: Path, needed: int) -> None:
    """Fail early when the file system of target_dir has less than `needed` bytes free."""
    free = shutil.disk_usage(target_dir).free
    if free < needed:
        raise NotEnoughDiskError(
            f"Not enough disk space at {target_dir}: the export needs about {needed / _GIB:.2f} GiB and "
            f"{free / _GIB:.2f} GiB is free; free some space or choose an OUT on another disk")
