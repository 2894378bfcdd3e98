"""A local webhook receiver: the fake platform of the publishing tests and the bench.

It speaks the webhook contract as a careful receiver would: it checks the signature over
the raw body and the timestamp's freshness (401 otherwise), creates one post per
Idempotency-Key and answers a repeated key with the post it created the first time.
`created` counts creations per key (what "published exactly once" is judged on);
`deliveries` counts every request per key (a retry after a lost answer shows there).

Behaviours can be scripted per request (`script`) for the error paths: a status with
headers, an accepted post whose answer never comes (`AcceptThenHang`), a hang before
anything is created (`Hang`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET = "whsec-test-0123456789abcdef"


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hang:
    """Never answer, create nothing (the client times out)."""


@dataclass
class AcceptThenHang:
    """Create the post, then never answer: the answer is lost."""


Behaviour = Reply | Hang | AcceptThenHang


@dataclass
class Created:
    post_id: str
    body: dict[str, Any]
    at: float


class Receiver:
    def __init__(self, *, delay: float = 0.0, secret: str = SECRET) -> None:
        self.secret = secret
        self.delay = delay
        self.script: list[Behaviour] = []
        self.created: dict[str, Created] = {}
        self.creations: Counter[str] = Counter()
        self.deliveries: Counter[str] = Counter()
        self.headers: list[dict[str, str]] = []
        self.raw: list[bytes] = []
        self.lookups = 0
        self.released = asyncio.Event()
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/hook/{name}", self._hook, methods=["POST"]),
                Route("/hook/{name}/posts", self._lookup, methods=["GET"]),
                Route("/redirect", self._redirect, methods=["POST"]),
            ]
        )
        self._lock = asyncio.Lock()
        self._seq = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/main"

    def _verified(self, request: Request, body: bytes) -> bool:
        timestamp = request.headers.get("x-smartcontent-timestamp", "")
        signature = request.headers.get("x-smartcontent-signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(signature, f"sha256={expected}")

    async def _create(self, key: str, data: dict[str, Any]) -> tuple[Created, bool]:
        async with self._lock:  # one post per key, whatever arrives at once
            existing = self.created.get(key)
            if existing is not None:
                return existing, False
            self._seq += 1
            post = Created(post_id=f"wh-{self._seq}", body=data, at=time.time())
            self.created[key] = post
            self.creations[key] += 1
            return post, True

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        self.raw.append(body)
        self.headers.append(dict(request.headers))
        if not self._verified(request, body):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        data = json.loads(body)
        key = request.headers.get("idempotency-key", "")
        self.deliveries[key] += 1
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Reply):
            if isinstance(step.body, str):
                return Response(step.body, status_code=step.status, headers=step.headers)
            return JSONResponse(step.body, status_code=step.status, headers=step.headers)
        if isinstance(step, Hang):
            await self.released.wait()
            return Response(status_code=504)
        post, new = await self._create(key, data)
        if isinstance(step, AcceptThenHang):
            await self.released.wait()
            return Response(status_code=504)
        if self.delay:
            await asyncio.sleep(self.delay)
        return JSONResponse(
            {"id": post.post_id, "url": f"https://receiver.example/p/{post.post_id}"},
            status_code=201 if new else 200,
        )

    async def _lookup(self, request: Request) -> Response:
        """What a platform with a look-up API offers: the post created under a key."""
        self.lookups += 1
        post = self.created.get(request.query_params.get("idempotency_key", ""))
        if post is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(
            {"id": post.post_id, "url": f"https://receiver.example/p/{post.post_id}"}
        )

    async def _redirect(self, request: Request) -> Response:
        target = request.query_params.get("to", "")
        return Response(status_code=307, headers={"Location": target})


@asynccontextmanager
async def serve_receiver(**kwargs: Any) -> AsyncIterator[Receiver]:
    """Run a receiver on a free loopback port in this event loop."""
    receiver = Receiver(**kwargs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    receiver.port = sock.getsockname()[1]
    # No log_config, log_level or access_log: each makes uvicorn reconfigure the process's
    # loggers for every later test.
    config = uvicorn.Config(receiver.app, lifespan="off", log_config=None, backlog=2048)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield receiver
    finally:
        receiver.released.set()
        server.should_exit = True
        await task
        sock.close()
