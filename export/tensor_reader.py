"""Model weights read one tensor (or a few rows of one) at a time, as float32, under Hugging Face names.

Two sources: safetensors folders (single file or sharded; bf16, f16, f32), whose tensors are memory-mapped
only for the rows asked for, and GGUF files, whose tensors are dequantized row block by row block with the
`gguf` package (NumPy). Nothing here loads a whole model, so memory stays at one chunk of one tensor.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Protocol

import numpy as np

from export.errors import CorruptWeightsError, MissingFilesError, UnsupportedArchitectureError

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}


class TensorReader(Protocol):
    """What the streaming exporter and the NumPy reference read weights through."""

    def has(self, name: str) -> bool:
        """Whether the model has this tensor."""

    def shape(self, name: str) -> tuple[int, ...]:
        """The tensor's shape (rows first)."""

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 of a tensor as a fresh float32 array."""


def read_tensor(reader: TensorReader, name: str) -> np.ndarray:
    """A whole tensor as float32 (for small tensors: norms, biases; a 0-d tensor is one row)."""
    shape = reader.shape(name)
    return reader.rows(name, 0, shape[0] if shape else 1).reshape(shape)


# bytes per element of every safetensors dtype (sizes are checked for all; only _ST_DTYPES are read)
_ST_ITEM_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
                  "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
MAX_SAFETENSORS_HEADER = 100 * 2**20  # the format's own limit (safetensors refuses bigger headers too)


def _check_entry(name: str, entry: object, data_bytes: int) -> int:
    """Validate one header entry against the data section's size; returns where its data ends."""
    if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str):
        raise ValueError(f"tensor {name[:60]!r} lacks its dtype")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"tensor {name[:60]!r} has no valid shape")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
        raise ValueError(f"tensor {name[:60]!r} has data offsets outside the file")
    item = _ST_ITEM_BYTES.get(entry["dtype"])
    if item is not None and math.prod(shape) * item != offsets[1] - offsets[0]:
        raise ValueError(f"tensor {name[:60]!r} of shape {shape} needs {math.prod(shape) * item} bytes, its "
                         f"offsets give {offsets[1] - offsets[0]}")
    return offsets[1]


def read_safetensors_header(file: Path) -> tuple[dict, int]:
    """(header without __metadata__, offset of the data section); raises CorruptWeightsError when mangled: every
    tensor's shape, dtype size and offsets must agree and lie inside the file, so a header that claims a huge
    tensor is refused before anything is mapped or allocated."""
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len <= 0 or 8 + header_len > size:
                raise ValueError("header length is past the end of the file")
            if header_len > MAX_SAFETENSORS_HEADER:
                raise ValueError(f"the header claims {header_len} bytes, over the format's 100 MB limit")
            header = json.loads(handle.read(header_len))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        header.pop("__metadata__", None)
        data_bytes = size - 8 - header_len
        end = max((_check_entry(name, entry, data_bytes) for name, entry in header.items()), default=0)
    except (ValueError, struct.error, UnicodeDecodeError, RecursionError) as err:
        raise CorruptWeightsError(f"{file.name} is corrupt ({err}); re-download the model's weights") from err
    if 8 + header_len + end != size:
        raise CorruptWeightsError(f"{file.name} is truncated or padded ({size} bytes, header says "
                                  f"{8 + header_len + end}); re-download the model's weights")
    return header, 8 + header_len


def shard_names(index: Path, folder: Path) -> list[str]:
    """The shard files a `*.index.json` names, all present; one-line errors for a malformed index or a gap."""
    try:
        data = index.read_bytes()
    except OSError as err:
        raise CorruptWeightsError(f"{index.name} cannot be read ({err}); check the folder's permissions") from err
    try:
        values = json.loads(data.decode("utf-8"))["weight_map"].values()
        names = sorted(set(values))
        for name in names:
            if not isinstance(name, str) or not name or Path(name).name != name:
                raise ValueError(f"weight_map names {name!r}, not a file of the folder")
    except (ValueError, KeyError, TypeError, AttributeError) as err:  # JSON and UTF-8 errors are ValueErrors
        raise CorruptWeightsError(f"{index.name} is malformed ({type(err).__name__}: {err}); re-download the "
                                  "model") from err
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise MissingFilesError(f"{folder} is missing weight shards {', '.join(missing[:3])}"
                                f"{' …' if len(missing) > 3 else ''}; finish the download or copy them in")
    return names


def shard_files(folder: Path, index_name: str, pattern: str) -> list[Path]:
    """The weight files of a folder: those its index names (all present), else the files matching `pattern`."""
    index = folder / index_name
    if index.is_file():
        return [folder / name for name in shard_names(index, folder)]
    return sorted(folder.glob(pattern))


def safetensors_files(folder: Path) -> list[Path]:
    """The shards of a safetensors folder (from its index when it has one)."""
    files = shard_files(folder, "model.safetensors.index.json", "*.safetensors")
    if not files:
        raise MissingFilesError(f"{folder} has no *.safetensors weights; the streaming exporter reads safetensors "
                                "(convert .bin checkpoints, or use --backend optimum)")
    return files


class SafetensorsReader:
    """Tensors of a safetensors folder; each read maps only the rows asked for."""

    def __init__(self, folder: Path) -> None:
        self._where: dict[str, tuple[Path, dict, int]] = {}
        for file in safetensors_files(folder):
            header, data_start = read_safetensors_header(file)
            for name, entry in header.items():
                if entry["dtype"] not in _ST_DTYPES:
                    raise CorruptWeightsError(f"{file.name}: tensor {name} has dtype {entry['dtype']}, which the "
                                              "exporter does not read (bf16, f16, f32, f64 are read)")
                self._where[name] = (file, entry, data_start)

    def names(self) -> list[str]:
        """Every tensor name."""
        return list(self._where)

    def has(self, name: str) -> bool:
        """Whether the model has this tensor."""
        return name in self._where

    def shape(self, name: str) -> tuple[int, ...]:
        """The tensor's shape."""
        return tuple(int(d) for d in self._entry(name)[1]["shape"])

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 as float32 (the file is mapped for these rows only, then unmapped)."""
        file, entry, data_start = self._entry(name)
        shape = [int(d) for d in entry["shape"]] or [1]
        row_items = math.prod(shape[1:])
        dtype = np.dtype(_ST_DTYPES[entry["dtype"]])
        offset = data_start + int(entry["data_offsets"][0]) + start * row_items * dtype.itemsize
        count = (stop - start) * row_items
        if count == 0:
            return np.zeros((0, *shape[1:]), np.float32)
        mapped = np.memmap(file, dtype=dtype, mode="r", offset=offset, shape=(count,))
        if entry["dtype"] == "BF16":  # the 16 bits are the top half of an f32: exact
            out = np.empty(count, np.uint32)
            np.left_shift(mapped, 16, out=out, dtype=np.uint32)  # one pass, one allocation
            out = out.view(np.float32)
        else:
            out = mapped.astype(np.float32)
        del mapped
        return out.reshape(stop - start, *shape[1:])

    def _entry(self, name: str) -> tuple[Path, dict, int]:
        try:
            return self._where[name]
        except KeyError:
            raise MissingFilesError(f"the checkpoint has no tensor {name}; is it complete?") from None


# llama.cpp's tensor names -> Hugging Face's
_GGUF_GLOBAL = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                "output.weight": "lm_head.weight"}
_GGUF_LAYER = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
               "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
               "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm", "ffn_gate": "mlp.gate_proj",
               "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
# llama.cpp's converter interleaves the rotary halves of q and k for these architectures; undone on read
_GGUF_PERMUTED = ("llama", "mistral")


def _field(reader, key: str, default=None):
    entry = reader.fields.get(key)
    return default if entry is None else entry.contents()


class GGUFTensorReader:
    """Tensors of a GGUF file under Hugging Face names, dequantized a block of rows at a time."""

    def __init__(self, path: Path) -> None:
        from export.gguf_header import open_gguf

        self.path = path
        self._reader = open_gguf(path)
        self.architecture = _field(self._reader, "general.architecture")
        if not isinstance(self.architecture, str):
            raise CorruptWeightsError(f"{path.name} does not say its architecture (general.architecture); "
                                      "re-download it")
        self._tensors = {}
        for tensor in self._reader.tensors:
            name = self._hf_name(tensor.name)
            if name is not None:
                self._tensors[name] = tensor
        self.config = self._hf_config()

    def _hf_name(self, name: str) -> str | None:
        if name in _GGUF_GLOBAL:
            return _GGUF_GLOBAL[name]
        parts = name.split(".")
        if len(parts) == 4 and parts[0] == "blk" and parts[2] in _GGUF_LAYER:
            return f"model.layers.{parts[1]}.{_GGUF_LAYER[parts[2]]}.{parts[3]}"
        return None if name == "rope_freqs.weight" else f"gguf.{name}"

    def _number(self, key: str, default: float | None = None, kind: type = int, positive: bool = True):
        """A numeric metadata value `<architecture>.<key>` (the largest, for per-layer lists); a missing or
        malformed one is a CorruptWeightsError naming it."""
        value = _field(self._reader, f"{self.architecture}.{key}", default)
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            value = max(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (positive and value <= 0) or value < 0:
            raise CorruptWeightsError(f"{self.path.name}: GGUF metadata {self.architecture}.{key} is "
                                      f"{'missing' if value is None else f'not a valid number ({value!r:.60})'}; "
                                      "re-download the file")
        return kind(value)

    def _hf_config(self) -> dict:
        """config.json values from the GGUF metadata."""
        arch, get = self.architecture, self._number
        scaling = _field(self._reader, f"{arch}.rope.scaling.type")
        if scaling not in (None, "none"):
            raise UnsupportedArchitectureError(f"GGUF rope scaling {scaling!r:.60} is not built by the streaming "
                                               "exporter; use --backend optimum")
        heads = get("attention.head_count")
        hidden = get("embedding_length")
        embed = self._tensors.get("model.embed_tokens.weight")
        config = {"model_type": arch, "hidden_size": hidden, "num_hidden_layers": get("block_count"),
                  "num_attention_heads": heads, "num_key_value_heads": get("attention.head_count_kv", heads),
                  "intermediate_size": get("feed_forward_length"),
                  "head_dim": get("attention.key_length", get("rope.dimension_count", max(1, hidden // heads))),
                  "rms_norm_eps": get("attention.layer_norm_rms_epsilon", 1e-6, float),
                  "rope_theta": get("rope.freq_base", 10000.0, float),
                  "max_position_embeddings": get("context_length", 4096),
                  "vocab_size": get("vocab_size", 0, positive=False) or (int(embed.shape[1]) if embed is not None
                                                                         else 0),
                  "hidden_act": "silu", "tie_word_embeddings": "lm_head.weight" not in self._tensors}
        freqs = next((t for t in self._reader.tensors if t.name == "rope_freqs.weight"), None)
        if freqs is not None:  # llama 3.1 scaling, stored by llama.cpp as per-pair divisors
            divisors = np.asarray(freqs.data, dtype=np.float64).reshape(-1)
            rotary = get("rope.dimension_count", config["head_dim"])
            if divisors.size != rotary // 2:
                raise CorruptWeightsError(f"{self.path.name}: rope_freqs.weight has {divisors.size} values for "
                                          f"rotary size {rotary}; re-download the file")
            config["rope_freq_divisors"] = [float(v) for v in divisors]
        if self.architecture in _GGUF_PERMUTED:
            for name in self._tensors:
                rows = self.shape(name)[0]
                if name.endswith(("q_proj.weight", "k_proj.weight")) and (rows % config["head_dim"]
                                                                          or config["head_dim"] % 2):
                    raise CorruptWeightsError(f"{self.path.name}: {name} has {rows} rows, not whole heads of "
                                              f"{config['head_dim']}; re-download the file")
        return config

    def names(self) -> list[str]:
        """Every tensor name."""
        return list(self._tensors)

    def has(self, name: str) -> bool:
        """Whether the model has this tensor."""
        return name in self._tensors

    def shape(self, name: str) -> tuple[int, ...]:
        """The tensor's shape in Hugging Face order (rows first)."""
        return tuple(int(d) for d in reversed(self._tensor(name).shape.tolist()))

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 as float32; q and k rows come back in Hugging Face's rotary layout."""
        tensor = self._tensor(name)
        head_dim = int(self.config["head_dim"])
        permuted = self.architecture in _GGUF_PERMUTED and name.endswith(("q_proj.weight", "k_proj.weight"))
        if not permuted:
            return self._dequantized(tensor, start, stop)
        first, last = start // head_dim * head_dim, -(-stop // head_dim) * head_dim
        block = self._dequantized(tensor, first, last)
        heads = block.shape[0] // head_dim
        block = block.reshape(heads, head_dim // 2, 2, -1).swapaxes(1, 2).reshape(heads * head_dim, -1)
        return np.ascontiguousarray(block[start - first:stop - first])

    def _dequantized(self, tensor, start: int, stop: int) -> np.ndarray:
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        data = tensor.data
        if data.ndim == 1:
            return np.asarray(data[start:stop], dtype=np.float32)
        kind = tensor.tensor_type
        if kind in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
            return np.asarray(data[start:stop], dtype=np.float32)
        if kind == GGMLQuantizationType.BF16:
            return (np.asarray(data[start:stop]).view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        try:
            return np.asarray(dequantize(data[start:stop], kind), dtype=np.float32)
        except NotImplementedError as err:
            raise UnsupportedArchitectureError(f"GGUF tensor type {kind.name} cannot be dequantized by the gguf "
                                               "package; use a GGUF with another quantization") from err
        except ValueError as err:  # rows that are not whole quantization blocks
            raise CorruptWeightsError(f"{self.path.name}: tensor {tensor.name!r:.60} cannot be dequantized ({err}); "
                                      "re-download the file") from err

    def _tensor(self, name: str):
        try:
            return self._tensors[name]
        except KeyError:
            raise MissingFilesError(f"the GGUF file has no tensor for {name}; is it complete?") from None


def open_reader(path: Path) -> SafetensorsReader | GGUFTensorReader:
    """The reader for a model folder or a .gguf file."""
    return GGUFTensorReader(path) if path.is_file() else SafetensorsReader(path)
