"""Postgres down: 503 SERVICE_UNAVAILABLE with Retry-After (never a raw 500 or a masked
internal error), over HTTP and websockets, and recovery without a restart once it is back.

The outage is real: the app talks to the test database through a TCP proxy that the test
switches off (listener closed, live connections cut) and on again, leaving the session's
Postgres untouched. One more app points at a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import exc as sa_exc
from starlette.applications import Starlette

from app.embedded import free_port
from app.http.availability import database_unavailable
from app.security import tokens
from tests.conftest import Servers, make_settings, running_app
from tests.helpers import GraphQLWebSocket, bearer, register

GQL = "application/graphql-response+json"
ME = "{ me { id } }"
LOGIN = """
mutation { login(input: {email: "nobody@example.com", password: "correct horse battery staple 42"})
  { accessToken errors { code } } }
"""


class Proxy:
    """A TCP front for the database that can be switched off and on."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        self._unix = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir else None
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.port = free_port()
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        self.url = urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{self.port}", query=""))
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._unix:
            return await asyncio.open_unix_connection(self._unix)
        return await asyncio.open_connection(*self._target)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await self._open()
        self._pipes |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Nothing listens any more and every open connection is cut, as when Postgres dies."""
        assert self._server is not None
        self._server.close()
        for writer in self._pipes:
            writer.transport.abort()
        self._pipes.clear()
        await self._server.wait_closed()
        self._server = None


@pytest.fixture
async def proxy(servers: Servers) -> AsyncIterator[Proxy]:
    front = Proxy(servers.database_url)
    await front.start()
    try:
        yield front
    finally:
        if front._server is not None:
            await front.stop()


@pytest.fixture
async def proxied_app(servers: Servers, proxy: Proxy) -> AsyncIterator[Starlette]:
    settings = make_settings(servers, database_url=proxy.url, unavailable_retry_after_seconds=7)
    async with running_app(settings) as app:
        yield app


def _assert_unavailable(response: httpx.Response, retry_after: int) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(retry_after)
    body: dict[str, Any] = response.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["retryAfter"] == retry_after
    assert error["message"] == f"The database is unavailable; retry in {retry_after} s."
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    return body


async def test_an_unreachable_database_answers_503_not_500(servers: Servers) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/smartcontent"
    async with (
        running_app(make_settings(servers, database_url=closed)) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        secret = app.state.smartcontent.keys.signing_secret
        token, _ = tokens.issue_access_token(secret, uuid.uuid4(), 0, 15)
        for accept in ("application/json", GQL):
            response = await c.post(
                "/graphql", json={"query": ME}, headers={**bearer(token), "accept": accept}
            )
            _assert_unavailable(response, 5)
            assert response.headers["content-type"].startswith(accept)
        # Anonymous operations whose resolvers need the database: not a masked internal error.
        anonymous = await c.post("/graphql", json={"query": LOGIN})
        body = _assert_unavailable(anonymous, 5)
        assert body["errors"][0]["path"] == ["login"]
        # What needs no database still works.
        health = await c.post("/graphql", json={"query": "{ health { database redis } }"})
        assert health.json() == {"data": {"health": {"database": "UNAVAILABLE", "redis": "OK"}}}


async def test_outage_and_recovery_over_http(proxy: Proxy, proxied_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=proxied_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        account = await register(client)
        me = {"query": ME}
        ok = await client.post("/graphql", json=me, headers=account.headers)
        assert ok.json() == {"data": {"me": {"id": account.user_id}}}

        await proxy.stop()
        for _ in range(3):  # pooled connections cut, then new ones refused: both are 503
            _assert_unavailable(await client.post("/graphql", json=me, headers=account.headers), 7)
        _assert_unavailable(await client.post("/graphql", json={"query": LOGIN}), 7)

        await proxy.start()
        # Back by itself: at most a few requests meet connections the outage left broken.
        for _ in range(10):
            response = await client.post("/graphql", json=me, headers=account.headers)
            if response.status_code == 200:
                break
            _assert_unavailable(response, 7)
        assert response.json() == {"data": {"me": {"id": account.user_id}}}


async def test_outage_and_recovery_over_websockets(proxy: Proxy, proxied_app: Starlette) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=proxied_app), base_url="http://t"
    ) as client:
        account = await register(client)
    params = {"authorization": f"Bearer {account.access_token}"}
    async with (
        httpx.AsyncClient(transport=ASGIWebSocketTransport(proxied_app), base_url="http://t") as c,
        aconnect_ws("http://t/graphql", c, subprotocols=["graphql-transport-ws"]) as raw,
    ):
        ws = GraphQLWebSocket(raw)
        await ws.init(params)  # while the database is up
        await proxy.stop()
        # An operation on an open socket: its credential is re-checked, which needs the
        # database: an error for that operation, and the socket stays open.
        op = await ws.subscribe(ME)
        [failed] = await ws.collect(op)
        [error] = failed["errors"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["extensions"]["retryAfter"] == 7

        # A new connection cannot authenticate: closed with 1013 (try again later).
        async with aconnect_ws("http://t/graphql", c, subprotocols=["graphql-transport-ws"]) as w2:
            await w2.send_json({"type": "connection_init", "payload": params})
            with pytest.raises(WebSocketDisconnect) as closed:
                await w2.receive_json(timeout=5)
            assert closed.value.code == 1013
            assert "retry in 7 s" in (closed.value.reason or "")

        await proxy.start()
        for _ in range(10):
            op = await ws.subscribe(ME)
            [result] = await ws.collect(op)
            if "errors" not in result:
                break
            assert result["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert result == {"data": {"me": {"id": account.user_id}}}


async def _refused() -> BaseException:
    try:
        await asyncpg.connect(f"postgresql://x@127.0.0.1:{free_port()}/x")
    except OSError as exc:
        return exc
    raise AssertionError("connected to a free port")


@pytest.mark.no_db
async def test_what_counts_as_unavailable() -> None:
    assert database_unavailable(await _refused())
    assert database_unavailable(sa_exc.TimeoutError("QueuePool limit of size 5 reached"))
    assert database_unavailable(asyncpg.exceptions.CannotConnectNowError("starting up"))
    assert database_unavailable(asyncpg.exceptions.TooManyConnectionsError("too many"))
    assert database_unavailable(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    wrapped = RuntimeError("while loading")
    wrapped.__cause__ = await _refused()
    assert database_unavailable(wrapped)
    # Bugs and bad statements are not outages; nor is a socket error from elsewhere.
    assert not database_unavailable(asyncpg.exceptions.PostgresSyntaxError("syntax"))
    assert not database_unavailable(ValueError("bad"))
    assert not database_unavailable(ConnectionRefusedError("redis or another service"))
    with pytest.raises(FileNotFoundError) as missing:
        Path("/nonexistent/file").read_bytes()
    assert not database_unavailable(missing.value)


async def test_websockets_cannot_authenticate_against_an_unreachable_database(
    servers: Servers,
) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/smartcontent"
    settings = make_settings(servers, database_url=closed, legacy_graphql_ws=True)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://t") as c,
    ):
        secret = app.state.smartcontent.keys.signing_secret
        token, _ = tokens.issue_access_token(secret, uuid.uuid4(), 0, 15)
        # The credential in the upgrade request's Authorization header.
        async with aconnect_ws(
            "http://t/graphql", c, subprotocols=["graphql-transport-ws"], headers=bearer(token)
        ) as ws:
            await ws.send_json({"type": "connection_init", "payload": {}})
            with pytest.raises(WebSocketDisconnect) as closed_socket:
                await ws.receive_json(timeout=5)
            assert closed_socket.value.code == 1013
        # The legacy protocol says why in a connection_error first.
        async with aconnect_ws("http://t/graphql", c, subprotocols=["graphql-ws"]) as ws:
            await ws.send_json(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
            )
            message = await ws.receive_json(timeout=5)
            assert message["type"] == "connection_error"
            assert message["payload"]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            with pytest.raises(WebSocketDisconnect) as closed_socket:
                await ws.receive_json(timeout=5)
            assert closed_socket.value.code == 1013
