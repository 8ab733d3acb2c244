"""A tiny model trained here to call tools (tests/tool_model.py), end to end through the app's own path: exported
with the project's exporter, answering in the window's tool worker (app/gui/tool_worker.py, on
app/tools/tool_loop.py) with the real mcp-server-time, the call approved, run on the server, its result stored
with the chat and given back, and the model answering from there. Real model, real server, no mocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.engine import ChatEngine, Conversation, GenerationSettings
from app.engine.conversation import Message
from app.gui.tool_worker import ToolChatWorker
from app.store import ChatStore
from app.tools.mcp_client import McpHub
from app.tools.mcp_config import McpConfig, ServerConfig
from app.tools.tool_loop import Decision, ToolCatalog
from tests import tool_model
from tests.mcp_fixtures import server_command

pytestmark = pytest.mark.slow
CITIES = ("Tokyo", "Paris", "Sydney")  # three of the trained requests, each with its own timezone


@pytest.fixture(scope="module")
def tool_llama(tiny_tool_llama, exported) -> Path:
    """The trained checkpoint exported to fp16 IR (its source folder is `tiny_tool_llama`)."""
    return exported(tiny_tool_llama, "fp16")


@pytest.fixture(scope="module")
def time_hub():
    hub = McpHub(McpConfig({"time": ServerConfig("time", command=server_command("mcp-server-time"),
                                                 args=["--local-timezone", "UTC"])}))
    yield hub
    hub.close()


def _ask(engine: ChatEngine, store: ChatStore, hub: McpHub, city: str) -> tuple[int, list, list]:
    """One message through the window's tool worker, run on this thread: (chat id, approvals asked, failures)."""
    chat = store.create_chat(city)
    store.add_message(chat, "user", tool_model.question(city))
    worker = ToolChatWorker(engine, store, chat, store.conversation(chat), GenerationSettings(max_new_tokens=48),
                            None, hub)
    asked, failed = [], []

    def approve(call) -> None:
        asked.append(call)
        worker.decide(Decision.ALLOW_ONCE)

    worker.approval_needed.connect(approve)
    worker.failed.connect(failed.append)
    worker.run()
    return chat, asked, failed


def test_the_model_calls_the_time_server_and_answers_from_its_result(qapp, tiny_tool_llama, tool_llama, time_hub,
                                                                     tmp_path) -> None:
    from transformers import AutoTokenizer

    engine = ChatEngine(tool_llama)
    tools, errors = time_hub.all_tools()
    assert errors == {}
    offered = ToolCatalog(tools).functions()
    # the prompt the app makes from the server's own tool list is the one the model was trained on
    user = Message("user", tool_model.question("Tokyo"))
    trained = tool_model.call_prompt(AutoTokenizer.from_pretrained(tiny_tool_llama), "Tokyo")
    assert engine.render(Conversation(messages=[user], tools=offered).prompt_messages(), None, offered) == trained

    store = ChatStore(tmp_path / "chats.sqlite3")
    for city in CITIES:
        chat, asked, failed = _ask(engine, store, time_hub, city)
        assert failed == []
        expected = tool_model.call_for(city)["arguments"]
        assert [(c.server, c.tool, c.arguments) for c in asked] == [("time", "get_current_time", expected)]
        user_turn, called, result, answer = store.messages(chat)
        assert user_turn.content == tool_model.question(city)
        [call] = called.tool_calls
        assert call["function"] == {"name": "get_current_time", "arguments": expected} and called.content == ""
        # the result is the server's: the city's timezone and its clock now (the model never saw this before)
        assert result.role == "tool" and result.tool_call_id == call["id"]
        assert result.metrics["tool"]["outcome"] == "allowed" and not result.metrics["tool"]["is_error"]
        data = json.loads(result.content)
        assert data["timezone"] == expected["timezone"]
        now = datetime.fromisoformat(data["datetime"])
        assert abs(now - datetime.now(UTC)) < timedelta(minutes=5) and now.utcoffset() != timedelta(0)
        # then the model answered from it, with no further call
        assert answer.role == "assistant" and answer.status == "done" and not answer.tool_calls
        assert answer.content == tool_model.answer_for(city)
    store.close()


def test_the_openai_client_gets_the_call_and_then_the_answer_through_cpmdesk_serve(tool_llama, time_hub,
                                                                                    tmp_path) -> None:
    """The same model behind `cpmdesk serve`: `tool_calls` out (whole and streamed), the real server's result back
    in as a `tool` message, the answer after it."""
    import openai

    from tests.api_server import start_server

    served = start_server(tool_llama, tmp_path / "serve.log")
    try:
        client = openai.OpenAI(base_url=served.base_url, api_key=served.token, max_retries=0, timeout=120)
        messages: list = [{"role": "user", "content": tool_model.question("Seoul")}]
        first = client.chat.completions.create(model="tiny", messages=messages, tools=tool_model.TIME_TOOLS,
                                               temperature=0, max_tokens=48).choices[0]
        assert first.finish_reason == "tool_calls" and not first.message.content
        [call] = first.message.tool_calls
        arguments = json.loads(call.function.arguments)
        assert (call.function.name, arguments) == ("get_current_time", {"timezone": "Asia/Seoul"})
        result = time_hub.call("time", call.function.name, arguments)
        assert json.loads(result.text)["timezone"] == "Asia/Seoul"
        messages += [first.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": result.text}]
        final = client.chat.completions.create(model="tiny", messages=messages, tools=tool_model.TIME_TOOLS,
                                               temperature=0, max_tokens=48).choices[0]
        assert final.finish_reason == "stop" and not final.message.tool_calls
        assert final.message.content == tool_model.answer_for("Seoul")

        chunks = list(client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": tool_model.question("Cairo")}],
            tools=tool_model.TIME_TOOLS, temperature=0, max_tokens=48, stream=True))
        deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
        assert [(d.function.name, json.loads(d.function.arguments)) for d in deltas] == [
            ("get_current_time", {"timezone": "Africa/Cairo"})]
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
        assert "tool_call" not in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finally:
        served.stop()
