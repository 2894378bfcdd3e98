"""performanceUpdated over a real websocket (graphql-transport-ws): the collector's new
snapshots reach the workspace's subscribers, read back from Postgres; and a real arq
worker runs the collector on its own (workers/settings.py)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.models import MetricSnapshot
from app.services.analytics.metrics_collector import Collector, channel, collect_due
from app.settings import Settings
from app.state import AppState
from tests.analytics.conftest import T0, Clock, seed_target, snapshots_of
from tests.helpers import GraphQLWebSocket, create_workspace, register
from tests.platforms.fakes import FakePlatforms
from tests.publishing.conftest import arq_worker, wait_for
from tests.teams import uid, websocket

SUBSCRIPTION = """
subscription($ws: ID!, $since: DateTime) { performanceUpdated(workspaceId: $ws, since: $since) {
  platform collectedAt catchUp impressions likes comments shares engagementRate ctr
  target { id status } content { id }
} }
"""


def gid(type_name: str, value: uuid.UUID) -> str:
    return base64.b64encode(f"{type_name}:{value}".encode()).decode()


async def subscribed(state: AppState, workspace_id: uuid.UUID) -> None:
    """Wait until the API's hub listens on the workspace's channel (Redis counts it)."""

    async def listening() -> bool:
        [(_, count)] = await state.redis.pubsub_numsub(channel(workspace_id))
        return int(count) > 0

    await wait_for(listening, timeout=10, what="subscribed")


async def test_subscribers_receive_each_new_snapshot(
    client: httpx.AsyncClient,
    analytics_app: Starlette,
    state: AppState,
    fake: FakePlatforms,
    collector: Collector,
    clock: Clock,
) -> None:
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    seeded = await seed_target(state, workspace_id=uid(workspace), fake=fake)
    async with websocket(analytics_app) as ws:
        sub = GraphQLWebSocket(ws)
        await sub.init({"authorization": f"Bearer {owner.access_token}"})
        op = await sub.subscribe(SUBSCRIPTION, {"ws": workspace})
        await subscribed(state, seeded.workspace_id)
        clock.at(timedelta(hours=1))
        report = await collect_due(collector)
        assert report.collected == [seeded.target_id]
        message: dict[str, Any] = {}
        while message.get("id") != op:
            message = await sub.receive(timeout=10)
    assert message["type"] == "next", message
    update = message["payload"]["data"]["performanceUpdated"]
    # The X fake's public_metrics: 250 impressions, 10 likes, 2 replies, 3 + 1 shares.
    assert (update["impressions"], update["likes"], update["comments"], update["shares"]) == (
        250,
        10,
        2,
        4,
    )
    assert update["engagementRate"] == 16 / 250 and update["ctr"] is None
    assert update["platform"] == "X" and update["catchUp"] is False
    assert update["collectedAt"] == clock.now.isoformat()
    assert update["target"] == {"id": gid("PostTarget", seeded.target_id), "status": "PUBLISHED"}
    assert update["content"] == {"id": gid("Content", seeded.content_id)}


async def test_the_worker_collects_on_its_own(
    state: AppState, fake: FakePlatforms, analytics_settings: Settings
) -> None:
    published = datetime.now(UTC) - timedelta(hours=2)
    seeded = await seed_target(state, fake=fake, published_at=published)

    async def collected() -> bool:
        async with state.session_factory() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(MetricSnapshot)
                .where(MetricSnapshot.target_id == seeded.target_id)
            )
        return bool(count)

    async with arq_worker(analytics_settings):
        await wait_for(collected, timeout=20, what="the worker's first collection")
    snapshots = await snapshots_of(state, seeded.target_id)
    assert [(s.step, s.likes) for s in snapshots] == [(0, 10)]
    assert len(fake.requests("GET", f"/2/tweets/{seeded.platform_post_id}")) == 1


async def test_a_reconnecting_subscriber_catches_up_from_since(
    client: httpx.AsyncClient,
    analytics_app: Starlette,
    state: AppState,
    fake: FakePlatforms,
    collector: Collector,
    clock: Clock,
) -> None:
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    seeded = await seed_target(state, workspace_id=uid(workspace), fake=fake)
    for hours in (1, 6):  # collected while nobody listened
        clock.at(timedelta(hours=hours))
        assert (await collect_due(collector)).collected == [seeded.target_id]
    async with websocket(analytics_app) as ws:
        sub = GraphQLWebSocket(ws)
        await sub.init({"authorization": f"Bearer {owner.access_token}"})
        since = (T0 + timedelta(hours=2)).isoformat()  # the last one it saw was at 1 h
        op = await sub.subscribe(SUBSCRIPTION, {"ws": workspace, "since": since})
        message: dict[str, Any] = {}
        while message.get("id") != op:
            message = await sub.receive(timeout=10)
    update = message["payload"]["data"]["performanceUpdated"]
    assert update["catchUp"] is True
    assert update["collectedAt"] == (T0 + timedelta(hours=6)).isoformat()
