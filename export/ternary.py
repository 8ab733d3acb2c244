"""Ternary weights (BitCPM4, BitNet b1.58): found in a fake-quantized checkpoint and stored without loss.

A quantization-aware-trained ternary model ships its weights "fake-quantized": every value of a tensor is
-s, 0 or +s, with one scale s per tensor, per row or per group of columns. `detect_ternary` finds such tensors
(magnitudes compared after rounding to bf16, the precision such checkpoints ship in) and the coarsest scale
layout that explains them; anything else — a fourth level, magnitudes that differ by more than bf16 rounding,
ordinary weights — is refused. `compress_ternary` then stores the codes -1/0/+1 and the exact scales instead of
letting NNCF round the weights a second time:

    int4: i4 codes -> Convert -> Multiply scale [-> Reshape groups]                (4 bits a weight)
    int2: u2 codes (code + 1) -> Convert -> Subtract 1 -> Multiply scale [-> …]   (2 bits a weight)

Scales stay f16 when every one is exactly an f16 value, else f32 (MiniCPM's residual scale folded into o_proj
and down_proj makes them f32). Both patterns are decompressed inside the CPU plugin's FullyConnected; only i4
has its int8 dynamic-quantization kernels, so `expand_int2` turns a loaded int2 model into the int4 form: the
file keeps 2 bits a weight, the computation is i4's (bench/RESULTS.md, issue 23).
NumPy only: no torch, no NNCF.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from export.constant_store import ConstantStore
from export.weight_compression import Transform, pack_nibbles, row_chunks, transformed_chunks

GROUP_SIZES = (256, 128, 64, 32)  # group widths tried, coarsest first
_BASE = 32  # magnitudes are summarised per 32 columns; every group size tried is a multiple of it
_PROBE_ROWS = 16  # rows read first: ordinary weights are refused after these


@dataclass(frozen=True)
class TernaryLayout:
    """Where a ternary tensor's scales change: one per tensor, per row, or per `group_size` columns of a row."""

    granularity: str  # "tensor", "row" or "group"
    group_size: int  # columns sharing a scale (a row's width for "tensor" and "row")

    def describe(self) -> str:
        """A short name: "per tensor", "per row", "per group of 64"."""
        return f"per group of {self.group_size}" if self.granularity == "group" else f"per {self.granularity}"


def bf16_round(values: np.ndarray) -> np.ndarray:
    """f32 values rounded to the nearest bf16 (ties to even), returned as f32."""
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


def _probed_chunks(rows: int, columns: int) -> Iterator[tuple[int, int]]:
    """row_chunks, with the first few rows read on their own (a cheap first look)."""
    probe = min(rows, _PROBE_ROWS)
    yield 0, probe
    for start, stop in row_chunks(rows - probe, columns):
        yield probe + start, probe + stop


def _magnitude_bounds(chunk: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Per `base` columns of each row: the largest magnitude and the smallest non-zero one (inf when none),
    after bf16 rounding."""
    magnitudes = bf16_round(np.abs(chunk)).reshape(chunk.shape[0], -1, base)
    high = magnitudes.max(-1)
    low = np.where(magnitudes > 0, magnitudes, np.float32(np.inf)).min(-1)
    return high, low


def _uniform(high: np.ndarray, low: np.ndarray, width: int) -> bool:
    """Whether every run of `width` summaries of a row holds one non-zero magnitude at most."""
    rows = high.shape[0]
    high, low = high.reshape(rows, -1, width).max(-1), low.reshape(rows, -1, width).min(-1)
    return bool(np.all((low == np.inf) | (high == low)))


def detect_ternary(read_rows: Callable[[int, int], np.ndarray], shape: tuple[int, int]) -> TernaryLayout | None:
    """The scale layout of a [rows, columns] weight whose values are all -s, 0 or +s (s per tensor, row or group
    of columns, magnitudes equal after bf16 rounding), or None when it is not ternary. Reads the weight a chunk of
    rows at a time and stops at the first chunk that rules every layout out."""
    rows, columns = shape
    base = _BASE if columns % _BASE == 0 else columns
    widths = {"row": columns // base}
    widths.update({f"group {g}": g // base for g in GROUP_SIZES
                   if g < columns and columns % g == 0 and g % base == 0})
    alive = {"tensor", *widths}
    tensor_high, tensor_low = np.float32(0), np.float32(np.inf)
    for start, stop in _probed_chunks(rows, columns):
        high, low = _magnitude_bounds(read_rows(start, stop), base)
        tensor_high, tensor_low = max(tensor_high, high.max()), min(tensor_low, low.min())
        if tensor_low != np.inf and tensor_high != tensor_low:
            alive.discard("tensor")
        alive -= {name for name in alive - {"tensor"} if not _uniform(high, low, widths[name])}
        if not alive:
            return None
    if tensor_low == np.inf:  # all zeros: nothing to gain, and nothing says it was trained ternary
        return None
    if "tensor" in alive:
        return TernaryLayout("tensor", columns)
    if "row" in alive:
        return TernaryLayout("row", columns)
    size = max(int(name.split()[1]) for name in alive)
    return TernaryLayout("group", size)


def ternary_codes(chunk: np.ndarray, layout: TernaryLayout) -> tuple[np.ndarray, np.ndarray]:
    """(codes in -1/0/+1 as int8 [rows, columns], f32 scales [rows, groups]) of a chunk of a ternary weight.

    The scale is the group's largest magnitude, so values that are exactly ±s come back bit for bit; raises
    ValueError when the chunk is not ternary in `layout` (e.g. a transform that is not one factor per group).
    """
    grouped = chunk.reshape(chunk.shape[0], -1, layout.group_size)
    scales = np.abs(grouped).max(-1)
    if layout.granularity == "tensor":
        scales = np.full_like(scales, scales.max())
    magnitudes = bf16_round(np.abs(grouped))
    if not np.all((magnitudes == 0) | (magnitudes == bf16_round(scales)[..., None])):
        raise ValueError(f"the weight is not ternary {layout.describe()}")
    return np.sign(chunk).astype(np.int8), scales


def pack_crumbs(codes: np.ndarray) -> np.ndarray:
    """2-bit values (0..3) four to a byte, element 4k in the lowest two bits (OpenVINO's u2 order)."""
    flat = codes.reshape(-1).astype(np.uint8) & 0x03
    return flat[0::4] | (flat[1::4] << 2) | (flat[2::4] << 4) | (flat[3::4] << 6)


def stored_bytes(shape: tuple[int, int], layout: TernaryLayout, storage: str) -> int:
    """An upper bound of the bytes a ternary tensor takes (codes and f32 scales)."""
    rows, columns = shape
    bits = 4 if storage == "int4" else 2
    return rows * columns * bits // 8 + rows * (columns // layout.group_size) * 4 + 256


def compress_ternary(read_rows: Callable[[int, int], np.ndarray], shape: tuple[int, int], layout: TernaryLayout,
                     storage: str, store: ConstantStore, name: str, transform: Transform | None = None):
    """The f32 graph output of a ternary [rows, columns] weight, stored as `storage` ("int4" or "int2") with its
    exact scales; `transform` (muP factors) is applied to the values first, so it lands in the scales."""
    import openvino as ov
    import openvino.opset13 as ops

    if storage not in ("int4", "int2"):
        raise ValueError(f"ternary storage {storage!r}: use int4 or int2")
    rows, columns = shape
    groups = columns // layout.group_size
    per_byte = 2 if storage == "int4" else 4
    if columns % per_byte:
        raise ValueError(f"{name}: {columns} columns cannot be packed {per_byte} to a byte")
    target = store.allocate(np.dtype(np.uint8), (rows * columns // per_byte,))
    scales = np.empty((rows, groups), np.float32)
    for start, stop, chunk in transformed_chunks(read_rows, shape, transform):
        codes, scales[start:stop] = ternary_codes(chunk, layout)
        packed = pack_nibbles(codes) if storage == "int4" else pack_crumbs(codes + 1)
        target[start * columns // per_byte:stop * columns // per_byte] = packed
    code_shape = (rows, groups, layout.group_size) if groups > 1 else (rows, columns)
    scale_shape = (rows, groups, 1) if groups > 1 else (rows, 1)
    exact_f16 = bool(np.all(scales.astype(np.float16).astype(np.float32) == scales))
    scale_type = np.float16 if exact_f16 else np.float32
    ov_type = ov.Type.f16 if exact_f16 else ov.Type.f32
    codes_node = store.constant(target, ov.Type.i4 if storage == "int4" else ov.Type.u2, code_shape, name)
    x = ops.convert(codes_node, ov_type)
    if storage == "int2":
        x = ops.subtract(x, ops.constant(np.ones([1] * len(code_shape), scale_type)))
    x = ops.multiply(x, store.store(scales.reshape(scale_shape).astype(scale_type), name + "/scale"))
    if groups > 1:
        x = ops.reshape(x, ops.constant(np.array([rows, columns], np.int64)), False)
    return ops.convert(x, ov.Type.f32) if exact_f16 else x


def summarize(layouts: dict[str, TernaryLayout], linear_tensors: int, storage: str) -> dict:
    """The manifest's `ternary` entry: how many linear weights are ternary, their scale layouts and storage."""
    counts: dict[str, int] = {}
    for layout in layouts.values():
        counts[layout.describe()] = counts.get(layout.describe(), 0) + 1
    return {"storage": storage, "tensors": len(layouts), "linear_tensors": linear_tensors,
            "scales": dict(sorted(counts.items())), "lossless": True}


def _crumbs_to_nibbles() -> np.ndarray:
    """[256, 2] uint8: a byte of four u2 codes (code + 1) -> the two bytes of the same codes as i4 nibbles."""
    byte = np.arange(256, dtype=np.uint8)
    codes = np.stack([(byte >> shift) & 3 for shift in (0, 2, 4, 6)], axis=1).astype(np.int8) - 1
    return pack_nibbles(codes).reshape(256, 2)


def expand_int2(model) -> int:
    """Turn every ternary weight stored as u2 codes in `model` (an ov.Model) into the int4 form in memory; returns
    how many were turned.

    `--ternary int2` halves the file, but the CPU plugin has int8 dynamic-quantization kernels for 4-bit codes only
    (a u2 weight decodes at ~0.6 of the speed): so the runtime reads the 2-bit file and computes with 4-bit codes,
    exactly the same values (Convert -> Subtract 1 -> Multiply becomes Convert -> Multiply)."""
    import openvino as ov
    import openvino.opset13 as ops

    table = None
    turned = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Constant" or node.get_element_type() != ov.Type.u2:
            continue
        convert = _only_consumer(node.output(0))
        subtract = _only_consumer(convert.output(0)) if convert is not None else None
        if convert is None or convert.get_type_name() != "Convert" or subtract is None \
                or subtract.get_type_name() != "Subtract":
            continue  # not the pattern compress_ternary writes: left as it is
        table = _crumbs_to_nibbles() if table is None else table
        nibbles = table[np.asarray(node.data, np.uint8)].reshape(-1)
        codes = ov.op.Constant(ov.Tensor(nibbles, node.get_output_shape(0), ov.Type.i4), shared_memory=False)
        codes.set_friendly_name(node.get_friendly_name())
        subtract.output(0).replace(ops.convert(codes, convert.get_output_element_type(0)).output(0))
        turned += 1
    if turned:
        model.validate_nodes_and_infer_types()
    return turned


def _only_consumer(output):
    """The one node reading `output`, or None."""
    targets = list(output.get_target_inputs())
    return targets[0].get_node() if len(targets) == 1 else None
