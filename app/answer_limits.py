"""Settings that hold: an answer's length bounded by the model's context, and the changes that need a model reload
(device, draft, context) kept for after the answer that is streaming. Qt-free: the window and the Settings dialog
both use it."""

from __future__ import annotations

from dataclasses import replace

from app.engine import GenerationSettings

PROMPT_ROOM = 512  # tokens an answer always leaves for the prompt (half the context, when that is smaller)
RELOAD_FIELDS = ("device", "use_draft", "context")  # AppSettings fields that take effect by reloading the model


def max_new_tokens_limit(context: int) -> int:
    """The longest answer a context of `context` tokens allows, the prompt keeping PROMPT_ROOM of it."""
    return max(1, context - min(PROMPT_ROOM, context // 2))


def bounded(settings: GenerationSettings, context: int | None) -> GenerationSettings:
    """`settings` with max_new_tokens cut to what `context` allows (None: no model loaded, nothing to bound)."""
    if context is None or settings.max_new_tokens <= max_new_tokens_limit(context):
        return settings
    return replace(settings, max_new_tokens=max_new_tokens_limit(context))


def reload_changes(old: object, new: object) -> list[str]:
    """The reload fields whose value differs between two AppSettings."""
    return [name for name in RELOAD_FIELDS if getattr(old, name) != getattr(new, name)]
