"""The C++ InfLLMv2Attention op against the NumPy reference: prefill, decode, GQA, boundaries, rewind, reset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ov_ops.infllm_v2_reference import dense_causal_attention, infllm_v2_attention, to_bf16
from ov_ops.sparse_config import SparseAttentionConfig, SparseConfigError

# Small blocks so a few hundred tokens already exercise selection: 16-token blocks, kernels of 8 with stride 4.
SMALL = {"dense_len": 64, "block_size": 16, "kernel_size": 8, "kernel_stride": 4, "window_size": 32, "topk": 3}
TOL = 2e-5
# The bf16 kernel (CPUs with AVX512-BF16) rounds the prescaled query and the softmax weights to bf16 (8-bit
# mantissa, relative error <= 2^-9) and stores K/V in bf16; products are accumulated in f32. Against the reference
# on the same bf16-rounded K/V its outputs (weighted means of values of magnitude ~1) stay within this bound.
BF16_TOL = 1.5e-2  # measured max 6e-3 (D 16-64, GQA 3-8, both variants)
# "auto" adds, in sparse mode on CPUs with AVX512-VNNI too, int8 QK^T (per-row int8 queries, per-key int8 keys
# smoothed by a fixed mean: scores within ~1 % of their spread, so outputs move a few times more than bf16's) and
# block scoring with bf16 inputs (the reference then scores in bf16 too, so both pick the same blocks).
INT8_TOL = 5e-2  # measured max 2.4e-2 (same shapes)
CPU_FLAGS = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
HAS_BF16 = " avx512_bf16" in CPU_FLAGS
HAS_INT8 = HAS_BF16 and " avx512_vnni" in CPU_FLAGS


@pytest.fixture(scope="session")
def ops_library() -> Path:
    """The op library, built once per source version (ov_ops/build/<digest>/)."""
    from ov_ops.build import library_path

    return library_path()


class OpRunner:
    """One compiled model holding a single InfLLMv2Attention op (its KV state lives across infer calls)."""

    def __init__(self, library: Path, config: SparseAttentionConfig, hq: int, hk: int, d: int,
                 precision: str = "f32") -> None:
        import openvino as ov
        import openvino.opset14 as ops
        from openvino.utils.node_factory import NodeFactory

        factory = NodeFactory("opset14")
        factory.add_extension(str(library))
        q = ops.parameter([1, hq, -1, d], np.float32)
        k = ops.parameter([1, hk, -1, d], np.float32)
        v = ops.parameter([1, hk, -1, d], np.float32)
        pos = ops.parameter([1, -1], np.int64)
        op = factory.create("InfLLMv2Attention", [q.output(0), k.output(0), v.output(0), pos.output(0)],
                            {**config.op_attributes(), "precision": precision})
        core = ov.Core()
        core.add_extension(str(library))
        self.request = core.compile_model(ov.Model([op.output(0)], [q, k, v, pos]), "CPU").create_infer_request()

    def __call__(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, p0: int) -> np.ndarray:
        """q [T,Hq,D], k/v [T,Hk,D] new rows at positions p0.. -> output [T,Hq,D]."""
        t = q.shape[0]
        self.request.infer([q.transpose(1, 0, 2)[None], k.transpose(1, 0, 2)[None], v.transpose(1, 0, 2)[None],
                            np.arange(p0, p0 + t, dtype=np.int64)[None]])
        return self.request.get_output_tensor(0).data[0].transpose(1, 0, 2).copy()


def random_qkv(n: int, hq: int, hk: int, d: int, seed: int, precision: str = "f32"):
    rng = np.random.default_rng(seed)
    f16 = lambda a: a.astype(np.float16).astype(np.float32)  # noqa: E731 - the op stores K/V in f16
    store = f16 if precision == "f32" else to_bf16  # ... or in bf16 on the bf16 / auto paths
    return (rng.standard_normal((n, hq, d)).astype(np.float32), store(f16(rng.standard_normal((n, hk, d)))),
            store(f16(rng.standard_normal((n, hk, d)))))


def run_chunks(library, config, hq, hk, d, chunks, seed=0, precision="f32"):
    """Feed the chunks in order; returns (op outputs, reference outputs, dense outputs) per chunk."""
    q, k, v = random_qkv(sum(chunks), hq, hk, d, seed, precision)
    op = OpRunner(library, config, hq, hk, d, precision)
    got, want, dense = [], [], []
    p0 = 0
    for t in chunks:
        s = slice(p0, p0 + t)
        got.append(op(q[s], k[s], v[s], p0))
        want.append(infllm_v2_attention(q[s], k[:p0 + t], v[:p0 + t], p0, config, bf16_scores=precision == "auto"))
        dense.append(dense_causal_attention(q[s], k[:p0 + t], v[:p0 + t], p0))
        p0 += t
    return got, want, dense


@pytest.mark.parametrize("variant,lse", [("minicpm4", "exact"), ("minicpm4", "coarse"),
                                         ("minicpm4.1", "exact"), ("minicpm4.1", "coarse")])
@pytest.mark.parametrize("hq,hk,d", [(8, 2, 16), (4, 4, 32), (6, 2, 16)])
def test_op_matches_reference_prefill_and_decode(ops_library, variant, lse, hq, hk, d) -> None:
    config = SparseAttentionConfig(variant=variant, lse=lse, **SMALL)
    # prefill past dense_len ending one short of a block, decode across block/kernel boundaries, a chunk, decode
    chunks = [79, 1, 1, 2, 1, 45, 1, 1, 64, 1]
    got, want, dense = run_chunks(ops_library, config, hq, hk, d, chunks, seed=hq * 10 + d)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=TOL, rtol=0)
    # the sparse path really dropped blocks: the last steps are not dense attention
    assert np.abs(got[-1] - dense[-1]).max() > 1e-2
    assert np.abs(got[-2] - dense[-2]).max() > 1e-2


@pytest.mark.skipif(not HAS_BF16, reason="the CPU has no AVX512-BF16 (the op runs its f32 kernel)")
@pytest.mark.parametrize("variant,lse", [("minicpm4", "exact"), ("minicpm4.1", "coarse")])
@pytest.mark.parametrize("hq,hk,d,chunks", [(8, 2, 16, [79, 1, 1, 2, 1, 45, 1, 1, 64, 1]),
                                            (6, 2, 32, [79, 1, 1, 2, 1, 45, 1, 1, 64, 1]),
                                            (16, 2, 64, [333, 1, 2, 1])])
def test_bf16_kernel_matches_reference(ops_library, variant, lse, hq, hk, d, chunks) -> None:
    """The bf16 kernel on an AVX512-BF16 CPU: same blocks, bf16-close outputs, still not dense."""
    config = SparseAttentionConfig(variant=variant, lse=lse, **SMALL)
    got, want, dense = run_chunks(ops_library, config, hq, hk, d, chunks, seed=hq * 10 + d, precision="bf16")
    errors = [np.abs(g - w).max() for g, w in zip(got, want, strict=True)]
    assert max(errors) < BF16_TOL, errors
    assert max(errors) > TOL, "the bf16 kernel did not run (outputs are f32-exact)"
    assert np.abs(got[-1] - dense[-1]).max() > 5 * BF16_TOL


@pytest.mark.skipif(not HAS_INT8, reason="the CPU has no AVX512-BF16 + AVX512-VNNI (no int8 QK^T)")
@pytest.mark.parametrize("variant,lse", [("minicpm4", "exact"), ("minicpm4.1", "coarse")])
@pytest.mark.parametrize("hq,hk,d,chunks", [(8, 2, 16, [79, 1, 1, 2, 1, 45, 1, 1, 64, 1]),
                                            (16, 2, 64, [333, 1, 2, 1])])
def test_auto_precision_matches_bf16_scored_reference_in_sparse_mode_only(ops_library, variant, lse, hq, hk, d,
                                                                       chunks) -> None:
    """The default ("auto") precision: past dense_len int8 QK^T and bf16 block scoring (close to the reference
    scoring in bf16, not the bf16 kernel's outputs), the bf16 kernel below dense_len."""
    config = SparseAttentionConfig(variant=variant, lse=lse, **SMALL)
    got, want, dense = run_chunks(ops_library, config, hq, hk, d, chunks, seed=hq * 10 + d, precision="auto")
    bf16, _, _ = run_chunks(ops_library, config, hq, hk, d, chunks, seed=hq * 10 + d, precision="bf16")
    errors = [np.abs(g - w).max() for g, w in zip(got, want, strict=True)]
    assert max(errors) < INT8_TOL, errors
    assert all(np.abs(g - b).max() > 1e-4 for g, b in zip(got, bf16, strict=True)), "int8 QK^T did not run"
    assert np.abs(got[-1] - dense[-1]).max() > 5 * INT8_TOL

    below = SparseAttentionConfig(variant=variant, lse=lse, **{**SMALL, "dense_len": 4096})
    short = [chunks[0], 1, 1]
    got, _, _ = run_chunks(ops_library, below, hq, hk, d, short, seed=1, precision="auto")
    bf16, _, dense = run_chunks(ops_library, below, hq, hk, d, short, seed=1, precision="bf16")
    for g, b, x in zip(got, bf16, dense, strict=True):
        np.testing.assert_array_equal(g, b)  # dense mode: the bf16 kernel, bit for bit
        assert np.abs(g - x).max() < BF16_TOL


@pytest.mark.parametrize("prefill", [15, 16, 17, 63, 64, 65, 127, 128, 129])
def test_lengths_around_block_and_kernel_boundaries(ops_library, prefill) -> None:
    config = SparseAttentionConfig(dense_len=1, **{k: v for k, v in SMALL.items() if k != "dense_len"})
    got, want, _ = run_chunks(ops_library, config, 4, 2, 16, [prefill, 1, 1, 1], seed=prefill)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=TOL, rtol=0)


@pytest.mark.parametrize("variant", ["minicpm4", "minicpm4.1"])
def test_real_config_shapes(ops_library, variant) -> None:
    """MiniCPM4-0.5B's heads (16 q / 2 kv, head_dim 64) and kernel/block sizes, a small top-k to be sparse."""
    config = SparseAttentionConfig(variant=variant, dense_len=1024, topk=4, window_size=256)
    got, want, dense = run_chunks(ops_library, config, 16, 2, 64, [1100, 1, 1], seed=1)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=TOL, rtol=0)
    assert np.abs(got[-1] - dense[-1]).max() > 1e-2


@pytest.mark.parametrize("variant", ["minicpm4", "minicpm4.1"])
def test_equals_dense_when_topk_covers_all_blocks(ops_library, variant) -> None:
    config = SparseAttentionConfig(variant=variant, **{**SMALL, "dense_len": 1, "topk": 64})
    got, _, dense = run_chunks(ops_library, config, 8, 2, 16, [300, 1, 7, 1], seed=3)
    for g, w in zip(got, dense, strict=True):
        np.testing.assert_allclose(g, w, atol=TOL, rtol=0)


def test_equals_dense_below_dense_len(ops_library) -> None:
    config = SparseAttentionConfig(**{**SMALL, "dense_len": 400, "topk": 1})
    got, _, dense = run_chunks(ops_library, config, 8, 2, 16, [250, 1, 1, 100, 1], seed=4)
    for g, w in zip(got, dense, strict=True):
        np.testing.assert_allclose(g, w, atol=TOL, rtol=0)


def test_rewind_and_reset_follow_the_position(ops_library) -> None:
    """Regenerate (position goes back) truncates the op's cache; position 0 starts over."""
    config = SparseAttentionConfig(**SMALL)
    hq, hk, d = 8, 2, 16
    q, k, v = random_qkv(300, hq, hk, d, seed=5)
    q2, k2, v2 = random_qkv(300, hq, hk, d, seed=6)
    op = OpRunner(ops_library, config, hq, hk, d)
    op(q[:200], k[:200], v[:200], 0)
    op(q[200:203], k[200:203], v[200:203], 200)
    # rewind to 150 (inside a block and a kernel window) with different rows
    k_mix, v_mix = np.concatenate([k[:150], k2[150:190]]), np.concatenate([v[:150], v2[150:190]])
    got = op(q2[150:190], k2[150:190], v2[150:190], 150)
    np.testing.assert_allclose(got, infllm_v2_attention(q2[150:190], k_mix, v_mix, 150, config), atol=TOL, rtol=0)
    got = op(q2[190:191], k2[190:191], v2[190:191], 190)
    k_mix, v_mix = np.concatenate([k_mix, k2[190:191]]), np.concatenate([v_mix, v2[190:191]])
    np.testing.assert_allclose(got, infllm_v2_attention(q2[190:191], k_mix, v_mix, 190, config), atol=TOL, rtol=0)
    # position 0: a new sequence, nothing of the old one is seen
    got = op(q2[:120], k2[:120], v2[:120], 0)
    np.testing.assert_allclose(got, infllm_v2_attention(q2[:120], k2[:120], v2[:120], 0, config), atol=TOL, rtol=0)


def test_position_gap_is_a_clear_error(ops_library) -> None:
    op = OpRunner(ops_library, SparseAttentionConfig(**SMALL), 4, 2, 16)
    q, k, v = random_qkv(20, 4, 2, 16, seed=7)
    op(q[:10], k[:10], v[:10], 0)
    with pytest.raises(RuntimeError, match="position 15 but only 10 tokens are cached"):
        op(q[10:11], k[10:11], v[10:11], 15)


def test_config_validation_says_what_is_wrong() -> None:
    with pytest.raises(SparseConfigError, match="multiple of 16"):
        SparseAttentionConfig(block_size=40)
    with pytest.raises(SparseConfigError, match="unknown sparse-attention setting"):
        SparseAttentionConfig.from_dict({"top_k": 8})
    with pytest.raises(SparseConfigError, match="use_nope"):
        SparseAttentionConfig.from_dict({"use_nope": True})
    assert SparseAttentionConfig(variant="minicpm4.1").lse == "coarse"
    assert SparseAttentionConfig.from_dict({"topk": "32"}).topk == 32


def test_engine_finds_the_op_library_shipped_in_the_bundle(tmp_path, monkeypatch, ops_library) -> None:
    """In the bundle (no ov_ops package, no compiler) the library under sys._MEIPASS/ov-ops is loaded."""
    import shutil

    import app.resources
    from app.engine.sparse_attention import pipeline_properties

    manifest = {"sparse_attention": {"kernel_size": 32}}
    assert pipeline_properties({}) == {}
    (tmp_path / "ov-ops").mkdir()
    shipped = Path(shutil.copy2(ops_library, tmp_path / "ov-ops" / ops_library.name))
    monkeypatch.setattr(app.resources, "_ROOT", tmp_path)
    monkeypatch.delenv("CPMDESK_OV_OPS_LIBRARY", raising=False)
    assert pipeline_properties(manifest) == {"extensions": [str(shipped)], "ATTENTION_BACKEND": "SDPA"}
    monkeypatch.setenv("CPMDESK_OV_OPS_LIBRARY", str(ops_library))  # the override still wins
    assert pipeline_properties(manifest)["extensions"] == [str(ops_library)]
    monkeypatch.delenv("CPMDESK_OV_OPS_LIBRARY")
    shipped.unlink()  # a source checkout: built from ov_ops/
    assert pipeline_properties(manifest)["extensions"] == [str(ops_library)]
