"""Does the IR compute what the source model computes? Next-token top-1 agreement and max |Δlogit|."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from export.layer_ranges import prefill, ranged_logits
from export.settings import TOP5_THRESHOLD


def _long_prompt() -> str:
    """A deterministic prompt of well over 1,000 tokens in any of the exported tokenizers: a chat turn holding a
    log of prose, code and numbers, so positions far past the short prompts' are compared too."""
    places = ("harbour", "market", "lighthouse", "old bridge", "school", "bakery", "station")
    lines = [f"Day {day}: the fisherman sailed past the {places[day % 7]} at {5 + day % 4}:{day * 7 % 60:02d}, "
             f"caught {day * 13 % 41 + 3} fish and sold {day * 5 % 17 + 1} of them for {day * 3 % 11 + 2} coins."
             for day in range(1, 25)]
    code = "\n".join(f"def step_{i}(value):\n    return value * {i} + {i * i % 9}\n" for i in range(1, 9))
    return ("<|im_start|>user\nHere are my notes from the village.\n" + "\n".join(lines[:12]) + "\n\n" + code
            + "\n" + "\n".join(lines[12:]) + "\nHow many coins did the fisherman earn in total?<|im_end|>\n"
            "<|im_start|>assistant\nLet me add them up day by day. On day 1")


# Fixed prompts: English prose, a chat turn, code, Chinese, numbers, and one long chat turn. Every position of
# each is compared.
PROMPTS = (
    "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is",
    "<|im_start|>user\nWhat is two plus two?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) +",
    "北京是中国的首都，上海是中国最大的城市。",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "1, 2, 3, 5, 8, 13, 21, 34,",
    _long_prompt(),
)


@dataclass(frozen=True)
class ValidationResult:
    """What the manifest records about an export's fidelity."""

    prompts: int
    positions: int
    top1_agreement: float
    top5_containment: float
    max_abs_logit_diff: float
    threshold: float
    tokenizer_match: bool
    passed: bool
    layer_ranges: int = 1  # the IR was run this many slices of layers at a time (large models)
    max_logit_diff_limit: float | None = None  # lossless (ternary) exports: max |Δlogit| allowed

    def describe(self) -> dict:
        """The manifest's `validation` entry."""
        return asdict(self)


def ir_logits(compiled, ids: list[int]) -> np.ndarray:
    """Logits [N, vocab] of the stateful IR for one prompt, prefilled in one request."""
    return prefill(compiled, ids)[0]


def ov_tokenize(compiled_tokenizer, text: str) -> list[int]:
    """Token ids from a compiled openvino_tokenizer.xml."""
    return [int(i) for i in compiled_tokenizer([text])["input_ids"][0]]


_ROWS = 128
Reference = Callable[[list[list[int]]], list[np.ndarray]]  # prompts' ids -> logits [N, vocab] each


def validate_ir(ir_dir: Path, hf_tokenizer, reference: Reference, threshold: float,
                max_logit_diff: float | None = None, properties: dict | None = None) -> ValidationResult:
    """Compare the IR with `reference` on the fixed prompts.

    The reference runs first and its logits are kept, so the source model and the compiled IR are never in
    memory together; a large IR runs a range of layers at a time (export/layer_ranges.py). With
    `max_logit_diff` the logits must also be that close (lossless exports); `properties` go to compile_model.
    """
    import openvino as ov
    import openvino_tokenizers  # noqa: F401 - registers the tokenizer ops

    prompts = [list(hf_tokenizer(prompt)["input_ids"]) for prompt in PROMPTS]
    wanted = reference(prompts)
    core = ov.Core()
    tokenizer = core.compile_model(ir_dir / "openvino_tokenizer.xml", "CPU")
    tokenizer_match = all(ov_tokenize(tokenizer, text) == ids for text, ids in zip(PROMPTS, prompts, strict=True))
    del tokenizer
    agree, in_top5, total, max_diff = 0, 0, 0, 0.0
    got_all, ranges = ranged_logits(core, ir_dir / "openvino_model.xml", prompts, properties=properties)
    for ids, want, got in zip(prompts, wanted, got_all, strict=True):
        for start in range(0, len(ids), _ROWS):  # a few rows at a time: a long prompt's logits are ~0.3 GB
            rows = slice(start, start + _ROWS)
            choice = got[rows].argmax(-1)
            agree += int((choice == want[rows].argmax(-1)).sum())
            chosen = want[rows][np.arange(len(choice)), choice]
            in_top5 += int(((want[rows] > chosen[:, None]).sum(-1) < 5).sum())  # fewer than 5 ranked above it
            max_diff = max(max_diff, float(np.abs(got[rows] - want[rows]).max()))
        total += len(ids)
    agreement, containment = agree / total, in_top5 / total
    passed = agreement >= threshold and containment >= TOP5_THRESHOLD and tokenizer_match
    if max_logit_diff is not None:
        passed = passed and max_diff <= max_logit_diff
    diff = round(max_diff, 4) if max_logit_diff is None else float(f"{max_diff:.3g}")  # lossless: the digits
    return ValidationResult(len(PROMPTS), total, round(agreement, 4), round(containment, 4), diff, threshold,
                            tokenizer_match, passed, ranges, max_logit_diff)


def torch_reference(model) -> Reference:
    """Wrap a PyTorch causal LM (HF or MiniCPM reference) as prompts -> logits."""
    import torch

    def logits(prompts: list[list[int]]) -> list[np.ndarray]:
        outputs = []
        with torch.no_grad():
            for ids in prompts:
                out = model(torch.tensor([ids]))
                outputs.append(getattr(out, "logits", out)[0].float().numpy())
        return outputs

    return logits
