"""The user's chat models: exported folders in the data folder, the ones shipped in the bundle and folders the user
added; adding (exported folder, Hugging Face folder, .gguf file, optimum-cli IR), removing, and draft pairing."""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from app.engine.model_folder import ModelFolderError, check_model_folder
from app.engine.speculative import DraftConfig
from app.models.convert import OnConvert, convert
from app.models.ir_import import import_ir, looks_like_ir
from app.paths import data_dir, models_dir
from app.resources import bundled_models_dir
from export.manifest import read_manifest

log = logging.getLogger(__name__)
CHATS_DB = "chats.sqlite3"
_ADDED_KEY = "model_dirs"  # AppSettings.model_dirs: folders the user added
_TOKENIZER_FILES = ("openvino_tokenizer.bin", "openvino_detokenizer.bin")
_DRAFT_MAX_SHARE = 0.25  # a draft pays when it is at most a quarter of the target (MiniCPM4 0.5B for 8B: 5 %)


class LibraryError(RuntimeError):
    """A model cannot be added or removed; the message says why and what to do."""


@dataclass(frozen=True)
class ModelInfo:
    """A chat model in the library."""

    folder: Path
    manifest: dict
    origin: str  # "data" (the data folder), "bundled" (shipped), "added" (a folder the user added)

    @property
    def name(self) -> str:
        """The folder's name: what lists show and what `remove` takes."""
        return self.folder.name

    @property
    def source(self) -> str:
        """Where it came from, without any machine's paths: a hub id, or a folder or file name."""
        return source_label(self.manifest)

    @property
    def size_bytes(self) -> int:
        """Bytes on disk, from the manifest."""
        return int(self.manifest.get("sizes", {}).get("total_bytes", 0))

    @property
    def param_count(self) -> int:
        """Parameters of the source model (0 when the manifest does not say)."""
        return int(self.manifest.get("architecture", {}).get("param_count") or 0)


def source_label(manifest: dict) -> str:
    """A manifest's source as lists show it: the hub id, or the last part of a path (never a full path)."""
    source = manifest.get("source", {})
    spec = str(source.get("spec") or "")
    if source.get("kind") == "hub":
        return spec
    return Path(spec.replace("\\", "/")).name if spec else ""


def is_chat_model(manifest: dict) -> bool:
    """False for the document embedding model (and any other non-chat export)."""
    return manifest.get("task", "text-generation") == "text-generation"


def list_models(extra_dirs: list[str] | None = None) -> list[ModelInfo]:
    """Chat models with readable manifests: the data folder's, the bundle's, then the added folders
    (default: those remembered in the settings)."""
    extra = added_folders() if extra_dirs is None else extra_dirs
    candidates = [(p, "data") for p in _subfolders(models_dir())]
    candidates += [(p, "bundled") for p in _subfolders(bundled_models_dir())]
    candidates += [(Path(d), "added") for d in extra]
    found, seen = [], set()
    for folder, origin in candidates:
        key = folder.resolve()
        manifest = read_manifest(folder)
        if key in seen or manifest is None or not is_chat_model(manifest):
            continue
        seen.add(key)
        found.append(ModelInfo(folder, manifest, origin))
    return found


def find_model(name: str) -> ModelInfo | None:
    """A library model by folder name."""
    return next((m for m in list_models() if m.name == name), None)


def add(path: Path, on_progress: OnConvert | None = None, cancel: threading.Event | None = None,
        options: tuple[str, ...] = (), name: str | None = None, remember: bool = True) -> ModelInfo:
    """Add a model: an exported cpmdesk folder or an optimum-cli IR folder (kept where it is, remembered in the
    settings unless `remember` is False: the window keeps its own list), or a Hugging Face folder or .gguf file
    (converted to int4 into the data folder in a child process, into the folder `name`, by default the source's
    name + "-int4")."""
    path = path.expanduser().resolve()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise LibraryError(f"{path.name} is not a .gguf file; add a .gguf file or a model folder")
        return _convert_into_library(path, name or _converted_name(path.stem), on_progress, cancel, options)
    if not path.is_dir():
        raise LibraryError(f"{path} does not exist; pick a model folder or a .gguf file")
    if looks_like_ir(path):
        import_ir(path)
        return _register(path, remember)
    if read_manifest(path) is not None:
        return _register(path, remember)
    if (path / "config.json").is_file() and any(path.glob("*.safetensors")):
        return _convert_into_library(path, name or _converted_name(path.name), on_progress, cancel, options)
    raise LibraryError(f"{path.name} is not a model folder: expected a cpmdesk export (manifest.json), an OpenVINO IR "
                       "(openvino_model.xml) or a Hugging Face folder (config.json and .safetensors weights)")


def remove(name: str, models: list[ModelInfo] | None = None) -> str:
    """Delete a model from the data folder, or forget an added folder (its files stay); returns what was done.
    `models`: the list to find `name` in (default: list_models())."""
    model = next((m for m in (list_models() if models is None else models) if m.name == name), None)
    if model is None:
        raise LibraryError(f"No model named {name!r}; `cpmdesk models list` shows the names")
    if model.origin == "bundled":
        raise LibraryError(f"{name} ships with cpmdesk and cannot be removed")
    if model.origin == "added":
        forget_folder(model.folder)
        return f"Forgot {name} (its folder was left in place)"
    shutil.rmtree(model.folder)
    log.info("removed model %s", name)
    return f"Deleted {name}"


@dataclass(frozen=True)
class DraftMatch:
    """The draft a model can use, or None, with the reason the UI shows."""

    folder: Path | None
    reason: str


def draft_for(folder: Path, models: list[ModelInfo] | None = None) -> DraftMatch:
    """A smaller model of the same family and tokenizer to draft for `folder` (MiniCPM4-0.5B for an 8B MiniCPM4),
    picked from the library; the tokenizers are compared by their files' hashes."""
    target = read_manifest(folder)
    if target is None:
        return DraftMatch(None, "no draft: the model has no manifest")
    if target.get("draft"):
        return DraftMatch(None, "the model carries its own draft")
    family = target.get("architecture", {}).get("model_type")
    params = int(target.get("architecture", {}).get("param_count") or 0)
    smaller = [m for m in (list_models() if models is None else models)
               if m.manifest.get("architecture", {}).get("model_type") == family and m.folder.resolve() !=
               folder.resolve() and 0 < m.param_count <= params * _DRAFT_MAX_SHARE]
    if not smaller:
        return DraftMatch(None, f"no draft: no smaller {family} model in your models (for MiniCPM4 8B, add "
                                "MiniCPM4-0.5B to answer faster)")
    mine = _tokenizer_hash(folder)
    for model in sorted(smaller, key=lambda m: m.param_count):
        if _tokenizer_hash(model.folder) == mine:
            return DraftMatch(model.folder, f"draft: {model.name} (same tokenizer)")
    return DraftMatch(None, f"no draft: {smaller[0].name} has a different tokenizer")


def with_draft(folder: Path, config: DraftConfig, extra_dirs: list[str] | None = None) -> tuple[DraftConfig,
                                                                                             DraftMatch]:
    """`config` with the library's draft for `folder` (draft_for) when drafting is on; the engine takes it as
    DraftConfig.model. A failure to look is logged and leaves the draft out: it never stops the model loading."""
    if not config.enabled:
        return config, DraftMatch(None, "draft off")
    try:
        match = draft_for(folder, list_models(extra_dirs))
    except OSError as err:
        log.warning("no draft for %s: %s", folder.name, err)
        return config, DraftMatch(None, f"no draft: {err}")
    return replace(config, model=match.folder), match


def added_folders() -> list[str]:
    """Folders the user added (the settings' model_dirs); [] before the app has stored any settings."""
    from app.store import ChatStore

    if not (data_dir() / CHATS_DB).is_file():
        return []
    store = ChatStore(data_dir() / CHATS_DB)
    try:
        return list(store.get_setting(_ADDED_KEY, []))
    finally:
        store.close()


def remember_folder(folder: Path) -> None:
    """Add `folder` to the settings' model_dirs."""
    _update_added(lambda dirs: [*dirs, str(folder)] if str(folder) not in dirs else dirs)


def forget_folder(folder: Path) -> None:
    """Drop `folder` from the settings' model_dirs."""
    _update_added(lambda dirs: [d for d in dirs if Path(d).resolve() != folder.resolve()])


def _update_added(change) -> None:
    from app.store import ChatStore

    store = ChatStore(data_dir() / CHATS_DB)
    try:
        store.set_setting(_ADDED_KEY, change(list(store.get_setting(_ADDED_KEY, []))))
    finally:
        store.close()


def _register(folder: Path, remember: bool = True) -> ModelInfo:
    """Check an exported folder and remember it (`remember`) unless it already lives in the data folder."""
    try:
        manifest = check_model_folder(folder)
    except ModelFolderError as err:
        raise LibraryError(str(err)) from err
    if not is_chat_model(manifest):
        raise LibraryError(f"{folder.name} is not a chat model (task {manifest.get('task')!r})")
    inside = folder.parent.resolve() == models_dir().resolve()
    if not inside and remember:
        remember_folder(folder)
    return ModelInfo(folder, manifest, "data" if inside else "added")


def _converted_name(stem: str) -> str:
    return stem.lower() + "-int4"


def _convert_into_library(source: Path, name: str, on_progress: OnConvert | None, cancel: threading.Event | None,
                          options: tuple[str, ...]) -> ModelInfo:
    out = models_dir() / name
    if read_manifest(out) is not None:
        raise LibraryError(f"{out.name} is already among your models; remove it first to convert again")
    convert(source, out, options, on_progress, cancel)
    return _register(out)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []


def _tokenizer_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in _TOKENIZER_FILES:
        path = folder / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()
