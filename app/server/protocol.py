"""Reading OpenAI chat-completion requests into the engine's terms; anything malformed is a RequestError (400)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.engine import Conversation, Message

ROLES = ("system", "developer", "user", "assistant", "tool")


class RequestError(Exception):
    """A request the API refuses, with an OpenAI-style error body."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind

    def body(self) -> dict:
        """The JSON error body clients parse."""
        return error_body(str(self), self.kind, self.param, self.code)


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    """{"error": {"message", "type", "param", "code"}}, as OpenAI's API answers errors."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class Sampling:
    """The sampling fields a request set (None: the model's default)."""

    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    presence_penalty: float | None
    frequency_penalty: float | None
    seed: int | None
    stop: tuple[str, ...]
    ignore_eos: bool  # vLLM's extension: generate max_tokens whatever the model says (benchmarks)


@dataclass(frozen=True)
class ChatRequest:
    """A chat-completion request, checked."""

    conversation: Conversation
    sampling: Sampling
    think: bool | None  # chat_template_kwargs.enable_thinking (None: the template's default)
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk with the token counts
    parse_tools: bool  # tools were offered, so the answer is read for tool calls


def parse_chat_request(body: Any) -> ChatRequest:
    """Check a /v1/chat/completions body and turn it into a ChatRequest."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object")
    for name, allowed in (("n", (None, 1)), ("logprobs", (None, False))):
        if body.get(name) not in allowed:
            raise RequestError(f"{name}={body[name]!r} is not supported", name, "unsupported_parameter")
    response_format = body.get("response_format")
    if response_format not in (None, {"type": "text"}):
        raise RequestError("response_format other than text is not supported", "response_format",
                           "unsupported_parameter")
    _optional(body, "model", str)
    tools = _tools(body.get("tools"))
    choice = body.get("tool_choice", "auto" if tools else "none")
    offered = _offered_tools(tools, choice)
    conversation = _conversation(body.get("messages"))
    conversation.tools = offered
    kwargs = _optional(body, "chat_template_kwargs", dict) or {}
    think = kwargs.get("enable_thinking", body.get("enable_thinking"))
    if think is not None and not isinstance(think, bool):
        raise RequestError("enable_thinking must be true or false", "chat_template_kwargs.enable_thinking")
    stream = bool(_optional(body, "stream", bool))
    options = _optional(body, "stream_options", dict) or {}
    return ChatRequest(conversation, _sampling(body), think, stream, bool(options.get("include_usage")),
                       bool(offered))


def _sampling(body: dict) -> Sampling:
    max_tokens = _optional(body, "max_completion_tokens", int)
    if max_tokens is None:
        max_tokens = _optional(body, "max_tokens", int)
    if max_tokens is not None and max_tokens < 1:
        raise RequestError("max_tokens must be at least 1", "max_tokens")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop)):
        raise RequestError("stop must be a string or a list of strings", "stop")
    return Sampling(max_tokens, _number(body, "temperature", 0.0, 2.0), _number(body, "top_p", 0.0, 1.0),
                    _number(body, "presence_penalty", -2.0, 2.0), _number(body, "frequency_penalty", -2.0, 2.0),
                    _optional(body, "seed", int), tuple(stop or ()), bool(_optional(body, "ignore_eos", bool)))


def _conversation(messages: Any) -> Conversation:
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list", "messages")
    system: list[str] = []
    turns: list[Message] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(f"{where} needs a role, one of {', '.join(ROLES)}", where)
        role = message["role"]
        content = _content(message.get("content"), f"{where}.content", allow_empty=role == "assistant")
        if role in ("system", "developer"):
            system.append(content)
        elif role == "assistant":
            calls = _assistant_calls(message.get("tool_calls"), f"{where}.tool_calls")
            if not content and not calls:
                raise RequestError(f"{where} has neither content nor tool_calls", f"{where}.content")
            turns.append(Message("assistant", content, tool_calls=calls or None))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is not None and not isinstance(call_id, str):
                raise RequestError(f"{where}.tool_call_id must be a string", f"{where}.tool_call_id")
            turns.append(Message("tool", content, tool_call_id=call_id))
        else:
            turns.append(Message("user", content))
    if not turns:
        raise RequestError("messages has no user message", "messages")
    if turns[-1].role == "assistant":
        raise RequestError("the last message is the assistant's; continuing it is not supported", "messages")
    return Conversation(system="\n\n".join(s for s in system if s), messages=turns)


def _content(value: Any, where: str, allow_empty: bool) -> str:
    """Message content: a string, or a list of text parts (other parts are not supported)."""
    if value is None and allow_empty:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise RequestError(f"{where}: only text parts are supported", where, "unsupported_content")
            texts.append(part["text"])
        return "".join(texts)
    raise RequestError(f"{where} must be a string or a list of text parts", where)


def _assistant_calls(value: Any, where: str) -> list[dict]:
    """An assistant turn's earlier calls, arguments decoded from their JSON strings."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError(f"{where} must be a list", where)
    calls = []
    for index, call in enumerate(value):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(f"{where}[{index}] needs function.name", f"{where}[{index}]")
        arguments = function.get("arguments") or "{}"
        try:
            decoded = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError as err:
            raise RequestError(f"{where}[{index}].function.arguments is not JSON: {err.msg}",
                               f"{where}[{index}].function.arguments") from err
        if not isinstance(decoded, dict):
            raise RequestError(f"{where}[{index}].function.arguments must be a JSON object",
                               f"{where}[{index}].function.arguments")
        calls.append({"id": str(call.get("id") or ""), "type": "function",
                      "function": {"name": function["name"], "arguments": decoded}})
    return calls


def _tools(value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError("tools must be a list", "tools")
    tools = []
    for index, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise RequestError(f"tools[{index}] must be {{\"type\": \"function\", \"function\": {{\"name\": …}}}}",
                               f"tools[{index}]")
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise RequestError(f"tools[{index}].function.parameters must be a JSON schema object",
                               f"tools[{index}].function.parameters")
        tools.append({"type": "function", "function": {"name": function["name"],
                                                       "description": str(function.get("description") or ""),
                                                       "parameters": parameters}})
    return tools


def _offered_tools(tools: list[dict], choice: Any) -> list[dict]:
    """The tools the prompt offers: none for "none", one for a named function ("required" and a name cannot be
    enforced on the model's output; they are offered as "auto")."""
    if choice in ("none", "auto", "required"):
        if choice == "required" and not tools:
            raise RequestError('tool_choice "required" needs tools', "tool_choice")
        return [] if choice == "none" else tools
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str):
        raise RequestError('tool_choice must be "none", "auto", "required" or {"type": "function", '
                           '"function": {"name": …}}', "tool_choice")
    named = [tool for tool in tools if tool["function"]["name"] == name]
    if not named:
        raise RequestError(f"tool_choice names {name!r}, which is not in tools", "tool_choice")
    return named


def _optional(body: dict, name: str, kind: type) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise RequestError(f"{name} must be of type {kind.__name__}", name)
    return value


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(f"{name} must be a number from {low} to {high}", name)
    return float(value)
