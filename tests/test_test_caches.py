"""The tests' own machinery: cached artefacts keyed by the code that built them, and degraded runs reported."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests import conftest

REPO = Path(__file__).resolve().parents[1]


def _tree(root: Path) -> None:
    for name, text in {"export/streaming.py": "a = 1\n", "export/errors.py": "b = 2\n", "ov_ops/src/op.cpp": "int x;",
                       "ov_ops/CMakeLists.txt": "project(x)", "app/gui/window.py": "w = 0\n",
                       "tests/model_builders.py": "steps = 300\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "export" / "__pycache__").mkdir()
    (root / "export" / "__pycache__" / "streaming.cpython-311.pyc").write_bytes(b"\x00")


def test_the_export_key_changes_with_any_exporter_or_op_source_and_nothing_else(tmp_path) -> None:
    _tree(tmp_path)

    def key() -> str:
        return conftest.code_key(conftest.EXPORTER_SOURCES, (), root=tmp_path)

    first = key()
    (tmp_path / "app/gui/window.py").write_text("w = 1\n")  # not the exporter's code
    (tmp_path / "export/__pycache__/streaming.cpython-311.pyc").write_bytes(b"\x01")
    assert key() == first
    for name in ("export/streaming.py", "ov_ops/src/op.cpp", "ov_ops/CMakeLists.txt"):
        before = key()
        (tmp_path / name).write_text((tmp_path / name).read_text() + " ")
        assert key() != before, name
    (tmp_path / "export/new_module.py").write_text("")  # a new file counts too
    assert key() != first
    assert conftest.code_key((), ("numpy",), root=tmp_path) != conftest.code_key((), ("openvino",), root=tmp_path)


def test_the_real_keys_cover_the_exporter_the_op_library_and_the_model_builders() -> None:
    exporter = {str(p.relative_to(REPO)) for p in conftest.source_files(conftest.EXPORTER_SOURCES)}
    assert {"export/streaming.py", "export/tensor_reader.py", "ov_ops/build.py", "ov_ops/CMakeLists.txt"} <= exporter
    assert any(name.startswith("ov_ops/src/") and name.endswith(".cpp") for name in exporter)
    assert not any(name.startswith(("app/", "tests/", "ov_ops/build/")) for name in exporter)
    assert [str(p.relative_to(REPO)) for p in conftest.source_files(conftest.BUILDER_SOURCES)] == \
        ["tests/model_builders.py"]
    # the cached folders the fixtures use are the keyed ones
    assert conftest.MODELS.name == conftest.MODEL_KEY and conftest.EXPORTS.name == conftest.EXPORT_KEY
    assert conftest.code_key(conftest.BUILDER_SOURCES, conftest.BUILDER_PACKAGES) == conftest.MODEL_KEY
    assert conftest.code_key(conftest.EXPORTER_SOURCES, conftest.EXPORTER_PACKAGES,
                                                    conftest.MODEL_KEY) == conftest.EXPORT_KEY


def test_keyed_cache_deletes_only_stale_keyed_folders(tmp_path) -> None:
    old = time.time() - 10 * 24 * 3600
    stale, recent, other = tmp_path / "0123456789ab", tmp_path / "ba9876543210", tmp_path / "tiny-llama-v4"
    for folder in (stale, recent, other):
        folder.mkdir()
        (folder / "file").write_text("x")
    for folder in (stale, other):
        os.utime(folder, (old, old))
    current = conftest.keyed_cache(tmp_path, "aaaaaaaaaaaa")
    assert current == tmp_path / "aaaaaaaaaaaa" and current.is_dir()
    assert not stale.exists() and recent.is_dir() and other.is_dir()  # other names (older layouts) are left alone
    os.utime(current, (old, old))
    conftest.keyed_cache(tmp_path, "aaaaaaaaaaaa")  # in use: its time is renewed, so it is not stale
    assert time.time() - current.stat().st_mtime < 60


def test_a_degraded_run_is_reported_in_the_summary(tmp_path) -> None:
    """A test that runs without its network namespace says so in pytest's summary, as does a skip its reason."""
    (tmp_path / "conftest.py").write_text("from tests.degraded import no_network, pytest_terminal_summary  # noqa\n")
    (tmp_path / "test_sample.py").write_text(
        "import pytest\nfrom tests.degraded import degraded\n\n"
        "def test_offline_thing(request):\n    degraded(request, 'ran WITH the network on: no user namespaces')\n\n"
        "def test_fine(no_network):\n    assert no_network in ([], ['unshare', '-rn'])\n\n"
        "def test_skipped():\n    pytest.skip('unshare is not installed')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    assert "degraded runs" in out and "DEGRADED test_sample.py::test_offline_thing: ran WITH the network on" in out
    assert "DegradedRunWarning" in out  # pytest's warnings summary too
    assert "SKIPPED [1] test_sample.py:" in out and "unshare is not installed" in out
