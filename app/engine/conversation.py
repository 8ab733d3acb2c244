"""A conversation is plain data: a system prompt and a list of messages. The engine keeps no hidden state."""

from __future__ import annotations

from dataclasses import dataclass, field

THINK_SUFFIX, NO_THINK_SUFFIX = "/think", "/no_think"


@dataclass
class Message:
    """One turn. For the assistant, `content` is the answer only; `reasoning` is shown apart, never re-sent."""

    role: str  # "user" | "assistant"
    content: str
    reasoning: str = ""


@dataclass
class Conversation:
    """What the user sees, in order."""

    system: str = ""
    messages: list[Message] = field(default_factory=list)

    def prompt_messages(self, first: int = 0) -> list[dict[str, str]]:
        """System prompt plus messages[first:], as the chat template takes them (answers only)."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [{"role": m.role, "content": m.content} for m in self.messages[first:]]


def split_think_switch(text: str) -> tuple[str, bool | None]:
    """`…/think` or `…/no_think` at the end of a message: the message without it, and the switch it sets."""
    stripped = text.rstrip()
    for suffix, value in ((NO_THINK_SUFFIX, False), (THINK_SUFFIX, True)):
        if stripped.endswith(suffix):
            return stripped[: -len(suffix)].rstrip(), value
    return text, None
