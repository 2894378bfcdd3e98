"""Operations endpoints: /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from starlette.applications import Starlette

from app.db import plain_pg_url
from app.embedded import free_port
from tests.conftest import Servers, make_settings, running_app
from tests.helpers import create_workspace, gql, ping, register


async def test_healthz_is_alive(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_ok_when_both_dependencies_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "failing": []}


async def test_readyz_names_redis_when_it_is_down(servers: Servers) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with (
        running_app(make_settings(servers, redis_url=dead_redis)) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        response = await c.get("/readyz")
        health = await gql(c, "{ health { database redis } }")
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"]
    assert health["data"]["health"] == {"database": "OK", "redis": "UNAVAILABLE"}


async def test_readyz_names_the_database_when_it_is_down(servers: Servers) -> None:
    dead_db = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    async with (
        running_app(make_settings(servers, database_url=dead_db)) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        response = await c.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]


async def test_metrics_cover_operations_errors_pool_and_jobs(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await client.post("/graphql", json={"query": "query Probe { health { version } }"})
    await client.post("/graphql", json={"query": "{ nope }"})
    owner = await register(client)
    await ping(client, owner, await create_workspace(client, owner))
    text = (await client.get("/metrics")).text
    assert 'smartcontent_graphql_requests_total{operation="Probe",type="query"}' in text
    assert 'smartcontent_graphql_request_duration_seconds_count{operation="Probe"}' in text
    assert 'smartcontent_graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"}' in text
    assert 'smartcontent_db_pool_connections{state="checked_out"}' in text
    assert 'smartcontent_jobs{state="QUEUED"} 1.0' in text


async def test_operation_name_labels_are_bounded(app: Starlette) -> None:
    metrics = app.state.smartcontent.metrics
    labels = {metrics.operation_label(f"op{i}") for i in range(1000)}
    assert len(labels) <= 201 and "__other__" in labels


async def test_pooled_connections_dropped_while_idle_are_replaced_before_use(
    servers: Servers,
) -> None:
    """No ping on every checkout (it cost three round trips each), but a connection that sat
    idle is checked first: one Postgres dropped meanwhile never reaches a request."""
    admin = await asyncpg.connect(plain_pg_url(servers.database_url))
    try:
        others = "SELECT pid FROM pg_stat_activity WHERE application_name = 'smartcontent-api'"
        before = {r["pid"] for r in await admin.fetch(others)}
        async with (
            running_app(make_settings(servers, db_ping_idle_seconds=0.2)) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            first = await gql(c, "{ health { database } }")
            assert first["data"]["health"]["database"] == "OK"
            ours = {r["pid"] for r in await admin.fetch(others)} - before
            assert ours, "the app keeps pooled connections"
            for pid in ours:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
            await asyncio.sleep(0.4)
            owner = await register(c)  # reads and writes on replaced connections
            again = await gql(c, "{ health { database } }")
        assert owner.user_id
        assert again["data"]["health"]["database"] == "OK"
    finally:
        await admin.close()
