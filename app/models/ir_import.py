"""OpenVINO IR folders made by optimum-cli (such as the OpenVINO organisation's int4 models): checked and given a
cpmdesk manifest so the library and the engine take them like an export of cpmdesk's own."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from app.engine.model_folder import REQUIRED
from export.manifest import folder_sizes, tool_versions, write_manifest

log = logging.getLogger(__name__)
_TEST_PROMPT = "Hello"
_TEST_TOKENS = 4


class IRFolderError(RuntimeError):
    """The folder is not an IR cpmdesk can chat with; the message says what is missing."""


def looks_like_ir(folder: Path) -> bool:
    """An OpenVINO IR folder without a cpmdesk manifest (what optimum-cli writes)."""
    return (folder / "openvino_model.xml").is_file() and not (folder / "manifest.json").is_file()


def import_ir(folder: Path) -> dict:
    """Check an optimum-cli IR folder (files, tokenizer and detokenizer, KV-cache states, a short test generation)
    and write its manifest; returns the manifest. The manifest names the folder, never this machine's path."""
    missing = [name for name in (*REQUIRED, "config.json") if not (folder / name).is_file()]
    if missing:
        raise IRFolderError(f"{folder.name} lacks {', '.join(missing)}; export it with optimum-cli including the "
                            "tokenizer (openvino-tokenizers installed), or with cpmdesk-export")
    import openvino as ov

    model = ov.Core().read_model(folder / "openvino_model.xml")
    if not model.get_variables():
        raise IRFolderError(f"{folder.name} has no KV-cache states (exported without --stateful or for another "
                            "task); export it again with optimum-cli --task text-generation-with-past")
    inputs = {name for port in model.inputs for name in port.get_names()}
    if "input_ids" not in inputs:
        raise IRFolderError(f"{folder.name} is not a text-generation model (no input_ids input)")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") in ("bert", "mpnet", "xlm-roberta") or "beam_idx" not in inputs:
        raise IRFolderError(f"{folder.name} is not a chat model (model type {config.get('model_type')!r})")
    tokens = _test_generation(folder)
    manifest = {
        "source": {"kind": "openvino-ir", "spec": folder.name, "revision": None, "sha256": None},
        "backend": "optimum-cli",
        "architecture": {"model_type": config.get("model_type"), "route": "openvino-ir",
                         "config": {k: config[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                           "num_key_value_heads", "vocab_size",
                                                           "max_position_embeddings") if k in config}},
        "quantization": _quantization(model),
        "sizes": folder_sizes(folder),
        "tools": tool_versions("streaming"),
        "validation": {"kind": "test generation", "generated_tokens": tokens, "passed": True},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_manifest(folder, manifest)
    log.info("added an optimum-cli IR: %s", folder.name)
    return manifest


def _test_generation(folder: Path) -> int:
    """Generate a few tokens with openvino-genai; the number generated."""
    import openvino_genai as og

    try:
        pipe = og.LLMPipeline(str(folder), "CPU")
        config = og.GenerationConfig(max_new_tokens=_TEST_TOKENS, min_new_tokens=1)
        result = pipe.generate([_TEST_PROMPT], config)
    except RuntimeError as err:
        log.warning("test generation with %s failed: %s", folder, err)
        first = (str(err).strip().splitlines() or [""])[0]
        raise IRFolderError(f"{folder.name} does not generate with openvino-genai ({first})") from err
    tokens = int(result.perf_metrics.get_num_generated_tokens())
    if tokens < 1:
        raise IRFolderError(f"{folder.name} generated nothing in a test; export it again")
    return tokens


def _quantization(model) -> dict:
    """The weight format read from the IR's constants (optimum-cli's own config does not always record it), and
    the int4 group size from the grouped weights' shape."""
    types: dict[str, list] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Constant" and op.get_output_size() == 1:
            shape = list(op.get_output_shape(0))
            if len(shape) >= 2:
                types.setdefault(op.get_output_element_type(0).get_type_name(), []).append(shape)
    if types.get("u4") or types.get("i4"):
        shapes = types.get("u4", []) + types.get("i4", [])
        group = int(shapes[0][-1]) if len(shapes[0]) == 3 else -1
        return {"weight_format": "int4", "group_size": group, "sym": "i4" in types and "u4" not in types,
                "awq": False}
    if types.get("u8") or types.get("i8"):
        return {"weight_format": "int8"}
    return {"weight_format": "fp16" if types.get("f16") else "fp32"}
