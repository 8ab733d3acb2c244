"""A draft's LM head cut down to the most frequent part of the vocabulary (the FR-Spec idea).

A small draft model spends a large share of every drafted token reading its LM head: Qwen2.5-0.5B's is
151,936 x 896, about 136 MB in int8, next to ~180 MB for all 24 layers in int4. Drafted tokens only need to
be right most of the time, so the draft may rank fewer candidates; the target still checks every token, so
greedy output is unchanged and sampling stays exact (the draft simply never proposes the cut tokens).

The rows kept are the lowest token ids. In byte-level BPE vocabularies (Qwen2, Llama 3, MiniCPM4) ids follow
merge order, and a merge is learned earlier the more often its pair occurs in the tokenizer's training text,
so a prefix of the ids is a frequency ranking known without any corpus. Keeping a prefix leaves the head a
plain MatMul whose output index is still the token id: openvino-genai's samplers and its "gather before
the LM head" optimisation work on it unchanged (a reordered subset would need a scatter after the MatMul).
With untied embeddings the file shrinks by the cut rows; with tied ones the embedding keeps the full table and
the head gets its own smaller copy, so the file grows a little while each drafted token still reads less.
"""

from __future__ import annotations

import logging
from pathlib import Path

from export.errors import ExportError

_log = logging.getLogger(__name__)

# Ids below 65536 cover ~98 % of the tokens of English prose, Python source and a bilingual README with
# Qwen2.5's tokenizer (32768: ~93-95 %; bench/RESULTS.md, issue 6).
DEFAULT_DRAFT_VOCAB = 65536


def cut_draft_vocabulary(xml: Path, keep: int, weight_format: str = "") -> dict:
    """Keep the LM head rows of token ids < `keep` in the IR at `xml` (rewritten in place); returns the manifest entry.

    An int4 draft (`weight_format`) also gets the kept rows re-stored as int4 (symmetric, groups of 128 or less
    along the hidden size), halving the head again; NNCF keeps heads in 8 bits for accuracy, which a draft can
    trade for speed.
    The cut model's logits are checked against the original's on a fixed token sequence before the file is
    replaced: unchanged for the kept ids (plain cut), or the same top token at >= 75 % of the positions (int4;
    below that the head stays 8-bit). Raises ExportError (file untouched) when the logits do not come from a
    MatMul over a weight chain this can slice (Constant / Convert / Subtract / Multiply / Reshape) or the check fails.
    """
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(xml))
    matmul = _lm_head(model)
    weight = matmul.input_value(1)
    vocab = int(weight.get_partial_shape()[0].get_length())
    if keep >= vocab:
        return {"kept": vocab, "of": vocab, "rule": "all"}
    if keep < 256:
        raise ExportError(f"--draft-vocab {keep} is too small: keep at least the 256 byte tokens (or 0 for all)")
    ids = _probe_ids(xml.parent, keep)
    before = _logits(core, model, ids)[..., :keep]
    sliced = _slice_rows(weight, vocab, keep)
    entry = {"kept": keep, "of": vocab, "rule": "lowest token ids (BPE merge order)", "head": "as exported"}
    if weight_format == "int4":
        matmul.input(1).replace_source_output(_int4_rows(core, sliced))
        agreement = _check_and_save(core, model, xml, ids, before, exact=False)
        if agreement is not None:
            return {**entry, "head": "int4 sym", "top1_agreement": agreement}
    matmul.input(1).replace_source_output(sliced)  # the plain cut (int4 disagreed too often, or not asked for)
    _check_and_save(core, model, xml, ids, before, exact=True)
    return entry


def _check_and_save(core, model, xml: Path, ids, before, exact: bool) -> float | None:
    """Save the cut model over `xml` if its logits pass the check; returns the top-1 agreement (None: not saved)."""
    import numpy as np
    import openvino as ov

    model.validate_nodes_and_infer_types()
    staging = xml.with_name(xml.stem + ".cut.xml")
    try:
        ov.save_model(model, str(staging), compress_to_fp16=False)
        after = _logits(core, core.read_model(str(staging)), ids)
        if after.shape != before.shape:
            raise ExportError("Cutting the draft's vocabulary changed the shape of its logits; export it again "
                              "with --draft-vocab 0")
        agreement = float(np.mean(after.argmax(-1) == before.argmax(-1)))
        if exact:
            scale = float(np.abs(before).max()) or 1.0
            if float(np.abs(after - before).max()) > 1e-3 * scale or agreement < 1.0:
                raise ExportError("Cutting the draft's vocabulary changed its logits for the kept tokens; export it "
                                  "again with --draft-vocab 0")
        elif agreement < 0.75:
            return None
        staging.replace(xml)
        staging.with_suffix(".bin").replace(xml.with_suffix(".bin"))
        return round(agreement, 3)
    finally:
        staging.unlink(missing_ok=True)
        staging.with_suffix(".bin").unlink(missing_ok=True)


def _int4_rows(core, weight):
    """The f32 weight behind `weight` (a decompression chain) re-stored as symmetric int4 in groups along axis 1."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    matrix = core.compile_model(ov.Model([ops.convert(weight, ov.Type.f32)], []), "CPU")({})[0]
    rows, cols = matrix.shape
    group = next((g for g in (128, 64, 32) if cols % g == 0), cols)
    grouped = matrix.reshape(rows, cols // group, group)
    scale = np.abs(grouped).max(axis=2, keepdims=True) / 7.0
    scale[scale == 0] = 1.0
    scale = scale.astype(np.float16)
    q = np.clip(np.rint(grouped / scale.astype(np.float32)), -8, 7).astype(np.int8)
    packed = ((q[..., 1::2].astype(np.uint8) & 15) << 4) | (q[..., 0::2].astype(np.uint8) & 15)
    codes = ov.op.Constant(ov.Tensor(np.ascontiguousarray(packed).ravel(), ov.Shape(list(q.shape)), ov.Type.i4))
    scaled = ops.multiply(ops.convert(codes, ov.Type.f16), ops.constant(scale, dtype=ov.Type.f16))
    flat = ops.reshape(scaled, ops.constant(np.array([rows, cols], dtype=np.int64)), special_zero=False)
    return ops.convert(flat, ov.Type.f32).output(0)


_PROBE_TEXT = ("The quick brown fox jumps over the lazy dog. To read a file in Python, open it with a with-block: "
               "with open(path) as handle: for line in handle: print(line.strip()). The sum of the integers from "
               "1 to 100 is 5050, because the pairs (1, 100), (2, 99) and so on each add up to 101.")


def _probe_ids(folder: Path, keep: int):
    """Token ids of a short fixed English/code text by the folder's own tokenizer; spread ids without one."""
    import numpy as np

    tokenizer = folder / "openvino_tokenizer.xml"
    if tokenizer.is_file():
        try:
            import openvino as ov
            import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops with Cores made from now on)

            ids = ov.Core().compile_model(str(tokenizer), "CPU")([_PROBE_TEXT])["input_ids"]
            return np.asarray(ids, dtype=np.int64).reshape(1, -1)
        except Exception:  # any tokenizer trouble: the generic probe below still checks the cut
            _log.warning("the draft's tokenizer could not make the probe text; using spread token ids", exc_info=True)
    return np.arange(1, 65, dtype=np.int64)[None, :] * (keep // 72)  # 64 tokens spread over the kept ids


def _logits(core, model, ids):
    """Logits of a stateful LLM IR for one sequence of token ids (fresh state)."""
    import numpy as np

    feed = {}
    for port in model.inputs:
        name = port.get_any_name()
        if name == "input_ids":
            feed[name] = ids
        elif name == "attention_mask":
            feed[name] = np.ones_like(ids)
        elif name == "position_ids":
            feed[name] = np.arange(ids.shape[1], dtype=np.int64)[None, :]
        elif name == "beam_idx":
            feed[name] = np.zeros(1, dtype=np.int32)
    request = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
    return np.array(request.infer(feed)[0], copy=True)


def _lm_head(model):
    """The MatMul producing the logits (output 0), directly or through a Convert."""
    node = model.output(0).get_node().input_value(0).get_node()
    while node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() != "MatMul" or not node.get_attributes().get("transpose_b", False):
        raise ExportError("The draft's logits do not come from an LM head MatMul this export knows how to cut; "
                          "export it again without --draft-vocab")
    return node


def _slice_rows(output, vocab: int, keep: int):
    """A copy of the weight's decompression chain with only the first `keep` rows (axis 0) of every tensor."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    node = output.get_node()
    kind = node.get_type_name()
    if kind == "Constant":
        shape = list(node.get_output_partial_shape(0).to_shape())
        if not shape or shape[0] != vocab:
            return output  # a scalar or broadcast zero point / scale: shared as is
        if node.get_element_type() in (ov.Type.u4, ov.Type.i4, ov.Type.nf4):
            packed = np.array(node.get_data(), copy=False).view(np.uint8).reshape(vocab, -1)  # 2 values per byte
            return ov.op.Constant(ov.Tensor(np.ascontiguousarray(packed[:keep]).ravel(),
                                            ov.Shape([keep, *shape[1:]]), node.get_element_type())).output(0)
        data = np.array(node.get_data(), copy=False)
        return ops.constant(np.ascontiguousarray(data[:keep]), dtype=node.get_element_type()).output(0)
    inputs = [_slice_rows(node.input_value(i), vocab, keep) for i in range(node.get_input_size())]
    if kind == "Convert":
        return ops.convert(inputs[0], node.get_output_element_type(0)).output(0)
    if kind == "Subtract":
        return ops.subtract(inputs[0], inputs[1]).output(0)
    if kind == "Multiply":
        return ops.multiply(inputs[0], inputs[1]).output(0)
    if kind == "Reshape" and node.input_value(1).get_node().get_type_name() == "Constant":
        target = [keep if i == 0 and d == vocab else d
                  for i, d in enumerate(node.input_value(1).get_node().get_data().tolist())]
        return ops.reshape(inputs[0], ops.constant(np.array(target, dtype=np.int64)), special_zero=False).output(0)
    raise ExportError(f"The draft's LM head weight goes through a {kind} node this export cannot cut; export it "
                      "again without --draft-vocab")
