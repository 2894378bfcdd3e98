"""`follow`: every event in sequence while the hub is healthy; after a real gap, one
catch-up event from stored state; idle followers checked by one statement per watch round
for the whole process. The races are driven deterministically: the stored-state reader is
held, and the subscriber is not read, while the job moves on."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.auth import Principal, WorkspaceAccess
from app.errors import NotFound
from app.infra.realtime import EventHub
from app.jobs import store as jobs
from app.jobs.events import JobWatcher, StoredReads, follow, stored_reader
from app.jobs.runner import publish
from app.jobs.store import JobEvent
from app.models import Job
from app.permissions import Role
from tests.conftest import Servers
from tests.helpers import create_workspace, register


@pytest.fixture
def factory(app: Starlette) -> async_sessionmaker[AsyncSession]:
    return app.state.smartcontent.session_factory  # type: ignore[no-any-return]


@pytest.fixture
async def hub(servers: Servers) -> AsyncIterator[EventHub]:
    # A small queue, so a test can overflow it on purpose.
    hub = EventHub(servers.redis_url, queue_size=4)
    await hub.start()
    await asyncio.wait_for(hub.connected.wait(), 30)
    yield hub
    await hub.stop()


class Job_:
    """A job of a real workspace, moved through its states by the test."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> None:
        self.factory = factory
        self.id = job_id
        self.attempt = 0

    async def claim(self) -> Job:
        row = await jobs.claim(self.factory, self.id, 60)
        assert row is not None
        self.attempt = row.attempts
        return row

    async def progress(self, fraction: float) -> Job:
        row = await jobs.report_progress(self.factory, self.id, self.attempt, fraction, "step")
        assert row is not None
        return row

    async def succeed(self) -> Job:
        row = await jobs.succeed(self.factory, self.id, self.attempt, {"ok": True})
        assert row is not None
        return row


@pytest.fixture
async def job_and_owner(
    client: httpx.AsyncClient, factory: async_sessionmaker[AsyncSession]
) -> tuple[Job_, Principal]:
    owner = await register(client)
    workspace_id = _uuid_of(await create_workspace(client, owner))
    async with factory() as session, session.begin():
        row = jobs.new_job(session, "ping", {}, 3, workspace_id=workspace_id)
    principal = Principal(
        kind="user",
        user_id=_uuid_of(owner.user_id),
        access={workspace_id: WorkspaceAccess(Role.OWNER, False)},
    )
    return Job_(factory, row.id), principal


def _uuid_of(global_id: str) -> uuid.UUID:
    return uuid.UUID(base64.b64decode(global_id).decode().split(":", 1)[1])


async def _delivered(hub: EventHub) -> None:
    """Wait until the hub has handed out everything published so far: Redis delivers in
    order on the hub's one connection, so once a marker published now has arrived, every
    earlier message was offered to its subscribers."""
    channel = f"marker:{uuid.uuid4()}"
    async with hub.subscribe(channel) as marker:
        await hub.publish(channel, {"marker": True})
        assert await marker.get(wait=30) == {"marker": True}


def _seqs(events: list[JobEvent]) -> list[tuple[int, bool]]:
    return [(e.seq, e.catch_up) for e in events]


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):  # bounds a broken run only; waits on the condition
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_watcher_check_does_not_skip_the_queued_events(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    job_and_owner: tuple[Job_, Principal],
) -> None:
    """The issue's race: the follower is behind (its events are queued, not yet read) when
    the watcher finds the stored state ahead of it for a whole period. Its check must not
    make it read the row and jump, which would drop the queued events as already seen; any
    read would also be held until the job moved on further."""
    job, principal = job_and_owner
    base = stored_reader(factory)
    reads = 0
    moved_on = asyncio.Event()

    async def held_reader(job_id: uuid.UUID) -> JobEvent | None:
        nonlocal reads
        reads += 1
        if reads > 1:
            await moved_on.wait()  # a late read sees the job past the queued events
        return await base(job_id)

    watcher = JobWatcher(factory, hub, period=0.01)
    stream = follow(factory, hub, principal, job.id, read_stored=held_reader, watcher=watcher)
    first = await anext(stream)
    assert (first.seq, first.catch_up, first.status) == (0, True, "QUEUED")
    pending = asyncio.ensure_future(anext(stream))
    await publish(hub, await job.claim())
    events = [await pending]  # sequence 1; the follower now reads nothing for a while
    for step in (2, 3):
        await publish(hub, await job.progress(step / 10))
    await _delivered(hub)  # 2 and 3 are queued for it
    await _until(lambda: watcher.checks >= 1)  # ahead one round, still ahead the next
    await publish(hub, await job.progress(0.4))  # sequence 4, behind the check
    moved_on.set()
    await _delivered(hub)
    events += [await anext(stream) for _ in range(3)]
    await publish(hub, await job.succeed())
    events += [event async for event in stream]
    assert _seqs(events) == [(1, False), (2, False), (3, False), (4, False), (5, False)]
    assert reads == 1, "no read after the first: the events came, nothing was lost"


async def test_an_overflow_gap_gives_one_catch_up_event_from_stored_state(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    job_and_owner: tuple[Job_, Principal],
) -> None:
    job, principal = job_and_owner
    stream = follow(factory, hub, principal, job.id)
    assert (await anext(stream)).seq == 0
    rows = [await job.claim()]
    rows += [await job.progress(step / 10) for step in range(1, 6)]
    rows.append(await job.succeed())
    for row in rows:
        await publish(hub, row)  # nobody reads `stream`: its queue of 4 overflows
    await _delivered(hub)
    events = [event async for event in stream]
    assert _seqs(events) == [(7, True)], "one snapshot of the stored state, marked"
    assert events[0].status == "SUCCEEDED" and events[0].result == {"ok": True}


async def test_a_lost_publish_is_caught_up_from_stored_state(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    job_and_owner: tuple[Job_, Principal],
) -> None:
    """The stream skips a sequence number (a worker's publish failed): the subscriber does
    not pass the hole off as continuous."""
    job, principal = job_and_owner
    stream = follow(factory, hub, principal, job.id)
    assert (await anext(stream)).seq == 0
    await publish(hub, await job.claim())
    assert _seqs([await anext(stream)]) == [(1, False)]
    await job.progress(0.3)  # sequence 2: committed, never published
    await publish(hub, await job.progress(0.6))
    caught_up = await anext(stream)
    assert _seqs([caught_up]) == [(3, True)] and caught_up.progress == pytest.approx(0.6)
    await publish(hub, await job.succeed())
    assert _seqs([event async for event in stream]) == [(4, False)]


async def test_an_event_that_never_comes_is_caught_up_by_the_watcher(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    job_and_owner: tuple[Job_, Principal],
) -> None:
    """The final event's publish was lost and nothing follows it: the watcher sees the row
    ahead, gives the event one more period to arrive, then has the follower catch up."""
    job, principal = job_and_owner
    reads = 0
    base = stored_reader(factory)

    async def counting_reader(job_id: uuid.UUID) -> JobEvent | None:
        nonlocal reads
        reads += 1
        return await base(job_id)

    watcher = JobWatcher(factory, hub, period=0.01)
    stream = follow(factory, hub, principal, job.id, read_stored=counting_reader, watcher=watcher)
    assert (await anext(stream)).seq == 0
    await job.claim()
    await job.succeed()  # neither published
    events = [event async for event in stream]
    assert _seqs(events) == [(2, True)] and events[0].status == "SUCCEEDED"
    assert reads == 2, "the first read and the catch-up: the watcher itself read for it"
    assert watcher.rounds >= 2 and watcher.checks == 1


async def test_idle_followers_cost_one_statement_per_round_for_all(
    app: Starlette,
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    job_and_owner: tuple[Job_, Principal],
) -> None:
    """No per-subscriber polling: 40 idle followers of 4 jobs cost the process one
    statement per watch round, and none of them reads its row again."""
    job, principal = job_and_owner
    async with factory() as session, session.begin():
        workspace_id = (await session.get(Job, job.id)).workspace_id  # type: ignore[union-attr]
        others = [jobs.new_job(session, "ping", {}, 3, workspace_id=workspace_id) for _ in "abc"]
    ids = [job.id, *(row.id for row in others)]
    base = stored_reader(factory)
    reads = 0

    async def counting_reader(job_id: uuid.UUID) -> JobEvent | None:
        nonlocal reads
        reads += 1
        return await base(job_id)

    watcher = JobWatcher(factory, hub, period=0.02)
    streams = [
        follow(factory, hub, principal, ids[n % 4], read_stored=counting_reader, watcher=watcher)
        for n in range(40)
    ]
    for stream in streams:
        assert (await anext(stream)).seq == 0
    waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
    engine = app.state.smartcontent.engine.sync_engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    await _until(lambda: watcher.rounds >= 1)
    event.listen(engine, "before_cursor_execute", count)
    try:
        rounds = watcher.rounds
        await _until(lambda: watcher.rounds >= rounds + 10)
        rounds = watcher.rounds - rounds
    finally:
        event.remove(engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) in (rounds, rounds + 1), "one statement per round, for all 40"
    assert all("ANY" in s for s in selects)
    assert reads == 40 and watcher.checks == 0
    for pending in waiting:
        pending.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    for stream in streams:
        await stream.aclose()
    await _until(lambda: not watcher._followers)


async def test_a_reconnect_gap_catches_up(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    servers: Servers,
    job_and_owner: tuple[Job_, Principal],
) -> None:
    from redis.asyncio import Redis

    job, principal = job_and_owner
    base = stored_reader(factory)
    reads = 0
    reread_after_reconnect = asyncio.Event()

    async def counting_reader(job_id: uuid.UUID) -> JobEvent | None:
        nonlocal reads
        reads += 1
        event = await base(job_id)
        if reads == 3:  # 1: at start, 2: GAP at disconnect, 3: GAP once live again
            reread_after_reconnect.set()
        return event

    stream = follow(factory, hub, principal, job.id, read_stored=counting_reader)
    assert (await anext(stream)).seq == 0
    admin = Redis.from_url(servers.redis_url)
    try:
        await job.claim()  # not published: the hub drops right after
        assert await admin.client_kill_filter(_type="pubsub") >= 1
        caught_up = await anext(stream)
    finally:
        await admin.aclose()
    assert _seqs([caught_up]) == [(1, True)] and caught_up.status == "RUNNING"
    pending = asyncio.ensure_future(anext(stream))
    await reread_after_reconnect.wait()  # nothing new: no event for it
    await publish(hub, await job.succeed())
    events = [await pending] + [event async for event in stream]
    assert _seqs(events) == [(2, False)]


async def test_a_subscribe_storm_shares_its_stored_state_reads(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    job_and_owner: tuple[Job_, Principal],
) -> None:
    """100 followers of one job and 100 of 100 jobs subscribing at once: their stored-state
    reads (visibility and state in one) join a few statements, not one or two each; a
    stranger still gets NOT_FOUND from the same read."""
    job, principal = job_and_owner
    async with factory() as session, session.begin():
        workspace_id = (await session.get(Job, job.id)).workspace_id  # type: ignore[union-attr]
        others = [
            jobs.new_job(session, "ping", {}, 3, workspace_id=workspace_id) for _ in range(100)
        ]
    reads = StoredReads(factory)
    ids = [job.id] * 100 + [row.id for row in others]
    streams = [follow(factory, hub, principal, i, read_stored=reads.read) for i in ids]
    firsts = await asyncio.gather(*(anext(stream) for stream in streams))
    assert [(e.job_id, e.seq, e.catch_up) for e in firsts] == [(i, 0, True) for i in ids]
    assert reads.statements <= 4, f"{reads.statements} statements for 200 subscribes"
    stranger = Principal(kind="user", user_id=uuid.uuid4(), access={})
    with pytest.raises(NotFound):
        await anext(follow(factory, hub, stranger, job.id, read_stored=reads.read))
    for stream in streams:
        await stream.aclose()
