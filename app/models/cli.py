"""`cpmdesk models list|add|download|remove`: the library's own functions, with progress lines on stderr."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from app.terminal_work import run_cancellable

log = logging.getLogger(__name__)


def add_models_parser(sub) -> None:
    """The `models` subcommand and its actions."""
    models = sub.add_parser("models", help="your chat models: list, add, download, remove")
    actions = models.add_subparsers(dest="models_command", required=True)
    actions.add_parser("list", help="the chat models and the catalogue of downloadable ones")
    add = actions.add_parser("add", help="add an exported folder, an optimum-cli IR folder, or convert a Hugging "
                                         "Face folder or a .gguf file to int4")
    add.add_argument("path", type=Path)
    download = actions.add_parser("download", help="download a model from the Hugging Face Hub into the data "
                                                   "folder, convert it to int4 and add it")
    download.add_argument("hub_id", help="e.g. openbmb/MiniCPM4-0.5B (see `cpmdesk models list`)")
    download.add_argument("--revision", help="branch, tag or commit")
    remove = actions.add_parser("remove", help="delete a model from the data folder (forget an added folder)")
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def run_models(args: argparse.Namespace) -> int:
    """Carry out a `models` action; returns the exit code."""
    from app.models.convert import ConvertCancelled, ConvertError
    from app.models.download import DownloadCancelled
    from app.models.ir_import import IRFolderError
    from app.models.library import LibraryError
    from export.errors import ExportError

    actions = {"list": _list, "add": _add, "download": _download, "remove": _remove}
    try:
        return actions[args.models_command](args)
    except (DownloadCancelled, ConvertCancelled) as err:
        print(err, file=sys.stderr)
        return 130
    except (LibraryError, ConvertError, IRFolderError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _list(_args: argparse.Namespace) -> int:
    from app.models.catalogue import CATALOGUE, can_run, free_disk, total_memory
    from app.models.library import draft_for, list_models
    from app.paths import data_dir

    models = list_models()
    print("Your models:")
    for model in models:
        quant = model.manifest.get("quantization", {}).get("weight_format", "?")
        draft = draft_for(model.folder, models)
        note = f"  [{draft.reason}]" if draft.folder is not None else ""
        print(f"  {model.name}  {model.size_bytes / 2**20:.0f} MiB  {quant}  {model.origin}  from {model.source}{note}")
    if not models:
        print("  (none)")
    print("Downloadable:")
    ram, disk = total_memory(), free_disk(data_dir())
    for entry in CATALOGUE:
        verdict = can_run(entry, ram, disk)
        print(f"  {entry.hub_id}  {entry.params / 1e9:.1f}B parameters, download {entry.download_bytes / 1e9:.2f} GB, "
              f"{entry.ram_bytes() / 2**30:.1f} GiB RAM at {entry.default_context()} tokens, context "
              f"{entry.context_length}: {verdict.reason}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from app.models.library import add

    model = run_cancellable(lambda cancel: add(args.path, on_progress=_print_convert, cancel=cancel), "Cancelling…")
    print(f"Added {model.name} ({model.origin})")
    return 0


def _download(args: argparse.Namespace) -> int:
    from app.models.catalogue import find_entry
    from app.models.convert import ConvertCancelled, cancelled_after_download
    from app.models.download import download_model
    from app.models.library import add

    entry = find_entry(args.hub_id)
    extra = 2 * entry.int4_bytes() if entry is not None else 0

    def work(cancel: threading.Event):
        folder = download_model(args.hub_id, revision=args.revision, cancel=cancel, extra_bytes=extra,
                                on_progress=lambda p: _line(f"[download] {p.describe()}"))
        _line(f"[download] done: {folder.name}")
        try:
            return add(folder, on_progress=_print_convert, cancel=cancel,
                       name=entry.folder_name if entry is not None else None)
        except ConvertCancelled as err:
            raise cancelled_after_download(args.hub_id) from err

    model = run_cancellable(work, "Cancelling…")
    print(f"Added {model.name}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from app.models.library import remove

    asked = not args.yes and sys.stdin.isatty()
    if asked and input(f"Delete {args.name}? [y/N] ").strip().lower() not in ("y", "yes"):
        print("Nothing deleted", file=sys.stderr)
        return 1
    print(remove(args.name))
    return 0


def _print_convert(progress) -> None:
    _line(f"[convert] {progress.describe()}")


def _line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
