"""Where cpmdesk keeps its data: the user's data folder (export/data_folder.py: platformdirs, or $CPMDESK_DATA_DIR)."""

from __future__ import annotations

from pathlib import Path

from export.data_folder import data_dir

__all__ = ["data_dir", "models_dir"]


def models_dir() -> Path:
    """Exported models live here, one folder each."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
