"""MiniCPM / MiniCPM4 / MiniCPM4.1: an exact fold into a plain Llama checkpoint, and a PyTorch reference.

A dense MiniCPM decoder is a Llama whose muP scalars sit outside the weights:
``h0 = embed·scale_emb``, each residual branch is scaled by ``scale_depth/√L`` and the logits by
``dim_model_base/hidden``. Folding them into ``embed_tokens``, ``o_proj``, ``down_proj`` and an untied
``lm_head`` gives the same function, which optimum-intel exports with the pinned transformers.
The reference below computes the unfolded math directly from the original weights, so validation
compares the IR with MiniCPM itself, not with the fold.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from export.model_spec import logit_scale, longrope_factors, require_dense_silu, residual_scale

__all__ = ["build_reference", "fold_to_llama", "logit_scale", "residual_scale", "rope_parameters"]

if TYPE_CHECKING:  # torch is imported lazily: only the export extra has it
    import torch

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                    "added_tokens.json", "chat_template.jinja", "generation_config.json")


def rope_parameters(config: dict) -> dict:
    """MiniCPM's rope settings in the form transformers' Llama takes.

    optimum-intel's LongRoPE patch picks short or long per inference call; Hugging Face's MiniCPM, vLLM and
    llama.cpp fix one list from the config. Both lists are written as that one list, so the IR cannot switch.
    """
    theta = float(config.get("rope_theta", 10000.0))
    scaling = config.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) != "longrope":
        return {"rope_type": "default", "rope_theta": theta}
    original = int(scaling.get("original_max_position_embeddings", config["max_position_embeddings"]))
    factors, _ = longrope_factors(config)  # one list, as MiniCPM upstream: the IR must not switch per call
    return {"rope_type": "longrope", "rope_theta": theta, "short_factor": factors, "long_factor": list(factors),
            "original_max_position_embeddings": original, "factor": int(config["max_position_embeddings"]) / original}


def fold_to_llama(src: Path, dst: Path, dtype: torch.dtype) -> None:
    """Write `dst` as a Llama checkpoint computing exactly what the MiniCPM checkpoint in `src` computes."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    config = json.loads((src / "config.json").read_text())
    require_dense_silu(config, "minicpm")
    res, emb_scale, head_scale = residual_scale(config), float(config["scale_emb"]), logit_scale(config)
    index_file = src / "model.safetensors.index.json"
    shards = (sorted(set(json.loads(index_file.read_text())["weight_map"].values())) if index_file.is_file()
              else [p.name for p in sorted(src.glob("*.safetensors"))])
    dst.mkdir(parents=True, exist_ok=True)
    weight_map: dict[str, str] = {}
    names: set[str] = set()
    for shard in shards:
        with safe_open(str(src / shard), framework="pt") as handle:
            names.update(handle.keys())
    tied = "lm_head.weight" not in names
    for shard in shards:
        folded: dict[str, torch.Tensor] = {}
        with safe_open(str(src / shard), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not iterable
                tensor = handle.get_tensor(name).to(torch.float32)
                if name == "model.embed_tokens.weight":
                    if tied:  # the head shares the embedding but is scaled differently: untie it
                        folded["lm_head.weight"] = (tensor * head_scale).to(dtype)
                    tensor = tensor * emb_scale
                elif name == "lm_head.weight":
                    tensor = tensor * head_scale
                elif name.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")):
                    tensor = tensor * res
                folded[name] = tensor.to(dtype).contiguous()
        save_file(folded, str(dst / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(folded, shard))
    if shards != ["model.safetensors"]:  # transformers finds other names only through an index
        (dst / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    llama = LlamaConfig(
        vocab_size=config["vocab_size"], hidden_size=hidden, intermediate_size=config["intermediate_size"],
        num_hidden_layers=config["num_hidden_layers"], num_attention_heads=heads,
        num_key_value_heads=config.get("num_key_value_heads", heads), head_dim=hidden // heads,
        max_position_embeddings=config["max_position_embeddings"], rms_norm_eps=config.get("rms_norm_eps", 1e-6),
        rope_parameters=rope_parameters(config), tie_word_embeddings=False, attention_bias=False,
        bos_token_id=config.get("bos_token_id"), eos_token_id=config.get("eos_token_id"),
        pad_token_id=config.get("pad_token_id"), torch_dtype=str(dtype).removeprefix("torch."))
    llama.save_pretrained(dst)
    for name in _TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


def build_reference(src: Path, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The MiniCPM forward pass (spec §2) over the original, unfolded weights of `src`."""
    from export.minicpm_reference import load_reference

    return load_reference(src, dtype)
