"""One stateful LLM IR driven token by token, for the engine's own assisted decoding (app/engine/assisted.py).

Attention runs in cpmdesk's InfLLMv2Attention op: the export's sparse op, or for any other model the same op put
in at load time in dense mode (never sparse). The op owns the KV cache, which gives the loop three
things OpenVINO's own stateful attention does not:

* rewinding is free: feeding tokens at a position below the cached length drops the rows after it, where the
  state API can only read and rewrite a whole cache (tens of ms per rejected draft, growing with the context);
* a chat keeps its cache between answers: the next turn's prompt feeds only what follows the cached tokens it
  starts with, and an edited turn truncates the cache to the common prefix (resume());
* a row's result does not depend on how many rows a step feeds, so a k-token verification step gives bit for
  bit the logits of k one-token steps, and greedy answers with a draft are the target's own.

Steps of a fixed size can also run on a static-shape copy of the model (`static_rows`): OpenVINO's CPU plugin
then skips the per-call shape work of a dynamic graph, ~20 % of a small draft model's step here
(bench/RESULTS.md, issue 6). The copies share the op's KV cache (its `cache` attribute) but not their weights,
so each one costs the model's weight memory again: worth it for a draft, not for a large target.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.engine.cpu_features import decode_first
from export.sparse_attention import OP_TYPE, rewrite
from export.ternary import expand_int2
from ov_ops.sparse_config import SparseAttentionConfig

DENSE = SparseAttentionConfig(dense_len=1 << 40)  # the op in dense mode: plain causal attention at any length
LOGITS_COUNT = "logits_count"
ACTIVATION_GROUP = "DYNAMIC_QUANTIZATION_GROUP_SIZE"
_COMPRESSED = ("u4", "i4", "u8", "i8")  # weight types the CPU plugin multiplies through dynamic quantization


def _with_logits_count(model) -> None:
    """Compute the LM head for the last `logits_count` positions only (a prompt needs one, a verification k+1)."""
    import openvino as ov
    import openvino.opset14 as ops

    head = model.outputs[0].get_node().input_value(0).get_node()
    if head.get_type_name() != "MatMul":
        raise ValueError(f"the IR's logits do not come from a MatMul (found {head.get_type_name()})")
    count = ops.parameter([1], ov.Type.i64, name=LOGITS_COUNT)
    count.output(0).get_tensor().set_names({LOGITS_COUNT})
    last = ops.slice(head.input_value(0), ops.negative(count), np.array([np.iinfo(np.int64).max]), np.array([1]),
                     np.array([1]))
    head.input(0).replace_source_output(last.output(0))
    model.add_parameters([count])
    model.validate_nodes_and_infer_types()


def target_properties(manifest: dict, device: str) -> dict:
    """CPU plugin settings for a target verified in steps of several rows: its activations quantized in groups of
    the weights' int4 group size instead of the plugin's default 32. A 4-row verification step of the Qwen2.5 1.5B
    int4 target then costs ~1.05 one-row steps instead of ~1.3, a one-row step the same, and the logits move less
    than int4 weights already move them (top-1 agreement with f32 0.967 against 0.974; bench/RESULTS.md, issue 6).
    StatefulLM drops the setting for a model where it would break bit-for-bit verification (see _row_invariant)."""
    quantization = manifest.get("quantization") or {}
    group = int(quantization.get("group_size") or 0)
    if device != "CPU" or quantization.get("weight_format") != "int4" or group < 32 or group % 32:
        return {}
    return {ACTIVATION_GROUP: group}


def pipeline_activation_groups(manifest: dict, config: dict, device: str) -> dict:
    """target_properties() for openvino-genai's plain pipeline, where the model's own sizes (config.json) stand for
    its matmuls' input sizes: the weights' group only where it divides the hidden and MLP sizes. With f32
    activations it reads prompts 20-30 % faster than the plugin's groups of 32 and decodes as fast or a little
    faster (issue 22: SmolLM2-135M at 64, the MiniCPM4-0.5B shape and Qwen2.5-Coder-1.5B at 128); a group that
    does not divide (SmolLM2's 576 with 128) is slower than the default."""
    properties = target_properties(manifest, device)
    group = properties.get(ACTIVATION_GROUP)
    sizes = [config.get("hidden_size"), config.get("intermediate_size")]
    if group and all(isinstance(size, int) and size % group == 0 for size in sizes):
        return properties
    return {}


class StatefulLM:
    """A compiled stateful LLM holding one sequence: feed() appends tokens, rewind() drops the newest ones.

    `static_rows`: step sizes that also get a static-shape copy (see the module docstring)."""

    def __init__(self, xml: Path, device: str, library: str, properties: dict | None = None,
                 static_rows: Sequence[int] = ()) -> None:
        import openvino as ov

        core = ov.Core()
        core.add_extension(library)
        model = core.read_model(str(xml))
        expand_int2(model)  # 2-bit ternary codes (--ternary int2) computed as 4-bit ones: the fast kernels'
        if not any(op.get_type_name() == OP_TYPE for op in model.get_ops()):
            rewrite(model, DENSE, Path(library))
        _with_logits_count(model)
        # f32 on AMX CPUs also keeps one-row and several-row steps bit for bit alike, which the assisted
        # loop's verification needs (bf16 AMX kernels round them up to ~0.7 apart on SmolLM2's logits)
        self.properties = decode_first(_row_invariant(model, properties or {}), device)
        if static_rows:
            cache = uuid.uuid4().hex
            for op in model.get_ops():
                if op.get_type_name() == OP_TYPE:
                    op.set_attribute("cache", cache)
        # Inputs the op left without a consumer (attention_mask, beam_idx) get a constant one-element tensor: a
        # new input shape costs OpenVINO's CPU plugin a pass over the whole graph (~15 % of a step here).
        self._constant = {name: np.ones((1, 1), np.int64) if name == "attention_mask" else np.zeros(1, np.int32)
                          for param in model.get_parameters() for name in param.output(0).get_names()
                          if name in ("attention_mask", "beam_idx")
                          and not param.output(0).get_target_inputs()}
        self._inputs = {name for port in model.inputs for name in port.get_names()}
        self._static = {rows: _compile(core, _static_copy(model, rows), device, self.properties)
                        for rows in sorted(set(static_rows))}
        self._dynamic = _compile(core, model, device, self.properties)
        self.tokens: list[int] = []  # the sequence the op's KV cache holds

    @property
    def length(self) -> int:
        """Tokens in the sequence."""
        return len(self.tokens)

    def feed(self, tokens: Sequence[int], keep: int = 1) -> np.ndarray:
        """Append `tokens` at position `length`; returns the logits of the last `keep` of them, [keep, vocab]."""
        n = len(tokens)
        feeds = {"input_ids": np.asarray([tokens], np.int64),
                 "position_ids": np.arange(self.length, self.length + n, dtype=np.int64)[None],
                 LOGITS_COUNT: np.asarray([min(keep, n)], np.int64)}
        feeds.update(self._constant)
        if "attention_mask" in self._inputs and "attention_mask" not in self._constant:
            feeds["attention_mask"] = np.ones((1, self.length + n), np.int64)
        if "beam_idx" in self._inputs and "beam_idx" not in self._constant:
            feeds["beam_idx"] = np.zeros(1, np.int32)
        request = self._static.get(n, self._dynamic)
        request.infer(feeds)
        self.tokens.extend(int(t) for t in tokens)
        return request.get_tensor("logits").data[0]

    def rewind(self, length: int) -> None:
        """Keep the first `length` tokens (the op drops the rest when the next feed starts there)."""
        del self.tokens[max(0, length):]

    def reset(self) -> None:
        """Start a new sequence (the next feed starts at position 0, which the op takes as a new sequence)."""
        self.tokens = []

    def resume(self, prompt: Sequence[int]) -> int:
        """Keep the cached tokens `prompt` starts with (at most all but its last, whose logits a feed must give)
        and drop the rest; returns how many are kept, so the caller feeds only `prompt[kept:]`."""
        kept = min(common_prefix(self.tokens, prompt), len(prompt) - 1)
        self.rewind(kept)
        return kept


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    mismatch = np.flatnonzero(np.asarray(a[:n], np.int64) != np.asarray(b[:n], np.int64))
    return int(mismatch[0]) if mismatch.size else n


def _static_copy(model, rows: int):
    """A copy of `model` whose token inputs are fixed at [1, rows]."""
    import openvino as ov

    copy = model.clone()
    copy.reshape({port: ov.PartialShape([1, rows]) for port in copy.inputs
                  if port.get_names() & {"input_ids", "position_ids"}})
    return copy


def _compile(core, model, device: str, properties: dict):
    return core.compile_model(model, device, properties).create_infer_request()


def _row_invariant(model, properties: dict) -> dict:
    """`properties` without an activation quantization group that does not divide the input size of every matmul
    with compressed weights: the CPU plugin then quantizes the remainder differently for one row and for several
    (SmolLM2's 576 with groups of 128: logits off by up to 1.4), which would break the verification's identity."""
    group = properties.get(ACTIVATION_GROUP)
    if not group:
        return properties
    sizes = set()
    for op in model.get_ops():
        if op.get_type_name() != "MatMul" or not op.get_input_partial_shape(0)[-1].is_static:
            continue
        source = op.input_value(1).get_node()
        while source.get_type_name() in ("Reshape", "Multiply", "Subtract", "Convert", "Transpose"):
            source = source.input_value(0).get_node()
        if source.get_type_name() == "Constant" and source.get_element_type().get_type_name() in _COMPRESSED:
            sizes.add(op.get_input_partial_shape(0)[-1].get_length())
    if all(size % group == 0 for size in sizes):
        return properties
    return {key: value for key, value in properties.items() if key != ACTIVATION_GROUP}
