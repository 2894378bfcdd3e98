"""Endpoint switches from settings: GraphiQL, introspection, legacy websocket protocol."""

from __future__ import annotations

import httpx
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from tests.conftest import Servers, make_settings, running_app
from tests.helpers import gql


async def test_graphiql_can_be_switched_off(servers: Servers) -> None:
    async with (
        running_app(make_settings(servers, graphiql=False)) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        response = await c.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == 404
        assert (await gql(c, "{ health { version } }"))["data"]["health"]["version"]


async def test_introspection_can_be_switched_off(servers: Servers) -> None:
    async with (
        running_app(make_settings(servers, introspection=False)) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        body = await gql(c, "{ __schema { queryType { name } } }")
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_get_queries_when_enabled(servers: Servers) -> None:
    async with (
        running_app(make_settings(servers, allow_get_queries=True)) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        response = await c.get("/graphql", params={"query": "{ health { version } }"})
    assert response.status_code == 200
    assert response.json()["data"]["health"]["version"]


async def test_legacy_graphql_ws_when_enabled(servers: Servers) -> None:
    async with (
        running_app(make_settings(servers, legacy_graphql_ws=True)) as app,
        httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://t") as c,
        aconnect_ws("http://t/graphql", c, subprotocols=["graphql-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
