"""performanceUpdated with many subscribers of one workspace: one statement per new
snapshot for all of them (the process's batched reads), and one execution of the
selection per event (schema.shared_events)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event
from starlette.applications import Starlette

from app.auth import Principal, WorkspaceAccess
from app.permissions import Role
from app.services.analytics import performance_updates
from app.services.analytics.metrics_collector import Collector, collect_due
from app.state import AppState
from tests.analytics.conftest import T0, Clock, seed_target
from tests.analytics.test_subscription import SUBSCRIPTION
from tests.api.test_subscription_sharing import sharing, subscribers
from tests.helpers import create_workspace, register
from tests.platforms.fakes import FakePlatforms
from tests.teams import uid


async def test_one_snapshot_to_twenty_subscribers_costs_one_statement(
    client: httpx.AsyncClient,
    state: AppState,
    fake: FakePlatforms,
    collector: Collector,
    clock: Clock,
) -> None:
    owner = await register(client)
    workspace_id = uid(await create_workspace(client, owner))
    seeded = await seed_target(state, workspace_id=workspace_id, fake=fake)
    principal = Principal(
        kind="user",
        user_id=uid(owner.user_id),
        access={workspace_id: WorkspaceAccess(Role.OWNER, False)},
    )
    other = uid(await create_workspace(client, owner))  # follows its own workspace only
    stranger = Principal(
        kind="user", user_id=uid(owner.user_id), access={other: WorkspaceAccess(Role.OWNER, False)}
    )
    streams = [
        performance_updates.follow(state.session_factory, state.hub, principal, workspace_id)
        for _ in range(20)
    ]
    waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
    elsewhere = performance_updates.follow(state.session_factory, state.hub, stranger, other)
    not_mine = asyncio.ensure_future(anext(elsewhere))
    await asyncio.sleep(0.2)  # subscribed; no `since`: nothing to catch up
    engine = state.engine.sync_engine
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "metric_snapshots" in statement:
            selects.append(statement)

    clock.at(timedelta(hours=1))
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert (await collect_due(collector)).collected == [seeded.target_id]
        updates = await asyncio.gather(*waiting)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert {(u.snapshot.target_id, u.snapshot.likes, u.catch_up) for u in updates} == {
        (seeded.target_id, 10, False)
    }
    assert len({u.snapshot_id for u in updates}) == 1
    reads = [s for s in selects if "ANY" in s or " IN " in s]
    assert len(reads) == 1, f"{len(reads)} reads of the snapshot for 20 subscribers"
    assert not not_mine.done()
    not_mine.cancel()
    await asyncio.gather(not_mine, return_exceptions=True)
    for stream in (*streams, elsewhere):
        await stream.aclose()


async def test_five_subscribers_get_one_execution_per_snapshot(
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
    clock.at(timedelta(hours=1))
    assert (await collect_due(collector)).collected == [seeded.target_id]
    variables = {"ws": workspace, "since": T0.isoformat()}
    async with subscribers(analytics_app, owner, 5, SUBSCRIPTION, variables) as subs:
        firsts = [await s.next_text() for s in subs]  # the 1 h snapshot: all subscribed
        assert len(set(firsts)) == 1
        clock.at(timedelta(hours=6))
        with sharing(True) as counts:
            assert (await collect_due(collector)).collected == [seeded.target_id]
            texts = [await s.next_text() for s in subs]
    assert len(set(texts)) == 1, "identical messages"
    [text] = set(texts)
    assert text is not None
    update = json.loads(text)["payload"]["data"]["performanceUpdated"]
    assert update["catchUp"] is False
    assert update["collectedAt"] == (T0 + timedelta(hours=6)).isoformat()
    assert update["target"]["status"] == "PUBLISHED"
    assert counts.executed == 1 and counts.shared == 4
