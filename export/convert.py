"""Hugging Face folder to OpenVINO IR with optimum-intel, NNCF weight compression and OpenVINO tokenizers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from export.settings import Quantization

TASK = "text-generation-with-past"


def convert_to_ir(hf_dir: Path, out: Path, quant: Quantization, trust_remote_code: bool = False) -> None:
    """Export `hf_dir` into `out`: stateful IR, compressed weights, tokenizer and detokenizer with chat template."""
    from optimum.exporters.openvino import main_export
    from optimum.exporters.openvino.__main__ import _main_quantize
    from optimum.intel import OVConfig

    wc_config = quant.nncf_config()
    ov_config = OVConfig(quantization_config=wc_config) if wc_config else OVConfig(dtype=quant.weight_format)
    from export.tokenizer import load_tokenizer, write_openvino_tokenizers

    tokenizer = load_tokenizer(hf_dir, trust_remote_code)  # before the conversion: a tokenizer that differs fails fast
    main_export(str(hf_dir), out, task=TASK, ov_config=ov_config, convert_tokenizer=False,
                trust_remote_code=trust_remote_code, library_name="transformers")
    write_openvino_tokenizers(tokenizer, out)
    if wc_config:
        _main_quantize(model_name_or_path=str(hf_dir), task=TASK, library_name="transformers",
                       quantization_config=wc_config, output=out, cache_dir=None,
                       trust_remote_code=trust_remote_code)
    if quant.weight_format == "fp16":
        restore_rope_precision(out)


def rope_candidates(config: dict) -> list[np.ndarray]:
    """The exact f32 vectors a RoPE frequency constant may hold: inv_freq, or LongRoPE's factor lists."""
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    theta = float(params.get("rope_theta", config.get("rope_theta", 10000.0)))
    head_dim = int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    vectors = [inv_freq]
    for key in ("short_factor", "long_factor"):
        if params.get(key):
            vectors.append(np.asarray(params[key], dtype=np.float64))
    return vectors


def restore_rope_precision(ir_dir: Path) -> int:
    """Put exact f32 RoPE frequencies back into an fp16 IR; returns how many constants were restored.

    optimum-intel compresses the rotary frequency vector to f16 along with the weights. Its relative error
    (up to 4e-4) turns into a rotation-angle error that grows with position, so long prompts lose accuracy.
    """
    import openvino as ov
    from openvino import opset13

    xml = ir_dir / "openvino_model.xml"
    config = json.loads((ir_dir / "config.json").read_text())
    candidates = rope_candidates(config)
    model = ov.Core().read_model(xml)
    restored = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Constant" or node.get_element_type() != ov.Type.f16:
            continue
        if "rotary_emb" not in node.get_friendly_name():
            continue
        values = node.get_data().astype(np.float64).reshape(-1)
        exact = next((c for c in candidates if c.size == values.size and np.allclose(values, c, rtol=1e-3)), None)
        if exact is None:
            continue
        for target in list(node.output(0).get_target_inputs()):
            convert = target.get_node()
            if convert.get_type_name() != "Convert":
                continue
            replacement = opset13.constant(exact.astype(np.float32).reshape(node.get_data().shape))
            for consumer in list(convert.output(0).get_target_inputs()):
                consumer.replace_source_output(replacement.output(0))
            restored += 1
    if restored:
        tmp_xml = ir_dir / "openvino_model.rope.xml"
        ov.save_model(model, tmp_xml, compress_to_fp16=False)
        del model
        os.replace(tmp_xml.with_suffix(".bin"), ir_dir / "openvino_model.bin")
        os.replace(tmp_xml, xml)  # an IR finds its weights by stem: openvino_model.bin
    return restored
