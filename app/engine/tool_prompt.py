"""Prompts for conversations with tools: the model's own chat template rendered with jinja2, since GenAI's
apply_chat_template rewrites `tool` turns into user turns for templates without tool support.

A template that takes `tools` gets them (and the assistant's `tool_calls`) as it expects: Qwen-style templates
write the Hermes `<tools>` / `<tool_call>` / `<tool_response>` form themselves. Other templates get MiniCPM4-MCP's
documented form: the tools as Python signatures in the system prompt, earlier calls written back as
`<|tool_call_start|>` blocks, and results as `tool` turns.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import meta
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.engine.tool_calls import MINICPM_END, MINICPM_START

_PY_TYPES = {"string": "str", "number": "float", "integer": "int", "boolean": "bool", "null": "None",
             "array": "list", "object": "dict"}


class ToolTemplateError(ValueError):
    """The chat template could not render the conversation; the message says why."""


class ToolTemplate:
    """A model's chat template, rendered like transformers does (sandboxed jinja2)."""

    def __init__(self, template: str, bos_token: str = "", eos_token: str = "") -> None:
        self._env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                  extensions=["jinja2.ext.loopcontrols"])
        self._env.filters["tojson"] = _tojson
        self._env.globals["raise_exception"] = _raise
        self._env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            parsed = self._env.parse(template)
            self._template = self._env.from_string(template)
        except TemplateError as err:
            raise ToolTemplateError(f"the model's chat template does not parse: {err}") from err
        self.variables = meta.find_undeclared_variables(parsed)
        self.takes_tools = "tools" in self.variables
        self._special = {"bos_token": bos_token, "eos_token": eos_token}

    def render(self, messages: list[dict], tools: list[dict] | None, extra: dict | None = None) -> str:
        """The prompt for `messages` (OpenAI-style dicts, `tool_calls` arguments as objects), ready for the
        assistant's turn, with `tools` (OpenAI function definitions) offered to the model."""
        tools = tools or []
        if not self.takes_tools:
            messages = minicpm_messages(messages, tools)
        context = {**self._special, **(extra or {})}
        if self.takes_tools and tools:
            context["tools"] = tools
        try:
            return self._template.render(messages=messages, add_generation_prompt=True, **context)
        except (TemplateError, TypeError, ValueError) as err:
            raise ToolTemplateError(f"the model's chat template cannot render this conversation: {err}") from err


def minicpm_messages(messages: list[dict], tools: list[dict]) -> list[dict]:
    """The conversation in MiniCPM4-MCP's form: tools in the system prompt, calls as marked Python blocks."""
    out = [dict(m) for m in messages]
    if tools:
        block = tool_system_prompt(tools)
        if out and out[0].get("role") == "system":
            out[0]["content"] = f"{out[0].get('content') or ''}\n\n{block}".lstrip()
        else:
            out.insert(0, {"role": "system", "content": block})
    for message in out:
        calls = message.pop("tool_calls", None)
        if message.get("role") == "assistant" and calls:
            message["content"] = minicpm_call_text(calls) + (message.get("content") or "")
        message["content"] = message.get("content") or ""
    return out


def minicpm_call_text(calls: list[dict]) -> str:
    """Earlier calls written back as MiniCPM4 writes them."""
    lines = []
    for call in calls:
        function = call.get("function", call)
        arguments = ", ".join(f"{key}={_python_literal(value)}" for key, value in function["arguments"].items())
        lines.append(f"{function['name']}({arguments})")
    return f"{MINICPM_START}\n```python\n" + "\n".join(lines) + f"\n```\n{MINICPM_END}\n"


def tool_system_prompt(tools: list[dict]) -> str:
    """MiniCPM4-MCP's system-prompt form: the functions as Python signatures, then how to call them."""
    functions = "\n\n".join(_signature(tool.get("function", tool)) for tool in tools)
    return ("# Functions\nHere is a list of functions that you can invoke:\n```python\n"
            f"{functions}\n```\n\n"
            "# Function Call Rule and Output Format\n"
            "- If the user's question can be answered without calling any function, answer it directly.\n"
            "- If a function is needed but the user did not give enough information to call it, ask for it.\n"
            "- Otherwise call the functions, with their default parameters unless the user said otherwise, "
            "in this format:\n\n"
            f"{MINICPM_START}\n```python\nfunc1(param_name=param_value, param_name2=param_value2)\n"
            f"func2(param_name=param_value)\n```\n{MINICPM_END}")


def _signature(function: dict) -> str:
    parameters = function.get("parameters") or {}
    properties = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    params, docs = [], []
    for name, spec in properties.items():
        kind = _py_type(spec)
        params.append(f"{name}: {kind}" if name in required else
                      f"{name}: {kind} = {_python_literal(spec.get('default'))}")
        note = spec.get("description", "")
        if spec.get("enum"):
            note = f"{note} (one of {', '.join(_python_literal(v) for v in spec['enum'])})".strip()
        docs.append(f"        {name}: {note}".rstrip())
    ordered = sorted(params, key=lambda p: "=" in p)  # required parameters first, as Python wants
    doc = function.get("description", "").strip()
    body = f'    """{doc}' + ("\n\n    Args:\n" + "\n".join(docs) if docs else "") + '\n    """'
    return f"def {function['name']}({', '.join(ordered)}):\n{body}"


def _py_type(spec: dict) -> str:
    kind = spec.get("type")
    if isinstance(kind, list):
        return " | ".join(_PY_TYPES.get(k, "Any") for k in kind)
    if kind == "array" and isinstance(spec.get("items"), dict) and spec["items"].get("type"):
        return f"list[{_py_type(spec['items'])}]"
    return _PY_TYPES.get(kind, "Any")


def _python_literal(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, sort_keys: bool = False,
            separators: tuple[str, str] | None = None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys, separators=separators)


def _raise(message: str) -> None:
    raise TemplateError(message)
