"""The source model's forward pass in NumPy, streamed weight by weight: the torch-free validation reference.

It computes the checkpoint's own math from its own (unfolded) weights: MiniCPM's muP scalars are applied
where the model applies them, not folded, so validation compares the IR's fold with MiniCPM itself. All
prompts go through each layer together, so every weight is read once; memory holds the activations and one
chunk of one weight.
"""

from __future__ import annotations

import numpy as np

from export.model_spec import DecoderSpec
from export.tensor_reader import TensorReader, read_tensor
from export.weight_compression import transformed_chunks

_QUERY_BLOCK = 128  # causal attention a block of queries at a time: only the keys before them


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x [tokens, heads, head_dim]; cos/sin [tokens, head_dim]."""
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos[:, None, :] + rotated * sin[:, None, :]


class NumpyReference:
    """`logits(prompts)` of a checkpoint read through a TensorReader."""

    def __init__(self, spec: DecoderSpec, reader: TensorReader) -> None:
        self.spec, self.reader = spec, reader

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        """x @ W.T (+ bias), W read a chunk of rows at a time."""
        shape = self.reader.shape(name)
        out = np.empty((x.shape[0], shape[0]), np.float32)
        for start, stop, rows in transformed_chunks(lambda a, b: self.reader.rows(name, a, b), shape):
            out[:, start:stop] = x @ rows.T
        bias = name.replace(".weight", ".bias")
        if self.reader.has(bias):
            out += read_tensor(self.reader, bias)
        return out

    def _attention(self, x: np.ndarray, prefix: str, lengths: list[int], cos: np.ndarray,
                   sin: np.ndarray) -> np.ndarray:
        spec = self.spec
        q = self._linear(x, prefix + "q_proj.weight").reshape(-1, spec.heads, spec.head_dim)
        k = self._linear(x, prefix + "k_proj.weight").reshape(-1, spec.kv_heads, spec.head_dim)
        v = self._linear(x, prefix + "v_proj.weight").reshape(-1, spec.kv_heads, spec.head_dim)
        if spec.qk_norm:
            q = _rms_norm(q, read_tensor(self.reader, prefix + "q_norm.weight"), spec.eps)
            k = _rms_norm(k, read_tensor(self.reader, prefix + "k_norm.weight"), spec.eps)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        out = np.empty_like(q)
        start = 0
        for length in lengths:
            for first in range(0, length, _QUERY_BLOCK):
                last = min(length, first + _QUERY_BLOCK)
                out[start + first:start + last] = self._causal_block(q[start + first:start + last],
                                                                     k[start:start + last], v[start:start + last])
            start += length
        return self._linear(out.reshape(x.shape[0], -1), prefix + "o_proj.weight")

    def _causal_block(self, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Softmax attention of the last len(q) positions of a prompt over its first len(k) ([n, heads, d] in and
        out): the query heads that share a KV head go through it together, [kv, group * q, d] @ [kv, d, k]."""
        spec = self.spec
        rows, keys, group = q.shape[0], k.shape[0], spec.heads // spec.kv_heads
        heads_q = q.reshape(rows, spec.kv_heads, group, spec.head_dim).transpose(1, 2, 0, 3)
        scores = np.matmul(heads_q.reshape(spec.kv_heads, group * rows, spec.head_dim), k.transpose(1, 2, 0))
        scores = scores.reshape(spec.kv_heads, group, rows, keys)  # batched BLAS (einsum is not)
        scores *= np.float32(spec.attention_scale)
        scores[..., keys - rows:] += np.triu(np.full((rows, rows), -np.inf, np.float32), 1)
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        mixed = np.matmul(scores.reshape(spec.kv_heads, group * rows, keys), v.transpose(1, 0, 2))
        return mixed.reshape(spec.kv_heads, group, rows, spec.head_dim).transpose(2, 0, 1, 3).reshape(
            rows, spec.heads, spec.head_dim)

    def logits(self, prompts: list[list[int]]) -> list[np.ndarray]:
        """Logits [len(ids), vocab] (f32) for each prompt."""
        spec, reader = self.spec, self.reader
        ids = np.concatenate([np.asarray(p, np.int64) for p in prompts])
        lengths = [len(p) for p in prompts]
        positions = np.concatenate([np.arange(n) for n in lengths])
        cos, sin = spec.rope.tables(positions)
        embed = "model.embed_tokens.weight"
        h = np.stack([reader.rows(embed, int(i), int(i) + 1)[0] for i in ids]) * np.float32(spec.emb_scale)
        for layer in range(spec.layers):
            prefix = f"model.layers.{layer}."
            x = _rms_norm(h, read_tensor(reader, prefix + "input_layernorm.weight"), spec.eps)
            h = h + np.float32(spec.residual_scale) * self._attention(x, prefix + "self_attn.", lengths, cos, sin)
            x = _rms_norm(h, read_tensor(reader, prefix + "post_attention_layernorm.weight"), spec.eps)
            gate = _silu(self._linear(x, prefix + "mlp.gate_proj.weight"))
            mlp = gate * self._linear(x, prefix + "mlp.up_proj.weight")
            h = h + np.float32(spec.residual_scale) * self._linear(mlp, prefix + "mlp.down_proj.weight")
        h = _rms_norm(h, read_tensor(reader, "model.norm.weight"), spec.eps) * np.float32(spec.logit_scale)
        head = "lm_head.weight" if reader.has("lm_head.weight") else embed
        logits = self._linear(h, head)
        return np.split(logits, np.cumsum(lengths)[:-1])
