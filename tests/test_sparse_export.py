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
    assert resolve_config(model, None) == SparseAttentionConfig()
    assert resolve_config(None, None) is None and resolve_config(model, False) is None
    assert resolve_config(None, True) == SparseAttentionConfig()
    assert resolve_config(model, {"variant": "minicpm4.1"}).lse == "coarse"
