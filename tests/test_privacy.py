"""Telemetry of OpenVINO, NNCF and Hugging Face is off in cpmdesk processes."""

from __future__ import annotations

import os
import subprocess
import sys

# openvino_telemetry.Telemetry is a process-wide singleton, so each case runs in its own interpreter.
PROBE = """
import os, sys
if sys.argv[1] == "cpmdesk":
    from app.privacy import disable_telemetry
    disable_telemetry()
from openvino_telemetry.utils.opt_in_checker import OptInChecker
result = OptInChecker().check(enable_opt_in_dialog=False).name
if sys.argv[1] == "cpmdesk":  # with consent declined, constructing the client sends nothing
    from openvino_telemetry import Telemetry
    client = Telemetry(app_name="probe", app_version="0", tid="G-TEST", backend="ga4", enable_opt_in_dialog=False)
    result += f" consent={client.consent}"
print(result, os.environ.get("HF_HUB_DISABLE_TELEMETRY"), os.environ.get("DO_NOT_TRACK"))
"""


def _probe(mode: str, home) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "TF_BUILD", "JENKINS_URL", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    env["HOME"] = str(home)  # no consent file there: openvino_telemetry would send by default
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_cpmdesk_no_consent_file_means_telemetry_on(tmp_path) -> None:
    # NO_FILE: NNCF and optimum construct their telemetry client without a dialog, which then sends.
    assert _probe("plain", tmp_path) == "NO_FILE None None"


def test_disable_telemetry_declines_consent(tmp_path) -> None:
    assert _probe("cpmdesk", tmp_path) == "DECLINED consent=False 1 1"
