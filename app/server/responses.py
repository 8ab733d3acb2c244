"""OpenAI-shaped response bodies: chat completions, their streamed chunks, usage, models, embeddings."""

from __future__ import annotations

import json
import secrets
from typing import Any

from app.engine.tool_calls import ToolCall


def new_id(prefix: str) -> str:
    """A random id such as chatcmpl-… or call_…"""
    return f"{prefix}{secrets.token_hex(12)}"


def tool_call_json(call: ToolCall, index: int | None = None) -> dict:
    """A call as OpenAI's tool_calls list holds it (arguments as a JSON string); `index` for stream deltas."""
    out: dict[str, Any] = {"id": new_id("call_"), "type": "function",
                           "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
    return out if index is None else {"index": index, **out}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    """Token counts."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion(completion_id: str, created: int, model: str, message: dict, finish_reason: str,
               counts: dict) -> dict:
    """A whole chat completion."""
    return {"id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": counts}


def chunk(completion_id: str, created: int, model: str, delta: dict, finish_reason: str | None = None,
          counts: dict | None = None) -> dict:
    """One streamed chunk; with `counts` and no delta, the last chunk that carries only the usage."""
    choices = [] if counts is not None and not delta and finish_reason is None else [
        {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
    out = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
           "choices": choices}
    if counts is not None:
        out["usage"] = counts
    return out


def sse(data: dict | str) -> bytes:
    """One server-sent event."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


class ChunkFrames:
    """The streamed chunks of one completion as SSE bytes. A text delta is the common case (one per token or
    batch): its constant head and tail are encoded once and only the text is JSON-encoded per chunk; the bytes are
    the same as `sse(chunk(…))` makes."""

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self._id, self._created, self._model = completion_id, created, model
        head = sse(chunk(completion_id, created, model, {"content": ""})).decode()
        cut = head.index('{"content":')
        self._head = head[:cut + 1].encode()  # up to the delta's opening brace
        self._tail = head[head.index('""', cut) + 2:].encode()  # from the delta's closing brace

    def delta(self, delta: dict, finish_reason: str | None = None, counts: dict | None = None) -> bytes:
        """Any chunk: `chunk()` as one event."""
        return sse(chunk(self._id, self._created, self._model, delta, finish_reason, counts))

    def text(self, field: str, text: str) -> bytes:
        """A chunk whose delta is only {field: text} (field "content" or "reasoning_content")."""
        return b"".join((self._head, json.dumps(field).encode(), b":",
                         json.dumps(text, ensure_ascii=False).encode(), self._tail))


def model_entry(model_id: str, created: int) -> dict:
    """One entry of /v1/models."""
    return {"id": model_id, "object": "model", "created": created, "owned_by": "cpmdesk"}
