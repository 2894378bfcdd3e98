"""A local HTTP server speaking the OpenAI and Anthropic streaming wire protocols.

Each endpoint plays a script of behaviours, one per request (the last one repeats): a
normal stream, an HTTP error status, a hang, or a malformed stream. Streams are
server-sent events shaped as each provider sends them: OpenAI `chat.completion.chunk`
objects in `data:` lines ending with `data: [DONE]` (usage in a last chunk with no choices
when `stream_options.include_usage` is set); Anthropic named events `message_start`,
`content_block_start`, `ping`, `content_block_delta`, `content_block_stop`,
`message_delta` (with the output usage) and `message_stop`.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Stream:
    chunks: list[str]
    input_tokens: int = 11
    output_tokens: int = 7
    # Wait for this event between chunks (a test controls the pace without sleeping).
    gate: asyncio.Event | None = None
    gate_after: int = 0
    delay_seconds: float = 0.0  # pause between chunks (the benchmark's fixed token rate)
    # False: no usage, as from a server that ignores `stream_options` (OpenAI) or leaves the
    # output count out of `message_delta` (Anthropic).
    report_usage: bool = True


@dataclass
class Status:
    code: int
    message: str = "error"


@dataclass
class Hang:
    """Accept the request and never answer (until the server stops)."""


@dataclass
class Malformed:
    """Start a valid stream, then send a line that is not JSON and stop."""

    chunks: list[str] = field(default_factory=lambda: ["Hel"])


Behaviour = Stream | Status | Hang | Malformed


@dataclass
class Script:
    steps: list[Behaviour] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Streams that ended early because the client went away (a stopped generation).
    abandoned: int = 0

    def next(self) -> Behaviour:
        if not self.steps:
            return Stream(["Hello", " world", "."])
        return self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    body = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {body}\n\n".encode()


class FakeLLM:
    def __init__(self) -> None:
        self.openai = Script()
        self.anthropic = Script()
        self.released = asyncio.Event()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
            ]
        )
        self.port = 0

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _status(self, step: Status, kind: str) -> Response:
        if kind == "openai":
            body: dict[str, Any] = {
                "error": {"message": step.message, "type": "error", "code": str(step.code)}
            }
        else:
            body = {"type": "error", "error": {"type": "api_error", "message": step.message}}
        headers = {"retry-after": "0"} if step.code == 429 else {}
        return JSONResponse(body, status_code=step.code, headers=headers)

    async def _openai(self, request: Request) -> Response:
        body = await request.json()
        self.openai.requests.append({"body": body, "headers": dict(request.headers)})
        step = self.openai.next()
        if isinstance(step, Status):
            return await self._status(step, "openai")
        if isinstance(step, Hang):
            await self.released.wait()
            return Response(status_code=503)
        model = body.get("model", "gpt-test")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "system_fingerprint": "fp_test",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }

        async def events() -> AsyncIterator[bytes]:
            yield _sse(chunk({"role": "assistant", "content": ""}))
            if isinstance(step, Malformed):
                for text in step.chunks:
                    yield _sse(chunk({"content": text}))
                yield b"data: {not json\n\n"
                return
            assert isinstance(step, Stream)
            for i, text in enumerate(step.chunks):
                if step.gate is not None and i == step.gate_after:
                    try:
                        await step.gate.wait()
                    except BaseException:
                        self.openai.abandoned += 1
                        raise
                if step.delay_seconds and i:
                    await asyncio.sleep(step.delay_seconds)
                yield _sse(chunk({"content": text}))
            yield _sse(chunk({}, "stop"))
            if step.report_usage and body.get("stream_options", {}).get("include_usage"):
                usage = {
                    "prompt_tokens": step.input_tokens,
                    "completion_tokens": step.output_tokens,
                    "total_tokens": step.input_tokens + step.output_tokens,
                }
                yield _sse({**chunk({}), "choices": [], "usage": usage})
            yield _sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _anthropic(self, request: Request) -> Response:
        body = await request.json()
        self.anthropic.requests.append({"body": body, "headers": dict(request.headers)})
        step = self.anthropic.next()
        if isinstance(step, Status):
            return await self._status(step, "anthropic")
        if isinstance(step, Hang):
            await self.released.wait()
            return Response(status_code=503)
        model = body.get("model", "claude-test")

        async def events() -> AsyncIterator[bytes]:
            input_tokens = step.input_tokens if isinstance(step, Stream) else 5
            yield _sse(
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_test",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": model,
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                    },
                },
                "message_start",
            )
            yield _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            )
            yield _sse({"type": "ping"}, "ping")
            chunks = step.chunks if isinstance(step, Stream | Malformed) else []
            for i, text in enumerate(chunks):
                if isinstance(step, Stream) and step.gate is not None and i == step.gate_after:
                    await step.gate.wait()
                if isinstance(step, Stream) and step.delay_seconds and i:
                    await asyncio.sleep(step.delay_seconds)
                yield _sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": text},
                    },
                    "content_block_delta",
                )
            if isinstance(step, Malformed):
                yield b"event: content_block_delta\ndata: {not json\n\n"
                return
            assert isinstance(step, Stream)
            yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            delta: dict[str, Any] = {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            }
            if step.report_usage:
                delta["usage"] = {"output_tokens": step.output_tokens}
            yield _sse(delta, "message_delta")
            yield _sse({"type": "message_stop"}, "message_stop")

        return StreamingResponse(events(), media_type="text/event-stream")


@asynccontextmanager
async def serve_fake_llm() -> AsyncIterator[FakeLLM]:
    """Run the fake on a free loopback port in this event loop."""
    fake = FakeLLM()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.port = sock.getsockname()[1]
    # No log_config, log_level or access_log: each makes uvicorn reconfigure the process's
    # loggers (levels, propagation, the service's own filters) for every later test.
    config = uvicorn.Config(fake.app, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield fake
    finally:
        fake.released.set()
        server.should_exit = True
        await task
        sock.close()
