"""Never a skipped, repeated or reordered event, at scale: a thousand in-process `follow()`
consumers on the real hub, Redis and Postgres, on one job and on many, the jobs advancing
as fast as the store and `runner.publish` allow, while the watcher's checks and the
stored-state reads race with them (a tenth of the consumers lag behind on purpose, and
every read once the jobs move is slowed so it finishes after they moved on)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.auth import Principal, WorkspaceAccess
from app.infra.realtime import WAKE_SLICE, EventHub
from app.jobs import store as jobs
from app.jobs.events import JobWatcher, StoredReads, follow
from app.jobs.runner import publish
from app.jobs.store import JobEvent
from app.permissions import Role
from tests.conftest import Servers
from tests.helpers import create_workspace, register
from tests.loop_probe import LoopTicks

SHARED_FOLLOWERS = 600  # of one job
SPREAD_JOBS, PER_JOB = 25, 16  # and 400 more, on 25 jobs
STEPS = 20  # progress events per job, between its claim and its success


@pytest.fixture
def factory(app: Starlette) -> async_sessionmaker[AsyncSession]:
    return app.state.smartcontent.session_factory  # type: ignore[no-any-return]


@pytest.fixture
async def hub(servers: Servers) -> AsyncIterator[EventHub]:
    hub = EventHub(servers.redis_url)  # the default queue: no overflow, a healthy hub
    await hub.start()
    await asyncio.wait_for(hub.connected.wait(), 30)
    yield hub
    await hub.stop()


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> tuple[uuid.UUID, Principal]:
    account = await register(client)
    global_id = await create_workspace(client, account)
    workspace_id = uuid.UUID(base64.b64decode(global_id).decode().split(":", 1)[1])
    principal = Principal(
        kind="user", user_id=uuid.uuid4(), access={workspace_id: WorkspaceAccess(Role.OWNER, False)}
    )
    return workspace_id, principal


async def _advance(
    factory: async_sessionmaker[AsyncSession], hub: EventHub, job_id: uuid.UUID
) -> int:
    """Claim the job and report STEPS progress changes, publishing each; its attempt."""
    row = await jobs.claim(factory, job_id, 600)
    assert row is not None
    await publish(hub, row)
    for step in range(STEPS):
        row = await jobs.report_progress(factory, job_id, row.attempts, step / STEPS, None)
        assert row is not None
        await publish(hub, row)
    return row.attempts


async def _finish(
    factory: async_sessionmaker[AsyncSession], hub: EventHub, job_id: uuid.UUID, attempt: int
) -> None:
    row = await jobs.succeed(factory, job_id, attempt, {"ok": True})
    assert row is not None
    await publish(hub, row)


class _SlowReads(StoredReads):
    """The batched reads, each finishing 50 ms late once `slow`: a catch-up read then
    returns a state the job has already moved past, with the events between queued."""

    slow = False

    async def read_many(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, JobEvent]:
        if self.slow:
            await asyncio.sleep(0.05)
        return await super().read_many(ids)


def _problems(events: list[JobEvent], *, healthy: bool) -> list[str]:
    """What is wrong with one follower's events; healthy: not even a marked jump."""
    found = []
    if not events or not events[0].catch_up:
        found.append("the stored state does not come first")
    for before, after in itertools.pairwise(events):
        if after.seq <= before.seq:
            found.append(f"{after.seq} after {before.seq}: repeated or backwards")
        elif after.seq != before.seq + 1 and not after.catch_up:
            found.append(f"{after.seq} after {before.seq}: skipped, unmarked")
        elif after.catch_up and healthy:
            found.append(f"{after.seq} after {before.seq}: a catch-up on a healthy hub")
    if not events or events[-1].status != "SUCCEEDED":
        found.append("does not end at the final event")
    return found


async def _run(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    job_ids: list[uuid.UUID],
    *,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[list[JobEvent]], JobWatcher]:
    """Follow: SHARED_FOLLOWERS on job_ids[0], PER_JOB on each of the others; advance
    every job at once; return what each follower received. A tenth of the followers stop
    reading after the claim until the watcher has found each of them behind the stored
    state for a whole period (their checks are queued behind the events they have not
    read); only then do the jobs succeed and do they read on."""
    reads = _SlowReads(factory)
    watcher = JobWatcher(factory, hub, period=1.0)
    targets = [job_ids[0]] * SHARED_FOLLOWERS + [
        job_id for job_id in job_ids[1:] for _ in range(PER_JOB)
    ]
    held = [who for who in range(len(targets)) if who % 10 == 0]
    received: list[list[JobEvent]] = [[] for _ in targets]
    started = [asyncio.Event() for _ in targets]
    release = asyncio.Event()

    async def consume(who: int, job_id: uuid.UUID) -> None:
        stream = follow(factory, hub, principal, job_id, read_stored=reads.read, watcher=watcher)
        async for event in stream:
            received[who].append(event)
            started[who].set()
            if len(received[who]) == 2 and who in held:
                await release.wait()

    async with asyncio.timeout(90):  # bounds a broken run only
        consumers = []
        for n, job in enumerate(targets):
            consumers.append(asyncio.create_task(consume(n, job)))
            if n % 50 == 49:  # subscribe in waves, as clients would, not all at one instant
                for ready in started[n - 49 : n + 1]:
                    await ready.wait()
        for ready in started:
            await ready.wait()
        reads.slow = True
        extra = [meanwhile()] if meanwhile else []
        attempts, *_ = await asyncio.gather(
            asyncio.gather(*(_advance(factory, hub, job_id) for job_id in job_ids)), *extra
        )
        while watcher.checks < len(held):
            await asyncio.sleep(0.01)
        await asyncio.gather(*map(partial(_finish, factory, hub), job_ids, attempts))
        release.set()
        await asyncio.gather(*consumers)
    return received, watcher


async def test_a_thousand_followers_get_every_event_once_in_order(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    owner: tuple[uuid.UUID, Principal],
) -> None:
    workspace_id, principal = owner
    async with factory() as session, session.begin():
        rows = [
            jobs.new_job(session, "ping", {}, 3, workspace_id=workspace_id)
            for _ in range(1 + SPREAD_JOBS)
        ]
    received, watcher = await _run(factory, hub, principal, [row.id for row in rows])
    problems = {n: p for n, events in enumerate(received) if (p := _problems(events, healthy=True))}
    assert not problems, f"{len(problems)} followers, e.g. {next(iter(problems.items()))}"
    assert all(len(events) == STEPS + 3 for events in received), "stored, claim, steps, success"
    assert watcher.checks >= len(received) // 10, "checks reached the followers held behind"


async def test_after_a_reconnect_every_jump_is_marked_and_nothing_goes_backwards(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    servers: Servers,
    owner: tuple[uuid.UUID, Principal],
) -> None:
    """Redis drops the hub's connection in the middle: the followers catch up from stored
    state (slow reads racing the jobs), each jump marked, never a repeat or a step back."""
    workspace_id, principal = owner
    async with factory() as session, session.begin():
        rows = [
            jobs.new_job(session, "ping", {}, 3, workspace_id=workspace_id)
            for _ in range(1 + SPREAD_JOBS)
        ]

    async def drop_connection() -> None:
        await asyncio.sleep(0.2)  # the jobs are on their way
        admin = Redis.from_url(servers.redis_url)
        try:
            assert await admin.client_kill_filter(_type="pubsub") >= 1
        finally:
            await admin.aclose()

    ids = [row.id for row in rows]
    received, _ = await _run(factory, hub, principal, ids, meanwhile=drop_connection)
    problems = {
        n: p for n, events in enumerate(received) if (p := _problems(events, healthy=False))
    }
    assert not problems, f"{len(problems)} followers, e.g. {next(iter(problems.items()))}"


async def test_a_subscribe_storm_and_a_fan_out_wake_followers_a_slice_per_loop_iteration(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    owner: tuple[uuid.UUID, Principal],
) -> None:
    """600 followers of one job subscribe at once (one batched read of the stored state),
    then the job moves: their stored states and the live event each reach them at most
    WAKE_SLICE per loop iteration, so the loop polls its sockets (health checks, other
    clients) between slices; and each still gets every event once, in order."""
    workspace_id, principal = owner
    async with factory() as session, session.begin():
        row = jobs.new_job(session, "ping", {}, 3, workspace_id=workspace_id)
    reads = StoredReads(factory)
    watcher = JobWatcher(factory, hub, period=60.0)
    received: list[list[JobEvent]] = []

    async def consume(first: asyncio.Event, stored: LoopTicks, live: LoopTicks) -> None:
        events: list[JobEvent] = []
        received.append(events)
        stream = follow(factory, hub, principal, row.id, read_stored=reads.read, watcher=watcher)
        async for event in stream:
            if len(events) < 2:
                (stored if not events else live).mark()
            events.append(event)
            first.set()

    async with asyncio.timeout(60):  # bounds a broken run only
        with LoopTicks() as stored, LoopTicks() as live:
            # One follower first: the job's channel is live before the storm.
            leader = asyncio.Event()
            tasks = [asyncio.create_task(consume(leader, LoopTicks(), LoopTicks()))]
            await leader.wait()
            firsts = [asyncio.Event() for _ in range(SHARED_FOLLOWERS)]
            statements = reads.statements
            tasks += [asyncio.create_task(consume(first, stored, live)) for first in firsts]
            for first in firsts:
                await first.wait()
            assert reads.statements - statements <= 2, "the storm's reads are batched"
            claimed = await jobs.claim(factory, row.id, 600)
            assert claimed is not None
            await publish(hub, claimed)
            await _finish(factory, hub, row.id, claimed.attempts)
            await asyncio.gather(*tasks)
    assert stored.busiest <= WAKE_SLICE, f"{stored.busiest} stored states in one iteration"
    assert live.busiest <= WAKE_SLICE, f"{live.busiest} woken by one event in one iteration"
    assert len(live.seen) >= SHARED_FOLLOWERS // WAKE_SLICE
    assert all([e.seq for e in events] == [0, 1, 2] for events in received), received[0]
