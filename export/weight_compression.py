"""Per-tensor weight compression for the streaming exporter: NNCF's quantizer, a few rows at a time.

Each weight is read in row chunks, transformed (muP scales, AWQ scales), quantized with NNCF's
weight-lowering functions and written into a scratch file (export/constant_store.py); the graph gets a Constant
for it and the decompression subgraph the CPU plugin fuses into its matmuls:

    int4/int8 codes -> Convert f16 [-> Subtract zero point] -> Multiply scale [-> Reshape groups] -> Convert f32

The format of each tensor follows NNCF's defaults as optimum-intel calls them, so both backends store the same
bits: embeddings and the LM head in int8 asymmetric per channel when the rest is int4, a group size that
does not divide a layer's width adjusted to the largest power of two that does (at least 32) or else int8.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from export.constant_store import ConstantStore

_log = logging.getLogger(__name__)
CHUNK_BYTES = 16 << 20  # f32 bytes of one chunk of rows: bounds the quantizer's working memory
MIN_ADJUSTED_GROUP = 32  # NNCF's min_adjusted_group_size

Transform = Callable[[np.ndarray, int], np.ndarray]  # (rows chunk, first row index) -> transformed chunk


@dataclass(frozen=True)
class StoredFormat:
    """How one tensor is stored: mode is fp32, fp16, int8_asym, int8_sym, int4_asym or int4_sym."""

    mode: str
    group_size: int = -1

    @property
    def bits(self) -> int:
        """Bits per code (32/16 for the float modes)."""
        return {"fp32": 32, "fp16": 16}.get(self.mode, 4 if self.mode.startswith("int4") else 8)

    @property
    def symmetric(self) -> bool:
        """True for the modes without a zero point."""
        return self.mode.endswith("_sym")


def adjusted_group(columns: int, group_size: int) -> int | None:
    """The group size NNCF uses for a row of `columns`: as asked if it divides, else the largest power of two
    that does (>= 32), else None (the tensor falls back to int8)."""
    if group_size <= 0 or columns % group_size == 0:
        return group_size
    power = columns & -columns
    return power if power >= MIN_ADJUSTED_GROUP else None


def row_chunks(rows: int, columns: int) -> Iterator[tuple[int, int]]:
    """(start, stop) ranges of rows whose f32 size is about CHUNK_BYTES; an even number of rows each."""
    step = max(2, CHUNK_BYTES // (4 * max(columns, 1)) // 2 * 2)
    for start in range(0, rows, step):
        yield start, min(rows, start + step)


def transformed_chunks(read_rows: Callable[[int, int], np.ndarray], shape: tuple[int, int],
                       transform: Transform | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, rows start..stop-1 as f32, `transform` applied) over a weight, chunk by chunk."""
    for start, stop in row_chunks(*shape):
        chunk = read_rows(start, stop)
        yield start, stop, transform(chunk, start) if transform else chunk


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """4-bit values (i4 in -8..7 or u4 in 0..15) two to a byte, element 2k in the low nibble (OpenVINO's order)."""
    flat = codes.reshape(-1).astype(np.uint8) & 0x0F
    return flat[0::2] | (flat[1::2] << 4)


def _marked_f16_convert(constant):
    """Convert f16 -> f32 carrying OpenVINO's `decompression` mark, so the CPU plugin keeps the weight in f16.

    Python cannot create that rt_info attribute; OpenVINO's own fp16 compression pass makes such a Convert on a
    one-element model, which is then pointed at the real constant.
    """
    import openvino as ov
    import openvino.opset13 as ops
    from openvino._offline_transformations import compress_model_transformation

    tiny = ov.Model([ops.result(ops.constant(np.ones([1], np.float32)))], [])
    compress_model_transformation(tiny)
    convert = tiny.get_results()[0].input_value(0).get_node()
    convert.input(0).replace_source_output(constant.output(0))
    convert.validate_and_infer_types()
    return convert


@contextmanager
def nncf_reference_quantizer() -> Iterator[None]:
    """NNCF's NumPy quantizer instead of its OpenVINO-compiled one, for the block.

    Both give the same bits. The compiled one keeps per-call buffers alive (about one chunk per weight here,
    ~140 MB per 8B-shaped layer) until its cache is cleared, and costs ~300 MB to start; the NumPy one keeps
    memory flat at a few percent more time.
    """
    key = "NNCF_DISABLE_OPTIMIZED_COMPRESSION"
    before = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _nncf_quantize(chunk: np.ndarray, fmt: StoredFormat):
    """NNCF's integer quantization of a [rows, columns] chunk: (codes, f32 scale, uint8 zero point or None)."""
    from nncf.parameters import CompressWeightsMode
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.quantization.algorithms.weight_compression.weight_lowering import do_integer_quantization
    from nncf.tensor import Tensor

    config = WeightCompressionConfig(mode=CompressWeightsMode(fmt.mode), group_size=fmt.group_size)
    result = do_integer_quantization(Tensor(chunk), config, reduction_axes=(1,))
    # copies: NNCF's OpenVINO-optimized path returns views of a buffer that its next call overwrites
    codes = np.array(result.tensor.data, copy=True)
    scale = np.array(result.scale.data, dtype=np.float32, copy=True)
    zero_point = None if result.zero_point is None else np.array(result.zero_point.data).astype(np.uint8)
    return codes, scale, zero_point


def compress(read_rows: Callable[[int, int], np.ndarray], shape: tuple[int, int], fmt: StoredFormat,
             store: ConstantStore, name: str, transform: Transform | None = None,
             shape_out: tuple[int, ...] | None = None):
    """The f32 output of a [rows, columns] weight stored as `fmt`, read and quantized chunk by chunk
    (float formats: stored with `shape_out` when given, e.g. a vector read as one column)."""
    import openvino as ov
    import openvino.opset13 as ops

    rows, columns = shape
    if fmt.mode in ("fp32", "fp16"):
        target = store.allocate(np.dtype(np.float32 if fmt.mode == "fp32" else np.float16), shape)
        for start, stop, chunk in transformed_chunks(read_rows, shape, transform):
            target[start:stop] = chunk
        constant = store.constant(target.reshape(shape_out) if shape_out else target, name=name)
        return constant if fmt.mode == "fp32" else _marked_f16_convert(constant)

    groups = columns // fmt.group_size if fmt.group_size > 0 else 1
    four_bit = fmt.bits == 4
    code_shape = (rows, groups, columns // groups) if fmt.group_size > 0 else (rows, columns)
    code_dtype = np.uint8 if (four_bit or not fmt.symmetric) else np.int8
    target = store.allocate(np.dtype(np.uint8 if four_bit else code_dtype),
                            (rows * columns // 2,) if four_bit else code_shape)
    scales = np.empty((rows, groups, 1) if fmt.group_size > 0 else (rows, 1), np.float32)
    zero_points = None if fmt.symmetric else np.empty(scales.shape, np.uint8)
    for start, stop, chunk in transformed_chunks(read_rows, shape, transform):
        codes, scale, zero_point = _nncf_quantize(chunk, fmt)
        if four_bit:
            target[start * columns // 2:stop * columns // 2] = pack_nibbles(codes)
        else:
            target[start:stop] = codes.reshape(target[start:stop].shape)
        scales[start:stop] = scale.reshape(scales[start:stop].shape)
        if zero_points is not None:
            zero_points[start:stop] = zero_point.reshape(zero_points[start:stop].shape)
    if four_bit:
        codes_node = store.constant(target, ov.Type.i4 if fmt.symmetric else ov.Type.u4, code_shape, name)
    else:
        codes_node = store.constant(target, name=name)
    x = ops.convert(codes_node, ov.Type.f16)
    if zero_points is not None:
        if four_bit:
            packed = pack_nibbles(np.pad(zero_points.reshape(-1), (0, zero_points.size % 2)))
            zp_node = store.store(packed, name + "/zero_point", ov.Type.u4, zero_points.shape)
        else:
            zp_node = store.store(zero_points, name + "/zero_point")
        x = ops.subtract(x, ops.convert(zp_node, ov.Type.f16))
    x = ops.multiply(x, store.store(scales.astype(np.float16), name + "/scale"))
    if fmt.group_size > 0:
        x = ops.reshape(x, ops.constant(np.array([rows, columns], np.int64)), False)
    return ops.convert(x, ov.Type.f32)


def int8_error(read_rows: Callable[[int, int], np.ndarray], shape: tuple[int, int],
               transform: Transform | None = None) -> float:
    """NNCF's data-free sensitivity input: the max over rows of the mean squared int8-asym error."""
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.quantization.algorithms.weight_compression.weight_lowering import get_integer_quantization_error
    from nncf.tensor import Tensor

    return max(get_integer_quantization_error(Tensor(chunk), (1,), WeightCompressionConfig(), reduction="max_mean")
               for _, _, chunk in transformed_chunks(read_rows, shape, transform))


def column_mean_abs(read_rows: Callable[[int, int], np.ndarray], shape: tuple[int, int],
                    transform: Transform | None = None) -> np.ndarray:
    """mean over rows of |W| for every column (data-free AWQ's statistic), summed row after row in f32 as
    NumPy's mean over axis 0 sums, so the scales come out bit for bit as NNCF's."""
    total = np.zeros(shape[1], np.float32)
    for _, _, chunk in transformed_chunks(read_rows, shape, transform):
        for row in np.abs(chunk):
            total += row
    return total / np.float32(shape[0])
