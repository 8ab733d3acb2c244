"""Private by default: the app switches telemetry off through the one definition in export.privacy."""

from __future__ import annotations

from export.privacy import disable_telemetry

__all__ = ["disable_telemetry"]
