"""Build the custom-op library with CMake against the `openvino` wheel's developer files; cached by source hash.

`python -m ov_ops.build` (what `make ov-ops` runs) prints the library's path. Needs cmake and a C++17 compiler
(Debian: `apt-get install cmake g++`); nothing is downloaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent
LIBRARY = "libcpmdesk_ov_ops.so"


class OpsBuildError(RuntimeError):
    """The library could not be built; the message says what to install or fix."""


def source_digest() -> str:
    """Hash of the sources, the CMake file and the OpenVINO version the library is built against."""
    import openvino

    digest = hashlib.sha1(openvino.__version__.encode())
    sources = sorted(p for p in (SOURCE / "src").iterdir() if p.suffix in (".cpp", ".hpp"))
    for path in [SOURCE / "CMakeLists.txt", *sources]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def library_path(build: bool = True) -> Path:
    """The built library for the current sources; built first when missing (unless build=False).
    CPMDESK_OV_OPS_LIBRARY names a prebuilt one instead (a packaged app, or a build for another -march)."""
    override = os.environ.get("CPMDESK_OV_OPS_LIBRARY")
    if override:
        if not Path(override).is_file():
            raise OpsBuildError(f"CPMDESK_OV_OPS_LIBRARY={override} does not exist")
        return Path(override)
    path = SOURCE / "build" / source_digest() / LIBRARY
    if path.is_file():
        return path
    if not build:
        raise OpsBuildError(f"The cpmdesk op library is not built ({path} is missing); run `make ov-ops`")
    return build_library()


def build_library() -> Path:
    """Configure and build into ov_ops/build/<digest>/ (atomic; concurrent callers wait for one build)."""
    import openvino.utils

    cmake = shutil.which("cmake")
    if cmake is None:
        raise OpsBuildError("cmake is not installed; install cmake and g++ (Debian: apt-get install cmake g++)")
    root = SOURCE / "build"
    root.mkdir(exist_ok=True)
    final = root / source_digest()
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / LIBRARY).is_file():
            return final / LIBRARY
        work = root / f".partial-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        steps = [[cmake, "-S", str(SOURCE), "-B", str(work), *generator, "-DCMAKE_BUILD_TYPE=Release",
                  f"-DOpenVINO_DIR={openvino.utils.get_cmake_path()}"],
                 [cmake, "--build", str(work), "--parallel"]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
                raise OpsBuildError(f"Building the cpmdesk op library failed ({' '.join(step[:2])}):\n{tail}")
        shutil.rmtree(final, ignore_errors=True)
        final.mkdir()
        shutil.copy2(work / LIBRARY, final / LIBRARY)
        shutil.rmtree(work, ignore_errors=True)
    return final / LIBRARY


if __name__ == "__main__":
    try:
        print(library_path())
    except OpsBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from err
