"""The API's streamed answer without a model: ChatRun's events crossing from a worker thread to the event loop in
batches, and the SSE chunks made of them (each a valid OpenAI chunk, text joined while the loop was busy)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

from app.engine import Reply
from app.engine.tool_calls import ToolCall
from app.server import responses
from app.server.api import sse_stream
from app.server.chat_run import Finished, HandOff, Piece

TOKENS = ["Hé", "llo", " \"wor", "ld\"", "\n", "\u2028!"]


def test_text_chunks_are_the_bytes_the_generic_encoder_makes() -> None:
    frames = responses.ChunkFrames("chatcmpl-1", 7, 'odd "model"')
    for field in ("content", "reasoning_content"):
        for text in ["", *TOKENS, "<tool_call>{}</tool_call>"]:
            assert frames.text(field, text) == responses.sse(responses.chunk("chatcmpl-1", 7, 'odd "model"',
                                                                             {field: text}))


def _chunks(body: bytes) -> list[dict | str]:
    events = body.decode().split("\n\n")
    assert events[-1] == "" and all(e.startswith("data: ") for e in events[:-1])
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events[:-1]]


async def _streamed(produce, ahead: bool = False, interval_s: float = 0.0) -> tuple[list[bytes], list[dict | str]]:
    """What sse_stream writes while `produce(put)` hands events over from a worker thread (`ahead`: all of them
    before the loop gets to run), text paced at `interval_s` as ChatRun does: (writes, chunks)."""
    events: asyncio.Queue = asyncio.Queue()
    handoff = HandOff(events, asyncio.get_running_loop(), interval_s)

    def put(event: object) -> None:
        handoff.put(event, paced=isinstance(event, Piece))

    worker = threading.Thread(target=produce, args=(put,))
    worker.start()
    if ahead:
        worker.join()
    first = await events.get()  # as the API does: the response starts with the first event
    writes = [chunk async for chunk in sse_stream(responses.ChunkFrames("chatcmpl-2", 1, "m"), events, True,
                                                  [first])]
    worker.join()
    return writes, _chunks(b"".join(writes))


def _finished(tokens: int) -> Finished:
    return Finished(Reply("".join(TOKENS), "", tokens, 3, 1.0, 10.0, False, False, 0), "stop")


def test_a_burst_goes_out_as_one_write_with_its_text_joined() -> None:
    def burst(put) -> None:  # the whole answer before the loop runs: it arrives as one batch
        for token in TOKENS[:3]:
            put(Piece("reasoning", token))
        put(ToolCall("get_current_time", {"timezone": "Asia/Tokyo"}))
        for token in TOKENS:
            put(Piece("content", token))
        put(_finished(len(TOKENS)))

    async def main():
        return await _streamed(burst, ahead=True)

    writes, chunks = asyncio.run(main())
    assert len(writes) == 1  # the role chunk and everything else in one write
    deltas = [c["choices"][0]["delta"] for c in chunks if isinstance(c, dict) and c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"reasoning_content": "".join(TOKENS[:3])}
    assert deltas[2]["tool_calls"][0]["function"] == {"name": "get_current_time",
                                                      "arguments": '{"timezone": "Asia/Tokyo"}'}
    assert deltas[3] == {"content": "".join(TOKENS)} and deltas[4] == {}
    assert chunks[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"]["completion_tokens"] == len(TOKENS)
    assert chunks[-1] == "[DONE]"


def test_tokens_made_one_by_one_keep_their_order_and_text() -> None:
    gate = threading.Event()

    def trickle(put) -> None:  # a pause after each token: each goes out on its own
        for token in TOKENS:
            put(Piece("content", token))
            gate.wait(0.02)
        put(_finished(len(TOKENS)))

    async def main():
        return await _streamed(trickle)

    writes, chunks = asyncio.run(main())
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if isinstance(c, dict) and c["choices"]]
    assert "".join(t or "" for t in texts) == "".join(TOKENS)
    assert len(writes) >= len(TOKENS)  # not held back to be joined: the loop was free
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-2" for c in chunks[:-1])


def test_paced_text_goes_first_at_once_then_joined_and_the_end_is_not_held_back() -> None:
    gate = threading.Event()

    def quick(put) -> None:  # tokens 5 ms apart, far inside the 5 s pace
        for token in TOKENS:
            put(Piece("content", token))
            gate.wait(0.005)
        put(_finished(len(TOKENS)))

    async def main():
        return await _streamed(quick, interval_s=5.0)

    started = time.monotonic()
    writes, chunks = asyncio.run(main())
    assert time.monotonic() - started < 4.0  # the end went at once, not at the next paced delivery
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if isinstance(c, dict) and c["choices"]]
    assert texts[1] == TOKENS[0]  # the first text is not held back (time to first token)
    assert "".join(t or "" for t in texts) == "".join(TOKENS)
    assert texts[2] == "".join(TOKENS[1:])  # the rest joined, in the same write as the end
    assert writes[-1].decode().count('"content"') == 1 and writes[-1].endswith(b"data: [DONE]\n\n")
