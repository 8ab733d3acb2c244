"""The user's settings, kept in the chat database so they travel with the chats."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from app.engine import GenerationSettings
from app.engine.model_defaults import Sampling, model_defaults, model_key
from app.engine.speculative import DraftConfig
from app.store import ChatStore

log = logging.getLogger(__name__)

THEMES = ("system", "light", "dark")
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}


@dataclass
class AppSettings:
    """Everything the Settings dialog edits, plus the models the user chose."""

    system_prompt: str = ""
    max_new_tokens: int = 1024
    device: str = "CPU"
    use_draft: bool = True  # assisted generation with the model's draft, when it has one
    context: int = 0  # context length in tokens; 0: the model's trained length (as much as fits in memory)
    theme: str = "system"
    language: str = "en"
    model_folder: str = ""  # the model in use ("" = the built-in default)
    model_dirs: list[str] = field(default_factory=list)  # folders the user added to the model list
    # per model (model_key): the sampling values the user changed from that model's defaults
    model_sampling: dict[str, dict] = field(default_factory=dict)

    def sampling(self, folder: Path | None) -> Sampling:
        """The model's sampling: its defaults (model_defaults) with the user's changes for it on top."""
        return model_defaults(folder).merged(self.model_sampling.get(_key(folder), {}))

    def set_sampling(self, folder: Path | None, sampling: Sampling) -> None:
        """Keep `sampling` for the model as the user's changes from its defaults (None: while no model is loaded)."""
        changes = sampling.changes_from(model_defaults(folder))
        key = _key(folder)
        self.model_sampling = {k: v for k, v in self.model_sampling.items() if k != key}
        if changes:
            self.model_sampling[key] = changes

    def generation(self, folder: Path | None = None) -> GenerationSettings:
        """What the engine answers with for the model in `folder`: its sampling, the guard when on, the length."""
        return self.sampling(folder).generation(self.max_new_tokens)

    def draft(self) -> DraftConfig:
        """Whether the engine uses a model's draft."""
        return DraftConfig(enabled=bool(self.use_draft))

    @classmethod
    def load(cls, store: ChatStore) -> AppSettings:
        """Stored values over the defaults (unknown or missing keys fall back to the default)."""
        defaults = cls()
        loaded = cls(**{f.name: store.get_setting(f.name, getattr(defaults, f.name)) for f in fields(cls)})
        if not isinstance(loaded.model_sampling, dict) or not all(
                isinstance(v, dict) for v in loaded.model_sampling.values()):
            log.warning("ignoring malformed per-model sampling settings: %r", loaded.model_sampling)
            loaded.model_sampling = {}
        return loaded

    def save(self, store: ChatStore) -> None:
        """Write every field in one transaction (the per-model settings are one JSON value); replaced values, such as
        an old system prompt, are erased from the database files."""
        store.set_settings(asdict(self))


def _key(folder: Path | None) -> str:
    """Where a model's changes are kept in model_sampling ("" for the settings used while no model is loaded)."""
    return "" if folder is None else model_key(folder)
