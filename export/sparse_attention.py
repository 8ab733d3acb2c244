"""IR pass: every attention block of a stateful LLM IR becomes cpmdesk's InfLLMv2Attention op.

optimum-intel's IR computes attention as ReadValue -> Gather(beam_idx) -> Concat(past, new) -> [GQA broadcast]
-> ScaledDotProductAttention, with Assign writing the Concat back. The pass feeds only the new K/V rows and
position_ids into the op (which owns the KV cache) and removes the KV variables. A tiny unused SDPA with one
variable stays in the graph so the CPU plugin still applies its LLM settings (without it decode runs ~1.6x
slower) and openvino-genai still sees a stateful model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ov_ops.sparse_config import SparseAttentionConfig

OP_TYPE = "InfLLMv2Attention"
MARKER_VARIABLE = "cpmdesk_llm_marker"


class SparseAttentionPassError(RuntimeError):
    """The IR does not have the attention structure the pass expects."""


def _kv_concat(value):
    """The Concat(past, new) above an SDPA key/value input (through the GQA Unsqueeze/Broadcast/Reshape)."""
    node = value.get_node()
    for _ in range(6):
        if node.get_type_name() == "Concat":
            return node
        if node.get_input_size() == 0:
            break
        node = node.input_value(0).get_node()
    raise SparseAttentionPassError("no KV-cache Concat above a ScaledDotProductAttention input: "
                                   "the IR is not a stateful optimum-intel LLM export")


def _scale(sdpa) -> float:
    """The SDPA's constant scale input, or 0.0 (the op then uses 1/sqrt(head_dim))."""
    if sdpa.get_input_size() < 5:
        return 0.0
    node = sdpa.input_value(4).get_node()
    if node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant":
        raise SparseAttentionPassError("the attention scale is not a constant")
    return float(np.asarray(node.get_data(), dtype=np.float32).reshape(-1)[0])


def _add_llm_marker(model) -> None:
    import openvino as ov
    import openvino.opset14 as ops
    from openvino.op.util import Variable, VariableInfo

    ids = model.input("input_ids")
    first = ops.gather(ops.reshape(ids, [-1], False), ops.constant(np.array([0], np.int64)), 0)
    x = ops.convert(ops.reshape(first, [1, 1, 1, 1], False), np.float32)
    info = VariableInfo()
    info.data_shape = ov.PartialShape([1, 1, 1, 1])
    info.data_type = ov.Type.f32
    info.variable_id = MARKER_VARIABLE
    variable = Variable(info)
    state = ops.read_value(ops.constant(np.zeros((1, 1, 1, 1), np.float32)), variable)
    marker = ops.scaled_dot_product_attention(ops.add(x, state), x, x, causal=False)
    model.add_variables([variable])
    model.add_sinks([ops.assign(marker, variable)])


def rewrite(model, config: SparseAttentionConfig, library: Path) -> int:
    """Replace every ScaledDotProductAttention of `model` in place; returns how many were replaced."""
    from openvino.utils.node_factory import NodeFactory

    factory = NodeFactory("opset14")
    factory.add_extension(str(library))
    names = {name for port in model.inputs for name in port.get_names()}
    if "position_ids" not in names:
        raise SparseAttentionPassError("the IR has no position_ids input (export with text-generation-with-past)")
    positions = model.input("position_ids")
    sdpas = [n for n in model.get_ordered_ops() if n.get_type_name() == "ScaledDotProductAttention"]
    if not sdpas:
        raise SparseAttentionPassError("the IR has no ScaledDotProductAttention to replace")
    sinks = list(model.get_sinks())
    for layer, sdpa in enumerate(sdpas):
        k_concat, v_concat = _kv_concat(sdpa.input_value(1)), _kv_concat(sdpa.input_value(2))
        op = factory.create(OP_TYPE, [sdpa.input_value(0), k_concat.input_value(1), v_concat.input_value(1),
                                      positions], config.op_attributes(_scale(sdpa), layer))
        op.set_friendly_name(f"{sdpa.get_friendly_name()}/infllm_v2")
        sdpa.output(0).replace(op.output(0))
        for concat in (k_concat, v_concat):
            for sink in sinks:
                if sink.input_value(0).get_node() == concat:
                    model.remove_sink(sink)
                    model.remove_variable(model.get_variable_by_id(sink.get_variable_id()))
    _add_llm_marker(model)
    model.validate_nodes_and_infer_types()
    return len(sdpas)


def apply_to_folder(ir_dir: Path, config: SparseAttentionConfig) -> dict:
    """Rewrite ir_dir/openvino_model.xml in place; returns the manifest's `sparse_attention` entry."""
    import openvino as ov

    from ov_ops.build import library_path

    library = library_path()
    core = ov.Core()
    core.add_extension(str(library))
    xml = ir_dir / "openvino_model.xml"
    model = core.read_model(xml)
    layers = rewrite(model, config, library)
    tmp = ir_dir / "openvino_model.sparse.xml"
    ov.save_model(model, tmp, compress_to_fp16=False)
    del model
    os.replace(tmp, xml)
    os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
    return {"op": OP_TYPE, "domain": "cpmdesk", "layers": layers, "config": config.to_dict()}


def infer_variant(model_config: dict | None) -> str | None:
    """The InfLLM v2 selection rule a MiniCPM config was trained with, or None when nothing in it tells.

    MiniCPM4.1 was pre-trained on 64K tokens and MiniCPM4 on 32K: the LongRoPE `original_max_position_embeddings`
    (else `max_position_embeddings`) is 65536 in every 4.1 config and 32768 in every MiniCPM4 one. A `_name_or_path`
    naming the model decides first.
    """
    if not model_config:
        return None
    name = str(model_config.get("_name_or_path", "")).lower().replace("-", "").replace("_", "")
    if "minicpm4.1" in name:
        return "minicpm4.1"
    if "minicpm4" in name:
        return "minicpm4"
    scaling = model_config.get("rope_scaling") or model_config.get("rope_parameters") or {}
    trained = scaling.get("original_max_position_embeddings") or model_config.get("max_position_embeddings")
    return {65536: "minicpm4.1", 32768: "minicpm4"}.get(int(trained or 0))


def resolve_config(model_sparse_config: dict | None, requested: bool | dict | None,
                   model_config: dict | None = None) -> SparseAttentionConfig | None:
    """None = on when the model's config has sparse_config; False = off; True = on; a dict = on, these keys
    overriding the model's sparse_config. Without an explicit `variant`, it is inferred from `model_config`."""
    from ov_ops.sparse_config import SparseConfigError

    if requested is False or (requested is None and not model_sparse_config):
        return None
    values = dict(model_sparse_config or {})
    if isinstance(requested, dict):
        values.update(requested)
    if "variant" not in values:
        variant = infer_variant(model_config)
        if variant is None:
            raise SparseConfigError("cannot tell from config.json whether this is MiniCPM4 or MiniCPM4.1; pass "
                                    "--sparse-attention '{\"variant\": \"minicpm4\"}' (or \"minicpm4.1\")")
        values["variant"] = variant
    return SparseAttentionConfig.from_dict(values)


def resolve_for_export(model_sparse_config: dict | None, requested: bool | dict | None,
                       model_config: dict | None) -> SparseAttentionConfig | None:
    """`resolve_config` with its errors as one-line ExportErrors (called before the conversion)."""
    from export.errors import ExportError
    from ov_ops.sparse_config import SparseConfigError

    try:
        return resolve_config(model_sparse_config, requested, model_config)
    except SparseConfigError as err:
        raise ExportError(f"Bad sparse-attention config: {err}") from err


def apply_for_export(ir_dir: Path, config: SparseAttentionConfig | None, log=print) -> dict | None:
    """The exporter's step: rewrite the IR when sparse attention is on; returns the manifest entry or None."""
    from export.errors import ExportError
    from ov_ops.build import OpsBuildError

    if config is None:
        return None
    try:
        log(f"      InfLLM v2 sparse attention ({config.variant}, dense below {config.dense_len} tokens)")
        return apply_to_folder(ir_dir, config)
    except OpsBuildError as err:
        raise ExportError(f"{err}; or export without sparse attention (--no-sparse-attention)") from err
    except SparseAttentionPassError as err:
        raise ExportError(f"Cannot add sparse attention: {err}; export with --no-sparse-attention") from err


def parse_sparse_option(value: str | None) -> bool | dict | None:
    """`--sparse-attention [CONFIG]`: None (flag absent) -> auto, "" -> on, JSON text or a .json file -> overrides."""
    import json

    from export.errors import ExportError

    if value is None:
        return None
    if not value.strip():
        return True
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ExportError(f"--sparse-attention {value}: not JSON and no such file; pass e.g. "
                              "'{\"variant\": \"minicpm4.1\"}' or a .json file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ExportError(f"--sparse-attention {value}: cannot read the file ({err}); pass a UTF-8 JSON "
                              "file") from err
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as err:
        raise ExportError(f"--sparse-attention: invalid JSON ({err.msg} at line {err.lineno}); fix the config") from err
    if not isinstance(overrides, dict):
        raise ExportError("--sparse-attention: the config must be a JSON object of sparse_config keys")
    from ov_ops.sparse_config import SparseConfigError

    try:
        SparseAttentionConfig.from_dict(overrides)  # fail now, not after the conversion
    except SparseConfigError as err:
        raise ExportError(f"--sparse-attention: {err}") from err
    return overrides


def add_to_export_folder(folder: Path, config: SparseAttentionConfig) -> dict:
    """Rewrite an existing cpmdesk export folder in place and record it in its manifest (sizes included)."""
    from export.manifest import folder_sizes, read_manifest, write_manifest

    manifest = read_manifest(folder)
    if manifest is None:
        raise SparseAttentionPassError(f"{folder} has no manifest.json: not a cpmdesk export")
    if manifest.get("sparse_attention"):
        raise SparseAttentionPassError(f"{folder} already uses sparse attention")
    entry = apply_to_folder(folder, config)
    manifest.pop("format_version", None)
    manifest["sparse_attention"] = entry
    manifest["sizes"] = folder_sizes(folder)
    write_manifest(folder, manifest)
    return entry
