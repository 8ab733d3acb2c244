"""The chat engine on real exported models: streaming, cancel, reasoning toggle, context trimming, metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from app.engine import (
    ChatEngine,
    ContextOverflowError,
    Conversation,
    GenerationSettings,
    Message,
    ModelFolderError,
)
from app.engine.memory import memory_problem

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol(default_model) -> ChatEngine:
    return ChatEngine(default_model)


@pytest.fixture(scope="module")
def tiny(tiny_llama, exported) -> ChatEngine:
    return ChatEngine(exported(tiny_llama, "int4"))


def test_streamed_text_joins_to_the_non_streamed_answer(smol) -> None:
    settings = GenerationSettings(max_new_tokens=48)
    deltas = []
    streamed = smol.send(Conversation(), "Write two sentences about the sea.", settings, on_delta=deltas.append)
    plain = smol.send(Conversation(), "Write two sentences about the sea.", settings)
    assert "".join(d.text for d in deltas).strip() == streamed.answer
    assert streamed.answer == plain.answer and len(plain.answer) > 20
    assert {d.kind for d in deltas} == {"answer"}


def test_reply_reports_speed(smol) -> None:
    reply = smol.send(Conversation(), "Say hello.", GenerationSettings(max_new_tokens=16))
    assert reply.num_tokens > 0 and reply.prompt_tokens > 5
    assert reply.ttft_ms > 0 and reply.tokens_per_second > 0


def test_cancel_returns_promptly_and_keeps_the_partial_answer(smol) -> None:
    conversation = Conversation()
    cancel = threading.Event()
    first_delta = threading.Event()
    result = {}

    def run() -> None:
        result["reply"] = smol.send(conversation, "Count from 1 to 500, one number per line.",
                                    GenerationSettings(max_new_tokens=2000, ignore_eos=True),
                                    on_delta=lambda d: first_delta.set(), cancel=cancel)

    worker = threading.Thread(target=run)
    worker.start()
    assert first_delta.wait(60)
    time.sleep(0.3)
    asked = time.monotonic()
    cancel.set()
    worker.join(10)
    elapsed = time.monotonic() - asked
    assert not worker.is_alive()
    assert elapsed < 0.5, elapsed
    reply = result["reply"]
    assert reply.stopped and reply.answer and reply.num_tokens < 2000
    assert conversation.messages[-1] == Message("assistant", reply.answer, reply.reasoning)


def test_template_without_thinking_reports_it(smol, tiny) -> None:
    assert smol.supports_thinking is False
    assert tiny.supports_thinking is True


def test_no_thinking_gives_an_answer_without_reasoning(tiny) -> None:
    settings = GenerationSettings(max_new_tokens=40)
    question = "I have 3 apples and get 4 more. How many apples do I have?"
    off = tiny.send(Conversation(), question, settings, think=False)
    assert off.reasoning == "" and off.answer
    on = tiny.send(Conversation(), question, settings, think=True)
    assert on.reasoning, "the thinking-trained tiny model reasons when asked to"
    assert "<think>" not in on.answer and "</think>" not in on.answer


def test_slash_switches_in_the_message(tiny) -> None:
    conversation = Conversation()
    reply = tiny.send(conversation, "I have 2 cups and get 5 more. How many cups do I have? /no_think",
                      GenerationSettings(max_new_tokens=40), think=True)
    assert reply.reasoning == ""
    assert conversation.messages[0].content.endswith("have?")
    prompt = tiny.render(conversation.prompt_messages()[:1], False)
    assert prompt.endswith("<think>\n\n</think>\n\n")


def test_only_the_answer_goes_back_into_the_history(tiny) -> None:
    conversation = Conversation()
    first = tiny.send(conversation, "I have 2 stones and get 3 more. How many stones do I have?",
                      GenerationSettings(max_new_tokens=40), think=True)
    assert first.reasoning
    prompt = tiny.render(conversation.prompt_messages(), True)
    assert first.reasoning not in prompt
    assert conversation.messages[1].reasoning == first.reasoning


def test_overflow_drops_the_oldest_turns_and_says_so(tiny_llama, exported) -> None:
    engine = ChatEngine(exported(tiny_llama, "int4"), context_tokens=160)
    conversation = Conversation(system="You are terse.")
    for index in range(6):
        conversation.messages += [Message("user", f"Question {index}: " + "tell me more " * 8),
                                  Message("assistant", f"Answer {index}: " + "here is more " * 8)]
    reply = engine.send(conversation, "Last question?", GenerationSettings(max_new_tokens=16))
    assert reply.dropped_messages >= 2 and reply.dropped_messages % 2 == 0
    assert reply.prompt_tokens <= 160 - 16
    kept = engine.render(conversation.prompt_messages(reply.dropped_messages)[:-1], None)
    assert kept.startswith("<|im_start|>system\nYou are terse.")
    assert "Last question?" in kept and "Question 0:" not in kept
    assert len(conversation.messages) == 14  # nothing is deleted from the conversation itself


def test_a_single_prompt_too_long_is_a_clear_error(tiny_llama, exported) -> None:
    engine = ChatEngine(exported(tiny_llama, "int4"), context_tokens=128)
    with pytest.raises(ContextOverflowError, match="too long"):
        engine.send(Conversation(), "word " * 400, GenerationSettings(max_new_tokens=16))


def test_unknown_device_is_refused(tiny_llama, exported) -> None:
    with pytest.raises(ModelFolderError, match="not available here"):
        ChatEngine(exported(tiny_llama, "int4"), device="NPU.7")


def test_corrupt_ir_is_a_clear_error(tiny_llama, exported, tmp_path) -> None:
    import shutil

    copy = shutil.copytree(exported(tiny_llama, "int4"), tmp_path / "copy")
    xml = copy / "openvino_model.xml"
    xml.write_text(xml.read_text()[: len(xml.read_text()) // 2])
    with pytest.raises(ModelFolderError, match="export the model again"):
        ChatEngine(copy)


def test_memory_rule() -> None:
    assert memory_problem(1 << 30, 2 << 30) is None
    message = memory_problem(6 << 30, 2 << 30)
    assert message and "6.0 GiB" in message and "2.0 GiB is free" in message


def test_cli_ask_with_thinking_sends_reasoning_to_stderr(tiny_llama, exported) -> None:
    model = exported(tiny_llama, "int4")
    result = subprocess.run([sys.executable, "-m", "app", "ask", "I have 3 coins and get 2 more. How many coins do "
                             "I have?", "--model", str(model), "--think", "--max-new-tokens", "40"],
                            capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "plus" in result.stderr or "Add" in result.stderr  # the reasoning
    assert "<think>" not in result.stdout and result.stdout.strip()
