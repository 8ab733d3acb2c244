"""Tool calls in a model's answer, found while it streams: MiniCPM4's and the Hermes / Qwen format.

MiniCPM4 (MiniCPM4-MCP) writes Python calls in a fenced block between markers, parsed with `ast`:

    <|tool_call_start|>
    ```python
    get_weather(city="Paris", days=2)
    ```
    <|tool_call_end|>

Hermes / Qwen write one JSON object per block: `<tool_call>{"name": …, "arguments": {…}}</tool_call>`.

The parser holds back only text that may be the start of a marker, so chunks can split markers anywhere. A block
that does not parse is reported as a MalformedCall carrying its raw text; it never raises.

Some models (Qwen2.5-Coder among them, bench/RESULTS.md issue 21) answer a request for a tool with the call's JSON
alone, without the markers. Given the names of the tools offered, the parser also takes an answer that is nothing
but such JSON (one object, a list of them, or one per line, optionally in a ```json fence) naming offered tools as
calls, as Ollama and llama.cpp do; an answer starting with `{`, `[` or a fence is then held back until it ends
(up to BARE_LIMIT characters), and anything else is text as before.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

MINICPM_START, MINICPM_END = "<|tool_call_start|>", "<|tool_call_end|>"
HERMES_START, HERMES_END = "<tool_call>", "</tool_call>"
_PAIRS = {MINICPM_START: MINICPM_END, HERMES_START: HERMES_END}
_JSON_NAMES = {"true": True, "false": False, "null": None}
BARE_LIMIT = 16_000  # characters an unmarked JSON answer is held back before it is taken as text
_BARE_STARTS = ("{", "[", "```")


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class MalformedCall:
    """A tool-call block that could not be read: its raw text (markers included) and why."""

    text: str
    reason: str


@dataclass(frozen=True)
class Text:
    """Answer text outside any tool-call block."""

    text: str


Event = Text | ToolCall | MalformedCall


class ToolCallParser:
    """Incremental: `feed(chunk)` returns the events the text so far settles; `finish()` the rest."""

    def __init__(self, tool_names: frozenset[str] | set[str] | None = None) -> None:
        self._buffer = ""
        self._open: str | None = None  # the start marker of the block being read
        self._names = frozenset(tool_names or ())
        self._bare: bool | None = None if self._names else False  # holding a possible unmarked JSON call

    def feed(self, chunk: str) -> list[Event]:
        """Consume a chunk of answer text."""
        self._buffer += chunk
        if self._bare is None:
            head = self._buffer.lstrip()
            if not head or any(s.startswith(head) for s in _BARE_STARTS if len(head) < len(s)):
                return []
            self._bare = head.startswith(_BARE_STARTS)
        if self._bare:
            if len(self._buffer) <= BARE_LIMIT:
                return []
            self._bare = False
        return self._scan()

    def _scan(self) -> list[Event]:
        events: list[Event] = []
        while self._buffer:
            if self._open is None:
                start, index = _first_marker(self._buffer)
                if start is None:
                    keep = _partial_marker_suffix(self._buffer)
                    _add_text(events, self._buffer[: len(self._buffer) - keep])
                    self._buffer = self._buffer[len(self._buffer) - keep:]
                    break
                _add_text(events, self._buffer[:index])
                self._buffer = self._buffer[index + len(start):]
                self._open = start
            else:
                end = _PAIRS[self._open]
                index = self._buffer.find(end)
                if index == -1:
                    break
                events.extend(_parse_block(self._open, self._buffer[:index], end))
                self._buffer = self._buffer[index + len(end):]
                self._open = None
        return events

    def finish(self) -> list[Event]:
        """The end of the answer: a block left open is parsed as it is (a model may stop before its end marker)."""
        if self._bare is not False:
            self._bare = False
            calls = bare_calls(self._buffer, self._names)
            if calls:
                self._buffer = ""
                return list(calls)
        events = self._scan()
        if self._open is not None:
            events.extend(_parse_block(self._open, self._buffer, ""))
        else:
            _add_text(events, self._buffer)
        self._buffer, self._open = "", None
        return events


@dataclass(frozen=True)
class ParsedAnswer:
    """A whole answer split into its text and its tool calls."""

    content: str
    calls: list[ToolCall]
    malformed: list[MalformedCall]


def parse_tool_calls(text: str, tool_names: frozenset[str] | set[str] | None = None) -> ParsedAnswer:
    """Split a finished answer into text, calls and malformed blocks (the raw text of those kept in `content`);
    with `tool_names`, an answer that is only unmarked JSON calls of those tools is calls too."""
    parser = ToolCallParser(tool_names)
    return collect(parser.feed(text) + parser.finish())


def offered_names(tools: list[dict]) -> frozenset[str]:
    """The names of the tools offered, from OpenAI function definitions (or bare {"name": …} ones)."""
    names = set()
    for tool in tools:
        function = tool.get("function", tool) if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return frozenset(names)


def collect(events: list[Event]) -> ParsedAnswer:
    """Gather a stream's events; the text of malformed blocks stays in the content, so nothing is lost."""
    parts: list[str] = []
    calls: list[ToolCall] = []
    malformed: list[MalformedCall] = []
    for event in events:
        if isinstance(event, Text):
            parts.append(event.text)
        elif isinstance(event, ToolCall):
            calls.append(event)
        else:
            malformed.append(event)
            parts.append(event.text)
    return ParsedAnswer("".join(parts).strip(), calls, malformed)


def _add_text(events: list[Event], text: str) -> None:
    if text:
        events.append(Text(text))


def _first_marker(text: str) -> tuple[str | None, int]:
    """The start marker that comes first in `text` and where (None, -1 when there is none)."""
    found = [(text.find(marker), marker) for marker in _PAIRS if marker in text]
    if not found:
        return None, -1
    index, marker = min(found)
    return marker, index


def _partial_marker_suffix(text: str) -> int:
    """Length of the longest end of `text` that is a proper prefix of a start marker."""
    longest = max(len(marker) for marker in _PAIRS) - 1
    for size in range(min(longest, len(text)), 0, -1):
        tail = text[-size:]
        if any(marker.startswith(tail) for marker in _PAIRS):
            return size
    return 0


def _parse_block(start: str, body: str, end: str) -> list[Event]:
    """The calls of one block, or one MalformedCall with the block's raw text."""
    try:
        return list(_python_calls(body) if start == MINICPM_START else [_json_call(body)])
    except ValueError as err:
        return [MalformedCall(start + body + end, str(err))]


def _python_calls(body: str) -> list[ToolCall]:
    """The calls of a MiniCPM4 block: a fenced (or bare) Python snippet of call statements."""
    code = _strip_fence(body)
    if not code:
        raise ValueError("empty tool-call block")
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError as err:
        raise ValueError(f"not a Python call: {err.msg} (line {err.lineno})") from err
    calls = []
    for statement in tree.body:
        if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Call):
            raise ValueError(f"not a function call: {ast.dump(statement)[:60]}")
        calls.append(_call(statement.value))
    if not calls:
        raise ValueError("no call in the tool-call block")
    return calls


def _strip_fence(body: str) -> str:
    text = body.strip()
    if text.startswith("```"):
        newline = text.find("\n")
        text = text[newline + 1:] if newline != -1 else ""
        if text.rstrip().endswith("```"):
            text = text.rstrip()[:-3]
    return text.strip()


def _call(node: ast.Call) -> ToolCall:
    name = _dotted_name(node.func)
    if node.args:
        raise ValueError(f"{name}() has positional arguments; tool calls take keyword arguments")
    arguments = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ValueError(f"{name}() unpacks **arguments")
        arguments[keyword.arg] = _literal(keyword.value, name)
    return ToolCall(name, arguments)


def _dotted_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted_name(node.value)}.{node.attr}"
    raise ValueError("the called function has no plain name")


def _literal(node: ast.expr, name: str) -> Any:
    """A literal argument; JSON's true/false/null are read as Python's (models mix the two)."""
    node = _JsonNames().visit(node)
    try:
        return ast.literal_eval(node)
    except ValueError as err:
        raise ValueError(f"{name}() has an argument that is not a literal value") from err


class _JsonNames(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in _JSON_NAMES:
            return ast.copy_location(ast.Constant(_JSON_NAMES[node.id]), node)
        return node


def _json_call(body: str) -> ToolCall:
    """The call of a Hermes / Qwen block: {"name": …, "arguments": {…}} ("arguments" may be a JSON string)."""
    try:
        value = json.loads(body)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err.msg} at character {err.pos}") from err
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        raise ValueError('the JSON has no "name"')
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as err:
            raise ValueError(f'"arguments" is a string that is not JSON: {err.msg}') from err
    if not isinstance(arguments, dict):
        raise ValueError('"arguments" is not an object')
    return ToolCall(value["name"], arguments)


def bare_calls(text: str, names: frozenset[str] | set[str]) -> list[ToolCall]:
    """The calls of a text that is nothing but JSON calls of the offered tools (perhaps in a code fence), else []:
    how an answer without `<tool_call>` markers is read (bench/tools.py scores its lenient figures with it too)."""
    body = _strip_fence(text.strip())
    try:
        value = json.loads(body)
        items = value if isinstance(value, list) else [value]
    except json.JSONDecodeError:
        items = []
        for line in filter(None, (line.strip() for line in body.splitlines())):
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                return []
    calls = []
    for item in items:
        try:
            call = _json_call(json.dumps(item))
        except ValueError:
            return []
        if call.name not in names:
            return []
        calls.append(call)
    return calls
