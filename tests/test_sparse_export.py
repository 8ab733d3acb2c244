"""Sparse attention end to end: the export pass, its manifest entry, and generation through the app's engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.engine import ChatEngine, Conversation, GenerationSettings
from app.engine.speculative import DraftConfig
from export.sparse_attention import OP_TYPE, add_to_export_folder, parse_sparse_option
from ov_ops.sparse_config import SparseAttentionConfig
from tests.conftest import EXPORTS

pytestmark = pytest.mark.slow

# 16-token blocks: sparse from 32 tokens on. With top-k 64 every block of a prompt below ~1000 tokens is
# selected, so the sparse code path runs and must reproduce dense attention.
COVERING = {"dense_len": 32, "block_size": 16, "kernel_size": 8, "kernel_stride": 4, "window_size": 32, "topk": 64}
# The same sizes with a budget of 1 init + 2 top-k + 2 local blocks: really sparse past 80 tokens.
TIGHT = {**COVERING, "topk": 2}
GREEDY = GenerationSettings(max_new_tokens=24)
SHORT_PROMPT = "Tell me about the weather today."
LONG_PROMPT = ("Here is a story about a small village by the sea, its fishermen, its market and the old lighthouse "
               "that guided the boats home every night through fog and storm. ") * 3 + "What happened next?"


@pytest.fixture(scope="module")
def dense_export(tiny_minicpm, exported) -> Path:
    return exported(tiny_minicpm, "int4")


@pytest.fixture(scope="module")
def sparse_export(tiny_minicpm) -> Path:
    """A full `cpmdesk-export --sparse-attention CONFIG` of the tiny MiniCPM4 (cached)."""
    from export.cli import main

    out = EXPORTS / f"{tiny_minicpm.name}-int4-infllm"
    manifest = out / "manifest.json"
    if manifest.is_file():
        recorded = json.loads(manifest.read_text())
        if (recorded["source"]["path"] == str(tiny_minicpm.resolve())
                and recorded.get("sparse_attention", {}).get("config") == SparseAttentionConfig(**COVERING).to_dict()
                and recorded["architecture"].get("attention") == "infllm-v2"
                and recorded.get("backend") == "streaming"):
            return out
    out.parent.mkdir(parents=True, exist_ok=True)  # the CLI refuses an OUT whose folder does not exist
    assert main([str(tiny_minicpm), str(out), "--weight-format", "int4", "--force",
                 "--sparse-attention", json.dumps(COVERING)]) == 0
    return out


def test_sparse_verification_steps_give_bit_for_bit_the_logits_of_one_token_steps(sparse_export) -> None:
    # The assisted loop runs sparse models too: past dense_len, with more blocks than topk picks, a several-token
    # step and the rewinds after rejected tokens must still give exactly what one-token steps give.
    from tests.test_speculative import _logits_one_by_one_and_verified

    config = json.loads((sparse_export / "manifest.json").read_text())["sparse_attention"]["config"]
    prompt = (config["topk"] + 8) * config["block_size"]
    assert prompt > config["dense_len"]
    one, verified = _logits_one_by_one_and_verified(sparse_export / "openvino_model.xml", seed=5, prompt=prompt)
    assert one.shape == verified.shape and float(abs(one - verified).max()) == 0.0


def test_export_replaces_every_attention_and_records_the_config(sparse_export, tiny_minicpm) -> None:
    import openvino as ov

    from ov_ops.build import library_path

    manifest = json.loads((sparse_export / "manifest.json").read_text())
    layers = json.loads((tiny_minicpm / "config.json").read_text())["num_hidden_layers"]
    entry = manifest["sparse_attention"]
    assert entry["op"] == OP_TYPE and entry["layers"] == layers
    assert manifest["architecture"]["attention"] == "infllm-v2"
    assert entry["config"] == {**SparseAttentionConfig().to_dict(), **COVERING, "lse": "exact"}
    core = ov.Core()
    core.add_extension(str(library_path()))
    model = core.read_model(sparse_export / "openvino_model.xml")
    types = [n.get_type_name() for n in model.get_ordered_ops()]
    assert types.count(OP_TYPE) == layers
    assert types.count("ScaledDotProductAttention") == 1  # the tiny marker that keeps the CPU plugin's LLM mode
    assert [v.info.variable_id for v in model.get_variables()] == ["cpmdesk_llm_marker"]
    attrs = next(n for n in model.get_ordered_ops() if n.get_type_name() == OP_TYPE).get_attributes()
    assert attrs["block_size"] == 16 and attrs["topk"] == 64 and attrs["variant"] == "minicpm4"


def test_same_tokens_as_dense_through_the_engine(dense_export, sparse_export) -> None:
    # sparse exports answer through the engine's own loop: the dense export through the same loop, for equal logits
    dense = ChatEngine(dense_export, draft=DraftConfig(enabled=False, exact=True))
    sparse = ChatEngine(sparse_export)
    for prompt in (SHORT_PROMPT, LONG_PROMPT):
        want = dense.send(Conversation(), prompt, GREEDY)
        got = sparse.send(Conversation(), prompt, GREEDY)
        assert got.prompt_tokens + got.num_tokens > COVERING["dense_len"]  # the sparse path (block selection) ran
        assert (got.answer, got.num_tokens) == (want.answer, want.num_tokens)


def test_below_dense_len_equals_dense_and_tight_budget_regenerates_the_same(dense_export, tmp_path) -> None:
    below = tmp_path / "below"
    shutil.copytree(dense_export, below)
    add_to_export_folder(below, SparseAttentionConfig(dense_len=4096))
    dense, engine = ChatEngine(dense_export, draft=DraftConfig(enabled=False, exact=True)), ChatEngine(below)
    want = dense.send(Conversation(), LONG_PROMPT, GREEDY)
    assert engine.send(Conversation(), LONG_PROMPT, GREEDY).answer == want.answer

    tight = tmp_path / "tight"
    shutil.copytree(dense_export, tight)
    add_to_export_folder(tight, SparseAttentionConfig(**TIGHT))
    engine = ChatEngine(tight)
    first = engine.send(Conversation(), LONG_PROMPT, GREEDY)
    assert first.prompt_tokens > 100 and first.num_tokens > 0
    engine.send(Conversation(), SHORT_PROMPT, GREEDY)  # another sequence in between: the op's cache restarts
    again = engine.send(Conversation(), LONG_PROMPT, GREEDY)
    assert (again.answer, again.num_tokens) == (first.answer, first.num_tokens)


def test_sparse_option_parsing(tmp_path) -> None:
    from export.errors import ExportError

    assert parse_sparse_option(None) is None and parse_sparse_option("") is True
    assert parse_sparse_option('{"variant": "minicpm4.1"}') == {"variant": "minicpm4.1"}
    config = tmp_path / "sparse.json"
    config.write_text('{"dense_len": 4096}')
    assert parse_sparse_option(str(config)) == {"dense_len": 4096}
    with pytest.raises(ExportError, match="not JSON and no such file"):
        parse_sparse_option("nope.json")
    with pytest.raises(ExportError, match="invalid JSON"):
        parse_sparse_option("{variant: 1}")
    with pytest.raises(ExportError, match=r"unknown sparse-attention setting.*top_k"):
        parse_sparse_option('{"top_k": 8}')


def test_on_by_default_only_for_models_with_sparse_config() -> None:
    from export.sparse_attention import resolve_config

    model = {"kernel_size": 32, "kernel_stride": 16, "init_blocks": 1, "block_size": 64, "window_size": 2048,
             "topk": 64, "use_nope": False, "dense_len": 8192}  # MiniCPM4's README sparse_config
    minicpm4 = {"_name_or_path": "openbmb/MiniCPM4-8B"}
    assert resolve_config(model, None, minicpm4) == SparseAttentionConfig()
    assert resolve_config(None, None, minicpm4) is None and resolve_config(model, False, minicpm4) is None
    assert resolve_config(None, True, minicpm4) == SparseAttentionConfig()
    assert resolve_config(model, {"variant": "minicpm4.1"}, minicpm4).lse == "coarse"


def _minicpm41_config(config: dict) -> dict:
    """A MiniCPM config marked as 4.1 the way the real one is: 64K pre-training length, no model name."""
    rope = {**config["rope_scaling"], "original_max_position_embeddings": 65536}
    return {**{k: v for k, v in config.items() if k != "_name_or_path"}, "max_position_embeddings": 65536,
            "rope_scaling": rope}


def test_variant_follows_the_model_and_is_required_when_it_cannot_be_told(tiny_minicpm) -> None:
    from export.sparse_attention import infer_variant, resolve_config
    from ov_ops.sparse_config import SparseConfigError

    base = json.loads((tiny_minicpm / "config.json").read_text())
    assert infer_variant(base) == "minicpm4"  # the real MiniCPM4-0.5B config, scaled down
    assert infer_variant(_minicpm41_config(base)) == "minicpm4.1"
    assert infer_variant({**base, "_name_or_path": "openbmb/MiniCPM4.1-8B"}) == "minicpm4.1"
    unnamed = {k: v for k, v in base.items() if k not in ("_name_or_path", "rope_scaling")}
    unknown = {**unnamed, "max_position_embeddings": 4096}
    assert infer_variant(unknown) is None
    assert resolve_config(None, True, _minicpm41_config(base)).variant == "minicpm4.1"
    assert resolve_config(None, {"variant": "minicpm4"}, _minicpm41_config(base)).variant == "minicpm4"  # explicit wins
    with pytest.raises(SparseConfigError, match=r"MiniCPM4 or MiniCPM4\.1.*variant"):
        resolve_config(None, True, unknown)


def _variant_source(tiny_minicpm: Path, folder: Path, config: dict) -> Path:
    folder.mkdir()
    for file in tiny_minicpm.iterdir():
        if file.name != "config.json":
            (folder / file.name).symlink_to(file)
    (folder / "config.json").write_text(json.dumps({**config, "sparse_config": COVERING}))
    return folder


def test_minicpm41_config_exports_with_its_own_selection_rule(tiny_minicpm, tmp_path) -> None:
    import openvino as ov

    from export.exporter import ExportRequest, run_export  # in-process cli.main would block optimum for later tests
    from export.settings import Quantization
    from ov_ops.build import library_path

    base = json.loads((tiny_minicpm / "config.json").read_text())
    source = _variant_source(tiny_minicpm, tmp_path / "minicpm41", _minicpm41_config(base))
    out = tmp_path / "out"
    run_export(ExportRequest(str(source), out, Quantization(weight_format="int8")))  # sparse_config in config: on
    entry = json.loads((out / "manifest.json").read_text())["sparse_attention"]
    assert entry["config"]["variant"] == "minicpm4.1" and entry["config"]["lse"] == "coarse"
    core = ov.Core()
    core.add_extension(str(library_path()))
    ops = [n for n in core.read_model(out / "openvino_model.xml").get_ordered_ops() if n.get_type_name() == OP_TYPE]
    assert ops and {n.get_attributes()["variant"] for n in ops} == {"minicpm4.1"}
    assert {n.get_attributes()["lse"] for n in ops} == {"coarse"}


def test_unrecognisable_minicpm_is_refused_before_converting(tiny_minicpm, tmp_path) -> None:
    from export.errors import ExportError
    from export.exporter import ExportRequest, run_export

    base = json.loads((tiny_minicpm / "config.json").read_text())
    config = {k: v for k, v in base.items() if k not in ("_name_or_path", "rope_scaling")}
    source = _variant_source(tiny_minicpm, tmp_path / "unknown", {**config, "max_position_embeddings": 4096})
    logged: list[str] = []
    with pytest.raises(ExportError) as info:
        run_export(ExportRequest(str(source), tmp_path / "out"), log=logged.append)
    message = str(info.value)
    assert "\n" not in message and "MiniCPM4 or MiniCPM4.1" in message and "--sparse-attention" in message
    assert not any(line.startswith("[2/5]") for line in logged)  # before any model work
    assert not (tmp_path / "out").exists()
