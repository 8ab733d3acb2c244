"""Every bad input the review found, through the real CLI (`python -m export`): exactly one `error:` line, exit
code 2, no traceback on the terminal, and no output folder or staging folder left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub_server import FakeHub

REPO = Path(__file__).resolve().parent.parent


def run_export_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m export ARGS` with its data folder (and so its log file) in tmp_path/data."""
    full_env = {key: value for key, value in os.environ.items() if key != "CPMDESK_DEBUG"}
    full_env.update(CPMDESK_DATA_DIR=str(tmp_path / "data"), **env)
    return subprocess.run([sys.executable, "-m", "export", *args], capture_output=True, text=True, timeout=300,
                          env=full_env, cwd=REPO)


def assert_one_error(result: subprocess.CompletedProcess, out: Path, *phrases: str) -> str:
    """The failure contract: rc 2, stderr exactly one `error:` line, no traceback anywhere, nothing left at OUT."""
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not any(line.startswith("error:") for line in result.stdout.splitlines()), result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert not out.exists(), f"{out} was left behind"
    if out.parent.is_dir():
        assert not list(out.parent.glob(f".{out.name}.partial-*")), "a staging folder was left behind"
    return lines[0]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".complete"))
    return dst


@pytest.mark.parametrize(("options", "phrases"), [
    (["--group-size", "0"], ["--group-size 0", "even number"]),
    (["--group-size", "-5"], ["--group-size -5"]),
    (["--ratio", "5"], ["--ratio 5.0", "at most 1"]),
    (["--ratio", "0"], ["--ratio 0.0"]),
    (["--draft", "x", "--draft-group-size", "3"], ["--draft-group-size 3"]),
    (["--draft-vocab", "-1"], ["--draft-vocab -1"]),
])
def test_out_of_range_options(tiny_llama, tmp_path, options, phrases) -> None:
    out = tmp_path / "out"
    result = run_export_cli(tmp_path, str(tiny_llama), str(out), *options)
    assert_one_error(result, out, *phrases)
    assert "[1/5]" not in result.stdout, "the model was read before the options were checked"


def test_out_whose_parent_does_not_exist(tiny_llama, tmp_path) -> None:
    out = tmp_path / "missing" / "deeper" / "out"
    result = run_export_cli(tmp_path, str(tiny_llama), str(out))
    assert_one_error(result, out, str(tmp_path / "missing" / "deeper"), "does not exist")
    assert not (tmp_path / "missing").exists(), "the CLI created OUT's parents"
    assert "[1/5]" not in result.stdout


def test_out_whose_parent_is_a_file(tiny_llama, tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "out"
    assert_one_error(run_export_cli(tmp_path, str(tiny_llama), str(out)), out, "is not a folder")


def test_out_that_is_a_file(tiny_llama, tmp_path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("mine")
    result = run_export_cli(tmp_path, str(tiny_llama), str(out))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "is a file" in result.stderr
    assert out.read_text() == "mine"


@pytest.mark.parametrize("index", [
    '{"weight_map": [1, 2',  # not JSON
    '{"weight_map": 5}',  # not a mapping
    '["model.safetensors"]',  # not an object
    '{"weight_map": {"a": 5}}',  # a shard that is not a name
    '{"weight_map": {"a": "model.safetensors", "b": ["x"]}}',  # unhashable shard name
    '{"weight_map": {"a": "../model.safetensors"}}',  # a path out of the folder
    '{"metadata": {}}',  # no weight_map
])
def test_malformed_shard_index(tiny_llama, tmp_path, index) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    (src / "model.safetensors.index.json").write_text(index)
    out = tmp_path / "out"
    assert_one_error(run_export_cli(tmp_path, str(src), str(out)), out, "model.safetensors.index.json",
                     "malformed", "re-download")


def test_shard_index_that_is_not_utf8(tiny_llama, tmp_path) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    (src / "model.safetensors.index.json").write_bytes(b'{"weight_map": {"\xff\xfe": 1}}')
    out = tmp_path / "out"
    assert_one_error(run_export_cli(tmp_path, str(src), str(out)), out, "model.safetensors.index.json", "malformed")


@pytest.mark.parametrize(("config", "phrase"), [
    (b'{"model_type": "llama",', "not valid JSON"),
    (b"[1, 2, 3]", "JSON list"),
    (b'{"model_type": "\xff"}', "not valid JSON"),
])
def test_unreadable_model_config(tiny_llama, tmp_path, config, phrase) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    (src / "config.json").write_bytes(config)
    out = tmp_path / "out"
    assert_one_error(run_export_cli(tmp_path, str(src), str(out)), out, "config.json", phrase)


def _embedding_source(folder: Path) -> Path:
    """A folder that passes the embedding task's first checks: BERT config and a WordPiece vocabulary."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    return folder


@pytest.mark.parametrize(("name", "content", "phrase"), [
    ("config.json", b'{"model_type": "bert"', "not valid JSON"),
    ("config.json", b'"bert"', "JSON str"),
    ("config.json", b"\xff\xfe\x00", "not valid JSON"),
    ("sentence_bert_config.json", b"{max_seq_length: 256}", "not valid JSON"),
    ("sentence_bert_config.json", b'{"max_seq_length": "long"}', "max_seq_length"),
])
def test_unreadable_embedding_config(tmp_path, name, content, phrase) -> None:
    pytest.importorskip("optimum.intel", reason="--task embedding needs optimum-intel (pip install 'cpmdesk[export]')")
    src = _embedding_source(tmp_path / "encoder")
    (src / name).write_bytes(content)
    out = tmp_path / "out"
    result = run_export_cli(tmp_path, str(src), str(out), "--task", "embedding")
    assert_one_error(result, out, name, phrase)
    assert "[1/3]" not in result.stdout, "the conversion started before the config was read"


def test_embedding_config_that_is_a_folder(tmp_path) -> None:
    pytest.importorskip("optimum.intel", reason="--task embedding needs optimum-intel (pip install 'cpmdesk[export]')")
    src = _embedding_source(tmp_path / "encoder")
    (src / "sentence_bert_config.json").mkdir()
    out = tmp_path / "out"
    assert_one_error(run_export_cli(tmp_path, str(src), str(out), "--task", "embedding"), out,
                     "sentence_bert_config.json", "cannot be read")


@pytest.mark.parametrize(("status", "body", "phrases"), [
    (500, b'{"error": "Internal Error"}', ["HTTP 500", "try again later"]),
    (503, b"", ["HTTP 503"]),
    (200, b"<html>not json", ["Downloading cpmdesk-tests/tiny", "try again later"]),  # a proxy's page
    (200, b'{"siblings": 5}', ["Downloading cpmdesk-tests/tiny"]),  # JSON without the fields the hub client reads
])
def test_hub_errors(tmp_path, status, body, phrases) -> None:
    out = tmp_path / "out"
    with FakeHub({}, broken=(status, body)) as hub:
        result = run_export_cli(tmp_path, "cpmdesk-tests/tiny", str(out), HF_ENDPOINT=hub.url,
                                HF_HUB_CACHE=str(tmp_path / "hub-cache"), HF_HUB_OFFLINE="0")
    assert_one_error(result, out, *phrases)


def _truncated_gguf(gguf: Path, into: Path, size: int) -> Path:
    with gguf.open("rb") as handle:
        into.write_bytes(handle.read(size))
    return into


@pytest.mark.parametrize("kind", ["garbage", "header-only", "truncated"])
def test_corrupt_gguf_draft(tiny_llama, smollm2_gguf, tmp_path, kind) -> None:
    draft = tmp_path / "draft.gguf"
    if kind == "garbage":
        draft.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + os.urandom(200))
    elif kind == "header-only":
        _truncated_gguf(smollm2_gguf, draft, 24)
    else:
        _truncated_gguf(smollm2_gguf, draft, 1 << 20)  # metadata intact, tensors cut off
    out = tmp_path / "out"
    result = run_export_cli(tmp_path, str(tiny_llama), str(out), "--draft", str(draft))
    assert_one_error(result, out, "draft.gguf", "re-download")
    assert "[2/5]" not in result.stdout, "the target was converted before the draft was checked"


def test_corrupt_gguf_target_with_a_draft(tiny_llama, tmp_path) -> None:
    target = tmp_path / "target.gguf"
    target.write_bytes(b"GGUF" + b"\x00" * 100)
    out = tmp_path / "out"
    assert_one_error(run_export_cli(tmp_path, str(target), str(out), "--draft", str(tiny_llama)), out,
                     "target.gguf", "not a readable GGUF")
