"""A conversation is plain data: a system prompt and a list of messages. The engine keeps no hidden state."""

from __future__ import annotations

from dataclasses import dataclass, field

THINK_SUFFIX, NO_THINK_SUFFIX = "/think", "/no_think"


@dataclass
class Message:
    """One turn. For the assistant, `content` is the answer only; `reasoning` is shown apart, never re-sent."""

    role: str  # "user" | "assistant" | "tool" (a tool's result)
    content: str
    reasoning: str = ""
    tool_calls: list[dict] | None = None  # assistant: [{"id", "type", "function": {"name", "arguments": {…}}}]
    tool_call_id: str | None = None  # tool: the call this result answers


@dataclass
class Conversation:
    """What the user sees, in order."""

    system: str = ""
    messages: list[Message] = field(default_factory=list)
    tools: list[dict] = field(default_factory=list)  # OpenAI function definitions offered to the model

    def prompt_messages(self, first: int = 0) -> list[dict]:
        """System prompt plus messages[first:], as the chat template takes them (answers only)."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [_prompt_message(m) for m in self.messages[first:]]


def _prompt_message(message: Message) -> dict:
    """A message as the chat template takes it; tool fields only when set."""
    out: dict = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = message.tool_calls
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def split_think_switch(text: str) -> tuple[str, bool | None]:
    """`…/think` or `…/no_think` at the end of a message: the message without it, and the switch it sets."""
    stripped = text.rstrip()
    for suffix, value in ((NO_THINK_SUFFIX, False), (THINK_SUFFIX, True)):
        if stripped.endswith(suffix):
            return stripped[: -len(suffix)].rstrip(), value
    return text, None
