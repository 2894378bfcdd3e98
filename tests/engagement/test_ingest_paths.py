"""The two ways a batch is stored (app/services/analytics/ingest.py): plain inserts for a
batch of new events, ON CONFLICT only after a unique violation; exactly once either way,
also when another batch holds one of its ids uncommitted. And the rollup worker counts
batches (app/services/analytics/rollups.py), and 0020's downgrade loses none of them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy import text
from starlette.applications import Starlette

from app.db import plain_pg_url
from app.migrate import alembic_config
from app.services.analytics import ingest, rollups
from app.services.analytics.events import CheckedEvent
from tests.conftest import Servers, fresh_database
from tests.engagement.conftest import (
    Tenant,
    count_raw,
    event,
    post_events,
    raw_aggregates,
    rollup,
    state_of,
)


@pytest.fixture
def careful(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How often the ON CONFLICT statement ran (one entry per run: what it stored)."""
    runs: list[int] = []
    original = ingest._store_some

    async def counted(driver: Any, workspace_id: uuid.UUID) -> int:
        stored = await original(driver, workspace_id)
        runs.append(stored)
        return stored

    monkeypatch.setattr(ingest, "_store_some", counted)
    return runs


async def _batches(app: Starlette) -> list[tuple[Any, ...]]:
    async with state_of(app).session_factory() as session:
        rows = await session.execute(
            text(
                "SELECT b.events, b.first_at, b.last_at, count(e.*) FROM engagement_batches b "
                "LEFT JOIN engagement_events e ON e.batch_id = b.id "
                "GROUP BY b.id ORDER BY b.id"
            )
        )
        return [tuple(r) for r in rows]


def test_staging_rows_are_checked_events() -> None:
    # ingest COPYs CheckedEvents as they are: their fields must be the staging columns.
    assert CheckedEvent._fields == (*ingest._STAGE_COLUMNS[:-1], "position")
    assert ingest._STAGE_COLUMNS[-1] == "ord"


async def test_new_events_take_the_plain_path_and_a_retry_the_careful_one(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant, careful: list[int]
) -> None:
    now = datetime.now(UTC)
    times = [now - timedelta(hours=h) for h in (5, 1, 30)]
    batch = [
        event(tenant.content_ids[i % 2], occurredAt=t.isoformat(), variant="B")
        for i, t in enumerate(times)
    ]
    batch.append(dict(batch[0]))  # a repeat inside the batch costs no careful run
    report = (await post_events(client, tenant, batch)).json()
    assert (report["accepted"], report["duplicate"]) == (3, 1)
    assert careful == []
    assert await _batches(app) == [(3, min(times), max(times), 3)]

    # The retry, with one new event: a unique violation, then ON CONFLICT stores the new one.
    fresh = event(tenant.content_ids[0])
    report = (await post_events(client, tenant, [*batch, fresh], as_ndjson=True)).json()
    assert (report["accepted"], report["duplicate"]) == (1, 4)
    assert careful == [1]
    assert [b[0] for b in await _batches(app)] == [3, 1]
    # Only duplicates: no batch row at all.
    report = (await post_events(client, tenant, batch)).json()
    assert (report["accepted"], report["duplicate"]) == (0, 4)
    assert careful == [1, 0]
    assert len(await _batches(app)) == 2
    assert await count_raw(app) == 4

    assert await rollups.apply_pending(state_of(app).session_factory) == 2
    assert await _batches(app) == []
    assert await rollup(app, "engagement_hourly") == await raw_aggregates(app)


async def _wait_until_blocked(app: Starlette) -> None:
    """Until some backend waits for a transaction's lock (an ingest on our uncommitted id)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND wait_event = 'transactionid'"
    )
    async with state_of(app).session_factory() as session:
        while not (await session.execute(query)).scalar_one():
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("other_commits", [True, False])
async def test_an_id_held_by_an_uncommitted_batch_is_stored_once(
    app: Starlette,
    client: httpx.AsyncClient,
    tenant: Tenant,
    careful: list[int],
    other_commits: bool,
) -> None:
    batch = [event(tenant.content_ids[0]) for _ in range(5)]
    factory = state_of(app).session_factory
    async with factory() as other:
        # Another batch's transaction, between its identity insert and its commit.
        await other.execute(
            text(
                "INSERT INTO engagement_event_ids (workspace_id, event_id, occurred_at) "
                "VALUES (:w, :e, now())"
            ),
            {"w": tenant.workspace_id, "e": batch[2]["id"]},
        )
        posting = asyncio.create_task(post_events(client, tenant, batch))
        await asyncio.wait_for(_wait_until_blocked(app), timeout=30)
        await (other.commit() if other_commits else other.rollback())
    report = (await asyncio.wait_for(posting, timeout=30)).json()
    if other_commits:  # its id is taken: the careful statement stores the other four
        assert (report["accepted"], report["duplicate"]) == (4, 1)
        assert careful == [4]
    else:  # it rolled back: the plain inserts go on
        assert (report["accepted"], report["duplicate"]) == (5, 0)
        assert careful == []
    async with factory() as session:
        ids = (
            await session.execute(text("SELECT count(*) FROM engagement_event_ids"))
        ).scalar_one()
    assert ids == 5
    assert await count_raw(app) == report["accepted"]


async def test_concurrent_batches_sharing_ids_store_each_once(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    shared = [event(tenant.content_ids[1], type="CLICK") for _ in range(30)]
    batches = [[*shared, *(event(tenant.content_ids[0]) for _ in range(40))] for _ in range(4)]
    factory = state_of(app).session_factory
    results = await asyncio.gather(
        *(post_events(client, tenant, b) for b in batches),
        *(rollups.apply_pending(factory, batches=1) for _ in range(3)),
    )
    reports = [r.json() for r in results[:4]]
    assert sum(r["accepted"] for r in reports) == 30 + 4 * 40
    assert sum(r["duplicate"] for r in reports) == 3 * 30
    assert await count_raw(app) == 30 + 4 * 40
    await rollups.apply_pending(factory, batches=1)
    assert await rollup(app, "engagement_hourly") == await raw_aggregates(app)


async def test_downgrade_turns_pending_batches_into_deltas(servers: Servers) -> None:
    async with fresh_database(servers, "ingest_speed") as url:
        config = alembic_config(url)
        await asyncio.to_thread(command.upgrade, config, "head")
        workspace, content = uuid.uuid4(), uuid.uuid4()
        at = datetime(2026, 11, 1, 10, 20, tzinfo=UTC)
        conn = await asyncpg.connect(plain_pg_url(url))
        try:
            batch = await conn.fetchval(
                "INSERT INTO engagement_batches (workspace_id, events, first_at, last_at) "
                "VALUES ($1, 3, $2, $2) RETURNING id",
                workspace,
                at,
            )
            await conn.executemany(
                "INSERT INTO engagement_events (workspace_id, event_id, content_id, "
                "event_type, occurred_at, value, variant, batch_id) "
                "VALUES ($1, $2, $3, 'CONVERSION', $4, $5, $6, $7)",
                [
                    (workspace, f"e{i}", content, at, value, variant, batch)
                    for i, (value, variant) in enumerate(((1, None), (2, None), (4, "B")))
                ],
            )
            await asyncio.to_thread(command.downgrade, config, "0016_event_variants")
            rows = await conn.fetch(
                "SELECT bucket_start, variant, events, value_sum FROM engagement_rollup_deltas "
                "ORDER BY variant"
            )
            hour = at.replace(minute=0)
            assert [tuple(r) for r in rows] == [(hour, "", 2, 3), (hour, "B", 1, 4)]
            await asyncio.to_thread(command.upgrade, config, "head")
            assert await conn.fetchval("SELECT count(*) FROM engagement_batches") == 0
        finally:
            await conn.close()
