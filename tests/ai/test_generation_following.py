"""generationProgress followers at scale: no per-subscriber polling while the hub is
healthy (the process's JobWatcher checks every followed job in one statement per round),
one batched read for a subscribe storm, and every real gap still caught up from the row:
a lost publish (through the watcher's check), a skipped sequence, a Redis reconnect."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.auth import Principal, WorkspaceAccess
from app.errors import NotFound
from app.infra.realtime import EventHub
from app.jobs import store as jobs
from app.jobs.events import JobWatcher
from app.jobs.runner import JobContext, publish
from app.models import Job
from app.permissions import Role
from app.services.ai import following, generation
from app.services.ai.following import ProgressEvent
from app.services.ai.generation import GenerateRequest
from app.services.ai.progress import Streamer
from schema.ids import to_global_id
from tests.ai.test_generation import owner_in_workspace
from tests.ai.test_generation_api import PROGRESS
from tests.api.test_subscription_sharing import sharing, subscribers
from tests.conftest import Servers, make_settings
from tests.helpers import create_workspace, register
from tests.teams import state_of, uid


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


class _Generation:
    """A claimed generation job, moved on by the test (published or not)."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], row: Job) -> None:
        self.factory = factory
        self.id = row.id
        self.row = row

    async def progress(self, fraction: float, stage: str) -> Job:
        row = await jobs.report_progress(self.factory, self.id, self.row.attempts, fraction, stage)
        assert row is not None
        self.row = row
        return row

    async def succeed(self) -> Job:
        row = await jobs.succeed(self.factory, self.id, self.row.attempts, {"ok": True})
        assert row is not None
        self.row = row
        return row


async def _claimed(
    app: Starlette, client: httpx.AsyncClient
) -> tuple[_Generation, Principal, async_sessionmaker[AsyncSession]]:
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    job = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Tea")
    )
    row = await jobs.claim(state.session_factory, job.id, 60)
    assert row is not None
    return _Generation(state.session_factory, row), principal, state.session_factory


def _follow(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    job_id: uuid.UUID,
    watcher: JobWatcher | None = None,
) -> AsyncIterator[ProgressEvent]:
    return following.follow(
        factory, hub, principal, job_id, generation.GENERATION_KINDS, watcher=watcher
    )


def _seqs(events: list[ProgressEvent]) -> list[tuple[int, bool]]:
    return [(e.sequence, e.catch_up) for e in events]


class _Statements:
    """SELECTs the app's engine runs while counting."""

    def __init__(self, app: Starlette) -> None:
        self._engine = state_of(app).engine.sync_engine
        self.selects: list[str] = []

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects.append(statement)

    def __enter__(self) -> _Statements:
        event.listen(self._engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self._engine, "before_cursor_execute", self._count)


async def test_idle_followers_cost_only_the_watchers_rounds(
    app: Starlette, client: httpx.AsyncClient, hub: EventHub
) -> None:
    """30 followers of one running generation subscribe in a few statements, then cost the
    process one statement per watch round, for all of them: no follower reads its row while
    nothing happens (a per-subscriber resync at this period would cost 30 per round)."""
    job, principal, factory = await _claimed(app, client)
    watcher = JobWatcher(factory, hub, period=0.02)
    streams = [_follow(factory, hub, principal, job.id, watcher) for _ in range(30)]
    with _Statements(app) as subscribing:
        firsts = await asyncio.gather(*(anext(stream) for stream in streams))
    assert [(e.sequence, e.catch_up, e.status) for e in firsts] == [(1, True, "RUNNING")] * 30
    assert len(subscribing.selects) <= 3, f"{len(subscribing.selects)} statements for 30"
    waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
    await _until(lambda: watcher.rounds >= 1)
    with _Statements(app) as idle:
        rounds = watcher.rounds
        await _until(lambda: watcher.rounds >= rounds + 10)
        rounds = watcher.rounds - rounds
    assert len(idle.selects) in (rounds, rounds + 1), "one statement per round, for all 30"
    assert all("ANY" in s and "partial" not in s for s in idle.selects)
    assert watcher.checks == 0 and not any(w.done() for w in waiting)
    # Still live: the next change reaches every follower, in sequence, once.
    await publish(hub, await job.progress(0.5, "variation:0"))
    events = await asyncio.gather(*waiting)
    assert [(e.sequence, e.catch_up, e.stage) for e in events] == [(2, False, "variation")] * 30
    for stream in streams:
        await stream.aclose()
    await _until(lambda: not watcher._followers)


async def test_a_lost_publish_is_caught_up_through_the_watchers_check(
    app: Starlette, client: httpx.AsyncClient, hub: EventHub
) -> None:
    """The final change is committed but never published, and nothing follows it: the
    watcher sees the row ahead for a whole period and has the follower catch up."""
    job, principal, factory = await _claimed(app, client)
    watcher = JobWatcher(factory, hub, period=0.01)
    stream = _follow(factory, hub, principal, job.id, watcher)
    assert _seqs([await anext(stream)]) == [(1, True)]
    await job.succeed()  # not published
    events = [e async for e in stream]
    assert _seqs(events) == [(2, True)] and events[0].status == "SUCCEEDED"
    assert watcher.checks == 1


async def test_late_events_are_not_skipped_by_a_check(
    app: Starlette, client: httpx.AsyncClient, hub: EventHub
) -> None:
    """A check about a sequence the stream delivered meanwhile reads nothing and yields
    nothing: the follower goes on with the live events."""
    job, principal, factory = await _claimed(app, client)
    watcher = JobWatcher(factory, hub, period=3600)  # rounds driven by the test
    stream = _follow(factory, hub, principal, job.id, watcher)
    assert _seqs([await anext(stream)]) == [(1, True)]
    pending = asyncio.ensure_future(anext(stream))
    await _until(lambda: bool(watcher._followers))
    await publish(hub, await job.progress(0.4, "draft"))
    assert _seqs([await pending]) == [(2, False)]
    [follower] = watcher._followers[job.id]
    follower.ahead = 2  # as if a round had seen sequence 2 before it arrived
    await watcher._round()
    assert watcher.checks == 0, "delivered meanwhile: no check"
    follower.ahead = 2
    follower.last = 1  # a check about sequence 2 queued just before it was delivered
    await watcher._round()
    follower.last = 2
    assert watcher.checks == 1
    await publish(hub, await job.succeed())
    assert _seqs([e async for e in stream]) == [(3, False)]


async def test_a_skipped_sequence_catches_up_from_the_row(
    app: Starlette, client: httpx.AsyncClient, hub: EventHub
) -> None:
    """A change whose publish was lost shows as a skipped sequence on the next one: the
    follower catches up from the stored row (catchUp) rather than pass the hole off."""
    job, principal, factory = await _claimed(app, client)
    stream = _follow(factory, hub, principal, job.id, JobWatcher(factory, hub, period=3600))
    assert _seqs([await anext(stream)]) == [(1, True)]
    await job.progress(0.3, "draft")  # sequence 2: committed, never published
    await publish(hub, await job.progress(0.6, "variation:0"))
    caught_up = await anext(stream)
    assert _seqs([caught_up]) == [(3, True)]
    assert (caught_up.stage, caught_up.variation_index) == ("variation", 0)
    await publish(hub, await job.succeed())
    assert _seqs([e async for e in stream]) == [(4, False)]


async def test_a_reconnect_gap_catches_up_deltas_and_state(
    app: Starlette, client: httpx.AsyncClient, hub: EventHub, servers: Servers
) -> None:
    """Redis drops the hub's connection while a stage's deltas and a state change go
    unheard: the GAP makes the follower read the row and catch up on both."""
    job, principal, factory = await _claimed(app, client)
    settings = make_settings(servers, ai_delta_batch_seconds=0)
    ctx = JobContext(job=job.row, factory=factory, publisher=hub, settings=settings)
    streamer = Streamer(ctx, uuid.UUID(job.row.payload["generation_id"]))
    stream = _follow(factory, hub, principal, job.id, JobWatcher(factory, hub, period=3600))
    assert _seqs([await anext(stream)]) == [(1, True)]
    await streamer.begin("draft", None, 0.1)
    first = await anext(stream)
    assert (first.sequence, first.catch_up, first.stage) == (2, False, "draft")
    await streamer.delta("Green ")
    assert (await anext(stream)).delta == "Green "
    ctx.publisher = _Silent()  # from here on nothing reaches Redis
    await streamer.delta("tea.")
    await streamer.flush(force=True)
    reads = following._reads_for(factory)
    before = reads.statements
    admin = Redis.from_url(servers.redis_url)
    try:
        assert await admin.client_kill_filter(_type="pubsub") >= 1
        caught_up = await anext(stream)
    finally:
        await admin.aclose()
    assert (caught_up.sequence, caught_up.catch_up, caught_up.text) == (2, True, "Green tea.")
    pending = asyncio.ensure_future(anext(stream))
    # The GAP once the channel is live again reads the row once more: nothing new, no event.
    await _until(lambda: reads.statements >= before + 2)
    await publish(hub, await job.succeed())
    events = [await pending] + [e async for e in stream]
    assert _seqs(events) == [(3, False)] and events[-1].status == "SUCCEEDED"


class _Silent:
    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        return None


async def test_a_stranger_and_another_kind_get_not_found_from_the_one_read(
    app: Starlette, client: httpx.AsyncClient, hub: EventHub
) -> None:
    job, principal, factory = await _claimed(app, client)
    stranger = Principal(kind="user", user_id=uuid.uuid4(), access={})
    with pytest.raises(NotFound):
        await anext(_follow(factory, hub, stranger, job.id))
    with pytest.raises(NotFound):
        await anext(following.follow(factory, hub, principal, job.id, frozenset({"ping"})))
    with pytest.raises(NotFound):
        await anext(_follow(factory, hub, principal, uuid.uuid4()))


async def test_five_subscribers_get_one_execution_per_event(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """Every delta and state change of one generation is executed once for its five
    websocket subscribers, who get the same messages byte for byte."""
    owner = await register(client)
    workspace_id = uid(await create_workspace(client, owner))
    principal = Principal(
        kind="user",
        user_id=uid(owner.user_id),
        access={workspace_id: WorkspaceAccess(Role.OWNER, False)},
    )
    state = state_of(app)
    job = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Tea")
    )
    row = await jobs.claim(state.session_factory, job.id, 60)
    assert row is not None
    ctx = JobContext(job=row, factory=state.session_factory, publisher=state.hub, settings=None)
    streamer = Streamer(ctx, uuid.UUID(row.payload["generation_id"]))
    variables = {"id": str(to_global_id("Job", job.id))}
    async with subscribers(app, owner, 5, PROGRESS, variables) as subs:
        firsts = [await s.next_text() for s in subs]
        assert len(set(firsts)) == 1, "the same catch-up, byte for byte"
        with sharing(True) as counts:
            await streamer.begin("draft", None, 0.1)
            for chunk in ("Title: Tea\n\n", "Green ", "tea."):
                await streamer.delta(chunk)
            await streamer.flush(force=True)
            final = await jobs.succeed(state.session_factory, job.id, row.attempts, {})
            assert final is not None
            await publish(state.hub, final)
            streams = await asyncio.gather(*(s.rest() for s in subs))
    assert all(stream == streams[0] for stream in streams), "identical messages"
    events = [json.loads(t)["payload"]["data"]["generationProgress"] for t in streams[0]]
    assert [(e["stage"], e["delta"]) for e in events[:4]] == [
        ("draft", None),
        ("draft", "Title: Tea\n\n"),
        ("draft", "Green "),
        ("draft", "tea."),
    ]
    assert events[-1]["status"] == "SUCCEEDED" and len(events) == 5
    assert counts.executed == len(events) and counts.shared == 4 * len(events)
