"""Without a usable display the app says in one line what is missing and starts the terminal chat."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.display_check import debian_package, missing_xcb_libraries


@pytest.mark.parametrize("display", [None, ":97"])
def test_no_display_starts_the_terminal_chat(default_model, data_dir, display) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(CPMDESK_DATA_DIR=str(data_dir), QT_QPA_PLATFORM="xcb")
    if display:
        env["DISPLAY"] = display  # no X server there (and, on a bare system, no xcb libraries either)
    result = subprocess.run([sys.executable, "-m", "app"], input="", capture_output=True, text=True, timeout=300,
                            env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("No desktop window:")]
    assert len(lines) == 1, result.stderr
    missing = missing_xcb_libraries()
    if display is None:
        assert "DISPLAY" in lines[0]
    elif missing:
        assert all(debian_package(name) in lines[0] for name in missing), lines[0]
    else:
        assert ":97" in lines[0]
    assert "cpmdesk chat on" in result.stderr, "the terminal chat started"
    assert "could not load the Qt platform plugin" not in result.stderr


def test_package_names_follow_debian() -> None:
    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libGL.so.1") == "libgl1"


@pytest.mark.parametrize("platform", ["offscreen", "minimal", "vnc"])
def test_a_platform_without_a_display_server_needs_none(monkeypatch, platform: str) -> None:
    from app.display_check import display_problem

    monkeypatch.setenv("QT_QPA_PLATFORM", platform)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display_problem() is None
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert "no display" in display_problem()
