"""Each model's own sampling defaults: built-in values, then the model folder's generation_config.json, then its
model card's recommendation (MiniCPM4: temperature 0.7, top-p 0.7). The user's changes go on top (app_settings)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path

from app.engine.settings import GenerationSettings
from export.manifest import read_manifest

log = logging.getLogger(__name__)

# What the repetition guard adds to an answer's settings, chosen with bench/repetition.py on the default model
# (bench/RESULTS.md): a frequency penalty of 0.5 ends its loops, sampled and greedy, where a presence penalty does
# not end greedy ones, and it leaves the repetition penalty to the user. GenAI applies it in plain mode, the
# engine's own loop through token_choice.penalize (GenAI's math). GenAI's no_repeat_ngram_size works in beam
# search only, so it is not used.
REPETITION_GUARD = {"frequency_penalty": 0.5}
# The MiniCPM4 / MiniCPM4.1 model card: model.chat(..., temperature=0.7, top_p=0.7)
CARD_RECOMMENDATIONS = {"minicpm": {"temperature": 0.7, "top_p": 0.7}}


@dataclass(frozen=True)
class Sampling:
    """The sampling settings kept per model; repetition_guard adds REPETITION_GUARD to every answer."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    repetition_penalty: float = 1.0
    repetition_guard: bool = True

    def generation(self, max_new_tokens: int) -> GenerationSettings:
        """What the engine answers with: these values, REPETITION_GUARD when the guard is on, the length."""
        return GenerationSettings(max_new_tokens=max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                                  top_k=self.top_k, repetition_penalty=self.repetition_penalty,
                                  **(REPETITION_GUARD if self.repetition_guard else {}))

    def merged(self, values: dict) -> Sampling:
        """These settings with the known fields of `values` over them (each converted to the field's type; a value
        that does not convert is logged and left out)."""
        kinds = {f.name: type(getattr(self, f.name)) for f in fields(self)}
        clean = {}
        for name, value in values.items():
            if name not in kinds:
                continue
            try:
                if kinds[name] is bool and not isinstance(value, bool):
                    raise ValueError(f"not a boolean: {value!r}")
                clean[name] = kinds[name](value)
            except (TypeError, ValueError) as err:
                log.warning("ignoring sampling setting %s=%r: %s", name, value, err)
        return replace(self, **clean)

    def changes_from(self, base: Sampling) -> dict:
        """The fields whose values differ from `base`'s."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(base, f.name)}


def generation_config_values(folder: Path) -> dict:
    """The sampling values in the folder's generation_config.json ({} when it has none or is unreadable).

    An explicit "do_sample": false means greedy answers (temperature 0), as in transformers."""
    path = folder / "generation_config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        log.warning("ignoring unreadable %s: %s", path, err)
        return {}
    values = {name: config[name] for name in ("temperature", "top_p", "top_k", "repetition_penalty")
              if config.get(name) is not None}
    if config.get("do_sample") is False:
        values["temperature"] = 0.0
    return values


def model_type(folder: Path) -> str:
    """The model's architecture name from config.json, else from the export's manifest ("" when neither says)."""
    try:
        kind = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        log.info("no readable config.json in %s (%s); trying the manifest", folder, err)
        kind = None
    if not kind:
        kind = ((read_manifest(folder) or {}).get("architecture") or {}).get("model_type")
    return str(kind or "")


def card_values(folder: Path) -> dict:
    """The model card's recommended sampling for this kind of model ({} when there is none)."""
    return dict(CARD_RECOMMENDATIONS.get(model_type(folder), {}))


def model_defaults(folder: Path | None) -> Sampling:
    """Built-in defaults < generation_config.json < the model card's recommendation."""
    defaults = Sampling()
    if folder is None:
        return defaults
    return defaults.merged(generation_config_values(folder)).merged(card_values(folder))


def model_key(folder: Path) -> str:
    """The name the user's settings for a model are kept under: its manifest's id, else its folder's name."""
    manifest_id = (read_manifest(folder) or {}).get("id")
    return str(manifest_id) if manifest_id else Path(folder).name
