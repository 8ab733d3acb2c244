"""Build the one-folder bundle: `python installer/build.py` (what `make bundle` runs) -> dist/cpmdesk/.

The bundle ships the exported default model (SmolLM2-135M int4 IR) read-only, because it has no exporter (no
torch) to build one on first start. The model comes from the data folder (`cpmdesk prepare` builds it there).
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
SOURCES = ("app", "export", "resources", "installer")


def sources_key() -> str:
    """A hash of everything that goes into the bundle from this repository (names and contents)."""
    digest = hashlib.sha1()
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def executable(dist: Path) -> Path:
    """The bundle's executable inside `dist`."""
    return dist / "cpmdesk" / ("cpmdesk.exe" if os.name == "nt" else "cpmdesk")


def build_bundle(dist: Path, model: Path, work: Path | None = None) -> Path:
    """Run PyInstaller on the spec; returns the executable. Raises CalledProcessError with its log on failure."""
    work = work or dist.parent / f"{dist.name}-work"
    env = {**os.environ, "CPMDESK_BUNDLE_MODEL": str(model), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", str(dist),
                    "--workpath", str(work), str(SPEC)], check=True, env=env, cwd=REPO)
    return executable(dist)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist")
    parser.add_argument("--model", type=Path, help="exported default model to ship (default: build/find it)")
    args = parser.parse_args()
    model = args.model
    if model is None:
        sys.path.insert(0, str(REPO))
        from app.default_model import ensure_default_model

        model = ensure_default_model()
    exe = build_bundle(args.dist, model, REPO / "build" / "pyinstaller")
    print(exe)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
