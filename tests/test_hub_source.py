"""The real hub-download path (huggingface_hub.snapshot_download), fed from a local hub cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache_from_folder(folder: Path, cache: Path, repo_id: str) -> None:
    """Lay `folder` out the way huggingface_hub stores a downloaded repo."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / COMMIT, ignore=shutil.ignore_patterns(".complete"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


def test_export_from_hub_id_uses_snapshot_download(tiny_llama, tmp_path) -> None:
    cache = tmp_path / "hub"
    _hub_cache_from_folder(tiny_llama, cache, "cpmdesk-tests/tiny-llama")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "export", "cpmdesk-tests/tiny-llama", str(out),
                             "--weight-format", "int8"], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "hub"
    assert manifest["source"]["spec"] == "cpmdesk-tests/tiny-llama"
    assert manifest["source"]["revision"] == COMMIT
    assert manifest["validation"]["passed"] is True
    assert manifest["quantization"]["weight_format"] == "int8"


def test_unknown_hub_id_offline_is_a_clear_error(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "export", "cpmdesk-tests/absent", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 2
    assert "pass the local folder" in result.stderr
    assert not (tmp_path / "out").exists()
