"""One stateful LLM IR driven token by token, for the engine's own assisted decoding (app/engine/assisted.py).

Attention runs in cpmdesk's InfLLMv2Attention op: the export's sparse op, or for any other model the same op put
in at load time in dense mode (never sparse). The op owns the KV cache, which gives the verification loop two
things OpenVINO's own stateful attention does not:

* rewinding is free: feeding tokens at a position below the cached length drops the rows after it, where the
  state API can only read and rewrite a whole cache (tens of ms per rejected draft, growing with the context);
* a row's result does not depend on how many rows a step feeds, so a k-token verification step gives bit for
  bit the logits of k one-token steps, and greedy answers with a draft are the target's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from export.sparse_attention import OP_TYPE, rewrite
from ov_ops.sparse_config import SparseAttentionConfig

DENSE = SparseAttentionConfig(dense_len=1 << 40)  # the op in dense mode: plain causal attention at any length
LOGITS_COUNT = "logits_count"


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


class StatefulLM:
    """A compiled stateful LLM holding one sequence: feed() appends tokens, rewind() drops the newest ones."""

    def __init__(self, xml: Path, device: str, library: str, properties: dict | None = None) -> None:
        import openvino as ov

        core = ov.Core()
        core.add_extension(library)
        model = core.read_model(str(xml))
        if not any(op.get_type_name() == OP_TYPE for op in model.get_ops()):
            rewrite(model, DENSE, Path(library))
        _with_logits_count(model)
        # Inputs the op left without a consumer (attention_mask, beam_idx) get a constant one-element tensor: a
        # new input shape costs OpenVINO's CPU plugin a pass over the whole graph (~15 % of a step here).
        self._constant = {name: np.ones((1, 1), np.int64) if name == "attention_mask" else np.zeros(1, np.int32)
                          for param in model.get_parameters() for name in param.output(0).get_names()
                          if name in ("attention_mask", "beam_idx")
                          and not param.output(0).get_target_inputs()}
        self._inputs = {name for port in model.inputs for name in port.get_names()}
        self._request = core.compile_model(model, device, properties or {}).create_infer_request()
        self.length = 0  # tokens in the sequence

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
        self._request.infer(feeds)
        self.length += n
        return self._request.get_tensor("logits").data[0]

    def rewind(self, length: int) -> None:
        """Keep the first `length` tokens (the op drops the rest when the next feed starts there)."""
        self.length = min(self.length, max(0, length))

    def reset(self) -> None:
        """Start a new sequence (the next feed starts at position 0, which the op takes as a new sequence)."""
        self.length = 0
