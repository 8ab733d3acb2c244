"""BitCPM4-like ternary models (issue 23): ternary weights found, exported without loss, answering in the app."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from export.ternary import TernaryLayout, bf16_round, detect_ternary, ternary_codes
from tests.conftest import BUILDER_PACKAGES, _cached_build, code_key, needs_shared
from tests.ternary_model import build_tiny_bitcpm4

QAT_STEPS = 12


def _detect(weight: np.ndarray) -> TernaryLayout | None:
    return detect_ternary(lambda a, b: weight[a:b], weight.shape)


def _ternary(scales: np.ndarray, rows: int = 96, columns: int = 256, seed: int = 0) -> np.ndarray:
    """Random codes -1/0/+1 times bf16 `scales` (broadcast over [rows, groups, group])."""
    codes = np.random.default_rng(seed).integers(-1, 2, (rows, columns)).astype(np.float32)
    scales = bf16_round(np.asarray(scales, np.float32))
    groups = scales.shape[1] if scales.ndim == 2 else 1
    return (codes.reshape(rows, groups, -1) * scales.reshape(-1 if scales.ndim else 1, groups, 1)).reshape(
        rows, columns)


def _random_scales(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.005, 0.05, shape).astype(np.float32)


def test_ternary_per_tensor_per_row_and_per_group_are_recognised() -> None:
    assert _detect(_ternary(np.float32(0.0173))) == TernaryLayout("tensor", 256)
    assert _detect(_ternary(_random_scales((96, 1)))) == TernaryLayout("row", 256)
    for group in (128, 64, 32):
        assert _detect(_ternary(_random_scales((96, 256 // group)))) == TernaryLayout("group", group)
    rows_of_five = _ternary(_random_scales((40, 1)), rows=40, columns=5 * 8)  # columns not a multiple of 32
    assert _detect(rows_of_five) == TernaryLayout("row", 40)


def test_codes_and_scales_give_the_weight_back_bit_for_bit() -> None:
    weight = _ternary(_random_scales((96, 4)))
    codes, scales = ternary_codes(weight, TernaryLayout("group", 64))
    assert set(np.unique(codes)) <= {-1, 0, 1}
    rebuilt = (codes.reshape(96, 4, 64) * scales[..., None]).reshape(96, 256)
    assert np.array_equal(rebuilt, weight)


def test_f32_magnitudes_within_bf16_rounding_are_ternary() -> None:
    weight = _ternary(np.float32(0.02))
    jitter = 1 + np.random.default_rng(2).uniform(-1e-4, 1e-4, weight.shape).astype(np.float32)  # < half a bf16 ulp
    assert _detect(weight * jitter) == TernaryLayout("tensor", 256)


@pytest.mark.parametrize("storage", ["int4", "int2"])
def test_stored_codes_compute_the_exact_matmul(tmp_path: Path, storage: str) -> None:
    import openvino as ov
    import openvino.opset13 as ops

    from export.constant_store import ConstantStore
    from export.settings import EXACT_PROPERTIES
    from export.ternary import compress_ternary, expand_int2

    weights = {"tensor": _ternary(np.float32(0.0173)), "row": _ternary(_random_scales((96, 1))),
               "group": _ternary(_random_scales((96, 4)))}
    factor = np.float32(0.2857)  # a muP factor: the scales become f32
    store = ConstantStore(tmp_path / "scratch", 1 << 20)
    x = ops.parameter([3, 256], ov.Type.f32, name="x")
    outputs = []
    for index, (kind, weight) in enumerate(weights.items()):
        layout = _detect(weight)
        assert layout.granularity == kind
        transform = (lambda chunk, _start: chunk * factor) if index == 1 else None
        node = compress_ternary(lambda a, b, w=weight: w[a:b], weight.shape, layout, storage, store, kind, transform)
        outputs.append(ops.result(ops.matmul(x, node, False, True)))
    store.save_ir(ov.Model(outputs, [x]), tmp_path / "m.xml")
    store.close()
    xml = (tmp_path / "m.xml").read_text()
    assert xml.count(f'element_type="{"i4" if storage == "int4" else "u2"}"') == 3
    inputs = np.random.default_rng(6).normal(size=(3, 256)).astype(np.float32)
    core = ov.Core()
    got = core.compile_model(tmp_path / "m.xml", "CPU", EXACT_PROPERTIES)({"x": inputs})
    for index, weight in enumerate(weights.values()):
        want = inputs @ (weight * factor if index == 1 else weight).T
        assert np.abs(got[index] - want).max() <= 1e-5
    # the runtime turns 2-bit codes into 4-bit ones (the fast kernels'): the same products, bit for bit
    model = core.read_model(tmp_path / "m.xml")
    assert expand_int2(model) == (3 if storage == "int2" else 0)
    types = [n.get_element_type() for n in model.get_ops() if n.get_type_name() == "Constant"]
    assert ov.Type.u2 not in types and types.count(ov.Type.i4) == 3
    again = core.compile_model(model, "CPU", EXACT_PROPERTIES)({"x": inputs})
    for index in range(3):
        assert np.array_equal(again[index], got[index])


def test_near_ternary_and_ordinary_weights_are_refused() -> None:
    base = _ternary(np.float32(0.02), rows=200)  # more rows than the first look reads
    fourth_level = base.copy()
    fourth_level[-1, -1] = 2 * 0.02  # one value at 2s, in the last chunk
    five_levels = base * np.random.default_rng(3).integers(1, 3, base.shape)  # -2s .. 2s
    jittered = base * (1 + np.random.default_rng(4).uniform(-0.03, 0.03, base.shape).astype(np.float32))
    tiny = base.copy()
    tiny[150, 7] = 1e-6  # an almost-zero that is not zero
    ordinary = bf16_round(np.random.default_rng(5).normal(0, 0.02, base.shape).astype(np.float32))
    coarse = bf16_round(np.round(ordinary / 0.004) * 0.004)  # 4-bit-like levels: many magnitudes per row
    for weight in (fourth_level, five_levels, jittered, tiny, ordinary, coarse, np.zeros_like(base)):
        assert _detect(weight) is None


@pytest.fixture(scope="module")
def bitcpm4(tiny_minicpm: Path) -> Path:
    """The tiny MiniCPM4 after a short ternary QAT, fake-quantized in bf16 (tests/ternary_model.py)."""
    needs_shared()
    key = code_key(("tests/ternary_model.py",), BUILDER_PACKAGES, str(QAT_STEPS))
    return _cached_build(f"tiny-bitcpm4-{key}", lambda p: build_tiny_bitcpm4(p, tiny_minicpm, QAT_STEPS))


@pytest.fixture(scope="module")
def bitcpm4_ir(bitcpm4: Path, exported) -> Path:
    """Its default streaming export (ternary weights as int2 codes), embeddings and norms in fp16: lossless end to
    end."""
    return exported(bitcpm4, "fp16")


def test_checkpoint_is_fake_quantized_like_bitcpm4(bitcpm4: Path) -> None:
    from export.tensor_reader import open_reader

    reader = open_reader(bitcpm4)
    weight = reader.rows("model.layers.0.mlp.down_proj.weight", 0, 4)
    assert len(np.unique(np.abs(weight))) > 2  # per group: more than one scale in a row
    assert len(np.unique(np.abs(reader.rows("model.layers.1.self_attn.q_proj.weight", 0, 64)))) == 2  # 0 and s


def test_ordinary_trained_weights_are_not_ternary(tiny_minicpm: Path) -> None:
    from export.streaming import open_model

    model = open_model(tiny_minicpm, "minicpm", tiny_minicpm)
    assert all(_detect(model.reader.rows(name, 0, model.reader.shape(name)[0])) is None
               for name in model.linear_names())


def test_export_reports_the_ternary_format_and_stores_codes(bitcpm4_ir: Path) -> None:
    from export.manifest import read_manifest

    manifest = read_manifest(bitcpm4_ir)
    assert manifest["ternary"] == {"storage": "int2", "tensors": 28, "linear_tensors": 28, "lossless": True,
                                   "scales": {"per group of 64": 4, "per row": 8, "per tensor": 16},
                                   "shared_head": True}
    assert manifest["quantization"]["ternary"] == "int2"
    validation = manifest["validation"]
    assert validation["passed"] and validation["top1_agreement"] == 1.0
    assert validation["max_abs_logit_diff"] <= validation["max_logit_diff_limit"] <= 0.005
    xml = (bitcpm4_ir / "openvino_model.xml").read_text()
    codes = re.findall(r'name="model\.layers\.\d+\.[a-z_.]+_proj\.weight" type="Const"[^>]*>\s*<data [^>]*'
                       r'element_type="(\w+)"', xml)
    assert codes == ["u2"] * 28  # the file keeps 2 bits a weight
    assert 'name="lm_head.weight"' not in xml  # the tied head is the embedding, stored once


def test_logits_match_the_fake_quantized_model_in_pytorch(bitcpm4: Path, bitcpm4_ir: Path) -> None:
    import openvino as ov
    import torch
    from transformers import AutoTokenizer

    from export.layer_ranges import ranged_logits
    from export.minicpm_reference import load_reference
    from export.settings import EXACT_PROPERTIES

    tokenizer = AutoTokenizer.from_pretrained(bitcpm4)
    prompts = [tokenizer(text)["input_ids"] for text in (
        "The capital of France is", "def fibonacci(n):\n    return", "北京是中国的首都，上海是中国最大的城市。")]
    model = load_reference(bitcpm4, torch.float32)
    with torch.no_grad():
        want = [model(torch.tensor([ids]))[0].numpy() for ids in prompts]
    got, _ = ranged_logits(ov.Core(), bitcpm4_ir / "openvino_model.xml", prompts, properties=EXACT_PROPERTIES)
    for w, g in zip(want, got, strict=True):
        assert np.abs(w - g).max() <= 1e-3 * max(1.0, float(np.abs(w).max()))
        assert np.array_equal(w.argmax(-1), g.argmax(-1))


def test_the_model_answers_through_the_engine(bitcpm4_ir: Path) -> None:
    from app.engine import ChatEngine, Conversation, GenerationSettings

    engine = ChatEngine(bitcpm4_ir)
    reply = engine.send(Conversation(), "What is the capital of France?",
                        GenerationSettings(max_new_tokens=12, ignore_eos=True))
    assert reply.num_tokens == 12 and (reply.answer + reply.reasoning).strip()


def test_two_bit_file_answers_as_the_four_bit_one(bitcpm4: Path, bitcpm4_ir: Path, tmp_path: Path) -> None:
    from app.engine import ChatEngine, Conversation, GenerationSettings
    from export.exporter import ExportRequest, run_export
    from export.manifest import read_manifest
    from export.settings import Quantization

    out = tmp_path / "int4"
    run_export(ExportRequest(str(bitcpm4), out, Quantization(weight_format="fp16", ternary="int4"), force=True))
    assert read_manifest(out)["ternary"]["storage"] == "int4"
    xml = (out / "openvino_model.xml").read_text()
    assert 'element_type="i4"' in xml and 'element_type="u2"' not in xml
    sizes = [(folder / "openvino_model.bin").stat().st_size for folder in (bitcpm4_ir, out)]
    assert sizes[0] < sizes[1]  # the default (int2) file is the smaller
    settings = GenerationSettings(max_new_tokens=12, ignore_eos=True)
    answers = [ChatEngine(folder).send(Conversation(), "What is the capital of France?", settings)
               for folder in (bitcpm4_ir, out)]  # the 2-bit one loaded through two_bit_pipeline
    assert answers[0].num_tokens == 12 and answers[0].answer == answers[1].answer
    assert answers[0].reasoning == answers[1].reasoning


def test_the_model_answers_in_the_app(qtbot, tmp_path, bitcpm4_ir: Path) -> None:
    from tests.test_gui import open_window, send

    window = open_window(qtbot, tmp_path / "chats.sqlite3", bitcpm4_ir, max_new_tokens=8, ignore_eos=True)
    card = next(c for c in window.refresh_models() if c.folder.resolve() == bitcpm4_ir.resolve())
    assert card.quantization == "ternary int2"  # the model card says what the manifest records
    send(qtbot, window, "Hello!")
    answer = window.store.messages(window.chat_id)[-1]
    assert answer.role == "assistant" and answer.status == "done" and (answer.content + answer.reasoning).strip()
