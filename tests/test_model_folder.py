"""The engine refuses folders that are not complete cpmdesk exports, with a clear reason."""

from __future__ import annotations

import shutil

import pytest

from app.engine import ModelFolderError, check_model_folder

pytestmark = pytest.mark.slow


def test_accepts_an_export(tiny_llama, exported) -> None:
    manifest = check_model_folder(exported(tiny_llama, "int4"))
    assert manifest["quantization"]["weight_format"] == "int4"


def test_rejects_a_folder_that_is_not_an_export(tiny_llama) -> None:
    with pytest.raises(ModelFolderError, match="not a cpmdesk export"):
        check_model_folder(tiny_llama)


def test_rejects_a_missing_folder(tmp_path) -> None:
    with pytest.raises(ModelFolderError, match="does not exist"):
        check_model_folder(tmp_path / "gone")


def test_rejects_a_truncated_ir(tiny_llama, exported, tmp_path) -> None:
    copy = shutil.copytree(exported(tiny_llama, "int4"), tmp_path / "copy")
    weights = copy / "openvino_model.bin"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelFolderError, match="truncated"):
        check_model_folder(copy)


def test_rejects_a_missing_tokenizer(tiny_llama, exported, tmp_path) -> None:
    copy = shutil.copytree(exported(tiny_llama, "int4"), tmp_path / "copy")
    (copy / "openvino_tokenizer.xml").unlink()
    with pytest.raises(ModelFolderError, match=r"openvino_tokenizer\.xml"):
        check_model_folder(copy)
