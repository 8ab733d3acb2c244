"""The tool loop: the Qt-free controller fed the text a model streams (both call formats, markers split anywhere),
approval (once, always, deny, the terminal's y/N/always), real MCP servers running the calls, results stored with
the chat, and the real engine answering with tools offered and after a tool turn."""

from __future__ import annotations

import io
import json
import sqlite3
import threading

import pytest

from app.engine.conversation import Conversation, Message
from app.tools.mcp_client import McpHub, ToolResult
from app.tools.mcp_config import load_config, remember_always, save_config
from app.tools.terminal import step_summary, terminal_approver
from app.tools.tool_loop import MAX_ROUNDS, Decision, ToolCatalog, ToolLoop
from tests.mcp_fixtures import servers

WRITE_CALL = ['I will save it.<|tool_ca', 'll_start|>\n```python\nwrite_file(path="made.txt", te',
              'xt="hi")\n```\n<|tool_call_', 'end|>']
TIME_CALL = 'Checking.<tool_call>{"name": "get_current_time", "arguments": {"timezone": "UTC"}}</tool_call>'


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mcp")
    config = servers(folder)
    save_config(config, folder / "mcp.json")
    hub = McpHub(config)
    hub.folder = folder
    yield hub
    hub.close()


@pytest.fixture
def catalog(hub) -> ToolCatalog:
    for server in hub.config.servers.values():
        server.always_allow = []
    (hub.folder / "made.txt").unlink(missing_ok=True)
    tools, errors = hub.all_tools()
    assert errors == {}
    return ToolCatalog(tools)


class Asked:
    """An approver answering from a list (then Deny), recording what it was asked."""

    def __init__(self, *answers: Decision) -> None:
        self.answers, self.calls = list(answers), []

    def __call__(self, call) -> Decision:
        self.calls.append(call)
        return self.answers.pop(0) if self.answers else Decision.DENY


def _loop(hub, catalog, approver, **kwargs) -> ToolLoop:
    return ToolLoop(catalog, lambda c: hub.call(c.server, c.tool, c.arguments), approver,
                    lambda server, tool: remember_always(hub.config, server, tool, hub.folder / "mcp.json"), **kwargs)


def _answer(loop: ToolLoop, chunks: list[str]):
    loop.begin()
    shown = "".join(loop.feed(chunk) for chunk in chunks)
    turn, rest = loop.finish()
    return turn, shown + rest


def test_allow_once_runs_the_call_and_its_result_goes_back(hub, catalog) -> None:
    asked = Asked(Decision.ALLOW_ONCE)
    loop = _loop(hub, catalog, asked)
    turn, shown = _answer(loop, WRITE_CALL)
    assert shown == "I will save it." and turn.content == "I will save it."  # the block is a card, not text
    [call] = turn.calls
    assert (call.server, call.tool, call.arguments) == ("test", "write_file", {"path": "made.txt", "text": "hi"})
    assert not (hub.folder / "made.txt").exists()  # nothing runs before it is approved
    [step] = loop.resolve(turn)
    assert asked.calls == [call] and step.outcome == "allowed"
    assert (hub.folder / "made.txt").read_text() == "hi"
    assert step.message() == Message("tool", "wrote 2 characters to made.txt", tool_call_id=call.call_id)
    assert turn.message().tool_calls == [{"id": call.call_id, "type": "function",
                                          "function": {"name": "write_file",
                                                       "arguments": {"path": "made.txt", "text": "hi"}}}]
    assert loop.wants_another_round(turn)


def test_deny_does_not_run_it_and_the_model_is_told(hub, catalog) -> None:
    loop = _loop(hub, catalog, Asked(Decision.DENY))
    turn, _ = _answer(loop, WRITE_CALL)
    [step] = loop.resolve(turn)
    assert step.outcome == "denied" and step.result.is_error
    assert not (hub.folder / "made.txt").exists()
    assert step.message().content == "The user denied the call to write_file; it did not run."
    assert step_summary(step) == "[tool write_file: denied]"


def test_always_is_remembered_for_that_tool_only(hub, catalog) -> None:
    asked = Asked(Decision.ALWAYS)
    loop = _loop(hub, catalog, asked)
    first, _ = _answer(loop, [TIME_CALL])
    second, _ = _answer(loop, [TIME_CALL.replace("UTC", "Asia/Tokyo") + TIME_CALL.replace("UTC", "Europe/Paris")])
    steps = loop.resolve(first) + loop.resolve(second)
    assert len(asked.calls) == 1 and [s.outcome for s in steps] == ["allowed", "always", "always"]
    assert [json.loads(s.result.text)["timezone"] for s in steps] == ["UTC", "Asia/Tokyo", "Europe/Paris"]
    saved = json.loads((hub.folder / "mcp.json").read_text())
    assert saved["mcpServers"]["time"]["alwaysAllow"] == ["get_current_time"]
    assert load_config(hub.folder / "mcp.json").servers["time"].always_allow == ["get_current_time"]  # next start
    write, _ = _answer(loop, WRITE_CALL)
    loop.resolve(write)
    assert len(asked.calls) == 2  # another tool still asks


def test_unknown_and_malformed_calls_run_nothing(hub, catalog) -> None:
    asked = Asked(Decision.ALLOW_ONCE)
    loop = _loop(hub, catalog, asked)
    turn, shown = _answer(loop, ['<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
                                 "and <tool_call>{not json}</tool_call>"])
    assert "<tool_call>{not json}</tool_call>" in shown and len(turn.malformed) == 1  # stays visible
    [step] = loop.resolve(turn)
    assert asked.calls == [] and step.outcome == "unknown"
    assert "There is no tool named 'rm_rf'" in step.result.text and "get_current_time" in step.result.text


def test_a_model_that_keeps_calling_is_stopped(hub, catalog) -> None:
    loop = _loop(hub, catalog, Asked(), max_rounds=MAX_ROUNDS)
    for _ in range(MAX_ROUNDS):
        turn, _ = _answer(loop, [TIME_CALL])
    assert not loop.wants_another_round(turn)


def test_the_same_call_again_is_not_run_or_asked_again(hub, catalog) -> None:
    """A model that asks again for a result it has (Qwen2.5-Coder does) ends the answer instead of looping."""
    asked = Asked(Decision.ALLOW_ONCE, Decision.ALLOW_ONCE)
    loop = _loop(hub, catalog, asked)
    first, _ = _answer(loop, [TIME_CALL])
    [ran] = loop.resolve(first)
    assert ran.outcome == "allowed" and loop.wants_another_round(first)
    again, _ = _answer(loop, [TIME_CALL])
    [repeat] = loop.resolve(again)
    assert repeat.outcome == "repeated" and len(asked.calls) == 1 and not repeat.result.is_error
    assert "already ran" in repeat.message().content and not loop.wants_another_round(again)
    other, _ = _answer(loop, [TIME_CALL.replace("UTC", "Asia/Tokyo")])
    [new] = loop.resolve(other)
    assert new.outcome == "allowed" and len(asked.calls) == 2 and loop.wants_another_round(other)


def test_a_cancelled_answer_asks_nothing(hub, catalog) -> None:
    asked = Asked(Decision.ALLOW_ONCE)
    loop = _loop(hub, catalog, asked)
    turn, _ = _answer(loop, WRITE_CALL)
    cancel = threading.Event()
    cancel.set()
    [step] = loop.resolve(turn, cancel)
    assert step.outcome == "denied" and asked.calls == [] and not (hub.folder / "made.txt").exists()


def test_ask_tools_asks_on_the_terminal(hub, catalog) -> None:
    answers, out = io.StringIO("y\n\nalways\nno\n"), io.StringIO()
    loop = _loop(hub, catalog, terminal_approver(answers, out))
    decisions = [loop._approve(catalog.resolve(call)) for call in
                 [c for c in _answer(loop, [TIME_CALL * 4])[0].calls]]
    assert decisions == [Decision.ALLOW_ONCE, Decision.DENY, Decision.ALWAYS, Decision.DENY]
    assert out.getvalue().count("Run it? [y/N/always]") == 4
    assert "get_current_time from the MCP server time" in out.getvalue() and '"timezone": "UTC"' in out.getvalue()
    ended = terminal_approver(io.StringIO(""), io.StringIO())  # no terminal input: denied
    assert ended(catalog.resolve(_answer(loop, [TIME_CALL])[0].calls[0])) is Decision.DENY


def test_tool_turns_are_stored_with_the_chat(tmp_path) -> None:
    from app.store import ChatStore
    from app.store.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "chats.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("".join(MIGRATIONS[:2]) + "PRAGMA user_version = 2;")
    db.execute("INSERT INTO chats (title, created, updated) VALUES ('Before tools', 0, 0)")
    for content in ("Hi", "Hello!", "gone"):
        db.execute("INSERT INTO messages (chat_id, role, content, created, updated) VALUES (1, ?, ?, 0, 0)",
                   ("user" if content != "Hello!" else "assistant", content))
    db.execute("DELETE FROM messages WHERE content = 'gone'")
    db.commit()
    db.close()
    store = ChatStore(path)
    assert store._run("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert [(m.id, m.content) for m in store.messages(1)] == [(1, "Hi"), (2, "Hello!")]
    answer = store.add_message(1, "assistant", "")
    assert answer == 4  # ids are never reused, across the rebuild too
    calls = [{"id": "call_1", "type": "function", "function": {"name": "echo", "arguments": {"text": "x"}}}]
    store.set_tool_calls(answer, calls)
    record = {"tool": {"name": "echo", "server": "test", "arguments": {"text": "x"}, "outcome": "allowed"}}
    result = store.add_tool_result(1, "call_1", "echo: x", record)
    messages = store.messages(1)
    assert messages[-2].tool_calls == calls and messages[-1].role == "tool"
    assert messages[-1].tool_call_id == "call_1" and messages[-1].metrics == record and messages[-1].id == result
    conversation = store.conversation(1).messages
    assert conversation[-2] == Message("assistant", "", "", calls) and conversation[-1].role == "tool"
    store.close()
    assert ChatStore(path).messages(1)[-1].content == "echo: x"


def test_the_engine_answers_with_tools_offered_and_after_a_tool_turn(default_model, hub, catalog) -> None:
    """The real engine: tools go into its prompt, a tool turn goes back to it and it answers from there."""
    from app.engine import ChatEngine, GenerationSettings
    from app.tools.tool_loop import RoundHooks, run_with_tools

    engine = ChatEngine(default_model)
    settings = GenerationSettings(max_new_tokens=24)
    conversation = Conversation(tools=catalog.functions(), messages=[Message("user", "What time is it in UTC?")])
    prompt = engine.render(conversation.prompt_messages(), None, conversation.tools)
    assert "def get_current_time(timezone: str)" in prompt and "def git_status(repo_path: str)" in prompt
    shown, ended = [], []
    loop = _loop(hub, catalog, Asked())
    reply = run_with_tools(engine, conversation, settings, None, loop,
                           RoundHooks(shown=lambda kind, text: shown.append(text),
                                      end=lambda r, turn, steps: ended.append((turn, steps))), None)
    turn, _steps = ended[-1]
    assert "".join(shown).strip() == reply.answer == turn.content == conversation.messages[-1].content
    assert reply.num_tokens > 0 and conversation.messages[-1].role == "assistant"
    assert len(conversation.messages) == 1 + 1 + 2 * sum(len(s) for _t, s in ended)  # user, answers and tool turns
    # a call made and approved earlier: the result goes back as a tool turn and the model goes on from it
    now = hub.call("time", "get_current_time", {"timezone": "UTC"})
    call = loop.catalog.resolve(_answer(loop, [TIME_CALL])[0].calls[0])
    after = Conversation(tools=catalog.functions(), messages=[
        Message("user", "What time is it in UTC?"), Message("assistant", "", tool_calls=[call.openai()]),
        Message("tool", now.text, tool_call_id=call.call_id)])
    prompt = engine.render(after.prompt_messages(), None, after.tools)
    assert now.text in prompt and "<|tool_call_start|>" in prompt and 'get_current_time(timezone="UTC")' in prompt
    reply = engine.generate(after, settings)
    assert reply.num_tokens > 0 and after.messages[-1].role == "assistant"
    assert isinstance(now, ToolResult) and not now.is_error


def test_ask_tools_answers_when_a_server_fails(default_model, tmp_path) -> None:
    """`cpmdesk ask --tools` end to end: the servers of mcp.json offered, a broken one noted, the answer given."""
    import os
    import subprocess
    import sys

    from app.tools.mcp_config import ServerConfig

    config = servers(tmp_path)
    config.servers["broken"] = ServerConfig("broken", command=str(tmp_path / "no-such-server"))
    save_config(config, tmp_path / "mcp.json")
    env = {**os.environ, "CPMDESK_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "app", "ask", "What time is it in UTC?", "--tools", "--model",
                             str(default_model), "--max-new-tokens", "20"], input="y\n", capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "note: MCP server 'broken' could not start: command not found" in result.stderr
    assert result.stdout.strip() and "tokens" in result.stderr
