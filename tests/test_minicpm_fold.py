"""The MiniCPM → Llama fold is exact: the folded checkpoint in transformers equals MiniCPM's own math."""

from __future__ import annotations

import json

import pytest
import torch

from export.minicpm import fold_to_llama, logit_scale, residual_scale
from export.minicpm_reference import MiniCPMReference, load_reference
from tests.conftest import needs_shared
from tests.model_builders import _write_minicpm_folder, scaled_minicpm_config


@pytest.fixture(scope="module")
def random_minicpm(tmp_path_factory):
    needs_shared()
    torch.manual_seed(1)
    config = scaled_minicpm_config(hidden=128, layers=2, heads=2, kv_heads=1, intermediate=256)
    model = MiniCPMReference(config)
    for param in model.parameters():
        torch.nn.init.normal_(param, std=0.05)
    folder = tmp_path_factory.mktemp("minicpm-random")
    _write_minicpm_folder(folder, config, model.state_dict())
    return folder


def test_scales_follow_the_published_formulas() -> None:
    config = {"scale_depth": 1.4, "num_hidden_layers": 24, "dim_model_base": 256, "hidden_size": 1024}
    assert residual_scale(config) == pytest.approx(0.2857738, abs=1e-7)  # spec §2, MiniCPM4-0.5B
    assert logit_scale(config) == pytest.approx(0.25)


def test_folded_llama_matches_minicpm_reference(random_minicpm, tmp_path) -> None:
    from transformers import LlamaForCausalLM

    folded = tmp_path / "folded"
    fold_to_llama(random_minicpm, folded, torch.float32)
    llama = LlamaForCausalLM.from_pretrained(folded, dtype=torch.float32).eval()
    reference = load_reference(random_minicpm)
    ids = torch.randint(0, 73448, (1, 300), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = reference(ids)
        got = llama(ids).logits
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), float((got - want).abs().max())
    assert (got.argmax(-1) == want.argmax(-1)).all()
    config = json.loads((folded / "config.json").read_text())
    assert config["tie_word_embeddings"] is False  # embed and head are scaled differently


def test_fold_changes_only_the_scaled_tensors(random_minicpm, tmp_path) -> None:
    from safetensors.torch import load_file

    folded_dir = tmp_path / "folded"
    fold_to_llama(random_minicpm, folded_dir, torch.float32)
    original = load_file(str(random_minicpm / "model.safetensors"))
    folded = load_file(str(folded_dir / "model.safetensors"))
    config = json.loads((random_minicpm / "config.json").read_text())
    q_proj = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(folded[q_proj], original[q_proj])
    assert torch.allclose(folded["model.embed_tokens.weight"], original["model.embed_tokens.weight"] * 12)
    assert torch.allclose(folded["model.layers.1.mlp.down_proj.weight"],
                          original["model.layers.1.mlp.down_proj.weight"] * residual_scale(config))
    assert torch.allclose(folded["lm_head.weight"], original["model.embed_tokens.weight"] * logit_scale(config))


def test_longrope_list_is_fixed_per_config_when_short_and_long_differ(tmp_path) -> None:
    # Upstream MiniCPM (like vLLM and llama.cpp) picks one list from the config: long iff max > original. The
    # folded Llama must use it at every length, also below `original`, where a per-call switch would pick short.
    from transformers import LlamaForCausalLM

    from export.minicpm import rope_parameters

    needs_shared()
    torch.manual_seed(2)
    config = scaled_minicpm_config(hidden=128, layers=2, heads=2, kv_heads=1, intermediate=256)
    short = config["rope_scaling"]["short_factor"]
    long = [f * (1 + 4 * i / len(short)) for i, f in enumerate(short)]
    config["max_position_embeddings"] = 4 * config["rope_scaling"]["original_max_position_embeddings"]
    config["rope_scaling"] = {**config["rope_scaling"], "long_factor": long}
    params = rope_parameters(config)
    assert params["short_factor"] == params["long_factor"] == pytest.approx(long)
    model = MiniCPMReference(config)
    for param in model.parameters():
        torch.nn.init.normal_(param, std=0.05)
    source, folded = tmp_path / "src", tmp_path / "folded"
    _write_minicpm_folder(source, config, model.state_dict())
    fold_to_llama(source, folded, torch.float32)
    llama = LlamaForCausalLM.from_pretrained(folded, dtype=torch.float32).eval()
    ids = torch.randint(0, 73448, (1, 200), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = load_reference(source)(ids), llama(ids).logits
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), float((got - want).abs().max())
