"""Recovery and the real worker: the sweeper takes back a lost worker's target (looked up,
not re-sent) or parks a lost last attempt as UNKNOWN; an arq worker publishes at the due
time while postStatusChanged subscribers follow."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy import update

from app.models import PostTarget
from app.models.vocabulary import Platform
from app.platforms import registry
from app.services.publishing import delivery as engine
from app.services.publishing import sweeper
from app.services.publishing.delivery import Delivery
from app.settings import Settings
from app.state import AppState
from tests.helpers import GraphQLWebSocket
from tests.publishing.conftest import (
    Team,
    approved_content,
    arq_worker,
    connect_webhook,
    schedule,
    targets_of,
    wait_for,
)
from tests.publishing.receiver import AcceptThenHang, Receiver
from tests.publishing.steps import (
    LookupWebhook,
    created,
    due_target,
)
from tests.teams import websocket


async def test_a_lost_worker_is_recovered_by_the_sweeper_and_looked_up(
    client: httpx.AsyncClient,
    state: AppState,
    team: Team,
    receiver: Receiver,
    delivery: Delivery,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.FACTORIES, Platform.WEBHOOK, LookupWebhook)
    post_id, [target] = await due_target(client, state, team, receiver.url)
    # An attempt that reached the platform and whose worker died before recording it.
    receiver.script.append(AcceptThenHang())
    task = asyncio.create_task(engine.run(delivery, target.id, 0))
    await wait_for(lambda: created(receiver, target.idempotency_key))
    task.cancel()  # (its release is what a SIGKILL never does: put the lease back)
    with pytest.raises(asyncio.CancelledError):
        await task
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(PostTarget)
            .where(PostTarget.id == target.id)
            .values(status="PUBLISHING", attempts=1, in_doubt=False, locked_until=datetime.now(UTC))
        )
    pool = await create_pool(RedisSettings.from_dsn(state.settings.redis_url or ""))
    try:
        report = await sweeper.sweep_once(
            state.session_factory, pool, state.hub, grace_seconds=1, batch=100
        )
    finally:
        await pool.aclose()
    assert report.recovered == [target.id]
    assert report.enqueued == [engine.arq_job_id(target.id, 1)]
    [row] = await targets_of(state, post_id)
    assert row.status == "PENDING" and row.in_doubt and "worker was lost" in (row.error or "")
    assert await engine.run(delivery, target.id, 1) == "published"
    [row] = await targets_of(state, post_id)
    assert row.status == "PUBLISHED" and row.platform_post_id == "wh-1"
    assert receiver.lookups == 1 and receiver.deliveries.total() == 1  # asked, not re-sent


async def test_the_sweeper_parks_a_lost_last_attempt_as_unknown(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    post_id, [target] = await due_target(client, state, team, receiver.url)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(PostTarget)
            .where(PostTarget.id == target.id)
            .values(status="PUBLISHING", attempts=3, locked_until=datetime.now(UTC))
        )
    report = await sweeper.sweep_once(
        state.session_factory, state.redis, state.hub, grace_seconds=1, batch=100
    )
    assert report.unknown == [target.id] and not report.enqueued
    [row] = await targets_of(state, post_id)
    assert row.status == "UNKNOWN" and row.locked_until is None


async def test_a_worker_publishes_at_the_due_time_and_subscribers_follow(
    client: httpx.AsyncClient,
    pub_app: Any,
    pub_settings: Settings,
    state: AppState,
    team: Team,
    receiver: Receiver,
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content_id = await approved_content(client, team)
    async with websocket(pub_app) as ws:
        sub = GraphQLWebSocket(ws)
        await sub.init({"authorization": f"Bearer {team.owner.access_token}"})
        op = await sub.subscribe(
            "subscription($ws: ID!) { postStatusChanged(workspaceId: $ws) {"
            " status sequence catchUp target { id status platformPostId } post { id status } } }",
            {"ws": team.workspace_id},
        )
        due = datetime.now(UTC) + timedelta(seconds=1.5)
        post = (await schedule(client, team, content_id, [hook], due))["post"]
        statuses: list[str] = []
        async with arq_worker(pub_settings):
            while "PUBLISHED" not in statuses:
                message = await sub.receive(timeout=20)
                if message.get("id") == op and message["type"] == "next":
                    change = message["payload"]["data"]["postStatusChanged"]
                    statuses.append(change["status"])
        assert statuses[-3:] == ["PENDING", "PUBLISHING", "PUBLISHED"]
        assert change["target"]["platformPostId"] == "wh-1"
        assert change["post"] == {"id": post["id"], "status": "PUBLISHED"}
    [row] = await targets_of(state, post["id"])
    assert row.published_at is not None and row.published_at >= due - timedelta(seconds=1)
    assert receiver.creations.total() == 1
