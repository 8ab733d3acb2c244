"""Loading a model whose ternary weights are stored as 2-bit codes (`cpmdesk-export --ternary int2`).

The file keeps 2 bits a weight; the CPU plugin's fast kernels take 4-bit codes, so the weights are turned into
the int4 form in memory first (export/ternary.py `expand_int2`, the same values) and openvino-genai gets the
turned model from memory. The file on disk is never changed."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from export.ternary import expand_int2

log = logging.getLogger(__name__)


def stores_two_bit_codes(manifest: dict) -> bool:
    """Whether the export keeps ternary weights as 2-bit codes."""
    ternary = manifest.get("ternary")
    return isinstance(ternary, dict) and ternary.get("storage") == "int2"


def two_bit_pipeline(og, folder: Path, device: str, properties: dict):
    """An openvino_genai.LLMPipeline of `folder`'s model with its 2-bit codes turned into 4-bit ones."""
    import openvino as ov

    model = ov.Core().read_model(str(folder / "openvino_model.xml"))
    turned = expand_int2(model)
    log.info("%s: %d ternary weights turned from 2-bit to 4-bit codes for the CPU kernels", folder.name, turned)
    # openvino-genai takes a model from memory as IR text and weights: the turned model is written out once to a
    # scratch folder and read back (removed before the pipeline is built; nothing of it stays on disk)
    with tempfile.TemporaryDirectory(prefix="cpmdesk-int2-") as scratch:
        xml = Path(scratch) / "model.xml"
        ov.save_model(model, xml, compress_to_fp16=False)
        del model
        text = xml.read_text(encoding="utf-8")
        weights = np.fromfile(xml.with_suffix(".bin"), np.uint8)
    config_file = folder / "generation_config.json"
    config = og.GenerationConfig(str(config_file)) if config_file.is_file() else None
    return og.LLMPipeline(text, ov.Tensor(weights), og.Tokenizer(str(folder)), device, config, **properties)
