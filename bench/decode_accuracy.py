"""Decode settings' accuracy: export validation re-run with the plain pipeline's runtime settings (issue 22).

The exporter validates an IR under the CPU plugin's defaults. The engine's plain pipeline changes two activation
settings for speed (`app.engine.engine.plain_pipeline_properties`: f32 activations on AMX CPUs, activation
quantization groups of the weights' size); this checks that the IR still passes the same validation under them.
For each model of `bench/decode.py` it runs `export.validate.validate_ir` (fixed prompts, NumPy reference over the
source's weights) twice, with the plugin's defaults and with the engine's settings, and prints one JSON line per
run.

    .venv/bin/python bench/decode_accuracy.py [--models minicpm4-0.5b,smollm2-135m,qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.privacy import disable_telemetry  # noqa: E402
from bench.decode import MODELS  # noqa: E402


def validations(model, work: Path) -> list[dict]:
    """validate_ir of `model`'s export under the plugin's defaults and under the engine's plain-pipeline settings."""
    from app.engine.engine import plain_pipeline_properties
    from export.numpy_reference import NumpyReference
    from export.settings import AGREEMENT_THRESHOLDS
    from export.streaming import open_model
    from export.tokenizer import load_tokenizer
    from export.validate import validate_ir

    source = model.source or model.gguf()
    manifest = json.loads((model.ir / "manifest.json").read_text())
    streaming = open_model(source, manifest["architecture"]["model_type"], work)
    reference = NumpyReference(streaming.spec, streaming.reader).logits
    tokenizer = load_tokenizer(streaming.tokenizer_dir)
    runtime = plain_pipeline_properties(manifest, json.loads((model.ir / "config.json").read_text()), "CPU")
    threshold = AGREEMENT_THRESHOLDS[manifest["quantization"]["weight_format"]]
    rows = []
    for name, properties in (("plugin-default", None), ("engine", runtime)):
        result = validate_ir(model.ir, tokenizer, reference, threshold, properties=properties)
        rows.append({"bench": "decode-accuracy", "model": model.name, "settings": name,
                     "properties": {k: str(v) for k, v in (properties or {}).items()},
                     "top1_agreement": result.top1_agreement, "top5_containment": result.top5_containment,
                     "max_abs_logit_diff": result.max_abs_logit_diff, "threshold": result.threshold,
                     "passed": result.passed})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    disable_telemetry()
    failed = 0
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as work:
            failed += sum(not row["passed"] for row in validations(MODELS[name](), Path(work)))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
