"""Resolve SOURCE (hub id, local folder or .gguf file) to files on this machine."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from export.data_folder import data_dir
from export.errors import ExportError, HubUnreachableError, MissingFilesError

log = logging.getLogger(__name__)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# What a causal-LM export needs from a hub repo; weights in .bin are left out on purpose (safetensors only
# is safer to load), except when a repo has nothing else (handled by the second pattern set).
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.jinja", "*.txt", "*.tiktoken", "*.py"]


@dataclass(frozen=True)
class Source:
    """A model source made local: a Hugging Face folder or a GGUF file."""

    kind: str  # "hub" | "folder" | "gguf"
    spec: str  # what the user passed
    path: Path  # the local folder, or the .gguf file
    revision: str | None = None  # hub commit
    fingerprint: str | None = None  # sha256 of the gguf file, or of a local folder's files

    def describe(self) -> dict[str, str | None]:
        """The manifest's `source` entry."""
        return {"kind": self.kind, "spec": self.spec, "path": str(self.path), "revision": self.revision,
                "sha256": self.fingerprint}


def looks_like_hub_id(spec: str) -> bool:
    """True for `org/name` strings that are not an existing path."""
    return bool(_HUB_ID.match(spec)) and not Path(spec).expanduser().exists()


def resolve_source(spec: str, revision: str | None = None, cache_dir: Path | None = None) -> Source:
    """Turn SOURCE into local files, downloading from the hub when SOURCE is a hub id."""
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise MissingFilesError(
                f"{spec} is a file but not a .gguf; pass a Hugging Face model folder, a .gguf file or a hub id")
        return Source("gguf", spec, path.resolve(), fingerprint=sha256_file(path))
    if path.is_dir():
        return Source("folder", spec, path.resolve(), revision=_git_revision(path),
                      fingerprint=folder_fingerprint(path))
    if looks_like_hub_id(spec):
        folder, commit = download_from_hub(spec, revision, cache_dir)
        return Source("hub", spec, folder, revision=commit)
    raise MissingFilesError(f"No such file or folder: {spec}; pass a model folder, a .gguf file or a hub id (org/name)")


def hub_cache_dir() -> Path | None:
    """Where a hub id is downloaded: the Hugging Face cache the user chose (HF_HUB_CACHE or HF_HOME set), else
    `downloads/hub` in cpmdesk's data folder, where Privacy & data lists and deletes it (None: the user's choice)."""
    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME"):
        return None
    return data_dir() / "downloads" / "hub"


def download_from_hub(repo_id: str, revision: str | None, cache_dir: Path | None) -> tuple[Path, str | None]:
    """Download (or reuse the cached copy of) a hub repo; resumable, with progress bars. `cache_dir` None: see
    hub_cache_dir."""
    from huggingface_hub import snapshot_download

    cache_dir = cache_dir or hub_cache_dir()
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                        allow_patterns=_HUB_PATTERNS))
    except Exception as err:  # huggingface_hub's failures vary by version; all become one line
        mapped = hub_error(err, repo_id, revision)
        if mapped is None:
            log.warning("download of %s failed with an unexpected error: %r", repo_id, err)
            first_line = (str(err).strip().splitlines() or [""])[0]
            mapped = ExportError(f"Downloading {repo_id} from the Hugging Face Hub failed ({type(err).__name__}: "
                                 f"{first_line}); try again later, or download it elsewhere and pass the local "
                                 "folder: cpmdesk-export /path/to/folder OUT")
        raise mapped from err
    commit = folder.name if folder.parent.name == "snapshots" else None
    return folder, commit


def hub_error(err: Exception, repo_id: str, revision: str | None = None) -> ExportError | None:
    """The one-line ExportError for a huggingface_hub failure (gated, not found, offline), or None when `err` is
    not one of those; shared by cpmdesk-export and the app's model downloads (app/models/download.py)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(err, GatedRepoError):
        return ExportError(f"{repo_id} is gated on the Hugging Face Hub; accept its licence there, log in with "
                           "`hf auth login`, or pass a local folder")
    if isinstance(err, RepositoryNotFoundError):
        return ExportError(f"{repo_id} was not found on the Hugging Face Hub; check the id, or pass a local folder")
    if isinstance(err, RevisionNotFoundError):
        return ExportError(f"Revision {revision!r} of {repo_id} was not found; check --revision")
    status = _http_status(err)
    if status is not None:
        return ExportError(f"The Hugging Face Hub answered HTTP {status} for {repo_id}; try again later, or pass a "
                           "local folder instead")
    if isinstance(err, (LocalEntryNotFoundError, OSError)):
        return HubUnreachableError(
            f"Cannot reach the Hugging Face Hub to download {repo_id} (offline?); download it on a connected machine "
            "and pass the local folder instead: cpmdesk-export /path/to/folder OUT")
    name = type(err).__name__.lower()  # httpx/requests transport errors differ across hub versions
    if "connect" in name or "timeout" in name:
        return HubUnreachableError(
            f"Cannot reach the Hugging Face Hub to download {repo_id}; pass a local folder instead")
    return None


def _http_status(err: BaseException) -> int | None:
    """The status of an HTTP error answer the hub gave, found in `err` or the errors it was raised from."""
    from huggingface_hub.errors import HfHubHTTPError

    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None) if isinstance(current, HfHubHTTPError) else None
        status = getattr(response, "status_code", None)
        if isinstance(status, int) and status >= 400:
            return status
        current = current.__cause__ or current.__context__
    return None


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Content hash of one file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def folder_fingerprint(folder: Path) -> str:
    """sha256 over every file's name and content: identifies exactly what was exported."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts):
        digest.update(str(file.relative_to(folder)).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def _git_revision(folder: Path) -> str | None:
    head = folder / ".git" / "HEAD"
    if not head.is_file():
        return None
    ref = head.read_text().strip()
    if ref.startswith("ref: "):
        ref_file = folder / ".git" / ref[5:]
        return ref_file.read_text().strip() if ref_file.is_file() else None
    return ref
