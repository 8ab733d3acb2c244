"""Draft models for assisted generation, exported beside the target into OUT/draft.

Two kinds: a standalone draft (a smaller model with the same tokenizer, exported like any model, int4 by
default) and an EAGLE3 head (`eagle3:PATH`), which predicts from the target's hidden states. openvino-genai
refuses a draft whose tokenizer differs from the target's, so the vocabularies are compared right after the
sources are resolved, before anything is converted.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from export.config_file import read_config
from export.errors import CorruptWeightsError, ExportError
from export.preflight import inspect_gguf
from export.settings import Quantization
from export.source import Source, resolve_source

DRAFT_DIR = "draft"
EAGLE3_PREFIX = "eagle3:"
EAGLE3_MIN_TARGET_LAYERS = 10  # openvino-genai picks the target's hidden layers itself and needs at least 10
_TOKENIZER_FILES = ("openvino_tokenizer.xml", "openvino_tokenizer.bin", "openvino_detokenizer.xml",
                    "openvino_detokenizer.bin")


class DraftMismatchError(ExportError):
    """The draft cannot assist this target (different vocabulary, too few target layers, wrong kind)."""


@dataclass(frozen=True)
class DraftRequest:
    """`--draft SPEC` with its own weight format."""

    spec: str
    # symmetric int4 by default: ~10 % cheaper drafted tokens than asymmetric, accepted as often (bench/RESULTS.md)
    quant: Quantization = field(default_factory=lambda: Quantization(sym=True))
    vocab: int | None = None  # keep the LM head rows of the first N token ids (export/draft_vocab.py); None: all

    @property
    def kind(self) -> str:
        """"eagle3" for an EAGLE3 head, "standalone" for a smaller model of the same family."""
        return "eagle3" if self.spec.startswith(EAGLE3_PREFIX) else "standalone"

    @property
    def location(self) -> str:
        """The draft's source without the kind prefix."""
        return self.spec[len(EAGLE3_PREFIX):] if self.kind == "eagle3" else self.spec


def resolve_draft(request: DraftRequest, target: Source, revision: str | None = None) -> Source:
    """Resolve the draft's source and refuse it early when it cannot assist `target`."""
    draft = resolve_source(request.location, revision if request.kind == "standalone" else None)
    if request.kind == "eagle3":
        layers = target_layers(target)
        if layers is not None and layers < EAGLE3_MIN_TARGET_LAYERS:
            raise DraftMismatchError(
                f"An EAGLE3 draft needs a target with at least {EAGLE3_MIN_TARGET_LAYERS} decoder layers "
                f"(openvino-genai chooses the hidden layers it feeds the head); this target has {layers}. "
                "Use a standalone draft model instead: --draft SMALLER_MODEL")
        return draft
    if draft.kind == "gguf":
        inspect_gguf(draft.path)  # a corrupt or unsupported GGUF draft is refused before any conversion
    target_vocab, draft_vocab = vocabulary(target), vocabulary(draft)
    problem = vocabulary_difference(target_vocab, draft_vocab)
    if problem:
        raise DraftMismatchError(
            f"The draft {request.location} does not share the target's tokenizer ({problem}); speculative decoding "
            "needs the same vocabulary. Pick a draft from the same model family (e.g. a smaller size of the "
            "same model, or an int4 copy of the target itself)")
    return draft


def vocabulary(source: Source) -> dict[str, int]:
    """Token → id of a source's tokenizer (a GGUF's own vocabulary, or the folder's Hugging Face tokenizer)."""
    if source.kind == "gguf":
        tokens, types = gguf_fields(source.path, "tokenizer.ggml.tokens", "tokenizer.ggml.token_type")
        try:
            # llama.cpp pads some vocabularies with unused [PAD] slots (type 5) up to the embedding size
            return {token: index for index, (token, kind) in enumerate(zip(tokens, types, strict=True)) if kind != 5}
        except (TypeError, ValueError) as err:  # a field missing (None) or the two lists of different lengths
            raise CorruptWeightsError(f"{source.path.name} has no usable vocabulary ({err}); re-download it, or "
                                      "pass a GGUF file with its tokenizer") from err
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path)
    except (OSError, ValueError, TypeError) as err:
        raise ExportError(f"Could not read the tokenizer of {source.spec} ({err}); the folder needs tokenizer "
                          "files to be checked against the target") from err
    return dict(tokenizer.get_vocab())


def vocabulary_difference(target: dict[str, int], draft: dict[str, int]) -> str | None:
    """None when both map the same tokens to the same ids, else a short description of the first difference."""
    if target == draft:
        return None
    if len(target) != len(draft):
        return f"{len(draft)} tokens against the target's {len(target)}"
    for token, index in target.items():
        if draft.get(token) != index:
            return f"token {token!r} is id {draft.get(token)} in the draft but {index} in the target"
    return "the token ids differ"


def target_layers(source: Source) -> int | None:
    """Number of decoder layers of the target source, when it can be read cheaply."""
    if source.kind == "gguf":
        (arch,) = gguf_fields(source.path, "general.architecture")
        (count,) = gguf_fields(source.path, f"{arch}.block_count")
        return None if count is None else int(count)
    config = source.path / "config.json"
    if not config.is_file():
        return None
    layers = read_config(config).get("num_hidden_layers")
    return layers if isinstance(layers, int) else None


def gguf_fields(path: Path, *keys: str) -> list:
    """The contents of metadata fields of a GGUF file (None for an absent one); CorruptWeightsError, one line,
    when the file cannot be read as GGUF."""
    from export.gguf_header import open_gguf

    reader = open_gguf(path)  # the header checked first: a mangled count cannot make GGUFReader loop for hours
    try:
        return [reader.fields[key].contents() if key in reader.fields else None for key in keys]
    except (ValueError, IndexError) as err:  # a value the package cannot decode
        raise CorruptWeightsError(f"{path.name} is not a readable GGUF file ({type(err).__name__}: {err}); "
                                  "re-download it") from err


def export_draft(request: DraftRequest, draft: Source, target_ir: Path, trust_remote_code: bool, log,
                 backend: str = "streaming") -> dict:
    """Export the draft into `target_ir/draft` (a standalone draft through `backend`); returns the target
    manifest's `draft` entry."""
    out = target_ir / DRAFT_DIR
    log(f"      draft ({request.kind}, {request.quant.weight_format}): {request.location}")
    if request.kind == "eagle3":
        entry = _export_eagle3(draft, out, target_ir, request.quant, trust_remote_code)
    else:
        from export.exporter import ExportRequest, run_export

        sub = run_export(ExportRequest(str(draft.path), out, request.quant, trust_remote_code, force=True,
                                       backend=backend), log=lambda line: log("      draft: " + line.strip()))
        entry = {"validation": sub["validation"], "architecture": sub["architecture"]}
        if request.vocab:
            from export.draft_vocab import cut_draft_vocabulary

            cut = cut_draft_vocabulary(out / "openvino_model.xml", request.vocab, request.quant.weight_format)
            entry["vocabulary"] = cut
            log(f"      draft: LM head cut to the first {cut['kept']} of {cut['of']} token ids, {cut['head']}")
    from export.manifest import folder_sizes

    return {"kind": request.kind, "path": DRAFT_DIR, "source": draft.describe(),
            "quantization": request.quant.describe(), "sizes": folder_sizes(out), **entry}


def _export_eagle3(draft: Source, out: Path, target_ir: Path, quant: Quantization, trust_remote_code: bool) -> dict:
    """An EAGLE3 head: an IR folder already converted is copied; a Hugging Face head is converted here.

    Either way the draft folder gets the target's tokenizer files, which openvino-genai requires in it.
    """
    if draft.kind != "folder":
        raise DraftMismatchError("--draft eagle3:PATH takes a folder (an EAGLE3 head in Hugging Face format, or "
                                 "one already converted to OpenVINO IR)")
    if (draft.path / "openvino_model.xml").is_file():
        if not _is_eagle3_ir(draft.path / "openvino_model.xml"):
            raise DraftMismatchError(f"{draft.path} is an OpenVINO IR but not an EAGLE3 head (no eagle3_mode in its "
                                     "rt_info); pass a standalone draft without the eagle3: prefix")
        shutil.copytree(draft.path, out, ignore=shutil.ignore_patterns("manifest.json"))
        route = "copied-ir"
    else:
        config = read_config(draft.path / "config.json") if (draft.path / "config.json").is_file() else {}
        architectures = config.get("architectures")
        if not isinstance(architectures, list) or not any("eagle" in str(name).lower() for name in architectures):
            raise DraftMismatchError(f"{draft.path} is not an EAGLE3 head (config.json architectures: "
                                     f"{config.get('architectures')}); expected e.g. LlamaForCausalLMEagle3")
        if not trust_remote_code:
            raise DraftMismatchError("Converting an EAGLE3 head runs its modeling code: pass --trust-remote-code")
        from export.convert import convert_to_ir

        try:
            convert_to_ir(draft.path, out, quant, trust_remote_code=True)
        except Exception as err:  # optimum-intel's EAGLE3 route has optional dependencies (einops, diffusers)
            raise ExportError(f"optimum-intel could not convert the EAGLE3 head ({str(err).splitlines()[0]}); "
                              "convert it with optimum-cli and pass the IR folder as eagle3:IR_DIR") from err
        route = "converted"
        if not _is_eagle3_ir(out / "openvino_model.xml"):
            raise DraftMismatchError("The converted head carries no eagle3_mode marker; openvino-genai would run it "
                                     "as a plain draft. Check the head's architecture")
    for name in _TOKENIZER_FILES:
        if (target_ir / name).is_file():
            shutil.copy2(target_ir / name, out / name)
    return {"route": route}


def _is_eagle3_ir(xml: Path) -> bool:
    return "eagle3_mode" in xml.read_text(encoding="utf-8", errors="replace")
