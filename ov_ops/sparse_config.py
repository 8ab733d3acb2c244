"""The InfLLM v2 settings of a model (its `sparse_config`) and how they map onto the op's attributes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

VARIANTS = ("minicpm4", "minicpm4.1")
LSE_MODES = ("exact", "coarse")


class SparseConfigError(ValueError):
    """A sparse-attention setting is invalid; the message says which and why."""


@dataclass(frozen=True)
class SparseAttentionConfig:
    """MiniCPM4's `sparse_config` plus the variant: "minicpm4" (local window outside the top-k, LSE over the fine
    kernels) or "minicpm4.1" (local blocks forced into a top-k of topk + window blocks, coarse LSE)."""

    dense_len: int = 8192
    block_size: int = 64
    kernel_size: int = 32
    kernel_stride: int = 16
    init_blocks: int = 1
    window_size: int = 2048
    topk: int = 64
    variant: str = "minicpm4"
    lse: str = ""  # "" = the variant's own: exact for minicpm4, coarse for minicpm4.1
    use_nope: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise SparseConfigError(f"variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        if not self.lse:
            object.__setattr__(self, "lse", "exact" if self.variant == "minicpm4" else "coarse")
        if self.lse not in LSE_MODES:
            raise SparseConfigError(f"lse must be one of {', '.join(LSE_MODES)}, not {self.lse!r}")
        if self.use_nope:
            raise SparseConfigError("use_nope=true (block scoring on pre-RoPE keys) is not supported by the CPU op")
        if self.block_size <= 0 or self.block_size % 16:
            raise SparseConfigError(f"block_size must be a positive multiple of 16, not {self.block_size}")
        if self.kernel_stride <= 0 or self.block_size % self.kernel_stride:
            raise SparseConfigError(f"block_size ({self.block_size}) must be a multiple of kernel_stride "
                                    f"({self.kernel_stride})")
        if self.kernel_size < self.kernel_stride:
            raise SparseConfigError("kernel_size must be at least kernel_stride")
        if self.window_size < 0 or self.window_size % self.block_size:
            raise SparseConfigError(f"window_size ({self.window_size}) must be a multiple of block_size")
        if self.topk <= 0 or self.init_blocks < 0:
            raise SparseConfigError("topk must be positive and init_blocks non-negative")

    @classmethod
    def from_dict(cls, values: dict) -> SparseAttentionConfig:
        """From a model's `sparse_config` (unknown keys are an error, so typos do not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SparseConfigError(f"unknown sparse-attention setting(s) {', '.join(unknown)}; "
                                    f"known: {', '.join(sorted(known))}")
        try:
            return cls(**{k: (type(getattr(cls, k))(v) if k not in ("variant", "lse") else str(v))
                          for k, v in values.items()})
        except (TypeError, ValueError) as err:
            if isinstance(err, SparseConfigError):
                raise
            raise SparseConfigError(f"bad sparse-attention value: {err}") from err

    @property
    def window_blocks(self) -> int:
        return self.window_size // self.block_size

    def to_dict(self) -> dict:
        return asdict(self)

    def op_attributes(self, scale: float = 0.0, layer: int = 0) -> dict:
        """Attributes of the InfLLMv2Attention op."""
        return {"layer": layer, "dense_len": self.dense_len, "block_size": self.block_size,
                "kernel_size": self.kernel_size, "kernel_stride": self.kernel_stride,
                "init_blocks": self.init_blocks, "window_blocks": self.window_blocks, "topk": self.topk,
                "variant": self.variant, "lse": self.lse, "scale": float(scale)}
