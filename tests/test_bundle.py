"""The double-click bundle (PyInstaller, one folder): built once per source state, then run like a user would."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from installer.build import build_bundle, executable, sources_key
from tests.conftest import CACHE

pytestmark = pytest.mark.slow
PACKAGES = ("openvino", "openvino-genai", "openvino-tokenizers", "PySide6-Essentials", "pyinstaller")


def _bundle_key(model: Path) -> str:
    digest = hashlib.sha1(sources_key().encode())
    digest.update(" ".join(f"{p}={version(p)}" for p in PACKAGES).encode())
    digest.update((model / "manifest.json").read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def bundle(default_model: Path) -> Path:
    """The bundle's executable, cached in .cache/bundle-<key> (key: sources, package versions, default model)."""
    root = CACHE / f"bundle-{_bundle_key(default_model)}"
    if not (root / ".complete").is_file():
        for old in CACHE.glob("bundle-*"):  # one bundle is ~0.5 GB: keep only the current one
            if re.fullmatch(r"bundle-[0-9a-f]{12}", old.name):
                shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        build_bundle(root / "dist", default_model, root / "work")
        shutil.rmtree(root / "work", ignore_errors=True)
        (root / ".complete").write_text("ok")
    return executable(root / "dist")


def _user_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no venv, no PYTHONPATH, an empty home and data folder."""
    (tmp_path / "home").mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "CPMDESK_DATA_DIR": str(tmp_path / "data"),
            "QT_QPA_PLATFORM": "offscreen", **extra}


def test_bundle_has_the_runtime_and_no_torch(bundle: Path, default_model: Path) -> None:
    internal = bundle.parent / "_internal"
    names = {p.name for p in internal.rglob("*")}
    for heavy in ("torch", "transformers", "optimum", "nncf", "torchvision"):
        assert heavy not in names, f"{heavy} is in the bundle"
    assert not [n for n in names if n.startswith("libtorch")]
    libs = internal / "openvino" / "libs"
    assert (libs / "libopenvino_intel_cpu_plugin.so").is_file() and list(libs.glob("libopenvino_ir_frontend.so*"))
    assert (internal / "openvino_tokenizers" / "lib" / "libopenvino_tokenizers.so").is_file()
    assert (internal / "PySide6" / "Qt" / "plugins" / "platforms" / "libqoffscreen.so").is_file()
    assert (internal / "resources" / "i18n" / "cpmdesk_zh_CN.qm").is_file()
    assert (internal / "resources" / "cpmdesk.png").is_file()
    shipped = internal / "bundled-models" / default_model.name
    assert (shipped / "manifest.json").read_bytes() == (default_model / "manifest.json").read_bytes()


def test_bundled_app_answers_headless_and_offline(bundle: Path, tmp_path: Path) -> None:
    """An empty data folder and no network (a fresh network namespace): the shipped default model answers."""
    command = [str(bundle), "ask", "What is the capital of France?", "--max-new-tokens", "40"]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"]).returncode == 0:
        command = ["unshare", "-rn", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=_user_env(tmp_path),
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Paris" in result.stdout
    assert not (tmp_path / "data" / "models").exists() or not any((tmp_path / "data" / "models").iterdir())


def test_bundled_window_starts_offscreen(bundle: Path, tmp_path: Path) -> None:
    """The double-click path: the window opens (Qt platform plugin found), takes the data folder, stays up."""
    env = _user_env(tmp_path, DISPLAY=":cpmdesk-test")
    app = subprocess.Popen([str(bundle)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    lock = tmp_path / "data" / "cpmdesk.lock"
    try:
        deadline = time.monotonic() + 120
        while not (lock.is_file() and lock.read_text().strip() == str(app.pid)):
            assert app.poll() is None, app.communicate()
            assert time.monotonic() < deadline, "the window did not start"
            time.sleep(0.2)
        time.sleep(3)
        assert app.poll() is None, app.communicate()
        second = subprocess.run([str(bundle)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "already running" in second.stderr
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(30)
    assert (tmp_path / "data" / "chats.sqlite3").is_file()


def test_bundle_size_is_reasonable(bundle: Path) -> None:
    size = sum(p.stat().st_size for p in bundle.parent.rglob("*") if p.is_file() and not p.is_symlink())
    assert size < 700 * 2**20, f"the bundle is {size / 2**20:.0f} MiB"
    assert os.access(bundle, os.X_OK)
