"""`follow_workspace`: a snapshot of the workspace's jobs, then each job's changes in order,
progress paced per job, a new snapshot after a gap, lost events caught up at resync, and a
caller who lost the workspace cut off. Jobs are moved through their states by the test."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.auth import Principal, WorkspaceAccess
from app.errors import Forbidden
from app.infra.realtime import EventHub
from app.jobs import store as jobs
from app.jobs.runner import publish
from app.jobs.workspace_events import JobState, WorkspaceEvent, _Pacer, follow_workspace
from app.jobs.workspace_watch import watcher_for
from app.models import Job, Membership
from app.permissions import Role
from tests.conftest import Servers
from tests.helpers import create_workspace, register


@pytest.fixture
def factory(app: Starlette) -> async_sessionmaker[AsyncSession]:
    return app.state.smartcontent.session_factory  # type: ignore[no-any-return]


@pytest.fixture
async def hub(servers: Servers) -> AsyncIterator[EventHub]:
    hub = EventHub(servers.redis_url, queue_size=4)  # small: a test overflows it on purpose
    await hub.start()
    await asyncio.wait_for(hub.connected.wait(), 30)
    yield hub
    await hub.stop()


@pytest.fixture
async def roomy_hub(servers: Servers) -> AsyncIterator[EventHub]:
    hub = EventHub(servers.redis_url)
    await hub.start()
    await asyncio.wait_for(hub.connected.wait(), 30)
    yield hub
    await hub.stop()


def _uuid_of(global_id: str) -> uuid.UUID:
    return uuid.UUID(base64.b64decode(global_id).decode().split(":", 1)[1])


class World:
    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory
        self.attempts: dict[uuid.UUID, int] = {}

    async def new_job(self, workspace_id: uuid.UUID, kind: str = "ping") -> uuid.UUID:
        async with self.factory() as session, session.begin():
            row = jobs.new_job(session, kind, {}, 3, workspace_id=workspace_id)
        return row.id

    async def claim(self, job_id: uuid.UUID) -> Job:
        row = await jobs.claim(self.factory, job_id, 60)
        assert row is not None
        self.attempts[job_id] = row.attempts
        return row

    async def progress(self, job_id: uuid.UUID, fraction: float) -> Job:
        row = await jobs.report_progress(
            self.factory, job_id, self.attempts[job_id], fraction, "step"
        )
        assert row is not None
        return row

    async def succeed(self, job_id: uuid.UUID) -> Job:
        result = {"content_id": str(uuid.UUID(int=7))}
        row = await jobs.succeed(self.factory, job_id, self.attempts[job_id], result)
        assert row is not None
        return row


@pytest.fixture
async def setup(
    client: httpx.AsyncClient, factory: async_sessionmaker[AsyncSession]
) -> tuple[World, Principal, uuid.UUID]:
    owner = await register(client)
    workspace_id = _uuid_of(await create_workspace(client, owner))
    principal = Principal(
        kind="user",
        user_id=_uuid_of(owner.user_id),
        access={workspace_id: WorkspaceAccess(Role.OWNER, False)},
    )
    return World(factory), principal, workspace_id


async def _delivered(hub: EventHub) -> None:
    """Wait until the hub handed out everything published so far (one connection, in order)."""
    channel = f"marker:{uuid.uuid4()}"
    async with hub.subscribe(channel) as marker:
        await hub.publish(channel, {"marker": True})
        assert await marker.get(wait=30) == {"marker": True}


def _view(event: WorkspaceEvent) -> list[tuple[uuid.UUID, int, str, bool]]:
    return [(s.job_id, s.seq, s.status, s.catch_up) for s in event.jobs]


async def test_snapshot_then_every_job_change_of_this_workspace_only(
    factory: async_sessionmaker[AsyncSession],
    roomy_hub: EventHub,
    setup: tuple[World, Principal, uuid.UUID],
    client: httpx.AsyncClient,
) -> None:
    world, principal, workspace_id = setup
    hub = roomy_hub
    a, b = await world.new_job(workspace_id), await world.new_job(workspace_id)
    other = await register(client)
    elsewhere = await world.new_job(_uuid_of(await create_workspace(client, other)))
    stream = follow_workspace(factory, hub, principal, workspace_id, progress_seconds=0)
    first = await anext(stream)
    assert first.snapshot and not first.truncated
    assert _view(first) == [(a, 0, "QUEUED", True), (b, 0, "QUEUED", True)]

    seen: list[tuple[uuid.UUID, int, str, bool]] = []
    await publish(hub, await world.claim(elsewhere))  # another workspace: never shown
    for job_id in (a, b):
        await publish(hub, await world.claim(job_id))
        await publish(hub, await world.progress(job_id, 0.5))
        await publish(hub, await world.succeed(job_id))
    while sum(1 for s in seen if s[2] == "SUCCEEDED") < 2:
        event = await asyncio.wait_for(anext(stream), 30)
        assert not event.snapshot
        seen += _view(event)
    assert {s[0] for s in seen} == {a, b}
    for job_id in (a, b):
        sequences = [s[1] for s in seen if s[0] == job_id]
        assert sequences == sorted(set(sequences)) and sequences[-1] == 3
    final = [s for s in seen if s[2] == "SUCCEEDED"]
    assert all(not catch_up for *_, catch_up in final)
    await stream.aclose()


async def test_progress_is_paced_per_job_and_the_latest_is_delivered(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    setup: tuple[World, Principal, uuid.UUID],
) -> None:
    world, principal, workspace_id = setup
    job_id = await world.new_job(workspace_id)
    now = 0.0
    stream = follow_workspace(
        factory, hub, principal, workspace_id, progress_seconds=10, clock=lambda: now
    )
    await anext(stream)
    await publish(hub, await world.claim(job_id))
    assert _view(await anext(stream)) == [(job_id, 1, "RUNNING", False)]  # a status change
    pending = asyncio.ensure_future(anext(stream))
    for step in (1, 2, 3):
        await publish(hub, await world.progress(job_id, step / 10))  # too soon: held
    await _delivered(hub)
    for _ in range(20):  # turns enough for the stream to have yielded, had it not held them
        await asyncio.sleep(0)
    assert not pending.done(), "progress within the interval is held back"
    now = 10.0
    await hub.publish(jobs.workspace_channel(workspace_id), {"type": "other"})  # wakes it
    event = await asyncio.wait_for(pending, 30)
    assert _view(event) == [(job_id, 4, "RUNNING", False)], "only the latest progress"
    assert event.jobs[0].progress == pytest.approx(0.3)
    await publish(hub, await world.progress(job_id, 0.9))  # held again (now == its slot)
    await publish(hub, await world.succeed(job_id))  # a status change: at once, supersedes
    final = await asyncio.wait_for(anext(stream), 30)
    assert _view(final) == [(job_id, 6, "SUCCEEDED", False)]
    assert final.jobs[0].content_id == uuid.UUID(int=7)
    await stream.aclose()


def _state(job_id: uuid.UUID, seq: int, status: str = "RUNNING") -> JobState:
    return JobState(
        job_id=job_id,
        kind="ping",
        status=status,
        attempt=1,
        seq=seq,
        progress=seq / 10,
        message=None,
        error=None,
        content_id=None,
        updated_at=datetime(2026, 1, 1),
    )


def test_the_pacer_drops_stale_states_and_holds_early_progress() -> None:
    now = 100.0
    pacer = _Pacer(1.0, lambda: now)
    a, b = uuid.uuid4(), uuid.uuid4()
    out: list[JobState] = []
    pacer.offer(_state(a, 1), out)
    pacer.offer(_state(a, 2), out)  # same batch: replaces the first, one entry per job
    pacer.offer(_state(b, 1), out)
    assert [(s.job_id, s.seq) for s in out] == [(a, 2), (b, 1)]
    pacer.delivered(out)
    out = []
    pacer.offer(_state(a, 2), out)  # already delivered
    pacer.offer(_state(a, 1), out)  # older: arrived late from another publisher
    pacer.offer(_state(a, 3), out)  # progress too soon: held
    assert out == [] and pacer.next_due() == 101.0
    now = 101.0
    pacer.due(out)
    assert [(s.job_id, s.seq) for s in out] == [(a, 3)]
    pacer.delivered(out)
    out = []
    pacer.offer(_state(b, 2, "SUCCEEDED"), out)  # status change: never held
    assert [(s.seq, s.status) for s in out] == [(2, "SUCCEEDED")]


async def test_a_gap_gives_a_new_snapshot_with_what_changed_unheard(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    setup: tuple[World, Principal, uuid.UUID],
) -> None:
    world, principal, workspace_id = setup
    finished, busy = await world.new_job(workspace_id), await world.new_job(workspace_id)
    stream = follow_workspace(factory, hub, principal, workspace_id, progress_seconds=0)
    assert len((await anext(stream)).jobs) == 2
    await world.claim(finished)
    await world.succeed(finished)  # never published
    await publish(hub, await world.claim(busy))
    for step in range(1, 8):  # nobody reads `stream`: its queue of 4 overflows
        await publish(hub, await world.progress(busy, step / 10))
    await _delivered(hub)
    event = await asyncio.wait_for(anext(stream), 30)
    assert event.snapshot, "after a gap: a snapshot from Postgres"
    assert sorted(_view(event)) == sorted(
        [(finished, 2, "SUCCEEDED", True), (busy, 8, "RUNNING", True)]
    )
    await stream.aclose()


async def test_a_lost_final_event_is_caught_up_at_the_next_resync(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    setup: tuple[World, Principal, uuid.UUID],
) -> None:
    world, principal, workspace_id = setup
    job_id = await world.new_job(workspace_id)
    stream = follow_workspace(
        factory, hub, principal, workspace_id, progress_seconds=0, resync_seconds=0.05
    )
    await anext(stream)
    await publish(hub, await world.claim(job_id))
    assert _view(await asyncio.wait_for(anext(stream), 30)) == [(job_id, 1, "RUNNING", False)]
    await world.succeed(job_id)  # committed, its publish lost
    event = await asyncio.wait_for(anext(stream), 30)
    assert _view(event) == [(job_id, 2, "SUCCEEDED", True)] and not event.snapshot
    await stream.aclose()


async def test_a_caller_who_left_the_workspace_is_cut_off_at_resync(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    setup: tuple[World, Principal, uuid.UUID],
) -> None:
    _world, principal, workspace_id = setup
    stream = follow_workspace(factory, hub, principal, workspace_id, resync_seconds=0.05)
    await anext(stream)
    async with factory() as session, session.begin():
        await session.execute(delete(Membership).where(Membership.workspace_id == workspace_id))
    with pytest.raises(Forbidden):
        await asyncio.wait_for(anext(stream), 30)


async def test_an_outsider_is_refused_before_anything_is_read(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    setup: tuple[World, Principal, uuid.UUID],
) -> None:
    _world, _principal, workspace_id = setup
    stranger = Principal(kind="user", user_id=uuid.uuid4(), access={})
    with pytest.raises(Forbidden):
        await anext(follow_workspace(factory, hub, stranger, workspace_id))


async def test_since_adds_the_jobs_that_finished_while_away(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    setup: tuple[World, Principal, uuid.UUID],
) -> None:
    world, principal, workspace_id = setup
    done, waiting = await world.new_job(workspace_id), await world.new_job(workspace_id)
    first = await anext(follow_workspace(factory, hub, principal, workspace_id))
    newest = max(s.updated_at for s in first.jobs)
    await world.claim(done)
    await world.succeed(done)  # while no dashboard listened
    plain = await anext(follow_workspace(factory, hub, principal, workspace_id))
    assert _view(plain) == [(waiting, 0, "QUEUED", True)]
    resumed = await anext(follow_workspace(factory, hub, principal, workspace_id, since=newest))
    assert {s[:3] for s in _view(resumed)} == {(waiting, 0, "QUEUED"), (done, 2, "SUCCEEDED")}
    assert [s.content_id for s in resumed.jobs if s.job_id == done] == [uuid.UUID(int=7)]


async def test_idle_streams_cost_a_few_statements_per_round_for_all(
    app: Starlette,
    factory: async_sessionmaker[AsyncSession],
    roomy_hub: EventHub,
    setup: tuple[World, Principal, uuid.UUID],
) -> None:
    """No per-stream polling: 30 idle dashboards of one workspace cost the process one
    statement for their jobs and one for their callers' access per watch round."""
    world, principal, workspace_id = setup
    for _ in range(3):
        await world.new_job(workspace_id)
    streams = [
        follow_workspace(factory, roomy_hub, principal, workspace_id, resync_seconds=0.03)
        for _ in range(30)
    ]
    for stream in streams:
        assert len((await anext(stream)).jobs) == 3
    waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
    watcher = watcher_for(roomy_hub, factory, 0.03)
    engine = app.state.smartcontent.engine.sync_engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    async def rounds(n: int) -> None:
        async with asyncio.timeout(30):  # bounds a broken run only
            while watcher.rounds < n:
                await asyncio.sleep(0.005)

    await rounds(1)
    event.listen(engine, "before_cursor_execute", count)
    try:
        start = watcher.rounds
        await rounds(start + 10)
        done = watcher.rounds - start
    finally:
        event.remove(engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert 2 * done <= len(selects) <= 2 * (done + 1), "two statements a round, for all 30"
    assert not any(pending.done() for pending in waiting), "nothing to deliver: no resync"
    for pending in waiting:
        pending.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
