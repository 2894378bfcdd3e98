"""A local OpenAI-compatible chat server that streams tokens at a fixed rate, for benchmarks
(and for trying the product against a "model" that behaves like one on the wire).

`POST /v1/chat/completions` with `stream: true` answers with server-sent events shaped as
OpenAI sends them: `chat.completion.chunk` objects in `data:` lines, the first with the
assistant role, one per token, a last one with `finish_reason`, the usage chunk when
`stream_options.include_usage` is set, then `data: [DONE]`. The first token leaves
`--first-token-ms` after the request arrived, each next one `--token-ms` after the previous
(scheduled on absolute times, so a late wake-up does not slow the rate down).

What it says depends on the prompt: a prompt naming `bench-job-<n>` gets
`Title: Bench job <n>` then `w1 w2 ... w<tokens-1>` (one token each), so a client can tell
exactly which text belongs to which request and check that none of it was lost or reordered.
`GET /stats` returns, per job number, each call's arrival, its first and last token's
departure and every token's departure (`time.monotonic()`, which on Linux is one clock for
all processes of the machine); `POST /reset` clears them. Run it alone:

    .venv/bin/python bench/streaming_llm.py --port 8800 --token-ms 20 --tokens 100
    AI_PROVIDER=openai OPENAI_BASE_URL=http://127.0.0.1:8800/v1 make dev

A raw ASGI app under uvicorn (httptools, uvloop): no framework, since at 100 concurrent
streams of 50 tokens a second its own CPU competes with what is being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MARKER = re.compile(r"bench-job-(\d+)")


def job_text(number: int | None, tokens: int) -> list[str]:
    """The tokens the server streams for job `number` (None: a prompt without a marker)."""
    name = f"Bench job {number}" if number is not None else "Bench"
    return [f"Title: {name}\n\n"] + [f"w{k} " for k in range(1, tokens)]


@dataclass
class Call:
    received: float
    token_times: list[float] = field(default_factory=list)


@dataclass
class Config:
    token_ms: float = 20.0
    first_token_ms: float = 0.0
    tokens: int = 100
    calls: dict[str, list[Call]] = field(default_factory=dict)


def _sse(data: dict[str, Any] | str) -> bytes:
    body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {body}\n\n".encode()


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


async def _body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _json(send: Send, status: int, data: Any) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def make_app(config: Config) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    async def completions(receive: Receive, send: Send) -> None:
        received = time.monotonic()
        request = json.loads(await _body(receive))
        prompt = " ".join(str(m.get("content", "")) for m in request.get("messages", []))
        found = MARKER.search(prompt)
        number = int(found[1]) if found else None
        call = Call(received)
        config.calls.setdefault(str(number), []).append(call)
        model = str(request.get("model", "bench-model"))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )

        async def out(data: dict[str, Any] | str) -> None:
            await send({"type": "http.response.body", "body": _sse(data), "more_body": True})

        await out(_chunk(model, {"role": "assistant", "content": ""}))
        loop = asyncio.get_running_loop()
        due = loop.time() + config.first_token_ms / 1000
        tokens = job_text(number, config.tokens)
        for token in tokens:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await out(_chunk(model, {"content": token}))
            call.token_times.append(time.monotonic())
            due += config.token_ms / 1000
        await out(_chunk(model, {}, "stop"))
        if (request.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": len(tokens)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            await out({**_chunk(model, {}), "choices": [], "usage": usage})
        await out("[DONE]")
        await send({"type": "http.response.body", "body": b""})

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path.endswith("/chat/completions"):
            await completions(receive, send)
        elif method == "GET" and path == "/stats":
            await _json(
                send,
                200,
                {
                    number: [{"received": c.received, "tokens": c.token_times} for c in calls]
                    for number, calls in config.calls.items()
                },
            )
        elif method == "POST" and path == "/reset":
            await _body(receive)
            config.calls.clear()
            await _json(send, 200, {"ok": True})
        else:
            await _json(send, 404, {"error": {"message": "not found", "type": "invalid_request"}})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--token-ms", type=float, default=20.0, help="between tokens")
    parser.add_argument("--first-token-ms", type=float, default=0.0, help="before the first")
    parser.add_argument("--tokens", type=int, default=100, help="per answer, title included")
    args = parser.parse_args()
    if args.tokens < 2 or args.token_ms < 0 or args.first_token_ms < 0:
        parser.error("--tokens must be at least 2, the delays not negative")
    config = Config(token_ms=args.token_ms, first_token_ms=args.first_token_ms, tokens=args.tokens)
    uvicorn.run(
        make_app(config),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        backlog=1024,
    )


if __name__ == "__main__":
    main()
