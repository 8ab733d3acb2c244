"""The model library and `cpmdesk models`: real conversions in a child process, real generation, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.models.library import add, draft_for, list_models, source_label

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[1]


def _cpmdesk(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CPMDESK_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "app", "models", *args], capture_output=True, text=True,
                          timeout=1200, env=env, cwd=REPO)


def _generates(folder: Path) -> None:
    from app.engine import ChatEngine, Conversation, GenerationSettings

    engine = ChatEngine(folder)
    reply = engine.send(Conversation(), "Hello", GenerationSettings(max_new_tokens=4), None, lambda _d: None,
                        threading.Event())
    assert reply.num_tokens >= 1


def test_models_add_converts_hf_folder_and_gguf_lists_and_removes(tiny_minicpm, smollm2_gguf, embedding_model,
                                                                   tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "models" / embedding_model.name).symlink_to(embedding_model, target_is_directory=True)
    minicpm = f"{tiny_minicpm.name.lower()}-int4"  # the library's name for the converted folder
    for source, name in ((tiny_minicpm, minicpm), (smollm2_gguf, "smollm2-135m-instruct.q4_1-int4")):
        result = _cpmdesk(data, "add", str(source))
        assert result.returncode == 0, result.stderr[-2000:]
        assert "[convert] step 3/5" in result.stderr and "layer " in result.stderr
        _generates(data / "models" / name)
    listing = _cpmdesk(data, "list")
    assert listing.returncode == 0, listing.stderr
    assert minicpm in listing.stdout and "smollm2-135m-instruct.q4_1-int4" in listing.stdout
    assert embedding_model.name not in listing.stdout
    assert str(tmp_path) not in listing.stdout and "/work/" not in listing.stdout  # no machine paths
    removed = _cpmdesk(data, "remove", "--yes", minicpm)
    assert removed.returncode == 0, removed.stderr
    assert not (data / "models" / minicpm).exists()
    assert minicpm not in _cpmdesk(data, "list").stdout


def test_optimum_cli_ir_folder_is_checked_and_given_a_manifest(tiny_minicpm, exported, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CPMDESK_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "minicpm-ov"
    shutil.copytree(exported(tiny_minicpm, "int4", "optimum"), folder)
    (folder / "manifest.json").unlink()
    model = add(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source"] == {"kind": "openvino-ir", "spec": "minicpm-ov", "revision": None, "sha256": None}
    assert manifest["quantization"]["weight_format"] == "int4"
    assert model.origin == "added" and [m.name for m in list_models()] == ["minicpm-ov"]
    _generates(folder)


def test_an_ir_folder_without_detokenizer_is_refused(tiny_minicpm, exported, tmp_path, monkeypatch) -> None:
    from app.models.ir_import import IRFolderError

    monkeypatch.setenv("CPMDESK_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "broken"
    shutil.copytree(exported(tiny_minicpm, "int4", "optimum"), folder)
    (folder / "manifest.json").unlink()
    (folder / "openvino_detokenizer.xml").unlink()
    with pytest.raises(IRFolderError, match=r"openvino_detokenizer\.xml"):
        add(folder)
    assert not (folder / "manifest.json").exists()


def test_draft_for_pairs_a_smaller_model_with_the_same_tokenizer(tiny_minicpm, smollm2_gguf, exported, tmp_path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("CPMDESK_DATA_DIR", str(tmp_path / "data"))
    models = tmp_path / "data" / "models"
    target, small, other = models / "minicpm-big", models / "minicpm-small", models / "smollm-small"
    shutil.copytree(exported(tiny_minicpm, "int4", "streaming"), target)
    shutil.copytree(exported(tiny_minicpm, "int4", "streaming"), small)
    shutil.copytree(exported(smollm2_gguf, "int4", "streaming"), other)
    for folder, params in ((target, 8_000_000_000), (small, 430_000_000)):  # the 8B / 0.5B pair's sizes
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["architecture"]["param_count"] = params
        (folder / "manifest.json").write_text(json.dumps(manifest))
    match = draft_for(target)
    assert match.folder == small and "same tokenizer" in match.reason
    assert draft_for(other).folder is None
    (small / "openvino_tokenizer.bin").write_bytes(b"another tokenizer")
    mismatch = draft_for(target)
    assert mismatch.folder is None and "different tokenizer" in mismatch.reason


def test_source_label_never_shows_a_path() -> None:
    assert source_label({"source": {"kind": "folder", "spec": "/home/builder/models/SmolLM2"}}) == "SmolLM2"
    assert source_label({"source": {"kind": "gguf", "spec": "C:\\build\\m.gguf"}}) == "m.gguf"
    assert source_label({"source": {"kind": "hub", "spec": "openbmb/MiniCPM4-0.5B"}}) == "openbmb/MiniCPM4-0.5B"
