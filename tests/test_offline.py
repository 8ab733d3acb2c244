"""Proven offline: the app and a local export work with no network at all and never try to open a connection.

Each run is sandboxed twice: a fresh network namespace (`unshare -rn`: no interface but a downed loopback, so
native code cannot reach anything either) and a Python audit hook (a sitecustomize on PYTHONPATH) that records
and blocks every socket connect / name lookup the process or its Python children attempt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.degraded import network_namespace_problem

REPO = Path(__file__).resolve().parents[1]

SITECUSTOMIZE = r'''
import os
import sys

_LOG = os.environ["CPMDESK_NET_LOG"]
_EVENTS = {"socket.connect", "socket.connect_ex", "socket.getaddrinfo", "socket.gethostbyname",
           "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg"}


def _hook(event, args):
    if event in _EVENTS:
        with open(_LOG, "a") as log:
            log.write(f"{os.getpid()} {event} {args[1:] if event.startswith('socket.connect') else args!r}\n")
        raise PermissionError(f"network blocked by the cpmdesk offline test ({event})")


sys.addaudithook(_hook)
'''

# Settings that would hide a telemetry default are removed: the app itself must switch telemetry off.
_UNSET = ("HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK", "NNCF_DEV", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
          "HF_HUB_DISABLE_IMPLICIT_TOKEN", "CI")


def _sandboxed(tmp_path: Path, command: list[str], **extra_env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    problem = network_namespace_problem()
    if problem:  # these tests prove the absence of connections: without the namespace they would prove less
        pytest.skip(f"cannot cut the network with a network namespace (unshare -rn): {problem}")
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "network.log"
    log.write_text("")
    home = tmp_path / "home"  # no telemetry consent file: openvino_telemetry would send by default
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    env.update(PYTHONPATH=f"{hooks}{os.pathsep}{REPO}", CPMDESK_NET_LOG=str(log), HOME=str(home), **extra_env)
    result = subprocess.run(["unshare", "-rn", *command], capture_output=True, text=True, timeout=600, env=env)
    return result, [line for line in log.read_text().splitlines() if line]


def test_the_sandbox_catches_a_connection(tmp_path) -> None:
    """The check can fail: a process that does reach out is recorded and stopped."""
    probe = "import urllib.request; urllib.request.urlopen('https://huggingface.co', timeout=5)"
    result, attempts = _sandboxed(tmp_path, [sys.executable, "-c", probe])
    assert result.returncode != 0 and "network blocked" in result.stderr
    assert any("getaddrinfo" in line and "huggingface.co" in line for line in attempts), attempts


@pytest.mark.slow
def test_ask_answers_offline_without_any_connection_attempt(tmp_path, default_model, data_dir) -> None:
    result, attempts = _sandboxed(tmp_path, [sys.executable, "-m", "app", "ask", "What is the capital of France?",
                                             "--max-new-tokens", "40"], CPMDESK_DATA_DIR=str(data_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Paris" in result.stdout
    assert attempts == []


GUI_CHILD = r"""
import json, sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
from app.privacy import disable_telemetry
from tests.qt_wait import wait

disable_telemetry()
app = QApplication([])
from app.gui.main import build_window

window = build_window(Path(sys.argv[1]))
window.show()

wait(lambda: window.engine is not None)
window.composer.setPlainText("Hello!")
window.send()
wait(lambda: window.worker is None and window.chat_id is not None)
window.open_settings()
window.open_privacy()
window.threads.wait_all()
print("ANSWER " + json.dumps(window.store.messages(window.chat_id)[-1].content), flush=True)
"""


@pytest.mark.slow
def test_window_answers_offline_without_any_connection_attempt(tmp_path, tiny_llama, exported) -> None:
    script = tmp_path / "gui_child.py"
    script.write_text(GUI_CHILD)
    data = tmp_path / "data"
    result, attempts = _sandboxed(tmp_path, [sys.executable, str(script), str(exported(tiny_llama, "int4"))],
                                  CPMDESK_DATA_DIR=str(data), QT_QPA_PLATFORM="offscreen")
    answers = [json.loads(line[7:]) for line in result.stdout.splitlines() if line.startswith("ANSWER ")]
    assert result.returncode == 0 and answers and answers[0].strip(), result.stderr[-3000:]
    assert attempts == []


@pytest.mark.slow
def test_export_of_a_local_model_works_offline_without_any_connection_attempt(tmp_path, tiny_llama) -> None:
    out = tmp_path / "out"
    result, attempts = _sandboxed(tmp_path, [sys.executable, "-m", "export", str(tiny_llama), str(out),
                                             "--weight-format", "int8"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "openvino_model.xml").is_file() and (out / "manifest.json").is_file()
    assert attempts == []
