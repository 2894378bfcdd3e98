"""A local receiver of outgoing webhook events (uvicorn, a real socket): it keeps every
request's headers and raw body, answers from a script of statuses (then 200), and checks
nothing itself, so tests judge the signature with the secret they were given."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Arrival:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def signed_with(self, secret: str) -> bool:
        timestamp = self.headers["x-smartcontent-timestamp"]
        mac = hmac.new(secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256)
        return hmac.compare_digest(
            self.headers["x-smartcontent-signature"], f"sha256={mac.hexdigest()}"
        )


@dataclass
class EventReceiver:
    port: int = 0
    script: list[int] = field(default_factory=list)
    arrived: list[Arrival] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Arrival]:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: len(self.arrived) >= count), timeout
            )
        return self.arrived

    async def _events(self, request: Request) -> Response:
        body = await request.body()
        async with self.changed:
            self.arrived.append(Arrival(dict(request.headers), body))
            self.changed.notify_all()
        status = self.script.pop(0) if self.script else 200
        return Response(f"status {status}", status_code=status)

    async def _redirect(self, request: Request) -> Response:
        return Response(status_code=307, headers={"Location": request.query_params["to"]})


@asynccontextmanager
async def serve_events() -> AsyncIterator[EventReceiver]:
    receiver = EventReceiver()
    app = Starlette(
        routes=[
            Route("/events", receiver._events, methods=["POST"]),
            Route("/redirect", receiver._redirect, methods=["POST"]),
        ]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    receiver.port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()
