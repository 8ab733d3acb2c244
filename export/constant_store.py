"""Where the streaming exporter keeps compressed weights, and how it saves an IR without holding them in memory.

The compressed weights go into one sparse scratch file, mapped once. The graph does not point at that file:
each large Constant is a *placeholder* of the same type and shape over an anonymous mapping that reads as zeros
(the kernel's shared zero page, no memory) with a unique tag in its first bytes, so the serializer never merges
two of them. `ov.save_model` holds the GIL while it runs, so nothing could drop the pages it reads; reading
placeholders costs nothing, and it writes the XML and a .bin of zeros in the right layout. `save_ir` then writes
each constant's real bytes from the scratch file over its placeholder, a chunk at a time, while a PageReleaser
drops the pages read. Saving an 8B model so costs the memory of one chunk instead of the whole IR. (Constants
that hold equal bytes are no longer stored once, which only happens with synthetic weights.)

The in-memory graph therefore cannot be run: it is for saving only (validation reads the saved IR).
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from export.errors import ExportError

_log = logging.getLogger(__name__)
_ALIGN = 64
_MIN_PLACEHOLDER = 64  # smaller constants hold their real bytes (their tags could collide in the serializer's
# deduplication of equal constants; real bytes deduplicate harmlessly)
_COPY_CHUNK = 16 << 20


class PageReleaser:
    """Keeps mapped pages from piling up in memory: drops them from this process's mappings every `period`.

    Weights mapped from a file (the scratch file, the IR's .bin) stay resident once touched, and count as
    this process's memory, though the page cache holds them anyway. `MADV_DONTNEED` unmaps them: a later
    access reads them again from the page cache, so nothing is lost and memory stays at what is in use.
    """

    def __init__(self, mapping: mmap.mmap, period: float = 0.05) -> None:
        self._mapping, self._period = mapping, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="page-releaser", daemon=True)

    def release(self) -> None:
        """Drop every page of the mapping now (no-op where the platform has no madvise)."""
        if hasattr(self._mapping, "madvise") and not self._mapping.closed:
            self._mapping.madvise(mmap.MADV_DONTNEED)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.release()

    def __enter__(self) -> PageReleaser:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.release()


def _zero_mapping(size: int) -> mmap.mmap:
    """Anonymous memory that reads as zeros without being allocated (private where the platform allows)."""
    if hasattr(mmap, "MAP_PRIVATE"):
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return mmap.mmap(-1, size)


class ConstantStore:
    """The scratch file of the graph being built, and the graph's Constants for what it holds.

    The file is sized to an upper bound up front (sparse: only written pages take disk) and mapped shared;
    `allocate` hands out NumPy views of it to write weights into, `constant` makes the graph's node for one
    (a placeholder when large, see the module's docstring), and `save_ir` writes the IR with the real bytes.
    A PageReleaser over `mapping` keeps the written pages from counting as the process's memory.
    """

    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        capacity = max(capacity, _ALIGN)
        self._file = path.open("w+b")
        os.ftruncate(self._file.fileno(), capacity)
        self.mapping = mmap.mmap(self._file.fileno(), 0)
        self._buffer = np.frombuffer(self.mapping, np.uint8)
        self._shadow_mapping = _zero_mapping(capacity)
        self._shadow = np.frombuffer(self._shadow_mapping, np.uint8)
        self._size = 0
        self._placed: dict[str, tuple[int, int]] = {}  # constant name -> (offset, bytes) in the scratch file

    def allocate(self, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A writable array of `shape` in the file."""
        dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
        offset = -(-self._size // _ALIGN) * _ALIGN
        if offset + nbytes > self._buffer.size:
            raise OSError(f"the scratch file's estimate ({self._buffer.size} bytes) was too small")
        self._size = offset + nbytes
        return self._buffer[offset:offset + nbytes].view(dtype).reshape(shape)

    def constant(self, array: np.ndarray, element_type=None, element_shape: tuple[int, ...] | None = None,
                 name: str = ""):
        """The graph's Constant for `array` (a view from `allocate`, written before `save_ir`); element_type and
        element_shape describe packed 4-bit codes."""
        import openvino as ov

        offset = array.ctypes.data - self._buffer.ctypes.data
        if not 0 <= offset < self._buffer.size or not array.flags.c_contiguous:
            raise ValueError("constant() takes a contiguous array from this store's allocate()")
        name = self._unique(name or "constant")
        self._placed[name] = (offset, array.nbytes)
        if array.nbytes >= _MIN_PLACEHOLDER:
            tag = np.frombuffer(f"cpmdesk:{len(self._placed):08d}".encode(), np.uint8)
            self._shadow[offset:offset + tag.size] = tag
            array = self._shadow[offset:offset + array.nbytes].view(array.dtype).reshape(array.shape)
        if element_type is None:
            node = ov.op.Constant(array, shared_memory=True)
        else:
            node = ov.op.Constant(ov.Tensor(array, ov.Shape(list(element_shape)), element_type), shared_memory=True)
        node.set_friendly_name(name)
        return node

    def store(self, array: np.ndarray, name: str = "", element_type=None, element_shape: tuple[int, ...] | None = None):
        """A Constant holding a copy of a (small) array."""
        target = self.allocate(array.dtype, array.shape)
        target[...] = array
        return self.constant(target, element_type, element_shape, name)

    def _unique(self, name: str) -> str:
        if name not in self._placed:
            return name
        index = 2
        while f"{name}#{index}" in self._placed:
            index += 1
        return f"{name}#{index}"

    @property
    def used(self) -> int:
        """Bytes written so far."""
        return self._size

    def save_ir(self, graph, xml: Path) -> None:
        """openvino_model.xml from `graph` and its .bin beside it with every constant's real bytes."""
        import openvino as ov

        ov.save_model(graph, xml, compress_to_fp16=False)  # placeholders are written as zeros (and their tags)
        places = _constant_places(xml)
        placeholders = {name: place for name, place in self._placed.items() if place[1] >= _MIN_PLACEHOLDER}
        _check_layout(places, placeholders)
        view = memoryview(self.mapping)
        try:
            with xml.with_suffix(".bin").open("r+b") as handle:
                for name, (source, size) in sorted(placeholders.items(), key=lambda item: places[item[0]][0]):
                    handle.seek(places[name][0])
                    for start in range(0, size, _COPY_CHUNK):  # the GIL is free while each chunk is written
                        with view[source + start:source + min(size, start + _COPY_CHUNK)] as part:
                            handle.write(part)
        finally:
            view.release()

    def close(self) -> None:
        """Unmap and delete the file (after the model was saved and every Constant dropped)."""
        del self._buffer, self._shadow
        for mapping in (self.mapping, self._shadow_mapping):
            try:
                mapping.close()
            except BufferError:  # a Constant still shares the mapping: it is unmapped when the process ends
                _log.warning("a mapping of %s is still shared; it stays mapped until exit", self.path)
        self._file.close()
        self.path.unlink(missing_ok=True)


def _constant_places(xml: Path) -> dict[str, tuple[int, int]]:
    """Constant layer name -> (offset, size) in the .bin, from a saved IR's XML."""
    places: dict[str, tuple[int, int]] = {}
    for layer in ET.parse(xml).getroot().iter("layer"):
        if layer.get("type") != "Const":
            continue
        data = layer.find("data")
        name, place = layer.get("name", ""), (int(data.get("offset")), int(data.get("size")))
        if places.setdefault(name, place) != place:
            raise ExportError(f"Internal error while saving the IR: two constants are named {name!r}")
    return places


def _check_layout(places: dict[str, tuple[int, int]], placeholders: dict[str, tuple[int, int]]) -> None:
    """Every placeholder is in the XML with its size, and shares its bytes with no other constant."""
    for name, (_, size) in placeholders.items():
        if places.get(name, (0, -1))[1] != size:
            raise ExportError(f"Internal error while saving the IR: {name!r} is not in the XML as {size} bytes")
    spans = sorted((offset, offset + size, name) for name, (offset, size) in places.items() if size)
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end and (first in placeholders or second in placeholders):
            raise ExportError(f"Internal error while saving the IR: {first!r} and {second!r} share bytes")
