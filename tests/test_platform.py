"""Windows / macOS: the op library's platform name, a build lock that works without fcntl, and models that load
without the op library (no draft, a clear reason) where it cannot be had."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from app.engine.model_folder import REQUIRED, ModelFolderError
from ov_ops import build

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("platform", "name"), [("win32", "cpmdesk_ov_ops.dll"), ("cygwin", "cpmdesk_ov_ops.dll"),
                                                ("darwin", "libcpmdesk_ov_ops.dylib"),
                                                ("linux", "libcpmdesk_ov_ops.so"),
                                                ("freebsd14", "libcpmdesk_ov_ops.so")])
def test_library_file_name_per_platform(platform: str, name: str) -> None:
    assert build.library_filename(platform) == name


def test_library_name_follows_this_platform_everywhere(monkeypatch, tmp_path) -> None:
    """The build, the bundle's lookup and the engine's lookup all use the one name of this platform."""
    import app.resources

    assert build.library_filename(sys.platform) == build.LIBRARY
    monkeypatch.setattr(app.resources, "_ROOT", tmp_path)
    assert app.resources.bundled_ops_library() == tmp_path / "ov-ops" / build.library_filename()
    hook = (REPO / "installer" / "rthook_openvino.py").read_text()
    assert all(build.library_filename(p) in hook for p in ("linux", "darwin", "win32"))


def test_the_build_module_imports_without_fcntl() -> None:
    """Windows has no fcntl: ov_ops.build (imported by the app, the exporter and the bundle) must not need it."""
    code = ("import sys; sys.modules['fcntl'] = None; import ov_ops.build as b; "
            "print(b.library_filename('win32'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cpmdesk_ov_ops.dll"


def test_the_lock_uses_msvcrt_on_windows(monkeypatch, tmp_path) -> None:
    calls: list[tuple[int, int]] = []
    tries = iter([OSError("busy"), None, None])  # LK_LOCK gives up after ten seconds: the lock keeps trying

    def locking(fd: int, mode: int, nbytes: int) -> None:
        error = next(tries)
        calls.append((mode, nbytes))
        if error is not None:
            raise error

    fake = types.SimpleNamespace(LK_LOCK=1, LK_UNLCK=0, locking=locking)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # importing it would fail, as on Windows
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(build.time, "sleep", lambda seconds: None)
    with open(tmp_path / ".lock", "w") as handle, build.exclusive_lock(handle):
        assert calls == [(1, 1), (1, 1)]
    assert calls[-1] == (0, 1)


def test_the_lock_excludes_another_process(tmp_path) -> None:
    """fcntl elsewhere: while one process holds the build lock another cannot take it."""
    probe = ("import fcntl, sys\nwith open(sys.argv[1], 'w') as f:\n    try:\n"
             "        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    except OSError:\n        sys.exit(3)\n")
    lock = tmp_path / ".lock"
    with open(lock, "w") as handle, build.exclusive_lock(handle):
        held = subprocess.run([sys.executable, "-c", probe, str(lock)], timeout=60)
    free = subprocess.run([sys.executable, "-c", probe, str(lock)], timeout=60)
    assert (held.returncode, free.returncode) == (3, 0)


@pytest.mark.parametrize("layout", [("Release", "cpmdesk_ov_ops.dll"), ("libcpmdesk_ov_ops.so",),
                                    ("sub", "libcpmdesk_ov_ops.dylib")])
def test_the_built_library_is_found_where_each_toolchain_writes_it(tmp_path, layout) -> None:
    built = tmp_path.joinpath(*layout)
    built.parent.mkdir(parents=True, exist_ok=True)
    built.write_bytes(b"lib")
    (tmp_path / "CMakeFiles").mkdir()
    assert build.built_library(tmp_path) == built
    with pytest.raises(build.OpsBuildError, match="wrote no"):
        build.built_library(tmp_path / "CMakeFiles")


@pytest.fixture
def no_op_library(monkeypatch, tmp_path):
    """A system without the op library: no override, no bundle copy, and a source build that fails as on a
    machine without cmake (or a Windows compiler the kernel does not build with)."""
    import app.resources

    monkeypatch.delenv("CPMDESK_OV_OPS_LIBRARY", raising=False)
    monkeypatch.setattr(app.resources, "_ROOT", tmp_path / "no-bundle")

    def library_path(build_it: bool = True) -> Path:
        raise build.OpsBuildError("cmake is not installed; install cmake and g++")

    monkeypatch.setattr(build, "library_path", library_path)


def _model_folder(root: Path, manifest: dict, draft: bool) -> Path:
    folder = root / "model"
    for path in ([folder, folder / "draft"] if draft else [folder]):
        path.mkdir(parents=True)
        for name in REQUIRED:
            (path / name).write_text("x")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_without_the_op_library_a_draft_model_plans_plain_mode_and_says_why(no_op_library, tmp_path,
                                                                             caplog) -> None:
    from app.engine.sparse_attention import OpLibraryMissingError, op_library
    from app.engine.speculative import PLAIN, DraftConfig, plan_draft

    with pytest.raises(OpLibraryMissingError, match="cmake is not installed"):
        op_library()
    folder = _model_folder(tmp_path, {"draft": {"path": "draft", "kind": "standalone"}}, draft=True)
    plan = plan_draft(folder, {"draft": {"path": "draft"}}, DraftConfig(), "CPU")
    assert plan.draft is None and plan.mode_for(False) == PLAIN and plan.mode_for(True) == PLAIN
    assert plan.status(PLAIN) == "draft off: no attention op library on this system"
    assert any("cmake is not installed" in record.getMessage() for record in caplog.records)
    exact = plan_draft(folder, {}, DraftConfig(enabled=False, exact=True), "CPU")  # the benchmark's target alone
    assert exact.mode_for(False) == PLAIN


def test_without_the_op_library_a_sparse_model_is_refused_with_the_fix(no_op_library, tmp_path) -> None:
    from app.engine.speculative import DraftConfig, plan_draft

    manifest = {"sparse_attention": {"op": "InfLLMv2Attention"}}
    folder = _model_folder(tmp_path, manifest, draft=False)
    with pytest.raises(ModelFolderError, match="--no-sparse-attention") as caught:
        plan_draft(folder, manifest, DraftConfig(), "CPU")
    assert "cmake is not installed" in str(caught.value) and "\n" not in str(caught.value)


def test_with_the_op_library_the_draft_stays_on(tmp_path, monkeypatch) -> None:
    """The check does not turn drafts off where the library is there (here: the override names a file)."""
    from app.engine.speculative import ASSISTED, DraftConfig, plan_draft

    library = tmp_path / build.library_filename()
    library.write_bytes(b"lib")
    monkeypatch.setenv("CPMDESK_OV_OPS_LIBRARY", str(library))
    folder = _model_folder(tmp_path, {}, draft=True)
    plan = plan_draft(folder, {"draft": {"path": "draft"}}, DraftConfig(), "CPU")
    assert plan.draft == folder / "draft" and plan.mode_for(False) == ASSISTED and plan.status(ASSISTED) == "draft on"


@pytest.mark.slow
def test_engine_loads_a_draft_model_without_the_op_library_and_answers(no_op_library, tmp_path, default_model,
                                                                       data_dir) -> None:
    """A real export with a draft (the default model as its own draft) on a system without the op library: the
    engine loads it on GenAI's pipeline with the draft off and the reason in its status, and answers."""
    from app.engine.conversation import Conversation
    from app.engine.engine import ChatEngine
    from app.engine.settings import GenerationSettings

    folder = tmp_path / "with-draft"
    folder.mkdir()
    (folder / "draft").mkdir()
    for path in default_model.iterdir():
        if path.is_file():
            os.symlink(path, folder / path.name)
            os.symlink(path, folder / "draft" / path.name)
    manifest = json.loads((default_model / "manifest.json").read_text())
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").write_text(json.dumps({**manifest, "draft": {"path": "draft", "kind": "standalone"}}))
    engine = ChatEngine(folder)
    assert engine.pipeline_mode == "plain"
    assert engine.draft_state == "draft off: no attention op library on this system"
    reply = engine.send(Conversation(), "What is the capital of France?", GenerationSettings(max_new_tokens=8))
    assert reply.num_tokens > 0 and reply.answer and reply.draft is None
