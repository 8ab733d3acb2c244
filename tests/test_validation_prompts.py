"""Validation compares the IR with its reference on a prompt of more than 1,000 tokens too."""

from __future__ import annotations

import json

import pytest

from export.tokenizer import load_tokenizer
from export.validate import PROMPTS
from tests.conftest import needs_shared
from tests.model_builders import MINICPM_CONFIG_DIR


def test_one_prompt_is_over_1000_tokens(tiny_llama) -> None:
    needs_shared()
    for folder in (MINICPM_CONFIG_DIR, tiny_llama):
        tokenizer = load_tokenizer(folder)
        lengths = [len(tokenizer(prompt)["input_ids"]) for prompt in PROMPTS]
        assert max(lengths) > 1000 and sorted(lengths)[-2] < 100, (folder, lengths)


@pytest.mark.slow
@pytest.mark.parametrize("weight_format", ["int4", "fp16"])
def test_tiny_minicpm_passes_validation_with_the_long_prompt(tiny_minicpm, tmp_path, weight_format) -> None:
    from export.exporter import ExportRequest, run_export
    from export.settings import Quantization

    out = tmp_path / "out"
    manifest = run_export(ExportRequest(str(tiny_minicpm), out, Quantization(weight_format=weight_format)))
    validation = json.loads((out / "manifest.json").read_text())["validation"]
    assert validation == manifest["validation"]
    assert validation["prompts"] == len(PROMPTS) and validation["positions"] > 1000 + 6 * 10
    assert validation["passed"] and validation["tokenizer_match"]
    assert validation["top1_agreement"] >= (0.97 if weight_format == "fp16" else 0.90)  # as test_export_models
