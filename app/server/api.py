"""The HTTP API (Starlette): /v1/models, /v1/chat/completions (streamed or not), /v1/embeddings, behind a token.

Nothing of a request's content is logged: only token counts, timings and error kinds."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.engine import ChatEngine, ContextOverflowError, EngineError
from app.engine.model_defaults import model_defaults
from app.engine.tool_calls import MalformedCall, ToolCall, offered_names, parse_tool_calls
from app.server import STREAM_INTERVAL_S, responses
from app.server.auth import token_matches
from app.server.chat_run import ChatRun, Failed, Finished, Piece
from app.server.embeddings import EmbeddingService
from app.server.engine_queue import EngineQueue, QueueFull
from app.server.protocol import RequestError, error_body, parse_chat_request

POLL_S = 0.2  # how often a waiting request checks that its client is still there
log = logging.getLogger(__name__)


class BearerAuth:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <token>`, else 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not token_matches(Headers(scope=scope).get("authorization"), self.token):
            log.info("refused a request without a valid token")
            body = error_body("Missing or wrong API token: send 'Authorization: Bearer <token>' (cpmdesk serve "
                              "--print-token shows it)", "invalid_request_error", None, "invalid_api_key")
            await JSONResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _CancellingStream(StreamingResponse):
    """A streamed answer whose generation is cancelled however the response ends (a client that goes away)."""

    def __init__(self, content: AsyncIterator[bytes], cancel: threading.Event) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._cancel = cancel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._cancel.set()


class Api:
    """The routes over one engine and its queue."""

    def __init__(self, engine: ChatEngine, max_waiting: int, embeddings: EmbeddingService,
                 stream_interval_s: float = STREAM_INTERVAL_S) -> None:
        self.engine, self.embeddings, self.stream_interval_s = engine, embeddings, stream_interval_s
        self.queue = EngineQueue(max_waiting)
        self.defaults = model_defaults(engine.folder)
        self.created = int(engine.folder.stat().st_mtime)

    async def models(self, request: Request) -> Response:
        entries = [responses.model_entry(self.engine.name, self.created)]
        embedding = self.embeddings.model_id
        if embedding:
            entries.append(responses.model_entry(embedding, self.created))
        return JSONResponse({"object": "list", "data": entries})

    async def embed(self, request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(await asyncio.to_thread(self.embeddings.embed, body))

    async def chat(self, request: Request) -> Response:
        chat = parse_chat_request(await _json_body(request))
        loop = asyncio.get_running_loop()
        events: asyncio.Queue | None = asyncio.Queue() if chat.stream else None
        run = ChatRun(self.engine, chat, self.defaults, events, loop, self.stream_interval_s)
        try:
            future = self.queue.submit(run)
        except QueueFull as full:
            log.info("refused a chat completion: the queue is full")
            return JSONResponse(error_body(f"The engine is busy and {self.queue.max_waiting} requests are waiting; "
                                           f"retry after {full.retry_after} s", "rate_limit_error", None,
                                           "queue_full"), 429, headers={"Retry-After": str(full.retry_after)})
        future.add_done_callback(_retrieve)
        completion_id, created = responses.new_id("chatcmpl-"), int(time.time())
        if events is None:
            finished = await _until_done(future, request, run)
            if finished is None:
                return Response(status_code=499)  # the client is gone; nobody reads this
            return JSONResponse(self._completion(completion_id, created, run, finished))
        # the response starts with the answer's first piece: nothing is written while the prompt is read, when a
        # client handling the headers would take CPU from the inference threads (and an error is still a status)
        first = await _first_event(events, request, run, future)
        if first is None:
            return Response(status_code=499)
        if isinstance(first, Failed):
            raise first.error
        frames = responses.ChunkFrames(completion_id, created, self.engine.name)
        return _CancellingStream(sse_stream(frames, events, chat.include_usage, [first]), run.cancel)

    def _completion(self, completion_id: str, created: int, run: ChatRun, finished: Finished) -> dict:
        reply = finished.reply
        message: dict = {"role": "assistant", "content": reply.answer}
        finish = finished.finish_reason
        if run.request.parse_tools:
            parsed = parse_tool_calls(reply.answer, offered_names(run.request.conversation.tools))
            message["content"] = parsed.content or (None if parsed.calls else "")
            if parsed.calls:
                message["tool_calls"] = [responses.tool_call_json(call) for call in parsed.calls]
                finish = "tool_calls"
            if parsed.malformed:
                log.warning("the answer had %d malformed tool-call block(s); their text is left in the content",
                            len(parsed.malformed))
                message["tool_call_errors"] = [m.reason for m in parsed.malformed]
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        return responses.completion(completion_id, created, self.engine.name, message, finish,
                                    responses.usage(reply.prompt_tokens, reply.num_tokens))


async def sse_stream(frames: responses.ChunkFrames, events: asyncio.Queue, include_usage: bool,
                     first: Sequence[object] = ()) -> AsyncIterator[bytes]:
    """A ChatRun's events as server-sent events, starting with `first` (events already taken from the queue: the
    role chunk goes out with them in one write). Whatever the engine made while the previous write went out is
    sent together: consecutive text of one kind as one delta, all in one write (clients see fewer, longer deltas
    when the server is behind, never a different answer)."""
    out = [frames.delta({"role": "assistant", "content": ""})]
    batch = list(first)
    calls = malformed = 0
    while True:
        while not events.empty():
            batch.append(events.get_nowait())
        for event in _joined(batch):
            if isinstance(event, Piece):
                out.append(frames.text("reasoning_content" if event.kind == "reasoning" else "content",
                                       event.text))
            elif isinstance(event, ToolCall):
                out.append(frames.delta({"tool_calls": [responses.tool_call_json(event, calls)]}))
                calls += 1
            elif isinstance(event, MalformedCall):
                malformed += 1
                out.append(frames.text("content", event.text))
            elif isinstance(event, Finished):
                if malformed:
                    log.warning("the answer had %d malformed tool-call block(s); their text was streamed as "
                                "content", malformed)
                out.append(frames.delta({}, "tool_calls" if calls else event.finish_reason))
                if include_usage:
                    reply = event.reply
                    out.append(frames.delta({}, None, responses.usage(reply.prompt_tokens, reply.num_tokens)))
                out.append(responses.sse("[DONE]"))
                yield b"".join(out)
                return
            elif isinstance(event, Failed):
                out.append(responses.sse(_error_response(event.error)[1]))  # the status line went out already
                yield b"".join(out)
                return
        if out:
            yield b"".join(out)
        out = []
        batch = [await events.get()]


def _joined(events: list[object]) -> list[object]:
    """The events with each run of consecutive Pieces of one kind joined into one Piece."""
    out: list[object] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, Piece) and isinstance(last, Piece) and last.kind == event.kind:
            out[-1] = Piece(event.kind, last.text + event.text)
        else:
            out.append(event)
    return out


def _retrieve(future: Future) -> None:
    """Read a finished job's outcome, so an exception nobody awaited is not reported as lost."""
    if not future.cancelled():
        future.exception()


async def _until_done(future: Future, request: Request, run: ChatRun) -> Finished | None:
    """The job's result (its exception raised here), or None once the client has gone (the job cancelled)."""
    waiting = asyncio.wrap_future(future)
    try:
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=POLL_S)
            if done:
                return waiting.result()
            if await request.is_disconnected():
                _give_up(run, future)
                return None
    except asyncio.CancelledError:  # the server is shutting down
        _give_up(run, future)
        raise


async def _first_event(events: asyncio.Queue, request: Request, run: ChatRun, future: Future) -> object | None:
    """The answer's first event (its first piece, a tool call, the end, or Failed); None when the client left
    while it waited."""
    getting = asyncio.ensure_future(events.get())
    try:
        while True:
            done, _ = await asyncio.wait({getting}, timeout=POLL_S)
            if done:
                return getting.result()
            if await request.is_disconnected():
                getting.cancel()
                _give_up(run, future)
                return None
    except asyncio.CancelledError:  # the server is shutting down
        getting.cancel()
        _give_up(run, future)
        raise


def _give_up(run: ChatRun, future: Future) -> None:
    run.cancel.set()
    future.cancel()  # skipped by the worker if it has not started
    log.info("a client disconnected (or the server is stopping); its chat completion is cancelled")


async def _json_body(request: Request) -> object:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(f"The body is not valid JSON: {err}") from err


def _error_response(error: BaseException) -> tuple[int, dict]:
    """The status and OpenAI-style body for an error raised while answering."""
    if isinstance(error, RequestError):
        return error.status, error.body()
    if isinstance(error, ContextOverflowError):
        return 400, error_body(str(error), "invalid_request_error", "messages", "context_length_exceeded")
    if isinstance(error, EngineError):
        log.error("generation failed: %s", error)
        return 500, error_body(str(error), "server_error")
    log.error("unexpected error answering a request", exc_info=error)
    return 500, error_body("Internal error; see the server's log", "server_error")


def _answering_errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A route that answers any error with an OpenAI-style body (logged unless it is the client's)."""

    @functools.wraps(handler)
    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as error:  # every error becomes a response; _error_response logs the server's
            status, body = _error_response(error)
            return JSONResponse(body, status)

    return route


async def _on_http_error(request: Request, error: HTTPException) -> Response:
    code = "not_found" if error.status_code == 404 else None
    return JSONResponse(error_body(f"{request.method} {request.url.path}: {error.detail}", "invalid_request_error",
                                   None, code), error.status_code)


def create_app(engine: ChatEngine, token: str, max_waiting: int = 4, embeddings: EmbeddingService | None = None,
               stream_interval_s: float = STREAM_INTERVAL_S) -> Starlette:
    """The ASGI app serving `engine`; every request needs `token`. Streamed text goes out at most every
    `stream_interval_s` (what came meanwhile joined; 0: every token as it comes)."""
    api = Api(engine, max_waiting, embeddings or EmbeddingService(engine.device), stream_interval_s)
    routes = [Route("/v1/models", _answering_errors(api.models), methods=["GET"]),
              Route("/v1/chat/completions", _answering_errors(api.chat), methods=["POST"]),
              Route("/v1/embeddings", _answering_errors(api.embed), methods=["POST"])]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        api.queue.close()

    app = Starlette(routes=routes, exception_handlers={HTTPException: _on_http_error}, lifespan=lifespan)
    app.add_middleware(BearerAuth, token=token)
    app.state.api = api
    return app
