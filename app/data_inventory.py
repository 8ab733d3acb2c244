"""What cpmdesk stores on this computer, where, how big it is, and how to delete it (no Qt here)."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app.docs.embedder import EMBEDDING_MODEL_NAME
from app.docs.report.state import REPORTS
from app.store import ChatStore
from export.log_file import release_log_files

CHATS_DB = "chats.sqlite3"
DOCS_INDEX = "docs.sqlite3"  # Documents mode: the files' passages, vectors and keyword index
DOWNLOADS = "downloads"  # hub downloads, one folder a repo (app/models/download.py's downloads_dir)
HUB_CACHE = "hub"  # under DOWNLOADS: cpmdesk-export's hub downloads, in Hugging Face's cache layout
LOGS = "logs"  # export/log_file.py's rotating logs (no prompts or answers unless CPMDESK_LOG_CONTENT=1)
SQLITE_SUFFIXES = ("", "-wal", "-shm")


@dataclass(frozen=True)
class DataItem:
    """One kind of stored data."""

    key: str  # chats, settings, models, downloads, backups, docs_index, embedding_model, logs
    title: str
    location: Path
    size_bytes: int
    count: int  # chats, settings, models, files
    deletable: bool


def folder_size(path: Path) -> int:
    """Bytes in a file or folder (0 when absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _database_size(data_dir: Path, name: str = CHATS_DB) -> int:
    return sum(folder_size(data_dir / f"{name}{suffix}") for suffix in SQLITE_SUFFIXES)


def _indexed_files(database: Path) -> int:
    """How many files the document index holds (0 when it cannot be read)."""
    try:
        with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    except sqlite3.Error:
        return 0


def inventory(data_dir: Path, store: ChatStore) -> list[DataItem]:
    """Everything cpmdesk keeps in `data_dir`: only what is there (the chat database always is)."""
    models = data_dir / "models"
    embedding = models / EMBEDDING_MODEL_NAME  # listed on its own row (Documents mode)
    model_folders = [p for p in models.iterdir() if p.is_dir() and p != embedding] if models.is_dir() else []
    backups = sorted(data_dir.glob(f"{CHATS_DB}.corrupt-*"))
    downloads = data_dir / DOWNLOADS
    items = [DataItem("chats", "Chats (messages and answers)", data_dir / CHATS_DB, _database_size(data_dir),
                      len(store.list_chats()), True)]
    if store.count_settings():
        items.append(DataItem("settings", "Settings (stored in the chat database)", data_dir / CHATS_DB, 0,
                              store.count_settings(), True))
    if model_folders:
        items.append(DataItem("models", "Models exported or downloaded by cpmdesk", models,
                              folder_size(models) - folder_size(embedding), len(model_folders), True))
    if downloads.is_dir() and any(downloads.iterdir()):
        items.append(DataItem("downloads", "Downloaded model files (kept to convert again or resume)", downloads,
                              folder_size(downloads), len(download_folders(data_dir)), True))
    if backups:
        items.append(DataItem("backups", "Backups of damaged chat databases", data_dir,
                              sum(folder_size(p) for p in backups), len(backups), True))
    if (data_dir / DOCS_INDEX).exists():
        items.append(DataItem("docs_index", "Document index (passages of your documents)", data_dir / DOCS_INDEX,
                              _database_size(data_dir, DOCS_INDEX), _indexed_files(data_dir / DOCS_INDEX), True))
    reports = sorted(p for p in (data_dir / REPORTS).iterdir() if p.is_dir()) if (data_dir / REPORTS).is_dir() else []
    if reports:
        items.append(DataItem("reports", "Reports written from your documents (with the passages they cite)",
                              data_dir / REPORTS, folder_size(data_dir / REPORTS), len(reports), True))
    logs = sorted(p for p in (data_dir / LOGS).glob("*.log*") if p.is_file())
    if logs:
        items.append(DataItem("logs", "Log files (errors and timings; no prompts or answers by default)",
                              data_dir / LOGS, sum(folder_size(p) for p in logs), len(logs), True))
    if embedding.is_dir():
        items.append(DataItem("embedding_model", "Document embedding model (rebuilt on next use)", embedding,
                              folder_size(embedding), 1, True))
    return items


def delete_chats(store: ChatStore) -> None:
    """Delete every chat and message, and compact the file so no deleted text stays on disk."""
    store.delete_all_chats()


def delete_settings(store: ChatStore) -> None:
    """Forget every setting (the defaults apply again)."""
    store.delete_all_settings()


def delete_models(data_dir: Path, keep: Path | None = None) -> list[Path]:
    """Delete the model folders in the data folder except `keep` (the loaded one) and the document embedding model
    (its own row); returns what was deleted."""
    models = data_dir / "models"
    deleted = []
    for folder in sorted(models.iterdir()) if models.is_dir() else []:
        if folder.name == EMBEDDING_MODEL_NAME or (keep is not None and folder.resolve() == Path(keep).resolve()):
            continue
        shutil.rmtree(folder) if folder.is_dir() else folder.unlink()
        deleted.append(folder)
    return deleted


def download_folders(data_dir: Path) -> list[Path]:
    """The downloaded repos, one folder each: the app's (e.g. openbmb--MiniCPM4-0.5B) and cpmdesk-export's
    (hub/models--openbmb--MiniCPM4-0.5B)."""
    downloads = data_dir / DOWNLOADS
    folders = [p for p in downloads.iterdir() if p.is_dir() and p.name != HUB_CACHE] if downloads.is_dir() else []
    hub = downloads / HUB_CACHE
    folders += [p for p in hub.glob("models--*") if p.is_dir()] if hub.is_dir() else []
    return sorted(folders)


def delete_downloads(data_dir: Path) -> None:
    """Delete every downloaded repo, finished or partial (the converted models stay)."""
    shutil.rmtree(data_dir / DOWNLOADS, ignore_errors=True)


def delete_backups(data_dir: Path) -> None:
    """Delete the kept copies of damaged chat databases."""
    for path in data_dir.glob(f"{CHATS_DB}.corrupt-*"):
        path.unlink()


def delete_docs_index(data_dir: Path, store: ChatStore) -> int:
    """Delete the document index (close it first: Documents mode keeps it open) and the passage text copied into
    the answers' stored sources; returns how many answers lost their copies."""
    for suffix in SQLITE_SUFFIXES:
        (data_dir / f"{DOCS_INDEX}{suffix}").unlink(missing_ok=True)
    return store.forget_sources(None)


def delete_embedding_model(data_dir: Path) -> None:
    """Delete the document embedding model's folder (it is exported again, or the bundled copy used, on next use)."""
    shutil.rmtree(data_dir / "models" / EMBEDDING_MODEL_NAME, ignore_errors=True)


def delete_reports(data_dir: Path) -> None:
    """Delete every report the app wrote or began, with the passage text their state files keep."""
    shutil.rmtree(data_dir / REPORTS, ignore_errors=True)


def delete_logs(data_dir: Path) -> None:
    """Delete the log files (the running program starts its file again on its next record)."""
    release_log_files()
    for path in (data_dir / LOGS).glob("*.log*"):
        if path.is_file():
            path.unlink()
