"""manifest.json: what an export folder holds and how it was made. Torch-free: the app reads it too."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
_TOOLS = ("cpmdesk", "openvino", "openvino-tokenizers", "openvino-genai", "optimum-intel", "optimum", "nncf",
          "transformers", "torch", "tokenizers", "huggingface_hub", "gguf")


_OPTIMUM_ONLY = ("optimum-intel", "optimum", "torch")


def tool_versions(backend: str = "optimum") -> dict[str, str]:
    """Installed versions of the tools an export through `backend` depends on."""
    versions = {}
    for name in _TOOLS:
        if backend != "optimum" and name in _OPTIMUM_ONLY:
            continue
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def folder_sizes(folder: Path) -> dict:
    """Bytes per file and in total."""
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    return {"files": files, "total_bytes": sum(files.values()),
            "weights_bytes": files.get("openvino_model.bin", 0)}


def write_manifest(folder: Path, manifest: dict) -> Path:
    """Write manifest.json atomically (temp file, fsync, rename)."""
    path = folder / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump({"format_version": FORMAT_VERSION, **manifest}, handle, indent=2, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def read_manifest(folder: Path) -> dict | None:
    """The manifest of an export folder, or None when there is none or it is unreadable."""
    try:
        return json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
