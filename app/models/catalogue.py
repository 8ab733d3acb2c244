"""Models cpmdesk offers to download, with what they cost this machine before anything is downloaded."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from app.engine.engine import DEFAULT_CONTEXT
from app.engine.memory import RUNTIME_OVERHEAD
from export.preflight import bytes_per_param

_GIB = 1 << 30
_KV_BYTES = 2  # f16 keys and values
_DISK_MARGIN = 1.1  # 10 % over the download plus the converted model


@dataclass(frozen=True)
class Shape:
    """What sizes the model: the transformer's dimensions (from the model's config.json)."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden // self.heads

    @property
    def embedding_params(self) -> int:
        """Input embedding plus a separate LM head (the export always stores the head: MiniCPM's fold unties it)."""
        return 2 * self.vocab * self.hidden

    @property
    def params(self) -> int:
        """Parameters in the checkpoint (norms left out: < 0.01 %)."""
        kv = self.kv_heads * self.head_dim
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * kv
        mlp = 3 * self.hidden * self.intermediate
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * (attention + mlp) + embeddings


@dataclass(frozen=True)
class CatalogueEntry:
    """One downloadable model."""

    hub_id: str
    display_name: str
    shape: Shape
    context_length: int  # max_position_embeddings

    @property
    def params(self) -> int:
        """Parameter count, from the shape."""
        return self.shape.params

    @property
    def download_bytes(self) -> int:
        """bf16 safetensors (2 bytes a parameter) plus ~5 MB of tokenizer and config files. Derived from the
        parameter count: bytes the hub lists can differ by a few MB; the download itself checks the real sizes."""
        return self.params * 2 + 5_000_000

    @property
    def folder_name(self) -> str:
        """The converted model's folder in the data folder, e.g. "minicpm4-8b-int4"."""
        return self.hub_id.split("/")[-1].lower() + "-int4"

    def int4_bytes(self) -> int:
        """The int4 export's weights: body at int4 g128 (0.56 byte/param with scales), embeddings and head int8."""
        body = self.params - self.shape.vocab * self.shape.hidden * (1 if self.shape.tied_embeddings else 2)
        return int(body * bytes_per_param("int4") + self.shape.embedding_params * bytes_per_param("int8"))

    def default_context(self) -> int:
        """The context the app opens the model with (the engine's default, capped by the model's)."""
        return min(self.context_length, DEFAULT_CONTEXT)

    def kv_cache_bytes(self, tokens: int | None = None) -> int:
        """Keys and values of every layer for `tokens` tokens (default: the default context)."""
        tokens = self.default_context() if tokens is None else tokens
        shape = self.shape
        return 2 * shape.layers * shape.kv_heads * shape.head_dim * _KV_BYTES * tokens

    def ram_bytes(self) -> int:
        """Memory to chat at the default context after the int4 export: weights, KV cache and the runtime."""
        return self.int4_bytes() + self.kv_cache_bytes() + RUNTIME_OVERHEAD

    def disk_bytes(self) -> int:
        """Disk a download-and-convert needs: the download, the converted model and the converter's scratch
        file (the size of the converted weights), with a margin."""
        return int((self.download_bytes + 2 * self.int4_bytes()) * _DISK_MARGIN)


_MINICPM4_VOCAB = 73448
# MiniCPM4-0.5B: ../shared/data/minicpm4-0.5b/config.json (tied embeddings: 0.43 B parameters, 0.87 GB in bf16).
_MINICPM4_05B = Shape(layers=24, hidden=1024, intermediate=4096, heads=16, kv_heads=2, vocab=_MINICPM4_VOCAB,
                      tied_embeddings=True)
# MiniCPM4-8B and MiniCPM4.1-8B share one shape (their configs on the hub): 8.2 B parameters, 16.4 GB in bf16.
_MINICPM4_8B = Shape(layers=32, hidden=4096, intermediate=16384, heads=32, kv_heads=2, vocab=_MINICPM4_VOCAB,
                     tied_embeddings=False)

CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("openbmb/MiniCPM4-0.5B", "MiniCPM4 0.5B", _MINICPM4_05B, context_length=32768),
    CatalogueEntry("openbmb/MiniCPM4-8B", "MiniCPM4 8B", _MINICPM4_8B, context_length=32768),
    CatalogueEntry("openbmb/MiniCPM4.1-8B", "MiniCPM4.1 8B (hybrid thinking)", _MINICPM4_8B, context_length=65536),
)


def find_entry(hub_id: str) -> CatalogueEntry | None:
    """The catalogue entry of `hub_id` (case-insensitive), or None."""
    return next((entry for entry in CATALOGUE if entry.hub_id.lower() == hub_id.lower()), None)


@dataclass(frozen=True)
class Verdict:
    """Whether this machine can run a model, and why (one line for the UI)."""

    ok: bool
    reason: str


def total_memory() -> int:
    """Physical memory of this machine, in bytes."""
    import psutil

    return int(psutil.virtual_memory().total)


def free_disk(folder: Path) -> int:
    """Free bytes on the disk holding `folder` (its nearest existing parent)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def can_run(entry: CatalogueEntry, total_ram: int, free_disk: int) -> Verdict:
    """Can a machine with `total_ram` bytes of memory and `free_disk` bytes free download, convert and chat with
    `entry`? The converter streams one layer at a time, so chatting, not converting, sets the memory need."""
    ram, disk = entry.ram_bytes(), entry.disk_bytes()
    if ram > total_ram:
        return Verdict(False, f"needs about {ram / _GIB:.1f} GiB of memory; this machine has "
                              f"{total_ram / _GIB:.1f} GiB")
    if disk > free_disk:
        return Verdict(False, f"needs {disk / _GIB:.1f} GiB of free disk for the download and conversion; "
                              f"{free_disk / _GIB:.1f} GiB is free")
    if ram > 0.75 * total_ram:
        return Verdict(True, f"runs, tightly: about {ram / _GIB:.1f} GiB of {total_ram / _GIB:.1f} GiB memory; close "
                             "other programs")
    return Verdict(True, f"runs here: about {ram / _GIB:.1f} GiB of memory, {disk / _GIB:.1f} GiB of disk")
