"""The OpenAI embedder against a local server that speaks the embeddings wire protocol
(POST /v1/embeddings), including a 429 the SDK must retry."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.ai.embeddings import OpenAIEmbedder, build_embedder
from app.embedded import free_port
from app.settings import Settings

pytestmark = pytest.mark.no_db


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0

    async def embeddings(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append({"body": body, "auth": request.headers.get("authorization")})
        if self.fail_next:
            self.fail_next -= 1
            return JSONResponse(
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                status_code=429,
                headers={"retry-after-ms": "10"},
            )
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = body.get("dimensions", 8)
        # Out of order on purpose: clients must sort by `index`.
        data = [
            {"object": "embedding", "index": i, "embedding": [float(i + 1)] * dims}
            for i in reversed(range(len(inputs)))
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 5, "total_tokens": 5},
            }
        )


@pytest.fixture
def fake_openai() -> Iterator[tuple[str, FakeOpenAI]]:
    fake = FakeOpenAI()
    app = Starlette(routes=[Route("/v1/embeddings", fake.embeddings, methods=["POST"])])
    port = free_port()
    # log_config=None: uvicorn would otherwise reconfigure the process's logging (tests
    # after this one then lose the access-log filter).
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _settings(base_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        embedding_provider="openai",
        openai_api_key="sk-test-key",
        openai_base_url=base_url,
        embedding_dimensions=16,
    )


async def test_openai_embedder_speaks_the_wire_protocol(
    fake_openai: tuple[str, FakeOpenAI],
) -> None:
    base_url, fake = fake_openai
    embedder = build_embedder(_settings(base_url))
    assert isinstance(embedder, OpenAIEmbedder)
    vectors = await embedder.embed(["first", "second"])
    assert vectors == [[1.0] * 16, [2.0] * 16], "ordered by index, with the requested width"
    request = fake.requests[-1]
    assert request["auth"] == "Bearer sk-test-key"
    assert request["body"]["model"] == "text-embedding-3-small"
    assert request["body"]["dimensions"] == 16
    assert request["body"]["input"] == ["first", "second"]


async def test_openai_embedder_retries_a_rate_limit(fake_openai: tuple[str, FakeOpenAI]) -> None:
    base_url, fake = fake_openai
    embedder = build_embedder(_settings(base_url))
    fake.fail_next = 1
    vectors = await asyncio.wait_for(embedder.embed(["again"]), 30)
    assert vectors == [[1.0] * 16]
    assert len(fake.requests) == 2, "one 429, then a retry that succeeded"
