"""Whether the desktop window can start here, and if not, what is missing, in one line: no X11/Wayland display,
or the system libraries Qt's xcb platform plugin needs (named as the Debian/Ubuntu packages that hold them).
Checked before Qt is started, because Qt aborts the process when no platform plugin loads."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_NOT_FOUND = re.compile(r"^\s*(\S+) => not found", re.MULTILINE)


def display_problem() -> str | None:
    """None when a window can open; else one line naming what is missing."""
    if sys.platform in ("win32", "darwin"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith(("xcb", "wayland")):
        return None  # a platform that needs no display server (offscreen, vnc, eglfs…), chosen explicitly
    wayland, x11 = os.environ.get("WAYLAND_DISPLAY"), os.environ.get("DISPLAY")
    if platform.startswith("wayland") or (not platform and wayland and not x11):
        return None if wayland else "no Wayland display (WAYLAND_DISPLAY is not set)"
    if not x11:
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    missing = missing_xcb_libraries()
    if missing:
        packages = sorted({debian_package(name) for name in missing})
        return (f"Qt's xcb plugin needs {', '.join(missing)}; install them with: "
                f"sudo apt install {' '.join(packages)}")
    if not _x_server_reachable(x11):
        return f"cannot reach the X display {x11}"
    return None


def missing_xcb_libraries() -> list[str]:
    """Shared libraries the xcb platform plugin (and Qt's xcb library) link to that the system lacks."""
    try:
        import PySide6
    except ImportError:
        return []
    qt = Path(PySide6.__file__).parent / "Qt"
    files = [qt / "plugins" / "platforms" / "libqxcb.so", *sorted((qt / "lib").glob("libQt6XcbQpa.so*"))[:1]]
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    missing: list[str] = []
    for file in (f for f in files if f.is_file()):
        try:
            output = subprocess.run([ldd, str(file)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError) as err:
            log.warning("could not check %s's libraries: %s", file.name, err)
            continue
        missing += _NOT_FOUND.findall(output)
    return list(dict.fromkeys(missing))  # in order, once each


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package of a library: libxcb-cursor.so.0 -> libxcb-cursor0, libGL.so.1 -> libgl1."""
    match = re.match(r"(lib[\w+.-]*?)\.so\.(\d+)", soname)
    if not match:
        return soname
    name, major = match.group(1).lower(), match.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def _x_server_reachable(display: str) -> bool:
    """A local X display (`:N`) has its socket; a remote one (`host:N`, ssh forwarding) is taken as reachable."""
    host, _, number = display.rpartition(":")
    if host and host != "unix":
        return True
    path = f"/tmp/.X11-unix/X{number.split('.')[0]}"
    if not os.path.exists(path):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            probe.connect(path)
        return True
    except OSError:
        return False
