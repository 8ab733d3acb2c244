"""The log files in the data folder: tracebacks land there and not on the terminal, the files rotate, and prompts
and answers stay out unless CPMDESK_LOG_CONTENT=1."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from export.log_file import BACKUP_COUNT, MAX_BYTES, log_dir, setup_logging, stop_logging
from tests.test_export_cli_errors import run_export_cli

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    """A data folder of its own for this test; the logging set up in this process is removed afterwards."""
    folder = tmp_path / "data"
    monkeypatch.setenv("CPMDESK_DATA_DIR", str(folder))
    monkeypatch.delenv("CPMDESK_DEBUG", raising=False)
    yield folder
    stop_logging()


def _broken_config_source(tiny_llama: Path, into: Path) -> Path:
    """A model whose hidden_size is not a number: no check names it, so the export fails unexpectedly."""
    shutil.copytree(tiny_llama, into, ignore=shutil.ignore_patterns(".complete"))
    config = json.loads((into / "config.json").read_text())
    (into / "config.json").write_text(json.dumps({**config, "hidden_size": "wide"}))
    return into


def test_unexpected_export_failure_keeps_its_traceback_in_the_log_file(tiny_llama, tmp_path) -> None:
    src, out = _broken_config_source(tiny_llama, tmp_path / "src"), tmp_path / "out"
    result = run_export_cli(tmp_path, str(src), str(out))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    log_file = tmp_path / "data" / "logs" / "cpmdesk-export.log"
    assert len(lines) == 1 and lines[0].startswith("error: the export failed unexpectedly (ValueError"), lines
    assert str(log_file) in lines[0], "the error line says where the details are"
    assert "Traceback" not in result.stdout + result.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))
    logged = log_file.read_text(encoding="utf-8")
    assert "export failed unexpectedly" in logged and "Traceback (most recent call last)" in logged
    assert "ValueError" in logged and "preflight.py" in logged, "the traceback names where it failed"
    assert "[1/5] Resolving" in logged, "the progress lines are in the log too"


def test_debug_variable_shows_the_traceback_on_the_terminal(tiny_llama, tmp_path) -> None:
    src, out = _broken_config_source(tiny_llama, tmp_path / "src"), tmp_path / "out"
    result = run_export_cli(tmp_path, str(src), str(out), CPMDESK_DEBUG="1")
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr and "ValueError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: the export failed unexpectedly")
    assert "Traceback" in (tmp_path / "data" / "logs" / "cpmdesk-export.log").read_text(encoding="utf-8")


def test_refused_options_are_logged(tiny_llama, tmp_path) -> None:
    result = run_export_cli(tmp_path, str(tiny_llama), str(tmp_path / "out"), "--ratio", "5")
    assert result.returncode == 2
    logged = (tmp_path / "data" / "logs" / "cpmdesk-export.log").read_text(encoding="utf-8")
    assert "--ratio 5" in logged and "ERROR" in logged


def test_log_file_defaults_and_utf8(data) -> None:
    path = setup_logging("defaults-test", terminal=False)
    assert path == log_dir() / "defaults-test.log" and path.parent == data / "logs"
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "baseFilename", None) == str(path))
    assert (handler.maxBytes, handler.backupCount) == (MAX_BYTES, BACKUP_COUNT) == (1_000_000, 3)
    logging.getLogger("app.test").info("Grüße, 你好")
    handler.flush()
    assert "Grüße, 你好" in path.read_text(encoding="utf-8")


def test_log_file_rotates_at_its_size_limit(data) -> None:
    path = setup_logging("rotation-test", terminal=False, max_bytes=4000, backup_count=2)
    logger = logging.getLogger("export.rotation")
    for number in range(400):
        logger.info("line %04d %s", number, "x" * 80)
    stop_logging()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["rotation-test.log", "rotation-test.log.1", "rotation-test.log.2"], files
    for name in files:
        assert (path.parent / name).stat().st_size <= 4000
    assert "line 0399" in path.read_text(encoding="utf-8"), "the newest lines are in the current file"
    kept = "".join((path.parent / name).read_text(encoding="utf-8") for name in files)
    assert "line 0000" not in kept, "the oldest lines were rotated out"


def test_terminal_gets_warnings_in_one_line_and_never_a_traceback(data, capsys) -> None:
    setup_logging("terminal-test")
    logger = logging.getLogger("app.terminal")
    logger.info("an info line")
    logger.warning("ignoring a setting")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.warning("it failed", exc_info=True)
    stop_logging()
    assert capsys.readouterr().err.splitlines() == ["ignoring a setting"]
    logged = (data / "logs" / "terminal-test.log").read_text(encoding="utf-8")
    assert "an info line" in logged and "it failed" in logged and "RuntimeError: boom" in logged


def test_prompts_and_answers_are_logged_only_when_allowed(default_model, tmp_path) -> None:
    prompt = "Name a colour like zebra-mauve-7781."

    def ask(data: Path, **env: str) -> None:
        full_env = {key: value for key, value in os.environ.items() if key != "CPMDESK_LOG_CONTENT"}
        full_env.update(CPMDESK_DATA_DIR=str(data), **env)
        result = subprocess.run([sys.executable, "-m", "app", "ask", "--model", str(default_model), "--no-draft",
                                 "--max-new-tokens", "8", prompt], capture_output=True, text=True, timeout=300,
                                env=full_env, cwd=REPO)
        assert result.returncode == 0 and result.stdout.strip(), result.stderr[-2000:]

    ask(tmp_path / "quiet")
    logged = (tmp_path / "quiet" / "logs" / "cpmdesk.log").read_text(encoding="utf-8")
    assert "answered:" in logged and "new tokens" in logged, "the answer's numbers are logged"
    assert "zebra-mauve-7781" not in logged
    ask(tmp_path / "allowed", CPMDESK_LOG_CONTENT="1")
    logged = (tmp_path / "allowed" / "logs" / "cpmdesk.log").read_text(encoding="utf-8")
    assert "prompt: 'Name a colour like zebra-mauve-7781.'" in logged and "answer: " in logged
