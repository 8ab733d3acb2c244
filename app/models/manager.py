"""The Models window without Qt: the catalogue with this machine's verdicts, the user's chat models, and one job
at a time (download → convert → add → use, or add) on a worker thread. The window renders `state` and listens
to `on_event`, which the worker thread calls; it never does the work itself."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.engine.model_folder import ModelFolderError
from app.models.catalogue import CATALOGUE, CatalogueEntry, Verdict, can_run, find_entry, free_disk, total_memory
from app.models.convert import ConvertCancelled, ConvertError, ConvertProgress, cancelled_after_download
from app.models.download import DownloadCancelled, DownloadProgress, download_model, downloads_dir
from app.models.ir_import import IRFolderError
from app.models.library import LibraryError, ModelInfo, add, draft_for, list_models, remove
from app.paths import data_dir
from export.errors import ExportError, HubUnreachableError

log = logging.getLogger(__name__)
Event = Literal["changed", "chosen", "added", "forgotten"]
OnEvent = Callable[[Event, object], None]  # "changed": ManagerState; "chosen"/"added"/"forgotten": the folder
_EXPECTED = (LibraryError, ConvertError, IRFolderError, ExportError, ModelFolderError)
NO_NETWORK = ("No network: cpmdesk cannot reach the Hugging Face Hub here. Download the model on a connected "
              "machine, then use Add folder… (or Add .gguf…).")


@dataclass(frozen=True)
class CatalogueRow:
    """A downloadable model: what it costs this machine and whether it is among the user's models already."""

    entry: CatalogueEntry
    verdict: Verdict
    installed: Path | None  # the converted folder when installed


@dataclass(frozen=True)
class ModelRow:
    """A chat model in the list."""

    model: ModelInfo
    current: bool
    draft: str  # the draft it would use ("draft: minicpm4-0.5b-int4 (same tokenizer)"), or ""


@dataclass(frozen=True)
class Job:
    """The running download or conversion."""

    title: str  # e.g. "Downloading openbmb/MiniCPM4-0.5B"
    detail: str  # the progress line: bytes, speed and time left, or step and layer
    fraction: float | None  # 0..1; None until known


@dataclass(frozen=True)
class ManagerState:
    """Everything the window shows."""

    catalogue: tuple[CatalogueRow, ...]
    models: tuple[ModelRow, ...]
    job: Job | None
    message: str  # one line: the last result or error
    error: bool  # `message` is an error


def download_fraction(progress: DownloadProgress) -> float:
    """Bytes done of total."""
    return progress.done / progress.total if progress.total else 0.0


def convert_fraction(progress: ConvertProgress) -> float:
    """Steps done, the current one counted by its layers."""
    within = progress.layer / progress.layers if progress.layers else 0.0
    return min(1.0, max(0.0, (progress.step - 1 + within) / progress.steps)) if progress.steps else 0.0


class ModelsController:
    """State and work of the Models window. `extra_dirs` are the folders the user added (the window's settings),
    `current` the model in use; `endpoint` a hub mirror (None: huggingface_hub's default, HF_ENDPOINT)."""

    def __init__(self, extra_dirs: list[str], current: Path | None, on_event: OnEvent,
                 endpoint: str | None = None) -> None:
        self.extra_dirs = list(extra_dirs)
        self.current = current
        self.endpoint = endpoint
        self._on_event = on_event
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._job: Job | None = None
        self._message, self._error = "", False
        self._models: list[ModelInfo] = []
        self.state = self._build_state()

    # ------------------------------------------------------------------ state

    @property
    def busy(self) -> bool:
        """A download or conversion is running."""
        return self._thread is not None and self._thread.is_alive()

    def refresh(self) -> ManagerState:
        """Re-read the models and this machine's figures, and report the new state."""
        state = self._build_state()
        with self._lock:
            self.state = state
        self._on_event("changed", state)
        return state

    def _build_state(self) -> ManagerState:
        models = list_models(self.extra_dirs)
        self._models = models
        current = self.current.resolve() if self.current is not None else None
        rows = tuple(ModelRow(m, m.folder.resolve() == current, self._draft_note(m, models)) for m in models)
        ram, disk = total_memory(), free_disk(data_dir())
        catalogue = tuple(CatalogueRow(entry, can_run(entry, ram, disk), _installed(entry, models))
                          for entry in CATALOGUE)
        with self._lock:
            return ManagerState(catalogue, rows, self._job, self._message, self._error)

    @staticmethod
    def _draft_note(model: ModelInfo, models: list[ModelInfo]) -> str:
        try:
            match = draft_for(model.folder, models)
        except OSError as err:
            log.warning("no draft for %s: %s", model.name, err)
            return ""
        return match.reason if match.folder is not None else ""

    def _set(self, job: Job | None = None, message: str | None = None, error: bool = False,
             reread: bool = False) -> None:
        """New job and message (`reread`: the models too), then a "changed" event. The event may reach the
        window after a later state: the window renders `state`, always the newest."""
        with self._lock:
            self._job = job
            if message is not None:
                self._message, self._error = message, error
            if not reread:
                old = self.state
                self.state = state = ManagerState(old.catalogue, old.models, job, self._message, self._error)
        if reread:
            self.refresh()
            return
        self._on_event("changed", state)

    # ------------------------------------------------------------------ actions

    def choose(self, folder: Path) -> None:
        """Use `folder` (the window switches the engine on the "chosen" event)."""
        self.current = Path(folder)
        self._on_event("chosen", self.current)
        self.refresh()

    def remove(self, name: str) -> bool:
        """Delete a data-folder model or forget an added folder; refuses the model in use and bundled ones."""
        model = next((m for m in self._models if m.name == name), None)
        if self.busy or model is None:
            return False
        if self.current is not None and model.folder.resolve() == self.current.resolve():
            self._set(message=f"{name} is in use; switch to another model first", error=True)
            return False
        try:
            text = remove(name, self._models)
        except (LibraryError, OSError) as err:
            log.warning("cannot remove %s: %s", name, err)
            self._set(message=str(err), error=True)
            return False
        if model.origin == "added":
            self.extra_dirs = [d for d in self.extra_dirs if Path(d).resolve() != model.folder.resolve()]
            self._on_event("forgotten", model.folder)
        self._set(message=text, reread=True)
        return True

    def download(self, hub_id: str) -> bool:
        """Start: download `hub_id` into the data folder, convert it, add it and use it. False when busy."""
        entry = find_entry(hub_id)
        installed = entry is not None and _installed(entry, self._models)
        if installed:
            self._set(message=f"{entry.display_name} is already among your models; Use it", error=False)
            return False
        return self._start(f"Downloading {hub_id}", lambda: self._download_work(hub_id, entry))

    def add(self, path: Path) -> bool:
        """Start: add an exported or optimum-cli IR folder, or convert a Hugging Face folder or a .gguf file."""
        return self._start(f"Adding {Path(path).name}", lambda: self._add_work(Path(path)))

    def cancel(self) -> None:
        """Stop the running job; the download's partial files or the conversion's staging folder are removed."""
        job = self.state.job
        if self.busy and job is not None:
            self._cancel.set()
            self._set(Job(job.title, "Cancelling…", job.fraction))

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running job has ended (window close, tests)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------ work (worker thread)

    def _start(self, title: str, work: Callable[[], None]) -> bool:
        if self.busy:
            return False
        self._cancel = threading.Event()
        self._set(Job(title, "Starting…", None), message="")
        self._thread = threading.Thread(target=self._run, args=(work,), name="models-job", daemon=True)
        self._thread.start()
        return True

    def _run(self, work: Callable[[], None]) -> None:
        try:
            work()
        except (DownloadCancelled, ConvertCancelled) as err:
            log.info("models job cancelled: %s", err)
            _drop_empty(downloads_dir())
            self._set(message=_one_line(err), reread=True)
        except HubUnreachableError as err:
            log.warning("models job: %s", err)
            self._set(message=NO_NETWORK, error=True, reread=True)
        except _EXPECTED as err:
            log.warning("models job failed: %s", err)
            self._set(message=_one_line(err), error=True, reread=True)
        except Exception as err:  # anything else: logged with its traceback, shown in one line
            log.exception("models job failed")
            self._set(message=f"Failed: {_one_line(err)}", error=True, reread=True)

    def _download_work(self, hub_id: str, entry: CatalogueEntry | None) -> None:
        title = f"Downloading {hub_id}"

        def on_download(progress: DownloadProgress) -> None:
            self._set(Job(title, progress.describe(), download_fraction(progress)))

        extra = 2 * entry.int4_bytes() if entry is not None else 0
        folder = download_model(hub_id, on_progress=on_download, cancel=self._cancel, extra_bytes=extra,
                                endpoint=self.endpoint)
        try:
            model = self._convert(folder, f"Converting {hub_id}", entry.folder_name if entry is not None else None)
        except ConvertCancelled as err:
            raise cancelled_after_download(hub_id) from err
        self._set(message=f"Ready: {model.name}", reread=True)
        self.choose(model.folder)

    def _add_work(self, path: Path) -> None:
        model = self._convert(path, f"Adding {path.name}", None)
        if model.origin == "added":
            if str(model.folder) not in self.extra_dirs:
                self.extra_dirs.append(str(model.folder))
            self._on_event("added", model.folder)
        self._set(message=f"Added {model.name}", reread=True)

    def _convert(self, source: Path, title: str, name: str | None) -> ModelInfo:
        """library.add with progress; `name`: the converted folder's name (None: from the source)."""
        self._set(Job(title, "Checking…", None))

        def on_convert(progress: ConvertProgress) -> None:
            self._set(Job(title, progress.describe(), convert_fraction(progress)))

        # remember=False: the window keeps the added folders in its own settings (the "added" event)
        return add(source, on_progress=on_convert, cancel=self._cancel, name=name, remember=False)


def _installed(entry: CatalogueEntry, models: list[ModelInfo]) -> Path | None:
    """The user's copy of a catalogue entry: its converted folder, or a model whose source is the entry."""
    sources = {entry.hub_id.lower(), entry.hub_id.replace("/", "--").lower()}
    return next((m.folder for m in models if m.name == entry.folder_name or m.source.lower() in sources), None)


def _drop_empty(folder: Path) -> None:
    """Remove `folder` when a cancel left it empty (the downloads folder)."""
    try:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    except OSError as err:
        log.warning("cannot remove the empty %s: %s", folder, err)


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
