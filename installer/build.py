"""Build the one-folder bundle: `python installer/build.py` (what `make bundle` runs) -> dist/cpmdesk/.

The bundle ships the exported default model (SmolLM2-135M int4 IR) read-only, because it has no exporter (no
torch) to build one on first start. The model comes from the data folder (`cpmdesk prepare` builds it there).
It also ships Documents mode's embedding model (all-MiniLM-L6-v2 int8 IR) and the compiled op library that
sparse-attention (InfLLM v2) models need, for the same reason.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def build_bundle(dist: Path, model: Path, work: Path | None = None, embedding_model: Path | None = None,
                 ops_library: Path | None = None) -> Path:
    """Run PyInstaller on the spec; returns the executable. Raises CalledProcessError with its log on failure.
    `embedding_model` (Documents mode) and `ops_library` (sparse-attention models) are shipped when given."""
    work = work or dist.parent / f"{dist.name}-work"
    env = {**os.environ, "CPMDESK_BUNDLE_MODEL": str(model), "PYTHONPATH": str(REPO)}
    if embedding_model is not None:
        env["CPMDESK_BUNDLE_EMBEDDING_MODEL"] = str(embedding_model)
    if ops_library is not None:
        env["CPMDESK_BUNDLE_OPS_LIBRARY"] = str(ops_library)
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", str(dist),
                    "--workpath", str(work), str(SPEC)], check=True, env=env, cwd=REPO)
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
