"""The architectures cpmdesk exports, and how each one is routed through optimum-intel."""

from __future__ import annotations

from dataclasses import dataclass

# Exported as they are by optimum-intel with the pinned transformers.
NATIVE = ("llama", "mistral", "qwen2", "qwen3")
# MiniCPM / MiniCPM4 / MiniCPM4.1: muP scales folded into the weights, exported as Llama (exact, see minicpm.py).
FOLDED = ("minicpm",)
# GGUF files: transformers' GGUF loader handles these `general.architecture` values.
GGUF = ("llama", "mistral", "qwen2", "qwen3")


# config.json files written by remote code may omit model_type (MiniCPM4's do): infer it from the class.
_BY_CLASS = {"MiniCPMForCausalLM": "minicpm", "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
             "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}


def model_type_of(config: dict) -> str:
    """config['model_type'], or the type implied by config['architectures'] when it is missing."""
    if config.get("model_type"):
        return str(config["model_type"])
    for name in config.get("architectures") or []:
        if name in _BY_CLASS:
            return _BY_CLASS[name]
    return ""


@dataclass(frozen=True)
class Route:
    """How one model_type is exported."""

    model_type: str
    kind: str  # "native" | "minicpm-fold" | "remote-code"


def supported_list() -> str:
    """Human list for error messages."""
    return ", ".join(sorted({*NATIVE, *FOLDED}))


def route_for(model_type: str, has_remote_code: bool, trust_remote_code: bool) -> Route | None:
    """The route for a model_type, or None when cpmdesk cannot export it."""
    if model_type in FOLDED:
        return Route(model_type, "minicpm-fold")
    if model_type in NATIVE:
        return Route(model_type, "native")
    if has_remote_code and trust_remote_code:
        return Route(model_type, "remote-code")
    return None
