"""Telemetry of OpenVINO, NNCF and Hugging Face is off in cpmdesk processes."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import os
from app.privacy import disable_telemetry
from openvino_telemetry import Telemetry
before = Telemetry(app_name="probe", app_version="0", tid="G-TEST", backend="ga4", enable_opt_in_dialog=False)
print("before", before.consent)
disable_telemetry()
after = Telemetry(app_name="probe", app_version="0", tid="G-TEST", backend="ga4", enable_opt_in_dialog=False)
print("after", after.consent)
print("hf", os.environ.get("HF_HUB_DISABLE_TELEMETRY"), os.environ.get("DO_NOT_TRACK"))
"""


def test_disable_telemetry_declines_consent(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL", "HF_HUB_DISABLE_TELEMETRY",
                                                          "DO_NOT_TRACK")}
    env["HOME"] = str(tmp_path)  # no consent file: openvino_telemetry would send by default
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["before"] == "True", "the probe should show telemetry is on by default without a consent file"
    assert lines["after"] == "False"
    assert lines["hf"] == "1 1"
