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


def model_entry(model_id: str, created: int) -> dict:
    """One entry of /v1/models."""
    return {"id": model_id, "object": "model", "created": created, "owned_by": "cpmdesk"}
