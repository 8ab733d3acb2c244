"""The torch-free exporter: weights streamed tensor by tensor into a stateful OpenVINO IR.

    reader (safetensors / GGUF) -> muP and AWQ scales -> NNCF quantizer, a chunk of rows at a time
        -> scratch file -> graph built layer by layer (decoder_graph) -> ConstantStore.save_ir -> tokenizer IRs

Memory holds one chunk of one tensor, the per-tensor scales and the graph's nodes; the compressed weights
live in the scratch file until `save_ir` copies them into openvino_model.bin a chunk at a time. Validation then
runs the saved IR a range of layers at a time (export/layer_ranges.py). Neither torch nor optimum-intel is
imported.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from export.constant_store import ConstantStore, PageReleaser
from export.errors import ExportError
from export.model_spec import DecoderSpec, decoder_spec
from export.settings import Quantization
from export.tensor_reader import GGUFTensorReader, TensorReader, open_reader, read_tensor
from export.ternary import TernaryLayout, compress_ternary, detect_ternary, stored_bytes
from export.weight_compression import (
    StoredFormat,
    Transform,
    adjusted_group,
    column_mean_abs,
    compress,
    int8_error,
    nncf_reference_quantizer,
)

Log = Callable[[str], None]
EMBEDDING, HEAD = "model.embed_tokens.weight", "lm_head.weight"
_LINEAR = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
           "mlp.up_proj", "mlp.down_proj")
_COPIED_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                 "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "vocab.json", "merges.txt")


@dataclass
class StreamingModel:
    """A source opened for streaming: its reader and the decoder it describes."""

    reader: TensorReader
    spec: DecoderSpec
    tokenizer_dir: Path  # Hugging Face tokenizer files (the folder itself, or rebuilt from a GGUF)
    ternary: dict[str, TernaryLayout] = field(default_factory=dict)  # linear weights stored as ternary (build_ir)
    head_scale: float | None = None  # the tied head is the stored embedding, h scaled by this (build_ir)

    def shares_scaled_head(self) -> bool:
        """Whether a tied head with muP factors can be the stored embedding (ternary exports, see build_ir)."""
        spec = self.spec
        return bool(self.ternary) and spec.tied and not spec.head_shares_embedding and not self.reader.has(HEAD)

    def linear_names(self) -> list[str]:
        """Every decoder-layer matmul weight, in build order."""
        return [f"model.layers.{i}.{part}.weight" for i in range(self.spec.layers) for part in _LINEAR]


def open_model(path: Path, model_type: str, work: Path) -> StreamingModel:
    """Open a safetensors folder (`model_type` from its config) or a GGUF file for streaming."""
    reader = open_reader(path)
    if isinstance(reader, GGUFTensorReader):
        from export.gguf_source import write_tokenizer

        config = reader.config
        model_type = reader.architecture
        work.mkdir(parents=True, exist_ok=True)
        write_tokenizer(path, work)
        (work / "config.json").write_text(json.dumps(config, indent=2))
        tokenizer_dir = work
    else:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        tokenizer_dir = path
    spec = decoder_spec(config, model_type, tied=not reader.has(HEAD))
    return StreamingModel(reader, spec, tokenizer_dir)


@dataclass
class FormatPlan:
    """Which stored format each weight gets, decided before the build (NNCF's defaults, as optimum calls them)."""

    quant: Quantization
    backup: set[str] = field(default_factory=set)  # linear weights kept in int8 by --ratio
    ternary: dict[str, TernaryLayout] = field(default_factory=dict)  # stored as ternary codes (export/ternary.py)

    def format_for(self, name: str, columns: int) -> StoredFormat:
        """The stored format of one weight."""
        fmt = self.quant.weight_format
        if fmt in ("fp32", "fp16"):
            return StoredFormat(fmt)
        if fmt == "int8":
            return StoredFormat("int8_sym" if self.quant.sym else "int8_asym")
        if name == EMBEDDING or (name == HEAD and not self.quant.int4_head) or name in self.backup:
            return StoredFormat("int8_asym")
        group = adjusted_group(columns, self.quant.group_size)
        if group is None or columns % 2:
            return StoredFormat("int8_asym")
        return StoredFormat("int4_sym" if self.quant.sym else "int4_asym", group)


def plan_formats(model: StreamingModel, quant: Quantization, transforms: dict[str, Transform], log: Log) -> FormatPlan:
    """The format plan; with --ratio below 1, NNCF's data-free rule picks the weights that stay in int8.

    NNCF ranks every matmul weight by 1 / (its int8 error) and puts weights in 4 bits, most sensitive first,
    until `ratio` of the parameters are 4-bit. That needs one pass over the weights before the build.
    """
    plan = FormatPlan(quant, ternary=find_ternary(model, quant, log))
    if quant.weight_format != "int4" or quant.ratio >= 1.0:
        return plan
    log(f"      ranking weights for --ratio {quant.ratio} (one extra pass over the weights)")
    names = [name for name in model.linear_names() if name not in plan.ternary]
    scores, sizes = [], []
    for name in names:
        shape = model.reader.shape(name)
        error = int8_error(lambda a, b, n=name: model.reader.rows(n, a, b), shape, transforms.get(name))
        scores.append(1.0 / (error + float(np.finfo(np.float32).eps)))
        sizes.append(shape[0] * shape[1])
    total, in_four_bit = sum(sizes), 0
    chosen = set()
    for index in sorted(range(len(names)), key=lambda i: scores[i]):
        if (in_four_bit + sizes[index]) / total >= quant.ratio:
            break
        chosen.add(names[index])
        in_four_bit += sizes[index]
    plan.backup = set(names) - chosen
    return plan


def find_ternary(model: StreamingModel, quant: Quantization, log: Log) -> dict[str, TernaryLayout]:
    """The linear weights that are ternary fake-quantized, with their scale layouts (none with --ternary off).

    Ordinary weights are refused after their first rows; a ternary model's weights are read once in full.
    """
    if quant.ternary == "off":
        return {}
    found = {}
    names = model.linear_names()
    for name in names:
        layout = detect_ternary(lambda a, b, n=name: model.reader.rows(n, a, b), model.reader.shape(name))
        if layout is not None:
            found[name] = layout
    if found:
        kinds = sorted({layout.describe() for layout in found.values()})
        log(f"      ternary weights: {len(found)}/{len(names)} linear tensors ({', '.join(kinds)}), stored "
            f"losslessly as {quant.ternary} codes with their exact scales")
    return found


def mup_transforms(model: StreamingModel) -> dict[str, Transform]:
    """MiniCPM's scalars folded into the weights they multiply (exact up to one f32 rounding)."""
    spec = model.spec
    transforms: dict[str, Transform] = {}

    def times(factor: float) -> Transform:
        return lambda chunk, _start: chunk * np.float32(factor)

    if spec.emb_scale != 1.0:
        transforms[EMBEDDING] = times(spec.emb_scale)
    if spec.logit_scale != 1.0:
        transforms[HEAD] = times(spec.logit_scale)
    if spec.residual_scale != 1.0:
        for layer in range(spec.layers):
            for part in ("self_attn.o_proj", "mlp.down_proj"):
                transforms[f"model.layers.{layer}.{part}.weight"] = times(spec.residual_scale)
    return transforms


class StreamedWeights:
    """`LayerWeights` for the graph builder: each weight read, transformed and compressed when asked for."""

    def __init__(self, model: StreamingModel, plan: FormatPlan, store: ConstantStore,
                 transforms: dict[str, Transform], awq: bool) -> None:
        self.model, self.plan, self.store, self.awq = model, plan, store, awq
        self.transforms = dict(transforms)
        self.head_source = HEAD if model.reader.has(HEAD) else EMBEDDING

    def has(self, name: str) -> bool:
        """Whether the checkpoint has this tensor."""
        return self.model.reader.has(name)

    def vector(self, name: str):
        """A small tensor (norm weight, bias) as f32; stored in f16 in fp16 exports, as optimum-intel stores it."""
        values = np.ascontiguousarray(read_tensor(self.model.reader, name), np.float32)
        if self.plan.quant.weight_format != "fp16":
            return self.store.store(values, name)
        return compress(lambda a, b: values[a:b].reshape(b - a, 1), (values.size, 1), StoredFormat("fp16"),
                        self.store, name, None, shape_out=values.shape)

    def matrix(self, name: str):
        """A compressed [out, in] weight."""
        source = self.head_source if name == HEAD else name
        shape = self.model.reader.shape(source)
        layout = self.plan.ternary.get(name)
        if layout is not None:
            return compress_ternary(lambda a, b: self.model.reader.rows(source, a, b), shape, layout,
                                    self.plan.quant.ternary, self.store, name, self.transforms.get(name))
        fmt = self.plan.format_for(name, shape[1])
        if self.awq and name.endswith("mlp.up_proj.weight"):
            self._apply_awq(name, fmt)
        return compress(lambda a, b: self.model.reader.rows(source, a, b), shape, fmt, self.store, name,
                        self.transforms.get(name))

    def _apply_awq(self, up_name: str, up_fmt: StoredFormat) -> None:
        """NNCF's data-free AWQ for the MatMul -> Multiply -> MatMul pattern (up_proj -> down_proj).

        With m = mean over down_proj's rows of |W| per input channel, down_proj's columns are divided by m and
        up_proj's rows multiplied by it: the same function, with the outlier channels flattened before 4-bit
        rounding. Applied when down_proj is stored in 4 bits, as NNCF does.
        """
        down_name = up_name.replace("up_proj", "down_proj")
        down_shape = self.model.reader.shape(down_name)
        if self.plan.format_for(down_name, down_shape[1]).bits != 4 or {up_name, down_name} & set(self.plan.ternary):
            return  # ternary weights keep their exact values
        down_before = self.transforms.get(down_name)
        means = column_mean_abs(lambda a, b: self.model.reader.rows(down_name, a, b), down_shape, down_before)
        scale = np.float32(1.0) / np.maximum(means, np.finfo(np.float32).eps)  # NNCF's f32 arithmetic, step by step
        merged = np.float32(1.0) / scale
        up_before = self.transforms.get(up_name)

        def down(chunk: np.ndarray, start: int) -> np.ndarray:
            return (down_before(chunk, start) if down_before else chunk) * scale

        def up(chunk: np.ndarray, start: int) -> np.ndarray:
            chunk = up_before(chunk, start) if up_before else chunk
            return chunk * merged[start:start + chunk.shape[0], None]

        self.transforms[down_name], self.transforms[up_name] = down, up


def runtime_options(quant: Quantization) -> dict[str, str]:
    """The runtime options optimum-intel records in the IR, which openvino-genai passes to compile_model."""
    options = {"ACTIVATIONS_SCALE_FACTOR": "8.0"}
    if quant.weight_format == "fp16":
        options["KV_CACHE_PRECISION"] = "f16"
    return options


def build_ir(model: StreamingModel, out: Path, quant: Quantization, scratch: Path, log: Log) -> None:
    """Write openvino_model.xml/.bin for `model` into `out`, one layer at a time."""
    import psutil

    from export.decoder_graph import build_decoder

    transforms = mup_transforms(model)
    with nncf_reference_quantizer():
        plan = plan_formats(model, quant, transforms, log)
    model.ternary = plan.ternary
    # A ternary export has no optimum-intel twin to match bit for bit: a tied MiniCPM head is stored once (the
    # scaled embedding) instead of as its own int8 copy, which at 0.5B is 75 MB, a third of the ternary IR.
    if model.shares_scaled_head() and not quant.int4_head:  # an int4 head is its own constant
        model.head_scale = model.spec.logit_scale / model.spec.emb_scale
    store = ConstantStore(scratch, scratch_capacity(model, quant))
    process = psutil.Process()
    try:
        with PageReleaser(store.mapping), nncf_reference_quantizer():
            weights = StreamedWeights(model, plan, store, transforms, quant.awq)

            def progress(layer: int) -> None:
                log(f"      layer {layer + 1}/{model.spec.layers} ({store.used / 2**30:.2f} GiB written, "
                    f"{process.memory_info().rss / 2**30:.2f} GiB in memory)")

            # an int4 head is its own constant: a tied embedding keeps int8 for the lookup
            spec = replace(model.spec, tied=False) if quant.int4_head else model.spec
            graph = build_decoder(spec, weights, progress, head_scale=model.head_scale)
            for key, value in runtime_options(quant).items():
                graph.set_rt_info(value, ["runtime_options", key])
            graph.set_rt_info("cpmdesk-streaming", ["cpmdesk", "exporter"])
            out.mkdir(parents=True, exist_ok=True)
            log("      saving the IR")
            store.save_ir(graph, out / "openvino_model.xml")
            del graph, weights
    except OSError as err:
        raise ExportError(f"Writing the IR failed ({err.strerror or err}); check free disk space at {out.parent}") \
            from err
    finally:
        store.close()


def scratch_capacity(model: StreamingModel, quant: Quantization) -> int:
    """An upper bound of the bytes the compressed constants take (the scratch file is sparse: only written
    bytes use disk)."""
    per_value = {"fp32": 4.0, "fp16": 2.0}.get(quant.weight_format, 1.1)  # codes + scales + zero points
    spec, total = model.spec, 0
    for name in model.reader.names():
        shape = model.reader.shape(name)
        if name in model.ternary:
            total += stored_bytes(shape, model.ternary[name], quant.ternary) + 4096
            continue
        total += int(np.prod(shape)) * (4 if len(shape) == 1 else per_value) + 4096
    own_head = quant.int4_head or not spec.head_shares_embedding
    if model.reader.has(EMBEDDING) and not model.reader.has(HEAD) and own_head:
        total += spec.vocab * spec.hidden * per_value  # the head's own copy of the scaled embedding
    return int(total * 1.05) + (64 << 20)


def write_tokenizers(model: StreamingModel, out: Path) -> None:
    """OpenVINO tokenizer and detokenizer (chat template in their rt_info) and the model's own files beside."""
    from export.tokenizer import load_tokenizer, write_openvino_tokenizers

    write_openvino_tokenizers(load_tokenizer(model.tokenizer_dir), out)
    for name in _COPIED_FILES:
        if (model.tokenizer_dir / name).is_file():
            shutil.copy2(model.tokenizer_dir / name, out / name)


def convert_streaming(path: Path, model_type: str, out: Path, quant: Quantization, work: Path,
                      log: Log = print) -> StreamingModel:
    """The streaming export of a folder or GGUF file into `out` (IR, tokenizers, config files)."""
    work.mkdir(parents=True, exist_ok=True)
    model = open_model(path, model_type, work / "gguf-tokenizer")
    build_ir(model, out, quant, work / "constants.scratch", log)
    write_tokenizers(model, out)
    return model
