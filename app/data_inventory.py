"""What cpmdesk stores on this computer, where, how big it is, and how to delete it (no Qt here)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from app.store import ChatStore

CHATS_DB = "chats.sqlite3"
DOCUMENTS = "documents"


@dataclass(frozen=True)
class DataItem:
    """One kind of stored data."""

    key: str  # chats, settings, models, documents, backups
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


def _database_size(data_dir: Path) -> int:
    return sum(folder_size(data_dir / f"{CHATS_DB}{suffix}") for suffix in ("", "-wal", "-shm"))


def inventory(data_dir: Path, store: ChatStore) -> list[DataItem]:
    """Everything cpmdesk keeps in `data_dir`."""
    models = data_dir / "models"
    model_folders = [p for p in models.iterdir() if p.is_dir()] if models.is_dir() else []
    backups = sorted(data_dir.glob(f"{CHATS_DB}.corrupt-*"))
    documents = data_dir / DOCUMENTS
    items = [
        DataItem("chats", "Chats (messages and answers)", data_dir / CHATS_DB, _database_size(data_dir),
                 len(store.list_chats()), True),
        DataItem("settings", "Settings (stored in the chat database)", data_dir / CHATS_DB, 0,
                 store.count_settings(), True),
        DataItem("models", "Models exported or downloaded by cpmdesk", models, folder_size(models),
                 len(model_folders), True),
        DataItem("backups", "Backups of damaged chat databases", data_dir, sum(folder_size(p) for p in backups),
                 len(backups), True),
    ]
    if documents.exists():
        files = [p for p in documents.rglob("*") if p.is_file()]
        items.append(DataItem("documents", "Documents added to chats", documents, folder_size(documents),
                              len(files), True))
    return items


def delete_chats(store: ChatStore) -> None:
    """Delete every chat and message, and compact the file so no deleted text stays on disk."""
    store.delete_all_chats()


def delete_settings(store: ChatStore) -> None:
    """Forget every setting (the defaults apply again)."""
    store.delete_all_settings()


def delete_models(data_dir: Path, keep: Path | None = None) -> list[Path]:
    """Delete the model folders in the data folder except `keep` (the loaded one); returns what was deleted."""
    models = data_dir / "models"
    deleted = []
    for folder in sorted(models.iterdir()) if models.is_dir() else []:
        if keep is not None and folder.resolve() == Path(keep).resolve():
            continue
        shutil.rmtree(folder) if folder.is_dir() else folder.unlink()
        deleted.append(folder)
    return deleted


def delete_backups(data_dir: Path) -> None:
    """Delete the kept copies of damaged chat databases."""
    for path in data_dir.glob(f"{CHATS_DB}.corrupt-*"):
        path.unlink()


def delete_documents(data_dir: Path) -> None:
    """Delete the documents folder."""
    shutil.rmtree(data_dir / DOCUMENTS, ignore_errors=True)
