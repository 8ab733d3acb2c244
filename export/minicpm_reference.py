"""MiniCPM's dense forward in PyTorch, written from the model's published math (muP scales, LongRoPE, GQA).

Used to validate exports against MiniCPM itself and to build small MiniCPM-architecture test models.
Parameter names match the official checkpoints, so `load_state_dict` takes their safetensors as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional

from export.model_spec import embedding_scale, logit_scale, require_dense_silu, residual_scale, rope_spec


class RMSNorm(nn.Module):
    """Root-mean-square norm computed in fp32, cast back, then scaled by the weight."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """NeoX-style (rotate_half) rotary embedding, in fp32."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


class Attention(nn.Module):
    """Causal grouped-query attention; KV head j serves query heads j*G … j*G+G-1."""

    def __init__(self, hidden: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, hidden // heads
        self.q_proj = nn.Linear(hidden, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, hidden, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        group = self.heads // self.kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        out = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))


class MLP(nn.Module):
    """SwiGLU feed-forward (MiniCPMReference refuses configs with another activation)."""

    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inner, bias=False)
        self.up_proj = nn.Linear(hidden, inner, bias=False)
        self.down_proj = nn.Linear(inner, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(functional.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-norm attention and MLP blocks (residual scaling is applied by the model)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        hidden, eps = int(config["hidden_size"]), float(config.get("rms_norm_eps", 1e-6))
        heads = int(config["num_attention_heads"])
        self.self_attn = Attention(hidden, heads, int(config.get("num_key_value_heads", heads)))
        self.mlp = MLP(hidden, int(config["intermediate_size"]))
        self.input_layernorm = RMSNorm(hidden, eps)
        self.post_attention_layernorm = RMSNorm(hidden, eps)


class MiniCPMReference(nn.Module):
    """MiniCPMForCausalLM, dense attention: `forward(input_ids) -> logits` (fp32)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        require_dense_silu(config, "minicpm")
        self.config = config
        hidden, vocab = int(config["hidden_size"]), int(config["vocab_size"])
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(vocab, hidden)
        self.model.layers = nn.ModuleList(DecoderLayer(config) for _ in range(int(config["num_hidden_layers"])))
        self.model.norm = RMSNorm(hidden, float(config.get("rms_norm_eps", 1e-6)))
        self.lm_head = nn.Linear(hidden, vocab, bias=False)
        if config.get("tie_word_embeddings", False):
            self.lm_head.weight = self.model.embed_tokens.weight

    def rope(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin tables for positions 0..length-1, from the one definition in export.model_spec."""
        head_dim = int(self.config["hidden_size"]) // int(self.config["num_attention_heads"])
        cos, sin = rope_spec(self.config, head_dim).tables(np.arange(length))
        return torch.from_numpy(cos), torch.from_numpy(sin)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        res = residual_scale(self.config)
        h = self.model.embed_tokens(input_ids) * embedding_scale(self.config)
        cos, sin = self.rope(input_ids.shape[1])
        for layer in self.model.layers:
            h = h + res * layer.self_attn(layer.input_layernorm(h), cos, sin)
            h = h + res * layer.mlp(layer.post_attention_layernorm(h))
        return self.lm_head(self.model.norm(h) * logit_scale(self.config)).float()


def load_reference(folder: Path, dtype: torch.dtype | None = None) -> MiniCPMReference:
    """The reference model with the (unfolded) weights of a MiniCPM checkpoint folder."""
    config = json.loads((folder / "config.json").read_text())
    state: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(file)))
    tied = "lm_head.weight" not in state
    model = MiniCPMReference({**config, "tie_word_embeddings": tied or config.get("tie_word_embeddings", False)})
    if tied:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, strict=True)
    return model.to(dtype or torch.float32).eval()
