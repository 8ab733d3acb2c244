"""fp16 and int4 exports of the tiny Llama and the tiny MiniCPM4, through both backends, validate against their
references (NumPy for the streaming exporter, PyTorch for optimum-intel); manifest and sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.engine.cpu_features import has_amx
from export.settings import AGREEMENT_THRESHOLDS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["streaming", "optimum"])
@pytest.mark.parametrize("weight_format", ["fp16", "int4"])
@pytest.mark.parametrize("model", ["tiny_llama", "tiny_minicpm"])
def test_export_validates_against_its_reference(request, exported, model: str, weight_format: str,
                                               backend: str) -> None:
    source = request.getfixturevalue(model)
    out = exported(source, weight_format, backend)
    manifest = json.loads((out / "manifest.json").read_text())
    validation = manifest["validation"]
    assert validation["passed"] is True
    assert validation["tokenizer_match"] is True
    assert validation["positions"] >= 100
    assert validation["top1_agreement"] >= AGREEMENT_THRESHOLDS[weight_format]
    # What these trained tiny models actually reach (see bench/RESULTS.md): far above the threshold.
    assert validation["top1_agreement"] >= (0.97 if weight_format == "fp16" else 0.90)
    # The max over validation's >1,000-token prompt too: the tiny Llama reaches 0.65 (fp16: its f16 KV cache, the
    # same through both backends) and 3.2 (int4) there; the tiny MiniCPM 0.07 and 0.26. Validation runs the IR as
    # the plugin does by default: on a Xeon with AMX its bf16 kernels take the tiny Llama's int4 to 5.6.
    assert validation["max_abs_logit_diff"] < (1.0 if weight_format == "fp16" else 4.0 if not has_amx() else 8.0)
    for name in ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml"):
        assert (out / name).is_file()
    assert manifest["quantization"]["weight_format"] == weight_format
    assert manifest["quantization"]["group_size"] == 128
    assert manifest["source"]["kind"] == "folder" and len(manifest["source"]["sha256"]) == 64
    assert manifest["backend"] == backend
    assert {"openvino", "nncf", "transformers"} <= set(manifest["tools"])
    assert ({"optimum-intel", "torch"} <= set(manifest["tools"])) == (backend == "optimum")
    assert manifest["sizes"]["weights_bytes"] == (out / "openvino_model.bin").stat().st_size


def test_minicpm_export_is_recorded_as_folded(tiny_minicpm, exported) -> None:
    manifest = json.loads((exported(tiny_minicpm, "int4", "optimum") / "manifest.json").read_text())
    assert manifest["architecture"]["model_type"] == "minicpm"
    assert manifest["architecture"]["route"] == "minicpm-fold"
    config = json.loads((exported(tiny_minicpm, "int4", "optimum") / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["rope_parameters"]["rope_type"] == "longrope"
    streamed = exported(tiny_minicpm, "int4")  # the muP fold happens as the weights stream; config kept as it is
    assert json.loads((streamed / "manifest.json").read_text())["architecture"]["route"] == "minicpm-fold"
    assert json.loads((streamed / "config.json").read_text())["architectures"] == ["MiniCPMForCausalLM"]


def test_int4_is_at_least_3x_smaller_than_fp16(tiny_llama, exported) -> None:
    fp16 = (exported(tiny_llama, "fp16") / "openvino_model.bin").stat().st_size
    int4 = (exported(tiny_llama, "int4") / "openvino_model.bin").stat().st_size
    assert fp16 / int4 >= 3.0, (fp16, int4)


@pytest.mark.parametrize("backend", ["streaming", "optimum"])
def test_fp16_export_keeps_rope_frequencies_exact(tiny_llama, exported, backend: str) -> None:
    import openvino as ov

    out = exported(tiny_llama, "fp16", backend)
    config = json.loads((out / "config.json").read_text())
    head_dim = config["head_dim"]
    theta = (config.get("rope_parameters") or {}).get("rope_theta", config.get("rope_theta", 10000.0))
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
    model = ov.Core().read_model(out / "openvino_model.xml")
    rope_constants = [n for n in model.get_ordered_ops() if n.get_type_name() == "Constant"
                      and n.get_output_size() == 1 and int(np.prod(n.get_output_shape(0))) == inv_freq.size
                      and n.get_element_type() in (ov.Type.f16, ov.Type.f32)]
    values = [n.get_data().reshape(-1) for n in rope_constants]
    exact = [v for v in values if np.allclose(v, inv_freq, rtol=1e-3)]
    assert exact, "no RoPE frequency constant found"
    assert all(v.dtype == np.float32 and np.allclose(v, inv_freq, rtol=1e-7) for v in exact)


def test_ir_generates_through_genai(tiny_llama, exported) -> None:
    import openvino_genai as og

    out = exported(tiny_llama, "int4")
    pipe = og.LLMPipeline(str(out), "CPU")
    text = pipe.generate("def main(", max_new_tokens=12, do_sample=False, apply_chat_template=False)
    assert isinstance(text, str) and len(text) > 0


def test_awq_with_scale_estimation_offline(tiny_llama, tmp_path) -> None:
    """Data-aware AWQ + scale estimation with calibration sampled from the model itself (no network)."""
    from export.exporter import ExportRequest, run_export
    from export.settings import Quantization

    quant = Quantization(weight_format="int4", group_size=64, sym=True, awq=True, scale_estimation=True,
                         dataset="auto", num_samples=16)
    manifest = run_export(ExportRequest(str(tiny_llama), tmp_path / "awq", quant, backend="optimum"))
    assert manifest["quantization"] == {**quant.describe()}
    assert manifest["validation"]["passed"] and manifest["validation"]["top1_agreement"] >= 0.9
