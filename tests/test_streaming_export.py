"""The torch-free streaming exporter against optimum-intel: same weights, same logits, same greedy tokens.

Both backends export the tiny Llama, the tiny MiniCPM4 and the real SmolLM2-135M GGUF in fp16 and int4; the
IRs must agree token for token through openvino-genai and logit for logit through OpenVINO. The streaming
export must also run in a process where importing torch fails.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from export.validate import PROMPTS, ir_logits, ov_tokenize

pytestmark = pytest.mark.slow

SOURCES = ("tiny_llama", "tiny_minicpm", "smollm2_gguf")
# Max |Δlogit| between the backends at f32 without activation quantization: both store the same int4 bits and,
# from safetensors, the same fp16 values, so only the graphs' op order differs. From a GGUF the fp16 values may
# differ in the last bit (the gguf package's dequantization against transformers'). Greedy tokens are compared
# in the same exact mode, with an f32 KV cache: at this CPU's default bf16, int8 activations and a u8/bf16 cache
# the two graphs' different op orders round differently, and the small models' near-ties then flip a token.
# fp16: the max over validation's >1,000-token prompt too (SmolLM2: 0.035 there, 0.02 on the short prompts)
LOGIT_TOLERANCE = {"int4": 1e-3, "fp16": 0.05}
EXACT_F32 = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}
GENERATION_PROMPTS = ("The capital of France is", "def fibonacci(n):", "Once upon a time")
TORCH_BLOCKED = ("import sys\nsys.modules['torch'] = None\nsys.modules['optimum'] = None\n"
                 "try:\n    import torch\nexcept ImportError:\n    pass\n"
                 "else:\n    raise SystemExit('torch imported')\n"
                 "from export.cli import main\ncode = main(sys.argv[1:])\n"
                 "assert sys.modules['torch'] is None and sys.modules['optimum'] is None\n"
                 "print('torch stayed blocked')\nraise SystemExit(code)\n")


def _logits(folder: Path, prompts=PROMPTS) -> list[np.ndarray]:
    import openvino as ov
    import openvino_tokenizers  # noqa: F401 - registers the tokenizer ops

    core = ov.Core()
    # ir_logits prefills in chunks through the KV cache, so the cache is f32 too (the default quantizes it)
    model = core.compile_model(folder / "openvino_model.xml", "CPU", {**EXACT_F32, "KV_CACHE_PRECISION": "f32"})
    tokenizer = core.compile_model(folder / "openvino_tokenizer.xml", "CPU")
    return [ir_logits(model, ov_tokenize(tokenizer, prompt)) for prompt in prompts]


def _greedy(folder: Path, properties: dict) -> list[list[int]]:
    """20 greedy token ids per prompt through openvino-genai, at exact f32."""
    import openvino_genai as og

    pipe = og.LLMPipeline(str(folder), "CPU", **EXACT_F32, KV_CACHE_PRECISION="f32", **properties)
    tokenizer = pipe.get_tokenizer()
    answers = []
    for prompt in GENERATION_PROMPTS:
        encoded = tokenizer.encode(prompt, add_special_tokens=False)
        result = pipe.generate(encoded, max_new_tokens=20, do_sample=False, ignore_eos=True)
        answers.append([int(token) for token in result.tokens[0]])
    return answers


def _assert_same_greedy_tokens(ours: Path, theirs: Path, properties: dict) -> None:
    """Token for token the same, except where optimum-intel's own logits have a tie at f32 precision: the IRs
    differ by ~1e-5 in op order, so two candidates closer than that may swap."""
    import openvino as ov
    import openvino_genai as og

    for prompt, a, b in zip(GENERATION_PROMPTS, _greedy(ours, properties), _greedy(theirs, properties), strict=True):
        if a == b:
            continue
        tokenizer = og.Tokenizer(str(theirs))
        compiled = ov.Core().compile_model(theirs / "openvino_model.xml", "CPU", EXACT_F32)
        first = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
        prefix = [int(i) for i in tokenizer.encode(prompt, add_special_tokens=False).input_ids.data[0]] + b[:first]
        logits = ir_logits(compiled, prefix)[-1]
        assert abs(float(logits[a[first]] - logits[b[first]])) < 1e-3, (prompt, first, a, b)


def compressed_constants(folder: Path) -> Counter:
    """(element type, shape, content hash) of every integer constant larger than 1 KB: the stored codes."""
    import openvino as ov

    model = ov.Core().read_model(folder / "openvino_model.xml")
    found = Counter()
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Constant" or node.get_byte_size() <= 1024:
            continue
        kind = node.get_element_type()
        if kind in (ov.Type.i4, ov.Type.u4, ov.Type.i8, ov.Type.u8):
            digest = hashlib.sha256(np.asarray(node.data).tobytes()).hexdigest()[:16]
            found[(kind.get_type_name(), tuple(node.get_output_shape(0)), digest)] += 1
    return found


# SmolLM2 (30 layers, ~100 s an export pair on CI's 2 cores) only in int4: its GGUF path is the same in both formats,
# and the fp16 graph is compared on the two tiny models.
@pytest.mark.parametrize(("model", "weight_format"),
                         [(m, w) for m in SOURCES for w in ("fp16", "int4") if (m, w) != ("smollm2_gguf", "fp16")])
def test_streaming_and_optimum_give_the_same_model(request, exported, model: str, weight_format: str) -> None:
    source = request.getfixturevalue(model)
    ours, theirs = exported(source, weight_format), exported(source, weight_format, backend="optimum")
    manifest = json.loads((ours / "manifest.json").read_text())
    assert manifest["backend"] == "streaming" and manifest["validation"]["passed"]
    assert json.loads((theirs / "manifest.json").read_text())["backend"] == "optimum"
    if weight_format == "int4":
        assert compressed_constants(ours) == compressed_constants(theirs)
    worst, positions = 0.0, 0
    for got, want in zip(_logits(ours), _logits(theirs), strict=True):
        assert (got.argmax(-1) == want.argmax(-1)).all()
        worst, positions = max(worst, float(np.abs(got - want).max())), positions + len(got)
    assert positions >= 100 and worst <= LOGIT_TOLERANCE[weight_format], worst
    for properties in ({}, {"ATTENTION_BACKEND": "SDPA"}):
        _assert_same_greedy_tokens(ours, theirs, properties)


def test_paged_attention_transformation_applies(tiny_minicpm, exported) -> None:
    """GenAI's PagedAttention conversion finds every SDPA of the streaming IR (the default backend would fall
    back to SDPA silently, so the transformation is run directly), and continuous batching generates."""
    import openvino as ov
    import openvino_genai as og
    from openvino._offline_transformations import paged_attention_transformation

    folder = exported(tiny_minicpm, "int4")
    model = ov.Core().read_model(folder / "openvino_model.xml")
    layers = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
    paged_attention_transformation(model)
    kinds = Counter(node.get_type_name() for node in model.get_ordered_ops())
    assert kinds["PagedAttentionExtension"] == layers and kinds["ScaledDotProductAttention"] == 0
    pipe = og.ContinuousBatchingPipeline(str(folder), og.SchedulerConfig(), "CPU")
    config = og.GenerationConfig(max_new_tokens=8, ignore_eos=True)
    result = pipe.generate(["Hello"], [config])[0]
    assert len(result.m_generation_ids) == 1


@pytest.mark.parametrize("model", ["tiny_minicpm", "smollm2_gguf"])
def test_export_runs_where_torch_cannot_be_imported(request, model: str, tmp_path) -> None:
    """A folder (MiniCPM, sparse op included) and a GGUF file export in a process whose `import torch` fails;
    the IR then generates through openvino-genai."""
    import openvino_genai as og

    source, out = request.getfixturevalue(model), tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", TORCH_BLOCKED, str(source), str(out), "--weight-format", "int4"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "torch stayed blocked" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"] == "streaming" and manifest["validation"]["passed"]
    assert "torch" not in manifest["tools"] and "optimum-intel" not in manifest["tools"]
    if manifest.get("sparse_attention"):
        pytest.skip("sparse IRs run on the engine's own loop, covered by test_sparse_export")
    text = og.LLMPipeline(str(out), "CPU").generate("The capital of France is", max_new_tokens=8, do_sample=False)
    assert text.strip()


def test_ratio_and_awq_store_the_same_bits_as_nncf(tiny_llama, tmp_path) -> None:
    """--ratio picks the same weights for int8 as NNCF's data-free rule; data-free AWQ scales the same weights."""
    from export.exporter import ExportRequest, run_export
    from export.settings import Quantization

    quant = Quantization(weight_format="int4", group_size=64, ratio=0.6, sym=True, awq=True)
    stored = {}
    for backend in ("streaming", "optimum"):
        run_export(ExportRequest(str(tiny_llama), tmp_path / backend, quant, backend=backend))
        stored[backend] = compressed_constants(tmp_path / backend)
    int8 = sum(n for (kind, shape, _), n in stored["streaming"].items() if kind == "u8" and len(shape) == 2)
    int4 = sum(n for (kind, _, _), n in stored["streaming"].items() if kind == "i4")
    assert int8 >= 2 and int4 >= 2  # some layers kept in int8 by the ratio, the rest in int4
    shared = sum((stored["streaming"] & stored["optimum"]).values())
    assert shared >= 0.9 * sum(stored["optimum"].values()), (stored["streaming"], stored["optimum"])


def test_streaming_rejects_what_only_optimum_can_do(tiny_llama, tmp_path) -> None:
    from export.errors import ExportError
    from export.exporter import ExportRequest, run_export
    from export.settings import Quantization

    quant = Quantization(scale_estimation=True, dataset="auto")
    with pytest.raises(ExportError, match="--backend optimum"):
        run_export(ExportRequest(str(tiny_llama), tmp_path / "out", quant))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ExportError, match="streaming backend only"):  # and the other way round
        run_export(ExportRequest(str(tiny_llama), tmp_path / "out", Quantization(int4_head=True), backend="optimum"))
    assert not (tmp_path / "out").exists()


def test_numpy_reference_matches_the_pytorch_reference(tiny_minicpm, tmp_path) -> None:
    """Both references share export/model_spec.py's muP scalars and rotary table; their logits agree."""
    torch = pytest.importorskip("torch")
    from export.minicpm_reference import load_reference
    from export.numpy_reference import NumpyReference
    from export.streaming import open_model

    model = open_model(tiny_minicpm, "minicpm", tmp_path)
    prompts = [[1, 73441, 3060, 5, 15934, 73440, 5, 73441], [1, 400, 401, 402, 7000, 12, 13, 14, 15, 16, 17]]
    got = NumpyReference(model.spec, model.reader).logits(prompts)
    reference = load_reference(tiny_minicpm)
    with torch.no_grad():
        for ids, logits in zip(prompts, got, strict=True):
            want = reference(torch.tensor([ids]))[0].numpy()
            assert np.abs(logits - want).max() < 1e-3 * max(1.0, float(np.abs(want).max()))


def test_sharded_bf16_checkpoint_exports(tmp_path) -> None:
    """A MiniCPM checkpoint in bf16 split over several safetensors shards with an index streams and validates."""
    from export.exporter import ExportRequest, run_export
    from export.settings import Quantization
    from tests.conftest import needs_shared
    from tests.model_builders import MINICPM_CONFIG_DIR, write_random_minicpm

    needs_shared()
    config = json.loads((MINICPM_CONFIG_DIR / "config.json").read_text())
    config.update(hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1,
                  num_hidden_layers=2, tie_word_embeddings=False)
    params = write_random_minicpm(tmp_path / "src", config, shard_bytes=8 << 20)
    assert len(list((tmp_path / "src").glob("*.safetensors"))) >= 3
    manifest = run_export(ExportRequest(str(tmp_path / "src"), tmp_path / "out", Quantization(weight_format="int8"),
                                        sparse_attention=False))
    assert manifest["validation"]["passed"] and manifest["architecture"]["param_count"] == params


def test_large_irs_are_validated_a_range_of_layers_at_a_time(tiny_minicpm, exported) -> None:
    """Cutting the saved IR at each layer's named output and running the slices one after another gives the
    logits of the whole IR (validation of a large model never compiles all of it at once)."""
    import openvino as ov
    from transformers import AutoTokenizer

    from export.layer_ranges import VALIDATION_PROPERTIES, layer_count, layer_ranges, prefill, ranged_logits
    from export.mapped_ir import compiled_ir

    folder = exported(tiny_minicpm, "int4")
    xml = folder / "openvino_model.xml"
    layers = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
    assert layer_count(xml) == layers >= 2
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompts = [list(tokenizer(prompt)["input_ids"]) for prompt in PROMPTS]
    whole, one = ranged_logits(ov.Core(), xml, prompts, properties=EXACT_F32)
    sliced, count = ranged_logits(ov.Core(), xml, prompts, budget=1, properties=EXACT_F32)
    assert (one, count) == (1, layers)
    assert max(float(np.abs(a - b).max()) for a, b in zip(whole, sliced, strict=True)) < 1e-5
    assert [(len(ids), 73448) for ids in prompts] == [w.shape for w in whole]
    # slices take prompts through the KV cache 256 tokens per request (bounded activations): as one request
    longest = max(prompts, key=len)
    assert len(longest) > 2 * 256
    with compiled_ir(ov.Core(), xml, properties={**VALIDATION_PROPERTIES, **EXACT_F32}) as compiled:
        chunked = prefill(compiled, longest, chunk=256)
        del compiled
    assert float(np.abs(chunked[0] - whole[prompts.index(longest)]).max()) < 1e-5
    # the plan the exporter uses for an 8B-shaped IR (4.5 GB, 32 layers): contiguous slices of ~1 GiB
    plan = layer_ranges(32, 4_540_000_000)
    assert plan[0][0] == 0 and plan[-1][1] == 32 and all(a[1] == b[0] for a, b in itertools.pairwise(plan))
    assert len(plan) == 5


def test_placeholder_save_writes_every_constant_s_own_bytes(tmp_path) -> None:
    """The graph's large constants are placeholders that read as zeros; save_ir still writes the real bytes,
    each constant at its own place even when two hold equal values, small constants included."""
    import openvino as ov
    import openvino.opset13 as ops

    from export.constant_store import ConstantStore

    rng = np.random.default_rng(0)
    wanted = {"a": rng.standard_normal((64, 32)).astype(np.float32), "tiny": np.array([3.0, 4.0], np.float32)}
    wanted["b"] = wanted["a"].copy()  # equal values: must still get (and keep) their own bytes
    store = ConstantStore(tmp_path / "scratch", 1 << 20)
    x = ops.parameter([1, 32], ov.Type.f32, name="x")
    outputs = []
    for name, array in wanted.items():
        node = store.store(array, name)
        if name != "tiny":
            assert not np.array_equal(node.get_data(), array)  # a placeholder, not the weights
        outputs.append(ops.result(ops.matmul(x, node, False, True) if array.ndim == 2 else node))
    graph = ov.Model(outputs, [x], "placeholders")
    store.save_ir(graph, tmp_path / "m.xml")
    del graph, node, outputs
    store.close()
    saved = {node.get_friendly_name(): node.get_data() for node in ov.Core().read_model(tmp_path / "m.xml").get_ops()
             if node.get_type_name() == "Constant"}
    for name, array in wanted.items():
        assert np.array_equal(saved[name], array), name


def test_int4_head_compresses_the_head_and_keeps_the_lookup_in_int8(tiny_llama, tmp_path) -> None:
    """--int4-head: the LM head is stored in int4 while the embedding lookup keeps its int8 table (a tied
    embedding gets its own int4 head copy), and the export passes its validation."""
    from export.exporter import ExportRequest, run_export
    from export.manifest import read_manifest
    from export.settings import Quantization

    out = tmp_path / "head4"
    run_export(ExportRequest(str(tiny_llama), out, Quantization(weight_format="int4", group_size=64, sym=True,
                                                                int4_head=True)))
    manifest = read_manifest(out)
    assert manifest["quantization"]["int4_head"] and manifest["validation"]["passed"]
    vocab = json.loads((out / "config.json").read_text())["vocab_size"]
    vocab_tables = Counter(kind for kind, shape, _ in compressed_constants(out)
                           if shape[0] == vocab and shape[-1] > 1)  # codes, not the [vocab, 1] zero points
    assert vocab_tables["i4"] == 1 and vocab_tables["u8"] == 1, vocab_tables  # the head, the lookup
