"""Monthly partitions: created ahead, idempotent, and an event of a month without one is
kept in the default partition, then moved into its month's partition."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from starlette.applications import Starlette

from app.services.analytics import partitions
from tests.engagement.conftest import Tenant, count_raw, event, post_events, state_of


async def _partition_of(app: Starlette, event_id: str) -> str:
    async with state_of(app).session_factory() as session:
        return str(
            (
                await session.execute(
                    text(
                        "SELECT tableoid::regclass::text FROM engagement_events WHERE event_id = :e"
                    ),
                    {"e": event_id},
                )
            ).scalar_one()
        )


async def test_partitions_ahead_are_created_once(app: Starlette) -> None:
    factory = state_of(app).session_factory
    now = datetime(2031, 11, 15, tzinfo=UTC)
    await partitions.ensure_partitions(factory, 2, now=now)
    async with factory() as session:
        have = await partitions.existing(session)
    assert {
        "engagement_events_y2031m11",
        "engagement_events_y2031m12",
        "engagement_events_y2032m01",
        "engagement_events_default",
    } <= have
    assert await partitions.ensure_partitions(factory, 2, now=now) == []


async def test_an_event_without_its_month_is_kept_then_moved(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    factory = state_of(app).session_factory
    old = event(tenant.content_ids[0], occurredAt="2004-02-29T12:00:00+02:00")
    response = await post_events(client, tenant, [old])
    assert response.json()["accepted"] == 1
    assert await _partition_of(app, old["id"]) == "engagement_partitions.engagement_events_default"
    created = await partitions.ensure_partitions(factory, 0)
    assert "engagement_events_y2004m02" in created
    assert await _partition_of(app, old["id"]) == "engagement_partitions.engagement_events_y2004m02"
    assert await count_raw(app) == 1
    # Re-sent: still a duplicate, wherever the first copy lives now.
    again = await post_events(client, tenant, [old])
    assert again.json()["duplicate"] == 1
    assert await partitions.ensure_partitions(factory, 0) == []


def test_month_arithmetic() -> None:
    start = partitions.month_start(datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    assert partitions.add_months(start, 2) == datetime(2027, 2, 1, tzinfo=UTC)
    assert partitions.partition_name(start) == "engagement_events_y2026m12"
