"""Build the one-folder bundle: `python installer/build.py` (what `make bundle` runs) -> dist/cpmdesk/.

The bundle carries the torch-free exporter: `cpmdesk export SOURCE OUT [options]` is `cpmdesk-export` (streaming
backend: NNCF's weight lowering, openvino-tokenizers, transformers' tokenizers, safetensors, gguf, huggingface_hub),
so the installed app converts Hugging Face folders, hub models and `.gguf` files itself. No torch, torchvision,
optimum or accelerate: the build fails if any of them gets in (`--backend optimum` needs the pip install).
It still ships the exported default model (SmolLM2-135M int4 IR) read-only, so the first start needs no export; it
comes from the data folder (`cpmdesk prepare` builds it there). It also ships Documents mode's embedding model
(all-MiniLM-L6-v2 int8 IR; its export needs optimum) and the compiled op library that sparse-attention (InfLLM v2)
models need, both to run them and to export them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Never in the bundle (the spec excludes them, and the build fails if one gets in).
FORBIDDEN = ("torch", "torchvision", "torchaudio", "optimum", "optimum_intel", "accelerate")
_FORBIDDEN_FILE = re.compile(rf"(?:{'|'.join(FORBIDDEN)})(?:[-.].*)?|lib(?:torch|c10)\b.*", re.IGNORECASE)
SPEC = REPO / "installer" / "cpmdesk.spec"
SOURCES = ("app", "export", "resources", "installer", "ov_ops")
BUILD_OUTPUTS = ("ov_ops/build/",)  # compiled op libraries (the bundle ships the one for the current sources)


def sources_key() -> str:
    """A hash of everything that goes into the bundle from this repository (names and contents)."""
    digest = hashlib.sha1()
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*")):
            name = path.relative_to(REPO).as_posix()
            if path.is_file() and "__pycache__" not in path.parts and not name.startswith(BUILD_OUTPUTS):
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def executable(dist: Path) -> Path:
    """The bundle's executable inside `dist`."""
    return dist / "cpmdesk" / ("cpmdesk.exe" if os.name == "nt" else "cpmdesk")


def forbidden_module(name: str) -> bool:
    """True for a module of a forbidden package (`torch`, `torch.nn`…)."""
    return name.split(".")[0] in FORBIDDEN


def forbidden_path(path: str) -> bool:
    """True for a path (relative to the bundle's `_internal/`) of a forbidden package: under `torch/`, `torch.libs/`
    or `torch-2.1.dist-info/`, or a `libtorch*` / `libc10*` library anywhere."""
    first = Path(path).parts[0] if Path(path).parts else ""
    return bool(_FORBIDDEN_FILE.fullmatch(first)) or Path(path).name.lower().startswith(("libtorch", "libc10"))


def forbidden_files(bundle: Path) -> list[str]:
    """Files and folders under the bundle's `_internal/` that belong to a forbidden package."""
    internal = bundle / "_internal"
    return sorted(p.relative_to(internal).as_posix() for p in internal.rglob("*")
                  if forbidden_path(p.relative_to(internal).as_posix()))


_PATH_FILES = ("manifest.json", "openvino_config.json")  # where exports record source paths (not tokenizer.json!)


def path_free(value):
    """`value` (parsed JSON) with every absolute path replaced by its last part."""
    if isinstance(value, dict):
        return {key: path_free(item) for key, item in value.items()}
    if isinstance(value, list):
        return [path_free(item) for item in value]
    if isinstance(value, str) and (value.startswith("/") or (len(value) > 2 and value[1:3] in (":\\", ":/"))):
        return Path(value.replace("\\", "/")).name
    return value


def portable_model(model: Path, staging: Path) -> Path:
    """A copy of an exported model folder (files hard-linked where possible) whose manifest and
    openvino_config.json name no path of the machine that built it: what the bundle ships."""
    target = staging / model.name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in model.iterdir():
        if path.name in _PATH_FILES:
            data = json.loads(path.read_text(encoding="utf-8"))
            (target / path.name).write_text(json.dumps(path_free(data), indent=2), encoding="utf-8")
        elif path.is_file():
            try:
                os.link(path, target / path.name)
            except OSError:
                shutil.copy2(path, target / path.name)
    return target


def build_bundle(dist: Path, model: Path, work: Path | None = None, embedding_model: Path | None = None,
                 ops_library: Path | None = None) -> Path:
    """Run PyInstaller on the spec; returns the executable. Raises CalledProcessError with its log on failure, and
    RuntimeError when torch (or another forbidden package) is in the result.
    `embedding_model` (Documents mode) and `ops_library` (sparse-attention models) are shipped when given."""
    work = work or dist.parent / f"{dist.name}-work"
    staging = work / "models"
    env = {**os.environ, "CPMDESK_BUNDLE_MODEL": str(portable_model(model, staging)), "PYTHONPATH": str(REPO)}
    if embedding_model is not None:
        env["CPMDESK_BUNDLE_EMBEDDING_MODEL"] = str(portable_model(embedding_model, staging))
    if ops_library is not None:
        env["CPMDESK_BUNDLE_OPS_LIBRARY"] = str(ops_library)
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", str(dist),
                    "--workpath", str(work), str(SPEC)], check=True, env=env, cwd=REPO)
    leaked = forbidden_files(dist / "cpmdesk")
    if leaked:
        raise RuntimeError(f"The bundle must hold no torch, but it has: {', '.join(leaked[:20])}")
    return executable(dist)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist")
    parser.add_argument("--model", type=Path, help="exported default model to ship (default: build/find it)")
    args = parser.parse_args()
    model = args.model
    sys.path.insert(0, str(REPO))
    if model is None:
        from app.default_model import ensure_default_model

        model = ensure_default_model()
    from app.docs.embedder import ensure_embedding_model
    from ov_ops.build import library_path

    exe = build_bundle(args.dist, model, REPO / "build" / "pyinstaller", ensure_embedding_model(), library_path())
    print(exe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
