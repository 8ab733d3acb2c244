"""/v1/embeddings on the documents' embedding model (app/docs/embedder.py), loaded on first use."""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any

import numpy as np

from app.docs.embedder import EMBEDDING_MODEL_NAME, Embedder, EmbedderError, installed_embedding_model, load_embedder
from app.server.protocol import RequestError
from export.manifest import read_manifest

MAX_INPUTS = 2048
log = logging.getLogger(__name__)


class EmbeddingService:
    """The embedding model and its tokenizer (for usage counts), loaded once, on the first request."""

    def __init__(self, device: str = "CPU") -> None:
        self.device = device
        self._embedder: Embedder | None = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str | None:
        """The model's name when it is installed (None: not built yet)."""
        folder = installed_embedding_model()
        return folder.name if folder is not None else None

    def _load(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                import openvino_genai as og

                embedder = load_embedder(self.device, log=log.info)
                self._tokenizer = og.Tokenizer(str(embedder.folder))
                self._embedder = embedder
            return self._embedder

    def embed(self, body: Any) -> dict:
        """Answer an embeddings request body (blocking: run it off the event loop)."""
        texts, encoding = parse_embedding_request(body)
        try:
            embedder = self._load()
        except EmbedderError as err:
            raise RequestError(f"The embedding model is not available: {err}", "model", "model_not_available",
                               status=503, kind="server_error") from err
        vectors = embedder.embed(texts)
        # the tokens embedded: the embedder cuts texts at the manifest's max_length, as counted here
        limit = int((read_manifest(embedder.folder) or {}).get("embedding", {}).get("max_length", 256))
        mask = np.asarray(self._tokenizer.encode(texts, max_length=limit, truncation=True).attention_mask.data)
        tokens = int(mask.sum())
        data = [{"object": "embedding", "index": i, "embedding": _encode(vector, encoding)}
                for i, vector in enumerate(vectors)]
        return {"object": "list", "data": data, "model": embedder.name or EMBEDDING_MODEL_NAME,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def parse_embedding_request(body: Any) -> tuple[list[str], str]:
    """The texts to embed and the encoding ("float" or "base64"); RequestError when malformed."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object")
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise RequestError("input must be a string or a non-empty list of strings (token arrays are not "
                           "supported)", "input")
    if len(texts) > MAX_INPUTS:
        raise RequestError(f"input has {len(texts)} texts; at most {MAX_INPUTS} per request", "input")
    if any(not t for t in texts):
        raise RequestError("input has an empty string", "input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise RequestError('encoding_format must be "float" or "base64"', "encoding_format")
    if body.get("dimensions") is not None:
        raise RequestError("dimensions is not supported: the model's vectors have one size", "dimensions",
                           "unsupported_parameter")
    return texts, encoding


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
