"""Build the custom-op library with CMake against the `openvino` wheel's developer files; cached by source hash.

`python -m ov_ops.build` (what `make ov-ops` runs) prints the library's path. Needs cmake and a C++17 compiler
(Debian: `apt-get install cmake g++`); nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

SOURCE = Path(__file__).resolve().parent
_TARGET = "cpmdesk_ov_ops"  # the CMake target


def library_filename(platform: str | None = None) -> str:
    """The op library's file name on `platform` (a sys.platform value; default: this one), named as the
    platform names loadable modules: cpmdesk_ov_ops.dll, libcpmdesk_ov_ops.dylib, libcpmdesk_ov_ops.so."""
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win32", "cygwin", "msys")):
        return f"{_TARGET}.dll"
    if platform.startswith("darwin"):
        return f"lib{_TARGET}.dylib"
    return f"lib{_TARGET}.so"


LIBRARY = library_filename()


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
    with open(root / ".lock", "w") as lock, exclusive_lock(lock):
        if (final / LIBRARY).is_file():
            return final / LIBRARY
        work = root / f".partial-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        steps = [[cmake, "-S", str(SOURCE), "-B", str(work), *generator, "-DCMAKE_BUILD_TYPE=Release",
                  f"-DOpenVINO_DIR={openvino.utils.get_cmake_path()}"],
                 [cmake, "--build", str(work), "--parallel", "--config", "Release"]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
                raise OpsBuildError(f"Building the cpmdesk op library failed ({' '.join(step[:2])}):\n{tail}")
        built = built_library(work)
        shutil.rmtree(final, ignore_errors=True)
        final.mkdir()
        shutil.copy2(built, final / LIBRARY)
        shutil.rmtree(work, ignore_errors=True)
    return final / LIBRARY


def built_library(work: Path) -> Path:
    """The library CMake wrote under `work`: multi-config generators add a Release/ folder, and CMake names a MODULE
    library per toolchain (macOS: .so); the caller copies it under this platform's name (library_filename())."""
    names = {library_filename(platform) for platform in ("linux", "darwin", "win32")} | {f"lib{_TARGET}.dll"}
    found = sorted((p for p in work.rglob("*") if p.name in names and p.is_file()), key=lambda p: len(p.parts))
    if not found:
        raise OpsBuildError(f"CMake finished but wrote no {library_filename()} under {work}")
    return found[0]


@contextlib.contextmanager
def exclusive_lock(handle: IO) -> Iterator[None]:
    """Hold an exclusive lock on an open file until the block ends (other processes wait): msvcrt.locking on
    Windows, fcntl.flock elsewhere; each module is imported only on its own platform."""
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        while True:
            try:  # LK_LOCK itself gives up after ten one-second tries: a build takes longer
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                break
            except OSError:
                time.sleep(1.0)
        try:
            yield
        finally:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


if __name__ == "__main__":
    try:
        print(library_path())
    except OpsBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from err
