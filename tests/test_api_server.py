"""`cpmdesk serve` in a child process, driven by the official `openai` client: real models, no mocks."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import openai
import pytest

from app.engine import ChatEngine, Conversation
from app.engine.model_defaults import model_defaults
from app.server.auth import load_token, new_token, token_matches
from tests.api_server import REPO, Served, start_server

pytestmark = pytest.mark.slow

WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
LONG = {"max_tokens": 4000, "extra_body": {"ignore_eos": True}}  # vLLM's ignore_eos: a long, steady generation


@pytest.fixture(scope="module")
def smol_server(default_model, embedding_model, tmp_path_factory) -> Served:
    """The default model served; the documents' embedding model is built first (the server lists what it finds)."""
    served = start_server(default_model, tmp_path_factory.mktemp("serve") / "smol.log", "--queue", "1")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def client(smol_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=smol_server.base_url, api_key=smol_server.token, max_retries=0, timeout=120)


def _post(served: Served, path: str, body: bytes | dict, token: str | None = None,
          timeout: float = 120) -> httpx.Response:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"Authorization": f"Bearer {token or served.token}", "Content-Type": "application/json"}
    return httpx.post(served.base_url + path, content=data, headers=headers, timeout=timeout)


def _log_lines_after(served: Served, count: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = re.findall(r"chat completion: .*", served.log())
        if len(lines) > count:
            return lines[count:]
        time.sleep(0.1)
    raise AssertionError(f"no new chat completion logged:\n{served.log()[-2000:]}")


def test_models_lists_the_chat_and_embedding_models(client, default_model) -> None:
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == default_model.name and "all-minilm-l6-v2-int8" in ids


def test_answer_is_the_engines_and_streams_the_same(client, default_model) -> None:
    question = "Write two sentences about the sea."
    answer = client.chat.completions.create(model=default_model.name, temperature=0, max_tokens=40,
                                            messages=[{"role": "user", "content": question}])
    engine = ChatEngine(default_model)
    direct = engine.send(Conversation(), question, model_defaults(default_model).merged({"temperature": 0.0})
                         .generation(40))
    choice = answer.choices[0]
    assert choice.message.content == direct.answer and len(direct.answer) > 20
    assert answer.usage.prompt_tokens == direct.prompt_tokens and answer.usage.completion_tokens == direct.num_tokens
    assert answer.usage.total_tokens == direct.prompt_tokens + direct.num_tokens
    assert choice.finish_reason == ("length" if direct.num_tokens == 40 else "stop")

    chunks = list(client.chat.completions.create(
        model=default_model.name, temperature=0, max_tokens=40, stream=True,
        stream_options={"include_usage": True}, messages=[{"role": "user", "content": question}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == direct.answer
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == direct.num_tokens
    # in pieces, not as one: the first at once, then at most every STREAM_INTERVAL_S (how many depends on speed)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2, "streamed in pieces"


def _weather_chat(city: str) -> list[dict]:
    """Three earlier turns where the assistant called get_weather and read its result (tool turns), then a new
    question: the small model follows the pattern and writes a call in the prompt's (MiniCPM4) form."""
    turns: list[dict] = []
    for index, (place, result) in enumerate((("Rome", "sunny"), ("Oslo", "snowing"), ("Lima", "cloudy"))):
        call_id = f"call_{index}"
        turns += [{"role": "user", "content": f"What is the weather in {place}?"},
                  {"role": "assistant", "content": None, "tool_calls": [{
                      "id": call_id, "type": "function",
                      "function": {"name": "get_weather", "arguments": json.dumps({"city": place})}}]},
                  {"role": "tool", "tool_call_id": call_id, "content": result},
                  {"role": "assistant", "content": f"In {place} it is {result}."}]
    return [*turns, {"role": "user", "content": f"What is the weather in {city}?"}]


def test_tools_in_tool_calls_out(client, default_model) -> None:
    answer = client.chat.completions.create(model=default_model.name, temperature=0, max_tokens=60,
                                            messages=_weather_chat("Paris"), tools=WEATHER)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert not choice.message.content and "tool_call" not in (choice.message.content or "")

    chunks = list(client.chat.completions.create(model=default_model.name, temperature=0, max_tokens=60,
                                                 messages=_weather_chat("Paris"), tools=WEATHER, stream=True))
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert [(d.index, d.function.name, json.loads(d.function.arguments)) for d in deltas] == [
        (0, "get_weather", {"city": "Paris"})]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert "tool_call" not in "".join(c.choices[0].delta.content or "" for c in chunks)


def test_without_tools_the_call_text_stays_text(client, default_model) -> None:
    answer = client.chat.completions.create(model=default_model.name, temperature=0, max_tokens=60,
                                            messages=_weather_chat("Paris"), tools=WEATHER, tool_choice="none")
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].finish_reason != "tool_calls"


def test_embeddings_are_the_documents_model(client, embedding_model) -> None:
    from app.docs.embedder import Embedder

    texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Quarterly revenue rose 4 percent."]
    result = client.embeddings.create(model="all-minilm-l6-v2-int8", input=texts)  # the client asks for base64
    vectors = np.array([d.embedding for d in result.data], dtype=np.float32)
    assert vectors.shape == (3, 384) and [d.index for d in result.data] == [0, 1, 2]
    assert np.allclose(vectors, Embedder(embedding_model).embed(texts), atol=1e-6)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert result.usage.prompt_tokens > 12 and result.model == "all-minilm-l6-v2-int8"
    floats = client.embeddings.create(model="x", input="The cat sat on the mat.", encoding_format="float")
    assert np.allclose(floats.data[0].embedding, vectors[0], atol=1e-6)


def test_wrong_or_missing_token_is_401(smol_server) -> None:
    wrong = openai.OpenAI(base_url=smol_server.base_url, api_key="cpm-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        wrong.models.list()
    assert raised.value.status_code == 401
    bare = httpx.get(smol_server.base_url + "/models", timeout=60)
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "invalid_api_key"
    assert bare.headers["www-authenticate"] == "Bearer"
    after_start = smol_server.log().partition("cpmdesk API:")[2]  # a new token is shown once, at creation
    assert smol_server.token not in after_start


@pytest.mark.parametrize(("body", "param"), [
    (b'{"messages": [{"role": "user", "content": "hi"}', None),
    (b"\xff\xfe not json", None),
    (b"[1, 2]", None),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 7}, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}, "tools[0]"),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": WEATHER,
      "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
     "model": "m"}, "messages[0].content"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]},
        {"role": "user", "content": "hi"}]}, "messages[0].tool_calls[0].function.arguments"),
])
def test_malformed_requests_are_400_with_an_openai_error(smol_server, body, param) -> None:
    response = _post(smol_server, "/chat/completions", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] and error["param"] == param


def test_too_long_for_the_context_is_400(client) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=10 ** 7)
    assert raised.value.body["code"] == "context_length_exceeded"


def test_a_client_that_disconnects_cancels_its_generation(client, smol_server) -> None:
    seen = len(re.findall(r"chat completion: .*", smol_server.log()))
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Count to 1000."}],
                                            stream=True, **LONG)
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == 5:
            break
    closed = time.monotonic()
    stream.close()
    (line,) = _log_lines_after(smol_server, seen)
    stopped_after = time.monotonic() - closed
    tokens = int(re.search(r"\+ (\d+) completion tokens", line).group(1))
    assert line.endswith("cancelled") and 5 <= tokens < 1000, line
    assert stopped_after < 2, stopped_after

    # not streamed: the client gives up waiting (a timeout closes the connection)
    seen += 1
    with pytest.raises(httpx.ReadTimeout):
        _post(smol_server, "/chat/completions", {"messages": [{"role": "user", "content": "Count to 1000."}],
                                                 "max_tokens": 4000, "ignore_eos": True}, timeout=1.0)
    (line,) = _log_lines_after(smol_server, seen)
    assert line.endswith("cancelled") and int(re.search(r"\+ (\d+) completion", line).group(1)) < 4000, line


def test_a_full_queue_is_429_with_retry_after(client, smol_server) -> None:
    """The server runs with --queue 1: one answer running, one waiting, the third refused."""
    running = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Count to 1000."}],
                                             stream=True, **LONG)
    next(iter(running))  # its generation has started
    waiting: dict = {}
    thread = threading.Thread(target=lambda: waiting.update(answer=client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8)))
    thread.start()
    time.sleep(1.0)  # the second request is in the queue
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8)
    refused = raised.value
    assert thread.is_alive(), "the second request waits while the third is refused"
    assert refused.status_code == 429 and int(refused.response.headers["retry-after"]) >= 1
    assert refused.body["type"] == "rate_limit_error"
    running.close()
    thread.join(60)
    assert waiting["answer"].usage.completion_tokens > 0, "the waiting request is answered once the first ends"


@pytest.fixture(scope="module")
def thinking_server(tiny_llama, exported, tmp_path_factory) -> Served:
    served = start_server(exported(tiny_llama, "int4"), tmp_path_factory.mktemp("serve") / "tiny.log")
    yield served
    served.stop()


def test_reasoning_comes_apart_from_the_answer(thinking_server) -> None:
    client = openai.OpenAI(base_url=thinking_server.base_url, api_key=thinking_server.token, max_retries=0)
    question = [{"role": "user", "content": "I have 3 apples and get 4 more. How many apples do I have?"}]
    on = client.chat.completions.create(model="m", messages=question, max_tokens=40, temperature=0,
                                        extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    message = on.choices[0].message
    assert message.reasoning_content and message.content
    assert "<think>" not in message.content and "</think>" not in message.content
    off = client.chat.completions.create(model="m", messages=question, max_tokens=40, temperature=0,
                                         extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert getattr(off.choices[0].message, "reasoning_content", None) is None and off.choices[0].message.content

    chunks = list(client.chat.completions.create(model="m", messages=question, max_tokens=40, temperature=0,
                                                 stream=True,
                                                 extra_body={"chat_template_kwargs": {"enable_thinking": True}}))
    kinds = [("reasoning" if getattr(c.choices[0].delta, "reasoning_content", None) else "content")
             for c in chunks if c.choices and (c.choices[0].delta.content or
                                               getattr(c.choices[0].delta, "reasoning_content", None))]
    split = kinds.index("content")
    assert split > 0 and set(kinds[:split]) == {"reasoning"} and set(kinds[split:]) == {"content"}
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert reasoning.strip() == message.reasoning_content


def test_token_is_private_and_renewable(tmp_path) -> None:
    path = tmp_path / "api_token"
    first, made = load_token(path)
    assert made and first.startswith("cpm-") and len(first) > 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(path) == (first, False)
    os.chmod(path, 0o644)
    assert load_token(path)[0] == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    second = new_token(path)
    assert second != first and load_token(path) == (second, False)
    assert token_matches(f"Bearer {second}", second) and not token_matches(f"Bearer {first}", second)
    assert not token_matches(None, second) and not token_matches(second, second)


def test_print_token_and_new_token_from_the_command_line(tmp_path) -> None:
    env = {**os.environ, "CPMDESK_DATA_DIR": str(tmp_path)}
    shown = subprocess.run([sys.executable, "-m", "app", "serve", "--print-token"], cwd=REPO, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert shown == (tmp_path / "api_token").read_text().strip()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([sys.executable, "-m", "app", "serve", "--new-token", "--port", str(port)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert (tmp_path / "api_token").read_text().strip() != shown, "--new-token renewed it"


def test_other_addresses_need_asking_and_warn(capsys) -> None:
    from app.cli import build_parser
    from app.server.cli import listen_socket

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    sock = listen_socket("0.0.0.0", 0)
    sock.close()
    assert "WARNING: listening on 0.0.0.0" in capsys.readouterr().err
    quiet = listen_socket("127.0.0.1", 0)
    quiet.close()
    assert capsys.readouterr().err == ""


def test_nothing_of_the_requests_is_logged(smol_server) -> None:
    log = smol_server.log()
    for secret in ("Write two sentences about the sea", "Count to 1000", "Paris", "The cat sat"):
        assert secret not in log
    assert "chat completion:" in log
