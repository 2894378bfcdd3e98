"""Rollups equal GROUP BY over the raw events after late, duplicate and out-of-order
events, however often and however concurrently the rollup runs; and the worker, woken by
ingest, shows a batch within seconds."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from arq.worker import Worker
from sqlalchemy import text
from starlette.applications import Starlette

from app.services.analytics import rollups
from tests.engagement.conftest import (
    Tenant,
    event,
    post_events,
    raw_aggregates,
    rollup,
    state_of,
)


async def _daily_raw(app: Starlette) -> dict[tuple[Any, ...], tuple[int, Any]]:
    async with state_of(app).session_factory() as session:
        rows = await session.execute(
            text(
                "SELECT workspace_id, date_trunc('day', occurred_at, 'UTC'), content_id, "
                "coalesce(target_id, '00000000-0000-0000-0000-000000000000'::uuid), "
                "event_type, coalesce(variant, ''), count(*), coalesce(sum(value), 0) "
                "FROM engagement_events GROUP BY 1, 2, 3, 4, 5, 6"
            )
        )
        return {tuple(r[:6]): (r[6], r[7]) for r in rows}


_TYPES = ("VIEW", "IMPRESSION", "CLICK", "LIKE", "SHARE", "COMMENT", "CONVERSION")


async def _dashboard_daily(app: Starlette, raw: bool) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """engagement_dashboard_daily, or the same GROUP BY over the raw events."""
    if raw:
        counts = ", ".join(f"count(*) FILTER (WHERE event_type = '{t}')" for t in _TYPES)
        sql = (
            "SELECT workspace_id, date_trunc('day', occurred_at, 'UTC'), content_id, "
            f"coalesce(platform, ''), {counts}, "
            "coalesce(sum(value) FILTER (WHERE event_type = 'CONVERSION'), 0) "
            "FROM engagement_events GROUP BY 1, 2, 3, 4"
        )
    else:
        sql = (
            "SELECT workspace_id, bucket_start, content_id, platform, views, impressions, "
            "clicks, likes, shares, comments, conversions, conversion_value "
            "FROM engagement_dashboard_daily"
        )
    async with state_of(app).session_factory() as session:
        return {tuple(r[:4]): tuple(r[4:]) for r in await session.execute(text(sql))}


async def _assert_rollups_match(app: Starlette) -> None:
    hourly, raw = await rollup(app, "engagement_hourly"), await raw_aggregates(app)
    assert raw and hourly == raw
    assert await rollup(app, "engagement_daily") == await _daily_raw(app)
    dense = await _dashboard_daily(app, raw=False)
    assert dense and dense == await _dashboard_daily(app, raw=True)


def _mixed_batch(tenant: Tenant, rng: random.Random, size: int) -> list[dict[str, Any]]:
    """Events spread over the last ten days, in random order, on contents and the target."""
    now = datetime.now(UTC)
    out = []
    for _ in range(size):
        when = now - timedelta(minutes=rng.randint(1, 60 * 24 * 10))
        kind = rng.choice(["VIEW", "CLICK", "LIKE", "CONVERSION"])
        value = round(rng.uniform(0, 100), 2) if kind == "CONVERSION" else None
        # Some events name an A/B arm: the rollups keep the arms apart.
        variant = rng.choice([None, None, "A", "B"])
        if rng.random() < 0.3:
            out.append(
                event(
                    None,
                    targetId=str(tenant.target_id),
                    type=kind,
                    value=value,
                    occurredAt=when.isoformat(),
                    variant=variant,
                )
            )
        else:
            out.append(
                event(
                    rng.choice(tenant.content_ids),
                    type=kind,
                    value=value,
                    occurredAt=when.isoformat(),
                    variant=variant,
                )
            )
    return out


async def test_rollups_equal_raw_after_late_duplicate_and_out_of_order_events(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant, other: Tenant
) -> None:
    rng = random.Random(12)
    factory = state_of(app).session_factory
    first = _mixed_batch(tenant, rng, 300)
    assert (await post_events(client, tenant, first)).json()["accepted"] == 300
    await post_events(client, other, _mixed_batch(other, rng, 50))
    assert await rollups.apply_pending(factory) > 0
    await _assert_rollups_match(app)

    # Late events (weeks old), duplicates of rolled-up events (re-sent with other values
    # and times: still the same events) and new ones, out of order, in one batch.
    late = [
        event(
            tenant.content_ids[1],
            occurredAt=(datetime.now(UTC) - timedelta(days=30 + i)).isoformat(),
            type="CONVERSION",
            value=i + 0.25,
        )
        for i in range(20)
    ]
    duplicates = [dict(e, value=999, occurredAt=datetime.now(UTC).isoformat()) for e in first[:40]]
    mixed = late + duplicates + _mixed_batch(tenant, rng, 100)
    rng.shuffle(mixed)
    report = (await post_events(client, tenant, mixed, as_ndjson=True)).json()
    assert (report["accepted"], report["duplicate"]) == (120, 40)
    # Run twice: the second run finds nothing left.
    assert await rollups.apply_pending(factory) > 0
    assert await rollups.apply_pending(factory) == 0
    await _assert_rollups_match(app)

    # Ingest and several rollup runs at once, in small chunks, then the rest.
    batches = [_mixed_batch(tenant, rng, 80) for _ in range(3)]
    batches[1] += [dict(e) for e in batches[0][:10]]  # duplicates across concurrent batches
    results = await asyncio.gather(
        *(post_events(client, tenant, b) for b in batches),
        *(rollups.apply_pending(factory, chunk=7, batches=1) for _ in range(4)),
    )
    accepted = sum(r.json()["accepted"] for r in results[:3])
    duplicate = sum(r.json()["duplicate"] for r in results[:3])
    assert (accepted, duplicate) == (240, 10)
    await asyncio.gather(*(rollups.apply_pending(factory, chunk=5, batches=1) for _ in range(3)))
    await _assert_rollups_match(app)
    async with factory() as session:
        left = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM engagement_rollup_deltas) "
                    "+ (SELECT count(*) FROM engagement_batches)"
                )
            )
        ).scalar()
    assert left == 0


async def test_legacy_deltas_reach_every_rollup_once(app: Starlette, tenant: Tenant) -> None:
    """Deltas written by ingest before batches (revision 0020) are drained into the
    dashboard rollup too, once: a second run adds nothing."""
    factory = state_of(app).session_factory
    day = datetime(2026, 11, 3, tzinfo=UTC)
    rows = [
        # (hour, target, platform, type, events, value)
        (day + timedelta(hours=1), tenant.target_id, "X", "LIKE", 3, 0),
        (day + timedelta(hours=5), tenant.target_id, "X", "LIKE", 2, 0),
        (day + timedelta(hours=5), tenant.target_id, "X", "CONVERSION", 1, 7.5),
        (day + timedelta(hours=2), uuid.UUID(int=0), None, "VIEW", 4, 0),
    ]
    async with factory() as session, session.begin():
        for at, target, platform, kind, events, value in rows:
            await session.execute(
                text(
                    "INSERT INTO engagement_rollup_deltas (workspace_id, bucket_start, "
                    "content_id, target_id, platform, event_type, events, value_sum) "
                    "VALUES (:w, :at, :c, :t, :p, :k, :n, :v)"
                ),
                {
                    "w": tenant.workspace_id,
                    "at": at,
                    "c": tenant.content_ids[0],
                    "t": target,
                    "p": platform,
                    "k": kind,
                    "n": events,
                    "v": value,
                },
            )
    assert await rollups.apply_pending(factory) == 4
    assert await rollups.apply_pending(factory) == 0
    dense = await _dashboard_daily(app, raw=False)
    key = (tenant.workspace_id, day, tenant.content_ids[0])
    # views, impressions, clicks, likes, shares, comments, conversions, conversion_value
    assert dense == {
        (*key, "X"): (0, 0, 0, 5, 0, 0, 1, 7.5),
        (*key, ""): (4, 0, 0, 0, 0, 0, 0, 0),
    }


async def _wait_for(app: Starlette, key: tuple[Any, ...], events: int, within: float) -> None:
    started = asyncio.get_running_loop().time()
    while (await rollup(app, "engagement_hourly")).get(key, (0, 0))[0] != events:
        assert asyncio.get_running_loop().time() - started < within, "rollup not in time"
        await asyncio.sleep(0.1)


async def test_the_worker_shows_ingested_events_within_ten_seconds(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant, worker: Worker
) -> None:
    content = tenant.content_ids[0]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    key = (tenant.workspace_id, hour, content, uuid.UUID(int=0), "CLICK", "")
    # A first event: once it shows, the worker's start-up sweep is behind us and the next
    # sweep is ENGAGEMENT_ROLLUP_SWEEP_SECONDS (30 s) away, so what follows shows through
    # the job the ingest requests.
    warm_up = event(content, type="CLICK", occurredAt=hour.isoformat())
    assert (await post_events(client, tenant, [warm_up])).json()["accepted"] == 1
    await _wait_for(app, key, 1, within=30)
    batch = [
        event(content, type="CLICK", occurredAt=(hour + timedelta(minutes=i)).isoformat())
        for i in range(1, 26)
    ]
    assert (await post_events(client, tenant, batch)).json()["accepted"] == 25
    await _wait_for(app, key, 26, within=10)
    daily_key = (tenant.workspace_id, hour.replace(hour=0), content, uuid.UUID(int=0), "CLICK", "")
    assert (await rollup(app, "engagement_daily"))[daily_key][0] == 26


def test_one_rollup_job_per_window() -> None:
    a, due_a = rollups.window_job(1000.1, 2.0)
    b, due_b = rollups.window_job(1001.9, 2.0)
    c, _ = rollups.window_job(1002.0, 2.0)
    assert a == b != c
    # The job starts when the window ends: after every ingest that requested it.
    assert due_a == due_b == datetime.fromtimestamp(1002.0, UTC)
