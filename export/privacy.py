"""Private by default: turn off every telemetry channel of the stacks cpmdesk uses.

Call `disable_telemetry()` before importing openvino, nncf, optimum or huggingface_hub.
"""

from __future__ import annotations

import os

_ENV_OFF = {
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub / optimum
    "DO_NOT_TRACK": "1",  # generic convention honoured by HF tools
    "NNCF_DEV": "1",  # NNCF skips its telemetry wrapper in dev/CI environments
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",  # never send a stored token unasked
}


def disable_telemetry() -> None:
    """Set opt-out variables and make openvino_telemetry decline consent in this process."""
    for key, value in _ENV_OFF.items():
        os.environ.setdefault(key, value)
    try:
        from openvino_telemetry.utils import opt_in_checker
    except ImportError:  # the package is optional; nothing to switch off
        return
    declined = opt_in_checker.ConsentCheckResult.DECLINED
    opt_in_checker.OptInChecker.check = lambda self, *args, **kwargs: declined  # type: ignore[method-assign]
