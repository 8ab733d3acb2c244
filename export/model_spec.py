"""The decoder's math as numbers: one definition of every model-specific constant, torch-free.

A `DecoderSpec` says everything the streaming graph builder, the NumPy reference and the PyTorch MiniCPM
reference need beyond the weights: widths, norms, which projections carry biases or per-head norms, the
rotary frequencies and MiniCPM's muP scalars. The rotary table and the muP scalars are computed here and
nowhere else.

MiniCPM (muP): ``h0 = embed·scale_emb``; every residual branch is scaled by ``scale_depth/√L``; logits are
``lm_head(norm(h)) · dim_model_base/hidden``. LongRoPE: ``inv_freq / factor[i]`` with one factor list fixed by
the config (long when ``max_position_embeddings > original_max_position_embeddings``, as Hugging Face's
MiniCPM, vLLM and llama.cpp choose it) and cos/sin scaled by ``√(1 + ln(max/orig)/ln orig)`` when max > orig.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from export.errors import UnsupportedArchitectureError

STREAMING_TYPES = ("llama", "mistral", "qwen2", "qwen3", "minicpm")
_ROPE_TYPES = ("default", "llama3", "longrope")


def residual_scale(config: dict) -> float:
    """MiniCPM: scale_depth / sqrt(num_hidden_layers); 1 for other models."""
    if "scale_depth" not in config:
        return 1.0
    return float(config["scale_depth"]) / math.sqrt(int(config["num_hidden_layers"]))


def logit_scale(config: dict) -> float:
    """MiniCPM: dim_model_base / hidden_size, the factor on the final hidden state; 1 for other models."""
    if "dim_model_base" not in config:
        return 1.0
    return float(config["dim_model_base"]) / int(config["hidden_size"])


def embedding_scale(config: dict) -> float:
    """MiniCPM: scale_emb, the factor on the token embeddings; 1 for other models."""
    return float(config.get("scale_emb", 1.0))


@dataclass(frozen=True)
class RopeSpec:
    """Rotary embedding: per-pair inverse frequencies (f64) and the factor cos/sin are multiplied by."""

    inv_freq: np.ndarray = field(repr=False)
    mscale: float = 1.0
    kind: str = "default"

    def tables(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cos, sin [len(positions), head_dim] in f32 (NeoX layout: the half-table repeated)."""
        angles = np.outer(np.asarray(positions, dtype=np.float64), self.inv_freq)
        emb = np.concatenate([angles, angles], axis=-1)
        return (np.cos(emb) * self.mscale).astype(np.float32), (np.sin(emb) * self.mscale).astype(np.float32)


def rope_spec(config: dict, head_dim: int) -> RopeSpec:
    """The rotary frequencies a config asks for; raises for rope types this exporter does not build."""
    params = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    theta = float(params.get("rope_theta", config.get("rope_theta", 10000.0)))
    kind = str(params.get("rope_type", params.get("type", "default")) or "default")
    if kind not in _ROPE_TYPES:
        raise UnsupportedArchitectureError(
            f"rope type {kind!r} is not built by the streaming exporter (it builds {', '.join(_ROPE_TYPES)}); "
            "use --backend optimum")
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    if config.get("rope_freq_divisors"):  # GGUF files store llama 3.1 scaling as per-pair divisors
        return RopeSpec(inv_freq / np.asarray(config["rope_freq_divisors"], dtype=np.float64), 1.0, "llama3")
    if kind == "llama3":
        return RopeSpec(_llama3_scaled(inv_freq, params), 1.0, kind)
    if kind == "longrope":
        factors, mscale = longrope_factors(config)
        return RopeSpec(inv_freq / np.asarray(factors, dtype=np.float64), mscale, kind)
    return RopeSpec(inv_freq, 1.0, kind)


def longrope_factors(config: dict) -> tuple[list[float], float]:
    """LongRoPE's one factor list for this config and its cos/sin scale: the long list iff
    max_position_embeddings > original_max_position_embeddings, fixed for every length."""
    params = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    max_pos = int(config["max_position_embeddings"])
    original = int(params.get("original_max_position_embeddings") or config.get(
        "original_max_position_embeddings") or max_pos)
    factors = params["long_factor"] if max_pos > original else params["short_factor"]
    mscale = math.sqrt(1 + math.log(max_pos / original) / math.log(original)) if max_pos > original else 1.0
    return [float(f) for f in factors], mscale


def _llama3_scaled(inv_freq: np.ndarray, params: dict) -> np.ndarray:
    """Llama 3.1's frequency scaling: long wavelengths divided by `factor`, a smooth blend in between."""
    factor, low, high = float(params["factor"]), float(params["low_freq_factor"]), float(params["high_freq_factor"])
    old = float(params["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv_freq
    smooth = (old / wavelen - low) / (high - low)
    blended = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    scaled = np.where(wavelen > old / low, inv_freq / factor, inv_freq)
    middle = (wavelen >= old / high) & (wavelen <= old / low)
    return np.where(middle, blended, scaled)


@dataclass(frozen=True)
class DecoderSpec:
    """A Llama-family decoder as the streaming exporter builds it."""

    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    eps: float
    rope: RopeSpec
    tied: bool
    qk_norm: bool = False  # qwen3: RMSNorm over each head of q and k before the rotation
    emb_scale: float = 1.0
    residual_scale: float = 1.0
    logit_scale: float = 1.0

    @property
    def head_shares_embedding(self) -> bool:
        """True when the graph can use one constant for both: tied, and no muP scale tells them apart."""
        return self.tied and self.emb_scale == 1.0 and self.logit_scale == 1.0

    @property
    def attention_scale(self) -> float:
        """1/sqrt(head_dim)."""
        return 1.0 / math.sqrt(self.head_dim)


def require_dense_silu(config: dict, model_type: str) -> None:
    """Refuse a config whose MLP is not one dense SiLU-gated block (e.g. MiniCPM-S's fatrelu, MiniCPM-MoE)."""
    activation = config.get("hidden_act", config.get("hidden_activation", "silu"))
    if activation not in ("silu", "swish"):
        raise UnsupportedArchitectureError(f"{model_type} with hidden_act {activation!r} is not supported (only "
                                           "SiLU-gated MLPs are); this checkpoint would export as a different model")
    if int(config.get("num_experts") or config.get("num_local_experts") or 0) > 0:
        raise UnsupportedArchitectureError(f"mixture-of-experts {model_type} models are not supported")


def decoder_spec(config: dict, model_type: str, tied: bool) -> DecoderSpec:
    """The spec of a Hugging Face config; `tied` says whether the head reuses the embedding.

    Refuses what the builder would get silently wrong: another activation, mixture of experts, a rope type
    it does not build, sliding-window attention that matters.
    """
    if model_type not in STREAMING_TYPES:
        raise UnsupportedArchitectureError(f"the streaming exporter builds {', '.join(STREAMING_TYPES)}, not "
                                           f"{model_type!r}; use --backend optimum")
    require_dense_silu(config, model_type)
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    return DecoderSpec(
        model_type=model_type, hidden=hidden, layers=int(config["num_hidden_layers"]), heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads), head_dim=head_dim,
        intermediate=int(config["intermediate_size"]), vocab=int(config["vocab_size"]),
        eps=float(config.get("rms_norm_eps", 1e-6)), rope=rope_spec(config, head_dim), tied=tied,
        qk_norm=model_type == "qwen3", emb_scale=embedding_scale(config), residual_scale=residual_scale(config),
        logit_scale=logit_scale(config))
