"""NumPy reference of InfLLM v2 attention (the spec's math, written plainly) for testing the C++ op.

Shapes: q [T, Hq, D] for positions p0 .. p0+T-1; K, V [N, Hk, D] with every key so far (N = p0 + T).
"""

from __future__ import annotations

import numpy as np

from ov_ops.sparse_config import SparseAttentionConfig


def _windows(n: int, size: int, stride: int) -> int:
    return (n - size) // stride + 1 if n >= size else 0


def compress(K: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Mean-pooled keys over complete windows: [n, Hk, D]."""
    n = _windows(K.shape[0], size, stride)
    if n == 0:
        return np.zeros((0, *K.shape[1:]), K.dtype)
    return np.stack([K[j * stride:j * stride + size].mean(0) for j in range(n)])


def to_bf16(a: np.ndarray) -> np.ndarray:
    """f32 values rounded to bf16 (nearest even), as f32."""
    bits = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    return bits.astype(np.uint32).view(np.float32)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]


def select_blocks(qg: np.ndarray, C1: np.ndarray, C2: np.ndarray, p: int, N: int, cfg: SparseAttentionConfig,
                  scale: float, bf16_scores: bool = False) -> list[int]:
    """Blocks one KV head attends for the query at position p; qg: [G, D] the group's query heads.
    `bf16_scores`: the prescaled query and the fine compressed keys are rounded to bf16 before their dot
    products (as the op's "auto" precision and the official CUDA kernels score)."""
    ks, st, B, W = cfg.kernel_size, cfg.kernel_stride, cfg.block_size, cfg.window_blocks
    n1 = C1.shape[0]
    vis1 = min(n1, _windows(p + 1, ks, st))
    S = np.zeros(n1)
    if vis1:
        if bf16_scores:
            f = to_bf16((scale * qg).astype(np.float32)).astype(np.float64) @ to_bf16(C1[:vis1]).T.astype(np.float64)
        else:
            f = scale * qg @ C1[:vis1].T  # [G, vis1]
        if cfg.lse == "exact":
            lse = _logsumexp(f)
        else:
            vis2 = min(C2.shape[0], _windows(p + 1, 4 * ks, 4 * st))
            lse = _logsumexp(scale * qg @ C2[:vis2].T) if vis2 else np.full(qg.shape[0], -np.inf)
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(f - lse[:, None])
        e[~np.isfinite(e)] = 0.0
        S[:vis1] = e.sum(0)
    nb, qb, ps = -(-N // B), p // B, B // st
    P = np.full(nb, -np.inf)
    for b in range(nb):
        lo, hi = max(0, b * ps - 1), min(n1, b * ps + ps)
        if hi > lo:
            P[b] = S[lo:hi].max()
        if b < cfg.init_blocks:
            P[b] = np.inf
        elif cfg.variant == "minicpm4" and b > qb - W:
            P[b] = -np.inf
        elif cfg.variant == "minicpm4.1" and qb - W <= b <= qb:
            P[b] = np.inf
    k = min(nb, cfg.topk if cfg.variant == "minicpm4" else cfg.topk + W)
    chosen = np.argsort(-P, kind="stable")[:k].tolist()
    if cfg.variant == "minicpm4":
        return sorted({b for b in chosen if b < qb} | set(range(max(0, qb - W + 1), qb + 1)))
    return sorted(b for b in chosen if b <= qb)


def infllm_v2_attention(q: np.ndarray, K: np.ndarray, V: np.ndarray, p0: int, cfg: SparseAttentionConfig,
                        scale: float | None = None, bf16_scores: bool = False) -> np.ndarray:
    """InfLLM v2 attention of T queries over all N keys; dense causal attention while N < dense_len
    (`bf16_scores`: see select_blocks)."""
    T, Hq, D = q.shape
    N, Hk, _ = K.shape
    G = Hq // Hk
    scale = D ** -0.5 if scale is None else scale
    if cfg.dense_len > N:  # dense_len <= 0: always sparse
        return dense_causal_attention(q, K, V, p0, scale)
    C1 = compress(K, cfg.kernel_size, cfg.kernel_stride)
    C2 = compress(K, 4 * cfg.kernel_size, 4 * cfg.kernel_stride)
    out = np.zeros(q.shape, np.float64)
    for t in range(T):
        p = p0 + t
        for g in range(Hk):
            qg = q[t, g * G:(g + 1) * G].astype(np.float64)
            blocks = select_blocks(qg, C1[:, g], C2[:, g], p, N, cfg, scale, bf16_scores)
            keys = np.concatenate([np.arange(b * cfg.block_size, min(b * cfg.block_size + cfg.block_size, p + 1))
                                   for b in blocks])
            out[t, g * G:(g + 1) * G] = _softmax_attend(qg, K[keys, g], V[keys, g], scale)
    return out


def dense_causal_attention(q: np.ndarray, K: np.ndarray, V: np.ndarray, p0: int, scale: float | None = None):
    """Plain causal GQA attention (KV head g serves query heads g*G .. g*G+G-1)."""
    T, Hq, D = q.shape
    Hk = K.shape[1]
    G = Hq // Hk
    scale = D ** -0.5 if scale is None else scale
    out = np.zeros(q.shape, np.float64)
    for t in range(T):
        p = p0 + t
        for g in range(Hk):
            out[t, g * G:(g + 1) * G] = _softmax_attend(q[t, g * G:(g + 1) * G].astype(np.float64),
                                                        K[:p + 1, g], V[:p + 1, g], scale)
    return out


def _softmax_attend(qg: np.ndarray, K: np.ndarray, V: np.ndarray, scale: float) -> np.ndarray:
    s = scale * qg @ K.T.astype(np.float64)
    w = np.exp(s - s.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)) @ V.astype(np.float64)
