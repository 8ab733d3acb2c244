"""The user's export settings, as the CLI takes them and the manifest records them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

WEIGHT_FORMATS = ("int4", "int8", "fp16", "fp32")
TERNARY_STORAGE = ("int4", "int2", "off")  # --ternary: how ternary weights are stored ("off": like any other)

# Minimum next-token top-1 agreement with the source model, per weight format (validate.py).
# fp32/fp16 differ from the source by rounding only. int8/int4 lose more on small real models: SmolLM2-135M
# (the default model) reaches 69 % top-1 at int4 g128 and still answers correctly, while a broken export
# (wrong tokenizer, RoPE or scales) falls to chance. bench/RESULTS.md has the measured values.
AGREEMENT_THRESHOLDS = {"fp32": 0.99, "fp16": 0.95, "int8": 0.85, "int4": 0.60}
# Every format: the IR's top-1 token must be among the source's top 5 at this share of positions.
TOP5_THRESHOLD = 0.90
# A model whose every linear weight is ternary is stored without loss (export/ternary.py) and validated with f32
# activations, no dynamic quantization: top-1 must agree everywhere and the logits within these bounds — f32
# rounding when the other tensors are kept in fp16/fp32, plus the int8 rounding of the embedding and head when
# they are stored in int8 (the int4/int8 formats). bench/RESULTS.md (issue 23) has the measured values.
TERNARY_MAX_LOGIT_DIFF = {"fp32": 0.005, "fp16": 0.005, "int8": 0.05, "int4": 0.05}
TERNARY_AGREEMENT = {"fp32": 1.0, "fp16": 1.0, "int8": 0.99, "int4": 0.99}
# compile properties for comparing an IR's logits at f32 precision (the CPU plugin otherwise computes in bf16 where
# the CPU has it, and quantizes activations to int8 for compressed weights)
EXACT_PROPERTIES = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}


@dataclass(frozen=True)
class Quantization:
    """Weight format and NNCF compression parameters."""

    weight_format: str = "int4"
    group_size: int = 128
    ratio: float = 1.0
    sym: bool = False
    awq: bool = False
    scale_estimation: bool = False
    dataset: str | None = None
    num_samples: int | None = None
    ternary: str = "int2"  # ternary fake-quantized weights: stored as int2 or int4 codes, or "off" (export/ternary.py)
    int4_head: bool = False  # the LM head in int4 too (a tied embedding keeps its int8 copy for the lookup)

    def describe(self) -> dict:
        """The manifest's `quantization` entry."""
        return asdict(self)

    def nncf_config(self) -> dict | None:
        """optimum-intel's weight-compression config, or None for fp16/fp32."""
        if self.weight_format in ("fp16", "fp32"):
            return None
        int8 = self.weight_format == "int8"
        return {
            "bits": 8 if int8 else 4,
            "sym": self.sym,
            "group_size": -1 if int8 else self.group_size,
            "ratio": 1.0 if int8 else self.ratio,
            "quant_method": "awq" if self.awq else "default",
            "scale_estimation": self.scale_estimation or None,
            "dataset": self.dataset,
            "num_samples": self.num_samples,
            "dtype": self.weight_format,
            # A layer whose width is not a multiple of the group size gets the nearest group size that fits.
            "group_size_fallback": None if int8 else "adjust",
        }
