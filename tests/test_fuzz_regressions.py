"""Inputs the fuzzers (bench/fuzz/, atheris) found crashing or hanging the document extractors and the model-file
readers, kept as files under tests/data/fuzz/, and the cases behind each fix written out: every one must end in the
reader's own one-line error (DocumentError, ExportError), quickly and without allocating what a header claims."""

from __future__ import annotations

import json
import math
import shutil
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from app.docs.extract import extract, read_text
from app.docs.formats import DocumentError
from export.errors import CorruptWeightsError, ExportError
from export.gguf_header import check_gguf_header
from export.gguf_source import write_tokenizer
from export.tensor_reader import GGUFTensorReader, SafetensorsReader, read_safetensors_header, read_tensor

FOUND = Path(__file__).parent / "data" / "fuzz"


def _read_model(path: Path, work: Path) -> None:
    """What the model-file fuzz harness does: open the reader, read tensors as the exporter does, and for a GGUF
    with a byte-level BPE vocabulary rebuild its tokenizer."""
    if path.suffix == ".safetensors":
        folder = work / "model"
        folder.mkdir()
        shutil.copy(path, folder / "model.safetensors")
        reader = SafetensorsReader(folder)
    else:
        reader = GGUFTensorReader(path)
    for name in reader.names()[:8]:
        shape = reader.shape(name)
        if math.prod(shape) <= 4096:
            read_tensor(reader, name)
        else:
            reader.rows(name, 0, min(shape[0], 2))
    if path.suffix == ".gguf":
        write_tokenizer(path, work / "tokenizer")


@pytest.mark.parametrize("name", sorted(p.name for p in FOUND.glob("*") if p.suffix in (".pdf", ".txt", ".html")))
def test_found_documents_give_text_or_the_reason(name: str) -> None:
    """Each crashed the extractor (pypdf's LimitReachedError, a UnicodeDecodeError, the HTML parser's
    AssertionError); now it reads or is refused."""
    try:
        assert extract(FOUND / name).blocks
    except DocumentError as err:
        assert str(err) and "\n" not in str(err)


@pytest.mark.parametrize("name", sorted(p.name for p in FOUND.glob("*.pdf")))
def test_found_pdfs_are_refused_as_damaged(name: str) -> None:
    with pytest.raises(DocumentError, match="the PDF is damaged"):
        extract(FOUND / name)


@pytest.mark.parametrize("name", sorted(p.name for p in FOUND.glob("*") if p.suffix in (".gguf", ".safetensors")))
def test_found_model_files_are_refused_with_one_line_quickly(name: str, tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ExportError) as caught:  # the fuzzer's inputs hit TypeError, ValueError, a 30 s hang...
        _read_model(FOUND / name, tmp_path)
    assert time.monotonic() - start < 5
    assert "re-download" in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_marked_sections_in_html_are_skipped_not_fatal(tmp_path: Path) -> None:
    """Python's HTMLParser (before 3.13) raises AssertionError on `<![foo …>`; Word's `<![if …]>` and CDATA too
    must keep the text around them."""
    path = tmp_path / "page.html"
    path.write_text("<h1>Ferry</h1><p>Leaves<![es aript> at 07:15<![if !supportLists]>.<![endif]></p>"
                    "<p>Pier <![CDATA[x]]>4</p>", encoding="utf-8")
    blocks = extract(path).blocks
    assert [(b.heading, b.text) for b in blocks] == [("Ferry", "Leaves at 07:15."), ("Ferry", "Pier 4")]
    assert extract(FOUND / "html-unknown-marked-section.html").blocks


def test_a_cut_off_utf16_file_keeps_its_text(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("The ferry leaves at 07:15 from pier 4.".encode("utf-16") + b"\x0a")  # an odd trailing byte
    assert read_text(path).startswith("The ferry leaves at 07:15 from pier 4.")
    assert extract(path).blocks[0].text.startswith("The ferry leaves")


# safetensors


def _safetensors(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_a_safetensors_header_claiming_a_10_tb_tensor_is_refused_without_allocating(tmp_path: Path) -> None:
    terabytes = 10 * 2**40
    entry = {"dtype": "F32", "shape": [terabytes // 4 // 4096, 4096], "data_offsets": [0, terabytes]}
    file = _safetensors(tmp_path / "model.safetensors", {"w": entry}, bytes(16))
    tracemalloc.start()
    try:
        with pytest.raises(CorruptWeightsError, match="data offsets outside the file"):
            read_safetensors_header(file)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize(("header", "message"), [
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, "needs 16 bytes"),  # offsets and shape disagree
    ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, "no valid shape"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, "offsets outside"),
    ({"w": ["F32"]}, "lacks its dtype"),
    (["not", "a", "header"], "not a JSON object"),
])
def test_mangled_safetensors_entries_are_refused(tmp_path: Path, header, message: str) -> None:
    with pytest.raises(CorruptWeightsError, match=message):
        read_safetensors_header(_safetensors(tmp_path / "model.safetensors", header, bytes(8)))


def test_a_0d_safetensors_tensor_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    _safetensors(folder / "model.safetensors", {"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}},
                 np.float32(2.5).tobytes())
    assert read_tensor(SafetensorsReader(folder), "s") == np.float32(2.5)


# GGUF


def _gguf(path: Path, *, head_count: int | None = 2, q_rows: int = 32, rope_freqs: int | None = None,
          eos: int = 3) -> Path:
    """A small, valid llama GGUF with a byte-level BPE vocabulary; the options break one thing at a time."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_embedding_length(32)
    writer.add_feed_forward_length(64)
    if head_count is not None:
        writer.add_head_count(head_count)
    writer.add_context_length(128)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["a", "b", "ab", "<|end|>"])
    writer.add_token_types([1, 1, 1, 3])
    writer.add_token_merges(["a b"])
    writer.add_eos_token_id(eos)
    rng = np.random.default_rng(0)
    writer.add_tensor("token_embd.weight", rng.standard_normal((4, 32)).astype(np.float32))
    writer.add_tensor("blk.0.attn_q.weight", rng.standard_normal((q_rows, 32)).astype(np.float32))
    if rope_freqs is not None:
        writer.add_tensor("rope_freqs.weight", np.ones(rope_freqs, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_small_gguf_reads(tmp_path: Path) -> None:
    """The builder's file is valid: each broken variant below fails for its one reason."""
    path = _gguf(tmp_path / "ok.gguf", rope_freqs=8)
    _read_model(path, tmp_path)
    assert GGUFTensorReader(path).config["num_attention_heads"] == 2
    assert json.loads((tmp_path / "tokenizer" / "tokenizer_config.json").read_text())["eos_token"] == "<|end|>"


def _raw_gguf(kv: bytes, kv_count: int, tensors: bytes = b"", tensor_count: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, tensor_count, kv_count) + kv + tensors


def _string(text: str) -> bytes:
    return struct.pack("<Q", len(text)) + text.encode()


def test_a_gguf_tensor_claiming_10_tb_is_refused_without_allocating(tmp_path: Path) -> None:
    kv = _string("general.architecture") + struct.pack("<I", 8) + _string("llama")
    tensor = _string("token_embd.weight") + struct.pack("<IQQIQ", 2, 2**20, 2**20 * 10 // 4, 0, 0)  # 10 TiB of f32
    path = tmp_path / "huge.gguf"
    path.write_bytes(_raw_gguf(kv, 1, tensor, 1) + bytes(64))
    tracemalloc.start()
    try:
        with pytest.raises(CorruptWeightsError, match="past the end"):
            GGUFTensorReader(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_gguf_array_claiming_2_to_the_60_strings_is_refused_at_once(tmp_path: Path) -> None:
    kv = _string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**60) + _string("a") * 4
    path = tmp_path / "count.gguf"
    path.write_bytes(_raw_gguf(kv, 1))
    start = time.monotonic()
    with pytest.raises(CorruptWeightsError, match="more than the file holds"):
        check_gguf_header(path)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize(("options", "message"), [
    ({"head_count": None}, "llama.attention.head_count is missing"),
    ({"q_rows": 24}, "not whole heads of 16"),
    ({"rope_freqs": 5}, "rope_freqs.weight has 5 values for rotary size 16"),
    ({"eos": 99}, "eos_token_id 99 is not a token of the 4-token vocabulary"),
])
def test_gguf_metadata_that_does_not_hold_together_is_refused(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(CorruptWeightsError, match=message):
        _read_model(_gguf(tmp_path / "bad.gguf", **options), tmp_path)


def test_gguf_signature_and_version_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(b"GGML" + bytes(40))
    with pytest.raises(CorruptWeightsError, match="no GGUF signature"):
        check_gguf_header(path)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 7, 0, 0))
    with pytest.raises(CorruptWeightsError, match="version 7"):
        check_gguf_header(path)
