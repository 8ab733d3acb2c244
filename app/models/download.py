"""Download a hub repo into the data folder (not the shared Hugging Face cache): disk check first, progress with
speed and time left, resumable after a kill or a lost connection, and a cancel that removes every partial file."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.models.catalogue import free_disk
from app.paths import data_dir
from export.errors import ExportError, NotEnoughDiskError
from export.source import _HUB_PATTERNS, hub_error

log = logging.getLogger(__name__)
_GIB = 1 << 30
_MARGIN = 1.1  # 10 % over what the download and conversion are estimated to need
_REPORT_EVERY = 0.2  # seconds between progress reports
_SPEED_WINDOW = 5.0  # seconds of history the speed is measured over


class DownloadCancelled(Exception):
    """The user cancelled; the download folder and its partial files are gone."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of the repo that the export needs."""

    name: str
    size: int


@dataclass(frozen=True)
class DownloadPlan:
    """What a download fetches: the repo's commit and the files export/source.py's patterns select."""

    hub_id: str
    commit: str
    files: tuple[RemoteFile, ...]
    folder: Path

    @property
    def total_bytes(self) -> int:
        """Size of every selected file."""
        return sum(f.size for f in self.files)

    def complete_bytes(self) -> int:
        """Bytes of the files already complete in the folder."""
        return sum(f.size for f in self.files if _is_complete(self.folder, f))

    def partial_bytes(self) -> int:
        """Bytes of the partial files a killed or cut download left (huggingface_hub resumes them)."""
        return sum(p.stat().st_size for p in _partial_files(self.folder))


@dataclass(frozen=True)
class DownloadProgress:
    """A progress report: bytes done of total, speed (bytes/s, 0 until measured) and seconds left (None: unknown)."""

    done: int
    total: int
    speed: float
    seconds_left: float | None
    file: str

    def describe(self) -> str:
        """E.g. "412.0 of 870.0 MiB, 12.3 MiB/s, 37 s left"."""
        text = f"{self.done / 2**20:.1f} of {self.total / 2**20:.1f} MiB"
        if self.speed > 0:
            text += f", {self.speed / 2**20:.1f} MiB/s"
        if self.seconds_left is not None:
            text += f", {self.seconds_left:.0f} s left"
        return text


OnProgress = Callable[[DownloadProgress], None]


def downloads_dir() -> Path:
    """Where downloaded hub repos live: <data>/downloads."""
    return data_dir() / "downloads"


def download_folder(hub_id: str) -> Path:
    """A repo's download folder, e.g. <data>/downloads/openbmb--MiniCPM4-0.5B."""
    return downloads_dir() / hub_id.replace("/", "--")


def plan_download(hub_id: str, folder: Path, revision: str | None = None, endpoint: str | None = None) -> DownloadPlan:
    """List the repo's files and sizes (one hub request), filtered the way cpmdesk-export filters them."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    try:
        info = HfApi(endpoint=endpoint).model_info(hub_id, revision=revision, files_metadata=True)
    except Exception as err:
        raise _mapped(err, hub_id, revision) from err
    sizes = {s.rfilename: int(s.size or 0) for s in info.siblings or []}
    names = filter_repo_objects(sorted(sizes), allow_patterns=_HUB_PATTERNS)
    return DownloadPlan(hub_id, str(info.sha), tuple(RemoteFile(n, sizes[n]) for n in names), folder)


def download_model(hub_id: str, *, folder: Path | None = None, revision: str | None = None,
                   on_progress: OnProgress | None = None, cancel: threading.Event | None = None,
                   extra_bytes: int = 0, disk_free: Callable[[Path], int] = free_disk,
                   endpoint: str | None = None) -> Path:
    """Download `hub_id` into `folder` (default: download_folder(hub_id)) and return the folder.

    Refuses before any byte arrives when the disk lacks the rest of the download plus `extra_bytes` (what the
    conversion will write), with a 10 % margin. A new call after a kill resumes the partial files. `cancel` set:
    every partial file and the folder are removed and DownloadCancelled is raised. Hub failures become
    export/source.py's one-line ExportErrors; the partial files are kept, so a later call resumes."""
    folder = folder or download_folder(hub_id)
    cancel = cancel or threading.Event()
    existed = folder.exists()
    plan = plan_download(hub_id, folder, revision, endpoint)
    complete = plan.complete_bytes()
    needed = int((plan.total_bytes - complete - plan.partial_bytes() + extra_bytes) * _MARGIN)
    free = disk_free(folder)
    if free < needed:
        raise NotEnoughDiskError(
            f"Not enough disk space to download {hub_id}: it needs about {needed / _GIB:.2f} GiB (download and "
            f"conversion) and {free / _GIB:.2f} GiB is free in {folder.parent}; free some space first")
    tracker = _Tracker(plan.total_bytes, complete, on_progress, cancel)
    try:
        for remote in plan.files:
            if cancel.is_set():
                raise DownloadCancelled(f"Download of {hub_id} cancelled")
            tracker.start_file(remote, folder)
            _fetch(plan, remote, tracker, endpoint)
            tracker.end_file(remote)
    except DownloadCancelled as err:
        log.info("download of %s cancelled; removing %s", hub_id, folder)
        if not remove_folder(folder):
            raise DownloadCancelled(f"Cancelled: the download of {hub_id} stopped, but some of its files could not "
                                    f"be deleted from {folder} (see the log)") from err
        raise DownloadCancelled(f"Cancelled: the download of {hub_id} stopped and the files it had fetched were "
                                "deleted") from err
    except ExportError:
        raise
    except Exception as err:
        if not existed and not _partial_files(folder) and not any(f.is_file() for f in folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
        raise _mapped(err, hub_id, revision) from err
    tracker.report(force=True)
    return folder


def remove_folder(folder: Path) -> bool:
    """Delete a download folder, logging each file that cannot go; True when nothing of it is left."""
    def failed(_function, path, exc_info) -> None:
        log.warning("cannot delete %s: %s", path, exc_info[1])

    if folder.exists():
        shutil.rmtree(folder, onerror=failed)  # onerror: Python 3.10 and 3.11 have no onexc
    return not folder.exists()


def remove_download(hub_id: str) -> bool:
    """Delete a repo's download folder; True when there was one."""
    folder = download_folder(hub_id)
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def _fetch(plan: DownloadPlan, remote: RemoteFile, tracker: _Tracker, endpoint: str | None) -> None:
    """One file, resumed from its partial file. huggingface_hub's own local_dir download writes to a new uniquely
    named temporary file on every call (1.x) and so never resumes; its ranged GET (http_get) does, given the
    bytes already on disk."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    target = plan.folder / remote.name
    if _is_complete(plan.folder, remote):
        return
    url = hf_hub_url(plan.hub_id, remote.name, revision=plan.commit, endpoint=endpoint)
    meta = get_hf_file_metadata(url)
    partial = _partial_dir(plan.folder) / f"{remote.name}.{meta.etag}.incomplete"
    partial.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("ab") as handle:
        resume = handle.tell()
        tracker.file_bytes += resume
        http_get(meta.location or url, handle, resume_size=resume, headers=build_hf_headers(),
                 expected_size=meta.size, tqdm_class=tracker.bar)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.replace(target)


def _mapped(err: Exception, hub_id: str, revision: str | None) -> Exception:
    """export/source.py's one-line error for a hub failure; anything else is logged and passed on as it is."""
    mapped = hub_error(err, hub_id, revision)
    if mapped is None:
        log.exception("download of %s failed", hub_id)
        return err
    log.warning("download of %s failed: %s (%s)", hub_id, mapped, err)
    return mapped


def _is_complete(folder: Path, remote: RemoteFile) -> bool:
    local = folder / remote.name
    return local.is_file() and local.stat().st_size == remote.size


def _partial_dir(folder: Path) -> Path:
    return folder / ".cache" / "cpmdesk-download"


def _partial_files(folder: Path) -> list[Path]:
    """The partial files of an interrupted download of `folder` (the next call resumes them)."""
    partial = _partial_dir(folder)
    return list(partial.rglob("*.incomplete")) if partial.is_dir() else []


class _Tracker:
    """Bytes done across files, speed and time left; raises DownloadCancelled inside the transfer on cancel."""

    def __init__(self, total: int, complete: int, on_progress: OnProgress | None, cancel: threading.Event) -> None:
        self.total, self.on_progress, self.cancel = total, on_progress, cancel
        self.done_files = complete  # bytes of the files finished before this call or by it
        self.file_bytes = 0  # bytes of the current file on disk, resumed part included
        self.file_name = ""
        self.history: list[tuple[float, int]] = [(time.monotonic(), 0)]  # (time, bytes fetched in this call)
        self.fetched = 0
        self.last_report = 0.0

    def start_file(self, remote: RemoteFile, folder: Path) -> None:
        self.file_name, self.file_bytes = remote.name, 0
        if _is_complete(folder, remote):
            self.done_files -= remote.size  # counted again by end_file

    def end_file(self, remote: RemoteFile) -> None:
        self.done_files += remote.size
        self.file_bytes = 0
        self.report()

    def bar(self, *_args, **_kwargs) -> _Bar:
        """What huggingface_hub's http_get calls in place of tqdm (the resumed part is counted by _fetch)."""
        return _Bar(self)

    def add(self, n: int) -> None:
        if self.cancel.is_set():
            raise DownloadCancelled("Download cancelled")
        self.file_bytes += n
        self.fetched += n
        self.report()

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is None or (not force and now - self.last_report < _REPORT_EVERY):
            return
        self.last_report = now
        self.history.append((now, self.fetched))
        while len(self.history) > 2 and now - self.history[1][0] > _SPEED_WINDOW:
            self.history.pop(0)
        (start, fetched0) = self.history[0]
        speed = (self.fetched - fetched0) / (now - start) if now - start >= 1.0 else 0.0  # 1 s before measuring
        done = min(self.done_files + self.file_bytes, self.total)
        left = (self.total - done) / speed if speed > 0 else None
        self.on_progress(DownloadProgress(done, self.total, speed, left, self.file_name))


class _Bar:
    """The tqdm stand-in for one file."""

    def __init__(self, tracker: _Tracker) -> None:
        self.tracker = tracker

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *_exc) -> None:
        return None

    def update(self, n: int | float | None = 1) -> None:
        self.tracker.add(int(n or 0))

    def close(self) -> None:
        return None
