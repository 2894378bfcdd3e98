"""Websocket subscriptions (graphql-transport-ws) against the in-process app and worker."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from httpx_ws import WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.applications import Starlette

from tests.helpers import Account, GraphQLWebSocket, create_workspace, gql, ping, register

FOLLOW = """
subscription($id: ID!) {
  jobEvents(id: $id) {
    sequence catchUp attempt status progress message result error job { id status }
  }
}
"""


@asynccontextmanager
async def websocket(app: Starlette, protocol: str = "graphql-transport-ws") -> AsyncIterator[Any]:
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as client,
        aconnect_ws("http://testserver/graphql", client, subprotocols=[protocol]) as ws,
    ):
        yield ws


async def _ping(client: httpx.AsyncClient, delay_ms: int = 0) -> tuple[str, Account]:
    owner = await register(client)
    payload = await ping(client, owner, await create_workspace(client, owner), delay_ms=delay_ms)
    return payload["job"]["id"], owner


async def test_worker_events_reach_a_websocket_subscriber(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    job_id, owner = await _ping(client, delay_ms=300)
    async with websocket(app) as ws:
        gws = GraphQLWebSocket(ws)
        await gws.init({"authorization": f"Bearer {owner.access_token}"})
        op = await gws.subscribe(FOLLOW, {"id": job_id})
        payloads = await gws.collect(op)
    events = [p["data"]["jobEvents"] for p in payloads]
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(set(sequences)), "events arrive once each, in order"
    assert events[0]["catchUp"] is True, "the first event is the stored state"
    for before, after in itertools.pairwise(events):
        assert after["catchUp"] is False and after["sequence"] == before["sequence"] + 1
    assert events[-1]["status"] == "SUCCEEDED"
    assert events[-1]["result"]["pong"] == "hello"
    assert events[-1]["job"] == {"id": job_id, "status": "SUCCEEDED"}
    assert any(e["message"] == "pinging" for e in events), "progress is streamed"


async def test_subscribing_after_completion_replays_the_final_state(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    job_id, owner = await _ping(client)
    async with asyncio.timeout(60):  # bounds a broken run only; waits on the condition
        while True:
            body = await gql(
                client,
                "query($id: ID!) { job(id: $id) { status } }",
                {"id": job_id},
                headers=owner.headers,
            )
            if body["data"]["job"]["status"] == "SUCCEEDED":
                break
            await asyncio.sleep(0.05)
    async with websocket(app) as ws:
        gws = GraphQLWebSocket(ws)
        await gws.init({"authorization": f"Bearer {owner.access_token}"})
        payloads = await gws.collect(await gws.subscribe(FOLLOW, {"id": job_id}))
    assert [p["data"]["jobEvents"]["status"] for p in payloads] == ["SUCCEEDED"]


async def test_unknown_job_gives_not_found(app: Starlette, client: httpx.AsyncClient) -> None:
    missing = "Sm9iOjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA=="
    account = await register(client)
    async with websocket(app) as ws:
        gws = GraphQLWebSocket(ws)
        await gws.init({"authorization": f"Bearer {account.access_token}"})
        payloads = await gws.collect(await gws.subscribe(FOLLOW, {"id": missing}))
    errors = payloads[-1]["errors"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_another_tenants_job_cannot_be_followed(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    job_id, _owner = await _ping(client)
    stranger = await register(client)
    async with websocket(app) as ws:
        gws = GraphQLWebSocket(ws)
        await gws.init({"authorization": f"Bearer {stranger.access_token}"})
        payloads = await gws.collect(await gws.subscribe(FOLLOW, {"id": job_id}))
    assert payloads[-1]["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_bad_credentials_in_connection_params_are_rejected(app: Starlette) -> None:
    async with websocket(app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json(timeout=5)
    assert closed.value.code == 4403


async def test_connection_init_timeout_closes_with_4408(app: Starlette) -> None:
    async with websocket(app) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json(timeout=5)  # never send connection_init
    assert closed.value.code == 4408


async def test_subscriptions_per_connection_are_capped(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    job_id, owner = await _ping(client)  # no worker: the job stays QUEUED, subscriptions stay open
    async with websocket(app) as ws:
        gws = GraphQLWebSocket(ws)
        await gws.init({"authorization": f"Bearer {owner.access_token}"})
        for _ in range(3):  # the test settings allow 3
            op = await gws.subscribe(FOLLOW, {"id": job_id})
            first = await gws.receive()
            assert first["type"] == "next" and first["id"] == op
        extra = await gws.subscribe(FOLLOW, {"id": job_id})
        message = await gws.receive()
    assert message["id"] == extra and message["type"] == "error"
    assert "limit" in message["payload"][0]["message"].lower()


def _disconnect_code(exc: BaseException) -> int | None:
    if isinstance(exc, WebSocketDisconnect):
        return exc.code
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            code = _disconnect_code(inner)
            if code is not None:
                return code
    return None


async def test_legacy_graphql_ws_protocol_is_off_by_default(app: Starlette) -> None:
    with pytest.raises(BaseException) as closed:
        async with websocket(app, protocol="graphql-ws") as ws:
            await ws.receive_json(timeout=5)
    assert _disconnect_code(closed.value) == 4406


async def test_websocket_from_a_foreign_origin_is_refused(app: Starlette) -> None:
    async with httpx.AsyncClient(
        transport=ASGIWebSocketTransport(app), base_url="http://testserver"
    ) as client:
        with pytest.raises(BaseException) as refused:
            async with aconnect_ws(
                "http://testserver/graphql",
                client,
                subprotocols=["graphql-transport-ws"],
                headers={"origin": "https://evil.example"},
            ) as ws:
                await ws.receive_json(timeout=2)
    assert _disconnect_code(refused.value) == 1008  # policy violation, before any frame
