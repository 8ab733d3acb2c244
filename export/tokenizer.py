"""The model's tokenizer, loaded so it tokenizes as the model was trained, and its OpenVINO conversion.

A repository's own tokenizer.json is used as it is. Without one, transformers builds a fast tokenizer from
tokenizer.model and (transformers 5.x, LlamaTokenizer with legacy: true) prepends '▁' to the text even when the
SentencePiece model says add_dummy_prefix: false, as MiniCPM4's does; then every first word is another token
than the model saw in training. The prefix setting is therefore read from the SentencePiece model itself and
the loaded tokenizer is checked against it on a few probe strings.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from export.errors import ExportError

_PROBES = ("Hello world", "北京是中国的首都", "def f(x):\n    return x", "  two spaces", "1, 2, 3 😀")


def sentencepiece_adds_prefix(model_file: Path) -> bool:
    """Whether a SentencePiece model prepends '▁' to the text (its normalizer's add_dummy_prefix)."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    return processor.encode("x", out_type=str)[0].startswith("▁")


@lru_cache(maxsize=2)  # an export reads it to convert and again to validate
def load_tokenizer(folder: Path, trust_remote_code: bool = False):
    """The Hugging Face tokenizer of `folder`: its tokenizer.json if shipped, else one matching tokenizer.model."""
    from transformers import AutoTokenizer

    model_file = folder / "tokenizer.model"
    from_sentencepiece = model_file.is_file() and not (folder / "tokenizer.json").is_file()
    kwargs = {}
    if from_sentencepiece and not sentencepiece_adds_prefix(model_file):
        kwargs["add_prefix_space"] = False
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code, **kwargs)
    except (OSError, ValueError, TypeError) as err:
        raise ExportError(f"Could not read the model's tokenizer ({err}); the folder needs its tokenizer files") \
            from err
    if from_sentencepiece:
        _check_against_sentencepiece(tokenizer, model_file)
    return tokenizer


def _check_against_sentencepiece(tokenizer, model_file: Path) -> None:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    for text in _PROBES:
        got = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if got != processor.encode(text):
            raise ExportError(f"The tokenizer transformers builds from {model_file.name} splits {text!r} unlike the "
                              "SentencePiece model itself; add the model's tokenizer.json to the folder")


def write_openvino_tokenizers(tokenizer, out: Path) -> None:
    """openvino_tokenizer.xml and openvino_detokenizer.xml (chat template in their rt_info) into `out`."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer

    tokenizer.padding_side = tokenizer.truncation_side = "left"  # as optimum-intel sets it for generation
    encoder, decoder = convert_tokenizer(tokenizer, with_detokenizer=True)
    ov.save_model(encoder, out / "openvino_tokenizer.xml")
    ov.save_model(decoder, out / "openvino_detokenizer.xml")
