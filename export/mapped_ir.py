"""An IR compiled from weights this process maps itself, so their pages can be let go once the plugin has them.

OpenVINO maps openvino_model.bin and the CPU plugin repacks the matmul weights into its own memory on the first
inference; the mapped pages it read stay resident beside the repacked copy, doubling the footprint of a large
model. Reading the weights through our own mapping, with a PageReleaser dropping its pages, keeps only the
repacked copy (and what is read again from the page cache, such as embedding rows) in memory.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from export.constant_store import PageReleaser

_log = logging.getLogger(__name__)


@contextmanager
def compiled_ir(core, xml: Path, device: str = "CPU", properties: dict | None = None,
                edit: Callable[[object], object] | None = None) -> Iterator[object]:
    """The compiled model of `xml` (or of `edit(model)`); use it inside the `with` block (the mapping ends
    with it)."""
    import openvino as ov

    with xml.with_suffix(".bin").open("rb") as handle:
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)  # private: OpenVINO never writes to it
    try:
        with PageReleaser(mapping):
            weights = ov.Tensor(np.frombuffer(mapping, np.uint8), shared_memory=True)
            model = core.read_model(xml.read_text(encoding="utf-8"), weights)
            if edit is not None:
                model = edit(model)
            compiled = core.compile_model(model, device, properties or {})
            del model, weights
            yield compiled
            del compiled
    finally:
        try:
            mapping.close()
        except BufferError:  # the caller kept the compiled model: the mapping lives as long as it does
            _log.warning("%s stays mapped: its compiled model is still referenced", xml)
