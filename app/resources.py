"""Files the app ships (icons, translations, the bundled default model), found in the source tree or the bundle."""

from __future__ import annotations

import sys
from pathlib import Path

# A PyInstaller bundle unpacks its data beside the executable and names that folder sys._MEIPASS.
_ROOT = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))


def is_bundled() -> bool:
    """True when running from the PyInstaller bundle (no torch there; its exporter is `cpmdesk export`)."""
    return bool(getattr(sys, "frozen", False))


def resource_path(*parts: str) -> Path:
    """A path under `resources/` (it may not exist)."""
    return _ROOT.joinpath("resources", *parts)


def bundled_models_dir() -> Path:
    """Models shipped read-only inside the bundle (absent in a source checkout)."""
    return _ROOT / "bundled-models"


def bundled_ops_library() -> Path:
    """cpmdesk's OpenVINO op library (InfLLM v2 sparse attention) shipped inside the bundle (absent elsewhere),
    under this platform's name (.so, .dylib, .dll)."""
    from ov_ops.build import library_filename

    return _ROOT / "ov-ops" / library_filename()
