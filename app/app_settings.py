"""The user's settings, kept in the chat database so they travel with the chats."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from app.engine import GenerationSettings
from app.engine.speculative import DraftConfig
from app.store import ChatStore

THEMES = ("system", "light", "dark")
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}


@dataclass
class AppSettings:
    """Everything the Settings dialog edits, plus the models the user chose."""

    system_prompt: str = ""
    max_new_tokens: int = 1024
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    repetition_penalty: float = 1.0
    device: str = "CPU"
    use_draft: bool = True  # assisted generation with the model's draft, when it has one
    theme: str = "system"
    language: str = "en"
    model_folder: str = ""  # the model in use ("" = the built-in default)
    model_dirs: list[str] = field(default_factory=list)  # folders the user added to the model list

    def generation(self) -> GenerationSettings:
        """The sampling part, as the engine takes it."""
        return GenerationSettings(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                                  top_k=self.top_k, repetition_penalty=self.repetition_penalty)

    def draft(self) -> DraftConfig:
        """Whether the engine uses a model's draft."""
        return DraftConfig(enabled=bool(self.use_draft))

    @classmethod
    def load(cls, store: ChatStore) -> AppSettings:
        """Stored values over the defaults (unknown or missing keys fall back to the default)."""
        defaults = cls()
        return cls(**{f.name: store.get_setting(f.name, getattr(defaults, f.name)) for f in fields(cls)})

    def save(self, store: ChatStore) -> None:
        """Write every field."""
        for key, value in asdict(self).items():
            store.set_setting(key, value)
