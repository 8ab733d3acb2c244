"""GGUF files to Hugging Face folders: dequantized weights plus a tokenizer rebuilt from the GGUF vocabulary.

transformers' GGUF loader dequantizes the weights correctly, but for byte-level BPE vocabularies (SmolLM2,
Qwen2) the tokenizer it builds is wrong (byte fallback, spaces turned into unknowns, swapped special tokens).
The tokenizer is therefore rebuilt here from the GGUF's own tokens, merges, token types and chat template.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

# Pre-tokenizer splits by GGUF `tokenizer.ggml.pre` (llama.cpp's names for the upstream regexes).
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
_CONTROL = 3  # gguf TokenType.CONTROL
_USER_DEFINED = 4  # gguf TokenType.USER_DEFINED: added tokens that are text, e.g. Qwen2.5's <tool_call>


def gguf_to_hf(gguf_path: Path, out: Path, dtype_name: str = "float32") -> None:
    """Write `out` as a Hugging Face causal-LM folder equivalent to the GGUF model."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                 dtype=getattr(torch, dtype_name))
    model.save_pretrained(out)
    del model
    write_tokenizer(gguf_path, out)


def _field(reader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def _list(reader, key: str, kind: type, name: Path) -> list:
    """A metadata list whose items are all `kind`; a missing or mistyped one is a CorruptWeightsError."""
    from export.errors import CorruptWeightsError

    value = _field(reader, key)
    if not isinstance(value, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise CorruptWeightsError(f"{name.name}: the GGUF vocabulary ({key}) is missing or malformed; "
                                  "re-download the file")
    return value


def write_tokenizer(gguf_path: Path, out: Path) -> None:
    """Rebuild tokenizer.json, tokenizer_config.json and the chat template from the GGUF metadata; a vocabulary
    that does not hold together (missing lists, merges of unknown tokens, special ids out of range) is a
    CorruptWeightsError."""
    from export.errors import CorruptWeightsError
    from export.gguf_header import open_gguf

    reader = open_gguf(gguf_path)
    kind = _field(reader, "tokenizer.ggml.model")
    if kind != "gpt2":  # SentencePiece ("llama") vocabularies convert correctly in transformers
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name).save_pretrained(out)
        return
    tokens: list[str] = _list(reader, "tokenizer.ggml.tokens", str, gguf_path)
    types: list[int] = _list(reader, "tokenizer.ggml.token_type", int, gguf_path)
    merges = [tuple(m.split(" ", 1)) for m in _list(reader, "tokenizer.ggml.merges", str, gguf_path)]
    if not tokens or len(types) != len(tokens) or any(len(m) != 2 for m in merges):
        raise CorruptWeightsError(f"{gguf_path.name}: the GGUF vocabulary has {len(tokens)} tokens, {len(types)} "
                                  "token types and merges that are not token pairs; re-download the file")
    try:
        tokenizer = _byte_level_bpe(tokens, types, merges, str(_field(reader, "tokenizer.ggml.pre", "default")))
    except Exception as err:  # the tokenizers library raises plain Exception for a vocabulary it cannot build
        log.warning("no tokenizer from the vocabulary of %s: %s: %s", gguf_path, type(err).__name__, err)
        raise CorruptWeightsError(f"{gguf_path.name}: the GGUF vocabulary does not make a tokenizer ({err}); "
                                  "re-download the file") from err
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))

    def token(key: str) -> str | None:
        index = _field(reader, f"tokenizer.ggml.{key}_token_id")
        if index is None:
            return None
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(tokens):
            raise CorruptWeightsError(f"{gguf_path.name}: tokenizer.ggml.{key}_token_id {index!r:.40} is not a "
                                      f"token of the {len(tokens)}-token vocabulary; re-download the file")
        return tokens[index]

    bos, eos, pad, unk = token("bos"), token("eos"), token("padding"), token("unknown")
    template = _field(reader, "tokenizer.chat_template")
    if template is not None and not isinstance(template, str):
        raise CorruptWeightsError(f"{gguf_path.name}: tokenizer.chat_template is not text; re-download the file")
    context = _field(reader, f"{_field(reader, 'general.architecture')}.context_length", 4096)
    if not isinstance(context, int) or isinstance(context, bool) or context <= 0:
        raise CorruptWeightsError(f"{gguf_path.name}: the GGUF context length is not a positive number "
                                  f"({context!r:.40}); re-download the file")
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": bool(_field(reader,
              "tokenizer.ggml.add_bos_token", False)), "bos_token": bos, "eos_token": eos,
              "pad_token": pad or eos, "unk_token": unk, "clean_up_tokenization_spaces": False,
              "model_max_length": context}
    if template:
        config["chat_template"] = template
        (out / "chat_template.jinja").write_text(template, encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    special = {k: v for k, v in {"bos_token": bos, "eos_token": eos, "pad_token": pad or eos, "unk_token": unk}.items()
               if v is not None}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    _sync_generation_config(out, tokens.index(eos) if eos else None)


def _byte_level_bpe(tokens: list[str], types: list[int], merges: list[tuple[str, ...]], pre: str):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False, byte_fallback=False)
    tokenizer = Tokenizer(bpe)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if pre == "smollm":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    elif pre == "qwen2":
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    else:
        tokenizer.pre_tokenizer = byte_level
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.decoder = decoders.ByteLevel()
    control = [AddedToken(t, special=True, normalized=False) for t, kind in zip(tokens, types, strict=True)
               if kind == _CONTROL]
    tokenizer.add_special_tokens(control)
    # kept in decoded text (not special) but matched whole, as upstream's added tokens are: without them a prompt's
    # `<tool_call>` would be encoded as `<`, `tool`, `_call`, `>` while the model writes and was trained on one token
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False)
                          for t, kind in zip(tokens, types, strict=True) if kind == _USER_DEFINED])
    return tokenizer


def _sync_generation_config(out: Path, eos_id: int | None) -> None:
    path = out / "generation_config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    if eos_id is not None:
        config["eos_token_id"] = eos_id
    path.write_text(json.dumps(config, indent=2))
