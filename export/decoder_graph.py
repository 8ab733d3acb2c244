"""The stateful decoder graph, built with OpenVINO's graph API one layer at a time.

The graph has the form openvino-genai loads and its transformations expect (the form optimum-intel exports):
inputs `input_ids`, `attention_mask`, `position_ids` (i64 [batch, tokens]) and `beam_idx` (i32 [batch]);
output `logits` (f32); per layer two state variables `past_key_values.N.key`/`.value` read through
`Gather(beam_idx)` and `Concat`-ed with the new rows; attention through ScaledDotProductAttention with an explicit
mask and scale, grouped-query heads repeated by Unsqueeze/Broadcast/Reshape. So GenAI's PagedAttention
transformation and cpmdesk's InfLLM v2 pass both apply to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from export.model_spec import DecoderSpec

LAYER_OUTPUT = "model.layers.{}.output"  # the residual stream after layer i: where validation cuts the IR


class LayerWeights(Protocol):
    """Where the builder gets each weight as a graph output (f32)."""

    def matrix(self, name: str):
        """A [out, in] weight (compressed as planned)."""

    def vector(self, name: str):
        """A 1-D tensor (norm weights, biases), f32."""

    def has(self, name: str) -> bool:
        """Whether the checkpoint has this tensor (biases, per-head norms)."""


def _i64(*values: int):
    import openvino.opset13 as ops

    return ops.constant(np.array(values, dtype=np.int64))


def _scalar(value: float):
    import openvino.opset13 as ops

    return ops.constant(np.array(value, dtype=np.float32))


def rms_norm(x, weight, eps: float):
    """weight · x · 1/sqrt(mean(x²) + eps), over the last axis (the op order optimum-intel's IR has)."""
    import openvino.opset13 as ops

    variance = ops.reduce_mean(ops.power(x, _scalar(2.0)), _i64(-1), True)
    inverse = ops.divide(_scalar(1.0), ops.sqrt(ops.add(variance, _scalar(eps))))
    return ops.multiply(weight, ops.multiply(x, inverse))


def _rotate(x, cos, sin):
    """NeoX rotary embedding: x·cos + rotate_half(x)·sin, in the op pattern optimum-intel's IR has (Slice, a
    multiply by -1), which the CPU plugin fuses the same way whatever the number of rows in a step."""
    import openvino.opset13 as ops

    half = x.get_output_partial_shape(0)[3].get_length() // 2
    first = ops.slice(x, _i64(0), _i64(half), _i64(1), _i64(3))
    second = ops.slice(x, _i64(half), _i64(np.iinfo(np.int64).max), _i64(1), _i64(3))
    rotated = ops.concat([ops.multiply(second, _scalar(-1.0)), first], -1)
    return ops.add(ops.multiply(x, cos), ops.multiply(rotated, sin))


class _Inputs:
    """The model's parameters and what every layer shares: rotary tables, mask, batch size."""

    def __init__(self, spec: DecoderSpec) -> None:
        import openvino as ov
        import openvino.opset13 as ops

        self.input_ids = ops.parameter([-1, -1], ov.Type.i64, name="input_ids")
        self.attention_mask = ops.parameter([-1, -1], ov.Type.i64, name="attention_mask")
        self.position_ids = ops.parameter([-1, -1], ov.Type.i64, name="position_ids")
        self.beam_idx = ops.parameter([-1], ov.Type.i32, name="beam_idx")
        for parameter in self.parameters:
            parameter.output(0).set_names({parameter.get_friendly_name()})
        inv_freq = ops.constant(spec.rope.inv_freq.astype(np.float32).reshape(1, -1, 1))
        positions = ops.convert(ops.unsqueeze(self.position_ids, _i64(1)), ov.Type.f32)  # [B, 1, S]
        angles = ops.transpose(ops.matmul(inv_freq, positions, False, False), _i64(0, 2, 1))  # [B, S, head_dim/2]
        table = ops.concat([angles, angles], -1)
        cos, sin = ops.cos(table), ops.sin(table)
        if spec.rope.mscale != 1.0:
            cos, sin = ops.multiply(cos, _scalar(spec.rope.mscale)), ops.multiply(sin, _scalar(spec.rope.mscale))
        self.cos, self.sin = ops.unsqueeze(cos, _i64(1)), ops.unsqueeze(sin, _i64(1))  # [B, 1, S, head_dim]
        batch = ops.gather(ops.shape_of(self.input_ids), _i64(0), ops.constant(np.int64(0)))
        self.cache_init_shape = ops.concat([batch, _i64(spec.kv_heads, 0, spec.head_dim)], 0)
        self.mask = None

    @property
    def parameters(self) -> list:
        """In the order optimum-intel exports them."""
        return [self.input_ids, self.attention_mask, self.position_ids, self.beam_idx]

    def attention_mask_for(self, past):
        """Additive mask [B, 1, S, T]: causal over past + new positions, and the padding of attention_mask."""
        import openvino as ov
        import openvino.opset13 as ops

        if self.mask is None:
            zero = ops.constant(np.int64(0))
            past_len = ops.gather(ops.shape_of(past), _i64(2), zero)
            total = ops.add(past_len, ops.gather(ops.shape_of(self.input_ids), _i64(1), zero))
            step = ops.constant(np.int64(1))
            query_pos = ops.range(ops.squeeze(past_len, _i64(0)), ops.squeeze(total, _i64(0)), step, ov.Type.i64)
            key_pos = ops.range(zero, ops.squeeze(total, _i64(0)), step, ov.Type.i64)
            causal = ops.less_equal(ops.unsqueeze(key_pos, _i64(0)), ops.unsqueeze(query_pos, _i64(1)))
            padding = ops.unsqueeze(ops.not_equal(self.attention_mask, zero), _i64(1, 2))
            self.mask = ops.select(ops.logical_and(causal, padding), _scalar(0.0),
                                   _scalar(float(np.finfo(np.float32).min)))
        return self.mask


def _attention(spec: DecoderSpec, inputs: _Inputs, x, weights: LayerWeights, prefix: str, layer: int,
               assigns: list):
    import openvino as ov
    import openvino.opset6 as ops6
    import openvino.opset13 as ops
    from openvino.op.util import Variable, VariableInfo

    def project(kind: str, heads: int):
        y = ops.matmul(x, weights.matrix(f"{prefix}{kind}_proj.weight"), False, True)
        if weights.has(f"{prefix}{kind}_proj.bias"):
            y = ops.add(y, weights.vector(f"{prefix}{kind}_proj.bias"))
        y = ops.transpose(ops.reshape(y, _i64(0, 0, heads, spec.head_dim), True), _i64(0, 2, 1, 3))
        if spec.qk_norm and kind in ("q", "k"):
            y = rms_norm(y, weights.vector(f"{prefix}{kind}_norm.weight"), spec.eps)
        return y  # [B, heads, S, head_dim]

    q = _rotate(project("q", spec.heads), inputs.cos, inputs.sin)
    k = _rotate(project("k", spec.kv_heads), inputs.cos, inputs.sin)
    v = project("v", spec.kv_heads)
    present = []
    for kind, new in (("key", k), ("value", v)):
        info = VariableInfo()
        info.variable_id = f"past_key_values.{layer}.{kind}present.{layer}.{kind}"
        info.data_shape = ov.PartialShape([-1, spec.kv_heads, -1, spec.head_dim])
        info.data_type = ov.Type.f32
        variable = Variable(info)
        past = ops6.read_value(ops.broadcast(_scalar(0.0), inputs.cache_init_shape), variable)
        past = ops.gather(past, inputs.beam_idx, ops.constant(np.int64(0)))
        joined = ops.concat([past, new], 2)
        assigns.append(ops6.assign(joined, variable))
        present.append(joined)
    mask = inputs.attention_mask_for(past)  # built once, for the first layer; shared by all
    repeat = spec.heads // spec.kv_heads

    def expand(t):
        if repeat == 1:
            return t
        wide = ops.broadcast(ops.unsqueeze(t, _i64(2)), _i64(1, 1, repeat, 1, 1), broadcast_spec="BIDIRECTIONAL")
        return ops.reshape(wide, _i64(0, spec.heads, -1, spec.head_dim), True)

    out = ops.scaled_dot_product_attention(q, expand(present[0]), expand(present[1]), mask,
                                           _scalar(spec.attention_scale), False)
    out = ops.reshape(ops.transpose(out, _i64(0, 2, 1, 3)), _i64(0, 0, spec.heads * spec.head_dim), True)
    out = ops.matmul(out, weights.matrix(f"{prefix}o_proj.weight"), False, True)
    if weights.has(f"{prefix}o_proj.bias"):
        out = ops.add(out, weights.vector(f"{prefix}o_proj.bias"))
    return out


def _mlp(x, weights: LayerWeights, prefix: str):
    import openvino.opset13 as ops

    gate = ops.swish(ops.matmul(x, weights.matrix(f"{prefix}gate_proj.weight"), False, True))
    up = ops.matmul(x, weights.matrix(f"{prefix}up_proj.weight"), False, True)
    return ops.matmul(ops.multiply(gate, up), weights.matrix(f"{prefix}down_proj.weight"), False, True)


def build_decoder(spec: DecoderSpec, weights: LayerWeights, on_layer: Callable[[int], None] | None = None,
                  name: str = "cpmdesk", head_scale: float | None = None):
    """The stateful decoder as an `ov.Model`; muP scales are expected folded into the weights.

    `on_layer(i)` is called after layer i is built (its weights compressed), for progress. With `head_scale` a
    tied head is the (scaled) embedding itself, stored once: the final hidden state is multiplied by `head_scale`
    (MiniCPM: logit scale / embedding scale) instead of the head holding its own scaled copy.
    """
    import openvino as ov
    import openvino.opset13 as ops

    inputs = _Inputs(spec)
    embedding = weights.matrix("model.embed_tokens.weight")
    h = ops.gather(embedding, inputs.input_ids, ops.constant(np.int64(0)))
    assigns: list = []
    for layer in range(spec.layers):
        prefix = f"model.layers.{layer}."
        x = rms_norm(h, weights.vector(prefix + "input_layernorm.weight"), spec.eps)
        h = ops.add(h, _attention(spec, inputs, x, weights, prefix + "self_attn.", layer, assigns))
        x = rms_norm(h, weights.vector(prefix + "post_attention_layernorm.weight"), spec.eps)
        h = ops.add(h, _mlp(x, weights, prefix + "mlp."))
        h.set_friendly_name(LAYER_OUTPUT.format(layer))
        if on_layer is not None:
            on_layer(layer)
    h = rms_norm(h, weights.vector("model.norm.weight"), spec.eps)
    if head_scale is not None:
        h = ops.multiply(h, _scalar(head_scale))
    head = embedding if spec.head_shares_embedding or head_scale is not None else weights.matrix("lm_head.weight")
    logits = ops.matmul(h, head, False, True)
    logits.output(0).set_names({"logits"})
    model = ov.Model([ops.result(logits)], assigns, inputs.parameters, name)
    return model
