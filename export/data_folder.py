"""The user's data folder (platformdirs, or $CPMDESK_DATA_DIR), defined once below the app so the exporter's log
file and the app (app/paths.py) resolve the same folder."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_path


def data_dir() -> Path:
    """The data folder (created on first use)."""
    override = os.environ.get("CPMDESK_DATA_DIR")
    path = Path(override).expanduser() if override else user_data_path("cpmdesk", appauthor=False)
    path.mkdir(parents=True, exist_ok=True)
    return path
