"""A GGUF file's header checked before the `gguf` package reads it, and the checked opener everything uses.

GGUFReader trusts the header's counts: an array that claims 2^60 strings keeps it looping for hours, and a tensor
whose dimensions claim terabytes becomes a NumPy view it cannot build. The walk here reads only the header (key/value
metadata and tensor infos, mapped, not loaded), with Python integers, and checks every count and size against the
bytes the file has, so a mangled or truncated file is refused at once, with one line, without allocating.
"""

from __future__ import annotations

import logging
import math
import mmap
import struct
from pathlib import Path

from export.errors import CorruptWeightsError

log = logging.getLogger(__name__)

MAGIC = b"GGUF"
VERSIONS = (2, 3)
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NESTING = 4
DEFAULT_ALIGNMENT = 32
# GGUFValueType -> bytes of one value (STRING=8 and ARRAY=9 have their own layout)
_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4


class _Walk:
    """A cursor over the mapped header; every read is checked against the end of the file."""

    def __init__(self, data: mmap.mmap, order: str) -> None:
        self.data, self.order, self.pos = data, order, 0

    def take(self, count: int, what: str) -> int:
        """Skip `count` bytes (the start of them is returned), refusing to pass the end of the file."""
        if count < 0 or self.pos + count > len(self.data):
            raise ValueError(f"{what} runs past the end of the file ({count} bytes at offset {self.pos})")
        start, self.pos = self.pos, self.pos + count
        return start

    def u32(self, what: str) -> int:
        return struct.unpack_from(self.order + "I", self.data, self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack_from(self.order + "Q", self.data, self.take(8, what))[0]

    def string(self, what: str) -> bytes:
        length = self.u64(what)
        start = self.take(length, what)
        return bytes(self.data[start:start + length])

    def value(self, kind: int, what: str, depth: int = 0) -> int | None:
        """Skip one value of GGUFValueType `kind`; returns it when it is a UINT32 (general.alignment)."""
        if kind in _SCALAR_BYTES:
            start = self.take(_SCALAR_BYTES[kind], what)
            return struct.unpack_from(self.order + "I", self.data, start)[0] if kind == _UINT32 else None
        if kind == _STRING:  # decoded as the package will: a UnicodeDecodeError (a ValueError) when mangled
            self.string(what).decode("utf-8")
            return None
        if kind != _ARRAY:
            raise ValueError(f"{what} has unknown value type {kind}")
        if depth >= MAX_NESTING:
            raise ValueError(f"{what} nests arrays deeper than {MAX_NESTING}")
        item, count = self.u32(what), self.u64(what)
        if item in _SCALAR_BYTES:
            self.take(count * _SCALAR_BYTES[item], what)
            return None
        # each string or array item takes at least 8 bytes: a count the rest of the file cannot hold is refused
        # before looping over it
        if count * 8 > len(self.data) - self.pos:
            raise ValueError(f"{what} claims {count} items, more than the file holds")
        for _ in range(count):
            self.value(item, what, depth + 1)
        return None


def check_gguf_header(path: Path) -> None:
    """Refuse a GGUF file whose header is not one the `gguf` package can read safely: bad magic or version, counts or
    lengths past the end of the file, unknown value or tensor types, tensors whose data is not in the file."""
    from gguf.constants import GGML_QUANT_SIZES

    size = path.stat().st_size
    if size < 24:
        raise CorruptWeightsError(f"{path.name} is not a readable GGUF file (only {size} bytes); re-download it")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != MAGIC:
            raise CorruptWeightsError(f"{path.name} is not a readable GGUF file (no GGUF signature); re-download it")
        try:
            # a file written on a big-endian machine reads as version << 16 (GGUFReader tells them apart the same way)
            order = ">" if struct.unpack_from("<I", data, 4)[0] & 0xFFFF == 0 else "<"
            walk = _Walk(data, order)
            walk.take(4, "the signature")
            version = walk.u32("the version")
            if version not in VERSIONS:
                raise CorruptWeightsError(f"{path.name} is not a readable GGUF file (GGUF version {version}; versions "
                                          f"{' and '.join(map(str, VERSIONS))} are read); re-download it or convert it "
                                          "with a current llama.cpp")
            tensors, entries = walk.u64("the tensor count"), walk.u64("the metadata count")
            if (tensors + entries) * 8 > size:
                raise ValueError(f"it claims {tensors} tensors and {entries} metadata entries")
            alignment = DEFAULT_ALIGNMENT
            for _ in range(entries):
                key = walk.string("a metadata key")
                key.decode("utf-8")  # a UnicodeDecodeError (a ValueError) for a mangled key
                value = walk.value(walk.u32("a metadata type"), f"metadata {key[:60]!r}")
                if key == b"general.alignment":
                    if value is None or value <= 0 or value & (value - 1):
                        raise ValueError("general.alignment is not a power of two")
                    alignment = value
            extents = []
            for _ in range(tensors):
                name = walk.string("a tensor name")
                dims = walk.u32(f"tensor {name[:60]!r}")
                if not 1 <= dims <= MAX_DIMS:
                    raise ValueError(f"tensor {name[:60]!r} has {dims} dimensions")
                shape = [walk.u64(f"tensor {name[:60]!r}") for _ in range(dims)]
                kind, offset = walk.u32(f"tensor {name[:60]!r}"), walk.u64(f"tensor {name[:60]!r}")
                if kind not in GGML_QUANT_SIZES:
                    raise ValueError(f"tensor {name[:60]!r} has unknown type {kind}")
                block, block_bytes = GGML_QUANT_SIZES[kind]
                if 0 in shape:
                    raise ValueError(f"tensor {name[:60]!r} has an empty dimension {shape}")
                if shape[0] % block:
                    raise ValueError(f"tensor {name[:60]!r}: {shape[0]} values per row do not fill whole blocks")
                extents.append((name, offset, math.prod(shape) // block * block_bytes))
            start = -(-walk.pos // alignment) * alignment
            for name, offset, nbytes in extents:
                if start + offset + nbytes > size:
                    raise ValueError(f"tensor {name[:60]!r} needs {nbytes} bytes at offset {offset}, past the end "
                                     f"of the {size}-byte file")
        except (ValueError, struct.error) as err:
            raise CorruptWeightsError(f"{path.name} is not a readable GGUF file: corrupt or truncated ({err}); "
                                      "re-download it") from err


def open_gguf(path: Path):
    """gguf.GGUFReader over a file whose header passed check_gguf_header; any failure is a CorruptWeightsError."""
    from gguf import GGUFReader

    check_gguf_header(path)
    try:
        return GGUFReader(str(path))
    except Exception as err:  # the package's own checks raise ValueError, KeyError, IndexError, struct.error...
        log.warning("GGUFReader refused %s: %s: %s", path, type(err).__name__, err)
        raise CorruptWeightsError(f"{path.name} is not a readable GGUF file ({type(err).__name__}: {err}); "
                                  "re-download it") from err
