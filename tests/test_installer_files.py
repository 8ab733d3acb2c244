"""Desktop integration files: the menu entry, the per-user Linux installer, the Inno Setup script, resources."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.export_runner import export_command
from app.resources import is_bundled, resource_path

REPO = Path(__file__).resolve().parents[1]
INSTALLER = REPO / "installer"


def test_resources_are_found_in_the_source_tree() -> None:
    assert not is_bundled()
    assert resource_path("i18n", "cpmdesk_zh_CN.qm").is_file()
    assert resource_path("cpmdesk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert resource_path("cpmdesk.svg").read_text().lstrip().startswith("<svg")


def test_desktop_entry_launches_the_app_with_its_icon() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(INSTALLER / "cpmdesk.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Exec"] == "cpmdesk" and desktop["Icon"] == "cpmdesk"
    assert desktop["Terminal"] == "false"


def test_inno_setup_script_points_at_the_bundle_and_the_icon() -> None:
    script = (INSTALLER / "cpmdesk.iss").read_text()
    assert re.search(r'Source: "\.\.\\dist\\cpmdesk\\\*"', script)
    assert (REPO / "resources" / "cpmdesk.ico").is_file() and "cpmdesk.ico" in script
    assert "PrivilegesRequired=lowest" in script


def test_linux_install_and_uninstall_for_the_user(tmp_path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "cpmdesk").write_text("#!/bin/sh\necho cpmdesk-bundle \"$@\"\n")
    (bundle / "cpmdesk").chmod(0o755)
    home = tmp_path / "home"
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    subprocess.run(["sh", str(INSTALLER / "install-linux.sh"), str(bundle)], check=True, env=env,
                   capture_output=True)
    data = home / ".local" / "share"
    entry = (data / "applications" / "cpmdesk.desktop").read_text()
    exe = data / "cpmdesk-app" / "cpmdesk"
    assert f"Exec={exe}\n" in entry
    assert subprocess.run([str(home / ".local" / "bin" / "cpmdesk"), "ask"], capture_output=True,
                          text=True).stdout.strip() == "cpmdesk-bundle ask"
    assert (data / "icons" / "hicolor" / "256x256" / "apps" / "cpmdesk.png").is_file()
    (data / "cpmdesk").mkdir()
    (data / "cpmdesk" / "chats.sqlite3").write_text("the user's chats")
    subprocess.run(["sh", str(INSTALLER / "install-linux.sh"), "--uninstall"], check=True, env=env,
                   capture_output=True)
    assert not exe.exists() and not (data / "applications" / "cpmdesk.desktop").exists()
    assert (data / "cpmdesk" / "chats.sqlite3").read_text() == "the user's chats"


def test_linux_install_without_a_bundle_says_how_to_build_it(tmp_path) -> None:
    result = subprocess.run(["sh", str(INSTALLER / "install-linux.sh"), str(tmp_path / "none")], capture_output=True,
                            text=True, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert result.returncode == 2 and "make bundle" in result.stderr


def test_export_command_runs_this_interpreter_or_the_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """From source: `python -m export …`; inside the bundle (sys.frozen): its own executable, `cpmdesk export …`."""
    source, out = Path("model.gguf"), Path("out")
    assert export_command(source, out, "--sym") == [sys.executable, "-m", "export", "model.gguf", "out", "--force",
                                                    "--sym"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert export_command(source, out) == [sys.executable, "export", "model.gguf", "out", "--force"]


def test_cpmdesk_export_is_the_exporter(tmp_path: Path) -> None:
    """`python -m app export …` (the bundle's `cpmdesk export …`) is cpmdesk-export, outside the app's own parser."""
    shown = subprocess.run([sys.executable, "-m", "app", "export", "--help"], capture_output=True, text=True,
                           timeout=120, cwd=REPO)
    assert shown.returncode == 0 and "--weight-format" in shown.stdout and "--backend" in shown.stdout
    refused = subprocess.run([sys.executable, "-m", "app", "export", str(tmp_path / "absent"), str(tmp_path / "out"),
                              "--group-size", "3"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert refused.returncode == 2 and "--group-size 3" in refused.stderr
    assert not (tmp_path / "out").exists()
