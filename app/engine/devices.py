"""Which OpenVINO devices can run a model here."""

from __future__ import annotations


def available_devices() -> list[str]:
    """CPU first, then GPU / NPU when OpenVINO lists them, and AUTO when there is a choice."""
    import openvino as ov

    found = ov.Core().available_devices
    devices = [d for d in ("CPU",) if d in found]
    devices += sorted(d for d in found if d.startswith(("GPU", "NPU")))
    if len(devices) > 1:
        devices.append("AUTO")
    return devices
