"""Tool calls in model output (both formats, streamed in any chunks) and the prompts that offer tools."""

from __future__ import annotations

import json

import pytest

from app.engine.tool_calls import (
    MalformedCall,
    Text,
    ToolCall,
    ToolCallParser,
    collect,
    parse_tool_calls,
)
from app.engine.tool_prompt import ToolTemplate, minicpm_call_text, tool_system_prompt

# MiniCPM4-MCP's documented output (OpenBMB/MiniCPM demo/minicpm4/MCP/README_en.md, training data example)
MINICPM_OUTPUT = ("<|thought_start|>\nThe user wants 500 USD in EUR; call the exchange function.\n<|thought_end|>\n"
                  "<|tool_call_start|>\n```python\nget_currency_exchange_rate(from_currency=\"USD\",to_currency=\"EUR\","
                  "amount=500)\n```\n<|tool_call_end|>\n")
# Qwen2.5 / Hermes: what Qwen's function-calling docs show the model writing
HERMES_OUTPUT = ("I will check both.\n<tool_call>\n{\"name\": \"get_current_temperature\", \"arguments\": "
                 "{\"location\": \"San Francisco, CA, USA\"}}\n</tool_call>\n<tool_call>\n{\"name\": "
                 "\"get_temperature_date\", \"arguments\": {\"location\": \"San Francisco, CA, USA\", \"date\": "
                 "\"2024-10-01\"}}\n</tool_call>")


def _stream(chunks: list[str]):
    parser = ToolCallParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return collect(events + parser.finish())


def test_minicpm_call_parsed_with_the_text_around_it() -> None:
    parsed = parse_tool_calls(MINICPM_OUTPUT)
    assert parsed.calls == [ToolCall("get_currency_exchange_rate",
                                     {"from_currency": "USD", "to_currency": "EUR", "amount": 500})]
    assert parsed.content.startswith("<|thought_start|>") and "tool_call" not in parsed.content
    assert parsed.malformed == []


def test_hermes_calls_parsed_in_order() -> None:
    parsed = parse_tool_calls(HERMES_OUTPUT)
    assert [c.name for c in parsed.calls] == ["get_current_temperature", "get_temperature_date"]
    assert parsed.calls[1].arguments == {"location": "San Francisco, CA, USA", "date": "2024-10-01"}
    assert parsed.content == "I will check both."


@pytest.mark.parametrize("text", [MINICPM_OUTPUT, HERMES_OUTPUT])
def test_every_split_point_gives_the_same_result(text: str) -> None:
    whole = parse_tool_calls(text)
    for cut in range(1, len(text)):
        assert _stream([text[:cut], text[cut:]]) == whole, cut
    assert _stream(list(text)) == whole  # one character at a time


def test_text_is_streamed_before_the_call_ends_and_only_marker_prefixes_wait() -> None:
    parser = ToolCallParser()
    assert parser.feed("Let me look <tool") == [Text("Let me look ")]
    assert parser.feed("box> up.") == [Text("<toolbox> up.")], "a prefix that is no marker is released"
    assert parser.feed("<|tool_call_start|>\n```python\nf(a=1)") == []
    assert parser.feed("\n```\n<|tool_call_end|> done") == [ToolCall("f", {"a": 1}), Text(" done")]


def test_several_calls_in_one_minicpm_block() -> None:
    text = ("<|tool_call_start|>\n```python\nsearch(q=\"cats\", limit=3)\nopen_page(url='https://x.org', raw=true)\n"
            "```\n<|tool_call_end|>")
    parsed = parse_tool_calls(text)
    assert parsed.calls == [ToolCall("search", {"q": "cats", "limit": 3}),
                            ToolCall("open_page", {"url": "https://x.org", "raw": True})]


def test_nested_literals_and_dotted_names() -> None:
    text = ("<|tool_call_start|>\n```python\nfs.write(path='a.txt', lines=['x', 'y'], opts={'mode': 0o644, "
            "'sync': None})\n```\n<|tool_call_end|>")
    assert parse_tool_calls(text).calls == [ToolCall("fs.write", {"path": "a.txt", "lines": ["x", "y"],
                                                                  "opts": {"mode": 420, "sync": None}})]


@pytest.mark.parametrize(("text", "reason"), [
    ("<|tool_call_start|>\n```python\nget_weather(city=\"Paris\"\n```\n<|tool_call_end|>", "not a Python call"),
    ("<|tool_call_start|>\n```python\nget_weather(\"Paris\")\n```\n<|tool_call_end|>", "positional"),
    ("<|tool_call_start|>\n```python\nget_weather(city=os.environ)\n```\n<|tool_call_end|>", "not a literal"),
    ("<|tool_call_start|>\n```python\nimport os\n```\n<|tool_call_end|>", "not a function call"),
    ("<|tool_call_start|>\n```python\n```\n<|tool_call_end|>", "empty"),
    ("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": }}</tool_call>", "not JSON"),
    ("<tool_call>{\"arguments\": {}}</tool_call>", "no \"name\""),
    ("<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>", "not an object"),
    ("<tool_call>{\"name\": \"f\", \"arguments\": \"{oops\"}</tool_call>", "not JSON"),
])
def test_malformed_calls_are_reported_with_their_text(text: str, reason: str) -> None:
    parsed = _stream(["Before. ", text[:9], text[9:], " After."])
    assert parsed.calls == []
    assert len(parsed.malformed) == 1 and reason in parsed.malformed[0].reason
    assert parsed.malformed[0].text == text and text in parsed.content, "the raw text is not lost"


def test_a_bad_call_does_not_spoil_the_good_one_after_it() -> None:
    text = ("<tool_call>{broken</tool_call>\n"
            "<tool_call>{\"name\": \"ok\", \"arguments\": \"{\\\"n\\\": 2}\"}</tool_call>")
    parsed = parse_tool_calls(text)
    assert parsed.calls == [ToolCall("ok", {"n": 2})] and len(parsed.malformed) == 1


def test_unterminated_block_is_parsed_at_the_end_or_reported() -> None:
    cut_short = parse_tool_calls("<|tool_call_start|>\n```python\nping(host='a')\n```\n")
    assert cut_short.calls == [ToolCall("ping", {"host": "a"})]
    broken = parse_tool_calls("<tool_call>{\"name\": \"ping\", \"argu")
    assert broken.calls == [] and isinstance(broken.malformed[0], MalformedCall)


def test_written_back_calls_parse_to_the_same_calls() -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                           "arguments": {"city": "Zürich", "days": 2, "hourly": False,
                                                                         "fields": ["temp", "wind"]}}},
             {"id": "c2", "type": "function", "function": {"name": "now", "arguments": {}}}]
    parsed = parse_tool_calls(minicpm_call_text(calls))
    assert parsed.calls == [ToolCall("get_weather", calls[0]["function"]["arguments"]), ToolCall("now", {})]


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
        "city": {"type": "string", "description": "City name"},
        "days": {"type": "array", "items": {"type": "integer"}}}}}}]


def test_system_prompt_form_has_python_signatures_that_parse() -> None:
    prompt = tool_system_prompt(TOOLS)
    code = prompt.split("```python\n")[1].split("```")[0]
    compile(code, "tools", "exec")  # a valid Python module: required parameters first
    assert "def get_weather(city: str, unit: str = \"c\", days: list[int] = None):" in code
    assert "Current weather in a city." in code and "(one of \"c\", \"f\")" in code
    assert prompt.rstrip().endswith("<|tool_call_end|>")


CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
# a Qwen2.5-style template that writes the tools itself (Hermes form)
HERMES_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n<tools>\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}</tools>"
    "<|im_end|>\n{% endif %}{% for message in messages %}{% if message.role == 'tool' %}<|im_start|>user\n"
    "<tool_response>\n{{ message.content }}\n</tool_response><|im_end|>\n{% elif message.tool_calls %}"
    "<|im_start|>assistant\n{% for call in message.tool_calls %}<tool_call>\n{\"name\": \"{{ call.function.name }}\", "
    "\"arguments\": {{ call.function.arguments | tojson }}}\n</tool_call>{% endfor %}<|im_end|>\n{% else %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TURNS = [{"role": "user", "content": "Weather in Zürich?"},
         {"role": "assistant", "content": "", "tool_calls": [
             {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}}]},
         {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21}"}]


def test_template_without_tools_gets_the_minicpm_form() -> None:
    template = ToolTemplate(CHATML)
    assert not template.takes_tools
    prompt = template.render([{"role": "system", "content": "Be brief."}, *TURNS], TOOLS)
    assert prompt.startswith("<|im_start|>system\nBe brief.\n\n# Functions\n")
    assert "<|im_start|>assistant\n<|tool_call_start|>\n```python\nget_weather(city=\"Zürich\")\n```" in prompt
    assert prompt.endswith("<|im_start|>tool\n{\"temp\": 21}<|im_end|>\n<|im_start|>assistant\n")


def test_template_that_takes_tools_writes_them_itself() -> None:
    template = ToolTemplate(HERMES_TEMPLATE)
    assert template.takes_tools
    prompt = template.render(TURNS, TOOLS)
    assert json.dumps(TOOLS[0], ensure_ascii=False) in prompt and "# Functions" not in prompt
    assert "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call>" in prompt
    assert "<tool_response>\n{\"temp\": 21}\n</tool_response>" in prompt
    assert parse_tool_calls(prompt.split("<|im_start|>assistant\n")[1]).calls == [
        ToolCall("get_weather", {"city": "Zürich"})]


def test_jinja_rendering_matches_genai_on_the_real_templates(default_model, tiny_llama, exported) -> None:
    """Conversations with tools are rendered by jinja2, the rest by GenAI: both must give the same prompt."""
    import openvino_genai as og

    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
             {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}]
    for folder in (default_model, exported(tiny_llama, "int4")):
        tokenizer = og.Tokenizer(str(folder))
        template = ToolTemplate(tokenizer.chat_template, tokenizer.get_bos_token(), tokenizer.get_eos_token())
        for extra in (None, {"enable_thinking": False}, {"enable_thinking": True}):
            assert template.render(turns, None, extra) == tokenizer.apply_chat_template(
                turns, add_generation_prompt=True, extra_context=extra)


TIME_TOOLS = frozenset({"get_current_time", "convert_time"})
BARE = '{"name": "get_current_time", "arguments": {"timezone": "Europe/Paris"}}'


@pytest.mark.parametrize("answer", [BARE, "\n  " + BARE + "\n", "```json\n" + BARE + "\n```", f"[{BARE}]",
                                    BARE + "\n" + BARE.replace("Paris", "Rome")])
def test_unmarked_json_calls_of_offered_tools_are_calls(answer: str) -> None:
    parsed = parse_tool_calls(answer, TIME_TOOLS)
    assert parsed.calls[0] == ToolCall("get_current_time", {"timezone": "Europe/Paris"}) and parsed.content == ""
    assert parse_tool_calls(answer).calls == []  # without the offered names it stays text
    assert parse_tool_calls(answer).content == answer.strip()


@pytest.mark.parametrize("answer", [
    '{"name": "delete_everything", "arguments": {}}',  # not offered
    '{"timezone": "Europe/Paris"}',  # JSON, not a call
    BARE + " and then I will tell you the time",  # prose after it
    "{not json at all",
])
def test_unmarked_json_that_is_not_an_offered_call_stays_text(answer: str) -> None:
    parsed = parse_tool_calls(answer, TIME_TOOLS)
    assert parsed.calls == [] and parsed.content == answer.strip()


def test_unmarked_call_split_across_chunks_is_held_back_until_the_answer_ends() -> None:
    parser = ToolCallParser(TIME_TOOLS)
    pieces = ["``", "`json\n{\"na", 'me": "get_current_time", ', '"arguments": {"timezone": "Europe/Paris"}}\n', "```"]
    assert [parser.feed(piece) for piece in pieces] == [[], [], [], [], []]
    assert parser.finish() == [ToolCall("get_current_time", {"timezone": "Europe/Paris"})]
    prose = ToolCallParser(TIME_TOOLS)
    assert prose.feed("  The") == [Text("  The")]  # text that cannot start a JSON call streams at once
    marked = ToolCallParser(TIME_TOOLS)
    events = marked.feed("<tool_call>" + BARE + "</tool_call>") + marked.finish()
    assert events == [ToolCall("get_current_time", {"timezone": "Europe/Paris"})]
