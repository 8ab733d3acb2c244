"""Running a saved decoder IR a range of layers at a time, so checking a large model costs a slice of its memory.

The CPU plugin repacks a model's int4 weights into its own layout when it compiles it (~11 % more than the IR
stores), so compiling a whole 8B IR to validate it would cost more memory than exporting it. The streaming
exporter names each layer's output on the residual stream (`LAYER_OUTPUT`); a range is the saved IR cut there:
a new `hidden_states` Parameter takes what the range before produced, and the range's last layer output (or the
logits, for the last range) is its result. Ranges are compiled, run on every prompt and freed one after another.
IRs without those names (optimum-intel's) run whole.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import numpy as np

from export.decoder_graph import LAYER_OUTPUT
from export.mapped_ir import compiled_ir

RANGE_BUDGET = 1 << 30  # IR bytes compiled at once
PREFILL_CHUNK = 256  # prompt tokens per inference request
# Compile properties for validation. The CPU plugin's runtime cache keeps each shape's executors, and the
# buffers they hold outlive the compiled model (~0.2 GB per 8B-wide layer range after a 1,110-token prompt,
# adding up range after range); validation runs each range once, so it has nothing to gain from caching. The
# KV cache stays f32 (the plugin's default quantizes it): a prompt prefilled in chunks then gives the logits of
# one request, and validation measures the export, not the cache's rounding.
VALIDATION_PROPERTIES = {"CPU_RUNTIME_CACHE_CAPACITY": "0", "KV_CACHE_PRECISION": "f32"}
HIDDEN_STATES = "hidden_states"
_VARIABLE_LAYER = re.compile(r"past_key_values\.(\d+)\.")


def layer_count(xml: Path) -> int:
    """How many named layer outputs the IR has (0 for IRs not made by the streaming exporter)."""
    text = xml.read_text(encoding="utf-8")
    pattern = re.escape(LAYER_OUTPUT).replace(r"\{\}", r"(\d+)")
    return len(set(re.findall(f'name="{pattern}"', text)))


def layer_ranges(layers: int, weight_bytes: int, budget: int = RANGE_BUDGET) -> list[tuple[int, int]]:
    """(start, stop) layer ranges whose share of `weight_bytes` is within `budget`; one range when it all fits."""
    if layers == 0 or weight_bytes <= budget:
        return [(0, layers)]
    per_range = max(1, int(budget // (weight_bytes / layers)))
    return [(start, min(layers, start + per_range)) for start in range(0, layers, per_range)]


def cut_layers(model, start: int, stop: int, layers: int):
    """The sub-model of layers start..stop-1 of `model` (which it edits: read a fresh one per range)."""
    import openvino as ov
    import openvino.opset13 as ops

    nodes = {node.get_friendly_name(): node for node in model.get_ops()}
    parameters = list(model.get_parameters())
    if start > 0:
        before = nodes[LAYER_OUTPUT.format(start - 1)]
        hidden = ops.parameter(before.get_output_partial_shape(0), before.get_output_element_type(0),
                               name=HIDDEN_STATES)
        hidden.output(0).set_names({HIDDEN_STATES})
        for target in list(before.output(0).get_target_inputs()):
            target.replace_source_output(hidden.output(0))
        parameters.append(hidden)
    results = model.get_results() if stop == layers else [ops.result(nodes[LAYER_OUTPUT.format(stop - 1)])]
    sinks = [sink for sink in model.get_sinks() if start <= _variable_layer(sink) < stop]
    name = f"{model.get_friendly_name()}[{start}:{stop}]"
    sub = ov.Model(results, sinks, parameters, name)
    # The attention mask reads the past length from layer 0's cache; a range without layer 0 reads its own
    # first layer's (the same length), since the CPU plugin wants every ReadValue paired with its Assign.
    reads = [node for node in sub.get_ops() if node.get_type_name() == "ReadValue"]
    firsts = {_variable_kind(node): node for node in reads if _variable_layer(node) == start}
    strays = [node for node in reads if not start <= _variable_layer(node) < stop]
    for node in strays:
        node.output(0).replace(firsts[_variable_kind(node)].output(0))
    return ov.Model(results, sinks, parameters, name) if strays else sub


def _variable_layer(node) -> int:
    """The layer whose KV cache a ReadValue/Assign holds (-1 when its variable is not named by layer)."""
    found = _VARIABLE_LAYER.match(node.get_variable_id())
    return int(found.group(1)) if found else -1


def _variable_kind(node) -> str:
    """'key' or 'value' (the end of the variable id)."""
    return node.get_variable_id().rsplit(".", 1)[-1]


def prefill(compiled, ids: list[int], hidden: np.ndarray | None = None, chunk: int = PREFILL_CHUNK) -> np.ndarray:
    """The first output [1, N, …] of a (range of a) stateful decoder for one prompt, prefilled `chunk` tokens
    per request through its KV cache (as a chat continues), so a long prompt's activations stay small."""
    request = compiled.create_infer_request()
    names = {port.get_any_name() for port in compiled.inputs}
    request.reset_state()
    result = None
    for start in range(0, len(ids), chunk):
        stop = min(len(ids), start + chunk)
        inputs = {"input_ids": np.array([ids[start:stop]], dtype=np.int64),
                  "attention_mask": np.ones((1, stop), dtype=np.int64),
                  "position_ids": np.arange(start, stop, dtype=np.int64)[None, :],
                  "beam_idx": np.zeros((1,), dtype=np.int32)}
        if hidden is not None:
            inputs[HIDDEN_STATES] = hidden[:, start:stop]
        request.infer({k: v for k, v in inputs.items() if k in names})
        part = request.get_output_tensor(0).data
        if result is None:
            result = np.empty((1, len(ids), *part.shape[2:]), np.float32)
        result[:, start:stop] = part
    return result


def ranged_logits(core, xml: Path, prompts: list[list[int]], budget: int = RANGE_BUDGET,
                  properties: dict | None = None) -> tuple[list[np.ndarray], int]:
    """Logits [N, vocab] of the IR for each prompt, computed a range of layers at a time; and the range count."""
    layers = layer_count(xml)
    ranges = layer_ranges(layers, xml.with_suffix(".bin").stat().st_size, budget)
    states: list[np.ndarray | None] = [None] * len(prompts)
    # a model run whole is small: one request per prompt is faster; slices of a large one go in chunks
    chunk = PREFILL_CHUNK if len(ranges) > 1 else max(map(len, prompts))
    for start, stop in ranges:
        edit = None if (start, stop) == (0, layers) else partial(cut_layers, start=start, stop=stop, layers=layers)
        with compiled_ir(core, xml, properties={**VALIDATION_PROPERTIES, **(properties or {})}, edit=edit) as compiled:
            states = [prefill(compiled, ids, state, chunk) for ids, state in zip(prompts, states, strict=True)]
            del compiled  # the weights' mapping ends with the block
    return [state[0] for state in states], len(ranges)
