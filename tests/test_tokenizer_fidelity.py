"""The exported OpenVINO tokenizer tokenizes as the model's own SentencePiece model (MiniCPM4's real
tokenizer.model, add_dummy_prefix: false), and a repository's own tokenizer.json is followed when shipped."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from export.tokenizer import load_tokenizer, write_openvino_tokenizers
from tests.conftest import needs_shared
from tests.model_builders import MINICPM_CONFIG_DIR, MINICPM_TOKENIZER_DIR
from tests.tokenizer_strings import fidelity_strings

STRINGS = fidelity_strings(600)


def _sentencepiece_ids(folder: Path):
    """Reference: the SentencePiece model on the text between the added special tokens, which are single ids;
    BOS first when tokenizer_config.json says add_bos_token."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    added = {v["content"]: int(k) for k, v in config["added_tokens_decoder"].items()}
    pattern = re.compile("(" + "|".join(map(re.escape, sorted(added, key=len, reverse=True))) + ")")
    bos = [processor.bos_id()] if config.get("add_bos_token") else []

    def encode(text: str) -> list[int]:
        ids = list(bos)
        for part in pattern.split(text):
            ids += [added[part]] if part in added else processor.encode(part) if part else []
        return ids

    return encode


def _openvino_ids(folder: Path, out: Path):
    import openvino as ov
    import openvino_tokenizers  # noqa: F401 - registers the tokenizer ops

    out.mkdir()
    write_openvino_tokenizers(load_tokenizer(folder), out)
    compiled = ov.Core().compile_model(out / "openvino_tokenizer.xml", "CPU")
    return lambda text: [int(i) for i in compiled([text])["input_ids"][0]]


def _mismatches(got, want) -> list[tuple[str, list[int], list[int]]]:
    return [(text, got(text), want(text)) for text in STRINGS if got(text) != want(text)]


def test_strings_are_varied_and_deterministic() -> None:
    assert len(set(STRINGS)) == len(STRINGS) >= 500 and fidelity_strings(600) == STRINGS
    for needle in ("北京", "def ", "😀", "   ", "<|im_start|>", "3.14159", "Привет"):
        assert any(needle in text for text in STRINGS), needle


def test_exported_tokenizer_equals_the_sentencepiece_model(tmp_path) -> None:
    needs_shared()
    source = tmp_path / "minicpm4"
    shutil.copytree(MINICPM_CONFIG_DIR, source)  # tokenizer.model + tokenizer_config.json, no tokenizer.json
    assert not (source / "tokenizer.json").exists()
    want = _sentencepiece_ids(source)
    got = _openvino_ids(source, tmp_path / "out")
    assert got("Hello")[0] == 1  # BOS, as add_bos_token says
    assert _mismatches(got, want) == []


def test_shipped_tokenizer_json_is_followed(tmp_path) -> None:
    # A tokenizer.json beside tokenizer.model is the repository's word: here one that prepends '▁' always.
    from tokenizers import Tokenizer

    needs_shared()
    source = tmp_path / "with-json"
    shutil.copytree(MINICPM_CONFIG_DIR, source)
    spec = json.loads((MINICPM_TOKENIZER_DIR / "tokenizer.json").read_text())
    spec["pre_tokenizer"]["prepend_scheme"] = "always"
    (source / "tokenizer.json").write_text(json.dumps(spec))
    shipped = Tokenizer.from_file(str(source / "tokenizer.json"))
    got = _openvino_ids(source, tmp_path / "out")
    assert _mismatches(got, lambda text: shipped.encode(text).ids) == []
    assert len(_mismatches(got, _sentencepiece_ids(source))) > 100  # it really differs from tokenizer.model


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["streaming", "optimum"])
def test_export_from_tokenizer_model_only_validates_and_matches(tiny_minicpm, tmp_path, backend) -> None:
    # Through the whole export: tokenizer.model only, validation's tokenizer check included.
    from export.exporter import ExportRequest, run_export
    from export.settings import Quantization

    if backend == "optimum":
        pytest.importorskip("torch")
        pytest.importorskip("optimum.intel")

    source = tmp_path / "src"
    source.mkdir()
    for file in tiny_minicpm.iterdir():
        if file.name not in ("tokenizer.json", "tokenizer_config.json", ".complete"):
            (source / file.name).symlink_to(file)
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy2(MINICPM_CONFIG_DIR / name, source / name)
    manifest = run_export(ExportRequest(str(source), tmp_path / "out", Quantization(weight_format="int8"),
                                        backend=backend))
    assert manifest["validation"]["tokenizer_match"] is True
    import openvino as ov
    import openvino_tokenizers  # noqa: F401

    compiled = ov.Core().compile_model(tmp_path / "out" / "openvino_tokenizer.xml", "CPU")
    want = _sentencepiece_ids(source)
    for text in STRINGS[:100]:
        assert [int(i) for i in compiled([text])["input_ids"][0]] == want(text), text


@pytest.mark.parametrize("text", ["Hello world", "北京"])
def test_transformers_default_would_differ(text) -> None:
    # Guards the premise: without the prefix setting transformers adds '▁' the SentencePiece model does not.
    from transformers import AutoTokenizer

    needs_shared()
    default = AutoTokenizer.from_pretrained(MINICPM_CONFIG_DIR, trust_remote_code=False)
    fixed = load_tokenizer(MINICPM_CONFIG_DIR)
    assert default(text, add_special_tokens=False)["input_ids"] != fixed(text, add_special_tokens=False)["input_ids"]


def test_gguf_text_tokens_are_matched_whole_and_kept_in_decoding(tmp_path) -> None:
    """A GGUF's USER_DEFINED tokens (Qwen2.5's <tool_call>, </tool_call>) encode as one id each, as the model
    writes them, and decode as text; CONTROL tokens stay special (dropped from decoded answers)."""
    import openvino_genai as og
    from tokenizers import pre_tokenizers

    from export.gguf_source import _byte_level_bpe

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [*alphabet, "<tool_call>", "</tool_call>", "<|im_end|>"]
    types = [1] * len(alphabet) + [4, 4, 3]
    folder = tmp_path / "hf"
    folder.mkdir()
    _byte_level_bpe(tokens, types, [], "qwen2").save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>"}))
    out = tmp_path / "ov"
    out.mkdir()
    write_openvino_tokenizers(load_tokenizer(folder), out)
    tokenizer = og.Tokenizer(str(out))
    call, end, im_end = (tokens.index(t) for t in ("<tool_call>", "</tool_call>", "<|im_end|>"))
    ids = tokenizer.encode("<tool_call>x</tool_call>", add_special_tokens=False).input_ids.data[0].tolist()
    assert ids == [call, tokens.index("x"), end]
    assert tokenizer.decode([call, tokens.index("x"), end, im_end]) == "<tool_call>x</tool_call>"
