"""Checks made before any heavy work: files present, weights intact, architecture supported, disk free."""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from export.architectures import GGUF, Route, model_type_of, route_for, supported_list
from export.errors import (
    CorruptWeightsError,
    MissingFilesError,
    NotEnoughDiskError,
    TrustRemoteCodeError,
    UnsupportedArchitectureError,
)

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
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MissingFilesError(f"{config_path} is not valid JSON ({err}); re-download the model") from err
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
    index = next((folder / n for n in ("model.safetensors.index.json", "pytorch_model.bin.index.json")
                  if (folder / n).is_file()), None)
    if index is not None:
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise MissingFilesError(f"{folder} is missing weight shards {', '.join(missing[:3])}"
                                    f"{' …' if len(missing) > 3 else ''}; finish the download or copy them in")
        return [folder / n for n in names]
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise MissingFilesError(f"{folder} has no weights (*.safetensors); finish the download or copy the "
                                "weight files into the folder")
    return files


def count_safetensors_params(file: Path) -> int:
    """Parameter count from a safetensors header; raises CorruptWeightsError if the file is truncated or mangled."""
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len <= 0 or 8 + header_len > size:
                raise ValueError("header length is past the end of the file")
            header = json.loads(handle.read(header_len))
        end, params = 0, 0
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            end = max(end, int(entry["data_offsets"][1]))
            count = 1
            for dim in entry["shape"]:
                count *= int(dim)
            params += count
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError) as err:
        raise CorruptWeightsError(f"{file.name} is corrupt ({err}); re-download the model's weights") from err
    if 8 + header_len + end != size:
        raise CorruptWeightsError(f"{file.name} is truncated or padded ({size} bytes, header says "
                                  f"{8 + header_len + end}); re-download the model's weights")
    return params


def inspect_gguf(path: Path) -> tuple[str, int]:
    """Architecture and parameter count of a GGUF file; raises on corrupt or unsupported files."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
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


def estimate_export_bytes(params: int, embedding_params: int, weight_format: str, work_copy_bytes: int) -> int:
    """Peak extra disk an export needs: a work copy, the fp16 intermediate IR and the final IR, plus 10 %."""
    body = max(params - embedding_params, 0)
    final = int(body * bytes_per_param(weight_format) + embedding_params * min(bytes_per_param(weight_format), 2.0))
    intermediate = 2 * params if weight_format in ("int4", "int8") else 0
    return int((work_copy_bytes + intermediate + final) * 1.1)


def check_disk(target_dir: Path, needed: int) -> None:
    """Fail early when the file system of target_dir has less than `needed` bytes free."""
    free = shutil.disk_usage(target_dir).free
    if free < needed:
        raise NotEnoughDiskError(
            f"Not enough disk space at {target_dir}: the export needs about {needed / _GIB:.2f} GiB and "
            f"{free / _GIB:.2f} GiB is free; free some space or choose an OUT on another disk")
