"""Model downloads into the data folder through huggingface_hub's real code, from a local stand-in for the hub."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.models.catalogue import CATALOGUE, can_run, find_entry
from app.models.download import DownloadCancelled, download_model
from export.errors import NotEnoughDiskError
from tests.hub_server import FakeHub

REPO_ID = "cpmdesk-tests/tiny-minicpm"
_GIB = 1 << 30


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts and not p.name.startswith(".")}


def _served(hub: FakeHub) -> dict[str, str]:
    return {name: etag for (repo, name), etag in hub.etags.items() if repo == REPO_ID}


def test_download_gives_the_served_files_with_progress(tiny_minicpm, tmp_path) -> None:
    reports = []
    with FakeHub({REPO_ID: tiny_minicpm}) as hub:
        folder = download_model(REPO_ID, folder=tmp_path / "dl", endpoint=hub.url, on_progress=reports.append)
        assert _digests(folder) == _served(hub)
    assert reports[-1].done == reports[-1].total == sum(hub.files(REPO_ID).values())
    assert all(a.done <= b.done for a, b in itertools.pairwise(reports))


def test_killed_download_resumes_to_identical_files(tiny_minicpm, tmp_path) -> None:
    folder = tmp_path / "data" / "downloads" / REPO_ID.replace("/", "--")
    with FakeHub({REPO_ID: tiny_minicpm}, rate=20 * 2**20) as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "CPMDESK_DATA_DIR": str(tmp_path / "data")}
        code = f"from app.models.download import download_model; download_model({REPO_ID!r})"
        child = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[1])
        deadline = time.monotonic() + 120
        partial = folder / ".cache" / "cpmdesk-download"
        while time.monotonic() < deadline:
            sizes = [p.stat().st_size for p in partial.rglob("*.incomplete")] if partial.is_dir() else []
            if sizes and max(sizes) > 4 * 2**20:
                break
            time.sleep(0.05)
        child.kill()
        child.wait()
        partial_bytes = sum(p.stat().st_size for p in partial.rglob("*.incomplete"))
        assert 0 < partial_bytes < (tiny_minicpm / "model.safetensors").stat().st_size, "killed mid-file"
        sent_before = hub.bytes_sent
        hub.rate = None
        download_model(REPO_ID, folder=folder, endpoint=hub.url)
        assert _digests(folder) == _served(hub)
        resent = hub.bytes_sent - sent_before
        assert resent < sum(hub.files(REPO_ID).values()) - partial_bytes + 2**20, "resumed, not started over"
    assert not list(partial.rglob("*.incomplete"))


def test_cancel_removes_every_partial_file(tiny_minicpm, tmp_path) -> None:
    folder = tmp_path / "dl"
    cancel = threading.Event()

    def cancel_after_some_bytes(progress) -> None:
        if progress.done > 2 * 2**20:
            cancel.set()

    with FakeHub({REPO_ID: tiny_minicpm}, rate=20 * 2**20) as hub:
        with pytest.raises(DownloadCancelled):
            download_model(REPO_ID, folder=folder, endpoint=hub.url, cancel=cancel,
                           on_progress=cancel_after_some_bytes)
        assert hub.bytes_sent > 0
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_refused_before_any_byte(tiny_minicpm, tmp_path) -> None:
    folder = tmp_path / "dl"
    with FakeHub({REPO_ID: tiny_minicpm}) as hub:
        with pytest.raises(NotEnoughDiskError, match="Not enough disk space to download"):
            download_model(REPO_ID, folder=folder, endpoint=hub.url, disk_free=lambda _p: 10 * 2**20)
        assert hub.bytes_sent == 0
    assert not folder.exists()


def test_unknown_repo_is_the_exporters_message(tiny_minicpm, tmp_path) -> None:
    from export.errors import ExportError

    with FakeHub({REPO_ID: tiny_minicpm}) as hub, pytest.raises(ExportError, match="was not found on the Hugging"):
        download_model("cpmdesk-tests/absent", folder=tmp_path / "dl", endpoint=hub.url)


def test_catalogue_figures_follow_the_configs() -> None:
    small, big, long_context = CATALOGUE
    assert 0.42e9 < small.params < 0.45e9 and 0.85e9 < small.download_bytes < 0.9e9
    assert 8.0e9 < big.params < 8.3e9
    assert (big.context_length, long_context.context_length) == (32768, 65536)
    # KV cache at 8192 tokens: 2 x 32 layers x 2 KV heads x 128 x 2 bytes x 8192
    assert big.kv_cache_bytes() == 2 * 32 * 2 * 128 * 2 * 8192
    assert 4 * _GIB < big.ram_bytes() < 7 * _GIB
    assert find_entry("OPENBMB/minicpm4-8b") is big


def test_can_run_says_why_not() -> None:
    big = find_entry("openbmb/MiniCPM4-8B")
    assert can_run(big, 64 * _GIB, 100 * _GIB).ok
    low_ram = can_run(big, 4 * _GIB, 100 * _GIB)
    assert not low_ram.ok and "memory" in low_ram.reason
    low_disk = can_run(big, 64 * _GIB, 10 * _GIB)
    assert not low_disk.ok and "disk" in low_disk.reason


def test_cancel_says_what_it_deleted(tiny_minicpm, tmp_path) -> None:
    cancel = threading.Event()
    with FakeHub({REPO_ID: tiny_minicpm}, rate=20 * 2**20) as hub, pytest.raises(DownloadCancelled) as raised:
        download_model(REPO_ID, folder=tmp_path / "dl", endpoint=hub.url, cancel=cancel,
                       on_progress=lambda p: cancel.set() if p.done > 2**20 else None)
    assert str(raised.value) == (f"Cancelled: the download of {REPO_ID} stopped and the files it had fetched "
                                 "were deleted")
    assert list(tmp_path.iterdir()) == []


EXPORTER_DOWNLOAD = """
import sys
from export.source import download_from_hub
folder, commit = download_from_hub(sys.argv[1], None, None)
print(folder)
"""


def test_exporter_hub_downloads_land_in_the_data_folder_and_are_listed(tiny_minicpm, tmp_path) -> None:
    """cpmdesk-export's hub downloads go to <data>/downloads/hub (not the shared Hugging Face cache), where Privacy
    & data counts and deletes them."""
    from app import data_inventory

    data, home = tmp_path / "data", tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "HF_HUB_CACHE")}
    with FakeHub({REPO_ID: tiny_minicpm}) as hub:
        env.update(HF_ENDPOINT=hub.url, CPMDESK_DATA_DIR=str(data), HOME=str(home), XDG_CACHE_HOME=str(home / "c"))
        done = subprocess.run([sys.executable, "-c", EXPORTER_DOWNLOAD, REPO_ID], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder.is_relative_to(data / "downloads" / "hub") and (folder / "config.json").is_file()
    assert not home.exists() or not any(home.rglob("*.safetensors")), "nothing in the shared Hugging Face cache"
    repos = data_inventory.download_folders(data)
    assert [p.name for p in repos] == [f"models--{REPO_ID.replace('/', '--')}"]
    data_inventory.delete_downloads(data)
    assert not (data / "downloads").exists()
