"""postStatusChanged with many subscribers of one workspace: one statement per event for
all of them (the process's batched target reads), one execution of the selection per
event (schema.shared_events), and a Redis reconnect still caught up from `updated_at`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import event, func, update
from starlette.applications import Starlette

from app.auth import Principal, WorkspaceAccess
from app.infra.realtime import EventHub
from app.models import PostTarget
from app.permissions import Role
from app.services.publishing import events, follow
from app.services.publishing.follow import TargetChange
from app.state import AppState
from tests.api.test_subscription_sharing import sharing, subscribers
from tests.conftest import Servers
from tests.publishing.conftest import (
    Team,
    approved_content,
    call,
    connect_webhook,
    schedule,
    targets_of,
)
from tests.publishing.receiver import Receiver
from tests.teams import uid

FOLLOW = """
subscription($ws: ID!) {
  postStatusChanged(workspaceId: $ws) {
    status sequence catchUp
    target { id status attempts account { id name status } }
    post { id status scheduledAt targets { id status } content { id title status } }
  }
}
"""


@pytest.fixture
async def hub(servers: Servers) -> AsyncIterator[EventHub]:
    hub = EventHub(servers.redis_url)
    await hub.start()
    await asyncio.wait_for(hub.connected.wait(), 30)
    yield hub
    await hub.stop()


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):  # bounds a broken run only; waits on the condition
        while not condition():
            await asyncio.sleep(0.005)


async def _pending_post(client: httpx.AsyncClient, team: Team, receiver: Receiver) -> str:
    """A post with one PENDING target, due in an hour (nothing runs it meanwhile)."""
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content_id = await approved_content(client, team)
    due = datetime.now(UTC) + timedelta(hours=1)
    post: dict[str, Any] = (await schedule(client, team, content_id, [hook], due))["post"]
    return str(post["id"])


def _owner(team: Team) -> Principal:
    workspace_id = uid(team.workspace_id)
    return Principal(
        kind="user",
        user_id=uid(team.owner.user_id),
        access={workspace_id: WorkspaceAccess(Role.OWNER, False)},
    )


async def _moved(state: AppState, target_id: uuid.UUID) -> PostTarget:
    """The target changes as a transition would (status, sequence, updated_at), unannounced."""
    async with state.session_factory() as session, session.begin():
        row = (
            await session.scalars(
                update(PostTarget)
                .where(PostTarget.id == target_id)
                .values(
                    status="CANCELLED",
                    event_seq=PostTarget.event_seq + 1,
                    updated_at=func.clock_timestamp(),
                )
                .returning(PostTarget)
            )
        ).one()
    return row


async def test_one_event_to_twenty_subscribers_costs_one_statement(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    post_id = await _pending_post(client, team, receiver)
    [target] = await targets_of(state, post_id)
    principal, workspace_id = _owner(team), uid(team.workspace_id)
    streams = [
        follow.follow(state.session_factory, state.hub, principal, workspace_id) for _ in range(20)
    ]
    firsts = await asyncio.gather(*(anext(stream) for stream in streams))
    assert {(c.target.id, c.target.event_seq, c.catch_up) for c in firsts} == {
        (target.id, target.event_seq, True)
    }
    moved = await _moved(state, target.id)
    waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
    engine = state.engine.sync_engine
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        await events.emit(state.hub, [moved])
        changes: list[TargetChange] = await asyncio.gather(*waiting)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [(c.target.status, c.target.event_seq, c.catch_up) for c in changes] == [
        ("CANCELLED", moved.event_seq, False)
    ] * 20
    assert len(selects) == 1, f"{len(selects)} statements for one event to 20 subscribers"
    # A repeat of a state already delivered is dropped, as before.
    again = [asyncio.ensure_future(anext(stream)) for stream in streams]
    await events.emit(state.hub, [moved])
    await asyncio.sleep(0.2)
    assert not any(pending.done() for pending in again)
    for pending in again:
        pending.cancel()
    await asyncio.gather(*again, return_exceptions=True)
    for stream in streams:
        await stream.aclose()


async def test_a_target_of_another_workspace_is_not_shown(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    """The batched read answers rows by id; each stream still keeps only its workspace's."""
    post_id = await _pending_post(client, team, receiver)
    [target] = await targets_of(state, post_id)
    other = uuid.uuid4()
    principal = Principal(
        kind="user",
        user_id=uid(team.owner.user_id),
        access={other: WorkspaceAccess(Role.OWNER, False)},
    )
    stream = follow.follow(state.session_factory, state.hub, principal, other)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)  # subscribed (no active targets: nothing to catch up)
    moved = await _moved(state, target.id)
    await state.hub.publish(events.channel(other), events.message(moved))
    await asyncio.sleep(0.2)
    assert not pending.done()
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await stream.aclose()


async def test_a_reconnect_gap_catches_up_the_targets_changed_meanwhile(
    client: httpx.AsyncClient,
    state: AppState,
    team: Team,
    receiver: Receiver,
    hub: EventHub,
    servers: Servers,
) -> None:
    post_id = await _pending_post(client, team, receiver)
    [target] = await targets_of(state, post_id)
    stream = follow.follow(state.session_factory, hub, _owner(team), uid(team.workspace_id))
    assert (await anext(stream)).catch_up
    moved = await _moved(state, target.id)  # never announced: the hub drops right after
    admin = Redis.from_url(servers.redis_url)
    try:
        assert await admin.client_kill_filter(_type="pubsub") >= 1
        caught_up = await anext(stream)
    finally:
        await admin.aclose()
    assert (caught_up.target.id, caught_up.target.event_seq, caught_up.catch_up) == (
        target.id,
        moved.event_seq,
        True,
    )
    await stream.aclose()


async def test_ten_subscribers_get_one_execution_per_event(
    client: httpx.AsyncClient,
    pub_app: Starlette,
    state: AppState,
    team: Team,
    receiver: Receiver,
) -> None:
    post_id = await _pending_post(client, team, receiver)
    async with subscribers(pub_app, team.owner, 10, FOLLOW, {"ws": team.workspace_id}) as subs:
        firsts = [await s.next_text() for s in subs]
        assert len(set(firsts)) == 1, "the same catch-up, byte for byte"
        with sharing(True) as counts:
            done = await call(
                client,
                team.owner,
                "mutation($id: ID!) { cancelScheduledPost(id: $id) { errors { code } } }",
                {"id": post_id},
            )
            assert done["cancelScheduledPost"]["errors"] == []
            texts = [await s.next_text() for s in subs]
    assert len(set(texts)) == 1, "identical messages"
    [text] = set(texts)
    assert text is not None
    change = json.loads(text)["payload"]["data"]["postStatusChanged"]
    assert (change["status"], change["catchUp"]) == ("CANCELLED", False)
    assert change["post"]["status"] == "CANCELLED"
    assert change["post"]["content"]["title"] == "Launch"
    assert counts.executed == 1 and counts.shared == 9
