"""Is this folder a model cpmdesk can load? Checked before OpenVINO sees it, with clear errors."""

from __future__ import annotations

from pathlib import Path

from export.manifest import read_manifest

REQUIRED = ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml")


class ModelFolderError(RuntimeError):
    """The folder is not a loadable cpmdesk export; the message says why and what to do."""


def check_model_folder(folder: Path) -> dict:
    """Return the folder's manifest, or raise ModelFolderError."""
    if not folder.is_dir():
        raise ModelFolderError(f"{folder} does not exist; pick an exported model folder")
    manifest = read_manifest(folder)
    if manifest is None:
        raise ModelFolderError(f"{folder} is not a cpmdesk export (no readable manifest.json); "
                               "export it first: cpmdesk-export SOURCE OUT")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(f"{folder} is incomplete (missing {', '.join(missing)}); export it again")
    expected = manifest.get("sizes", {}).get("files", {})
    for name in ("openvino_model.bin", "openvino_model.xml"):
        size = (folder / name).stat().st_size
        if name in expected and expected[name] != size:
            raise ModelFolderError(f"{folder / name} is {size} bytes but the export wrote {expected[name]}: the file "
                                   "is truncated or changed; export the model again")
    return manifest
