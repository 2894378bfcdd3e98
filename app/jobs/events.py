"""Follow a job's events: stored state first, then every live event in order.

Each event carries the row's `event_seq`, which grows by one with every published change.
While the hub is healthy a subscriber gets every event, in sequence, and costs nothing
while idle: no timer, no read. It jumps only after a real gap, and then says so
(`catch_up`): the hub reported one (queue overflow, Redis reconnect), the live stream
skipped a sequence number (a publish was lost), or the stored state stayed ahead of the
stream for a whole watch period (the event never came). A jump delivers the stored state,
the source of truth.

Pub/sub is at-most-once (a worker may die between its commit and its publish), so silence
is checked against Postgres, once for the whole process: the `JobWatcher` reads the
sequence of every followed job in ONE statement every `WATCH_SECONDS`. A follower whose
job's stored sequence was ahead of what it had received at one round and still is at the
next gets a check, queued behind every message Redis had published by then (`hub.fence`).
Only if the events have still not come when it reaches the check does it read the row and
catch up: a check never makes a follower skip events that are merely late or queued.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import NotFound
from app.infra.batched_reads import BatchedReads
from app.infra.realtime import EventHub, Signal, Subscription, WakeSlicer
from app.jobs.store import JobEvent, can_read_workspace, job_channel
from app.logging import get_logger
from app.models import Job
from app.permissions import Action

log = get_logger(__name__)

# How often the process's watcher compares followed jobs' stored sequences with the stream.
WATCH_SECONDS = 5.0

# Reads the job's stored state (None: the job is gone).
StoredReader = Callable[[uuid.UUID], Awaitable[JobEvent | None]]

# A job's stored state, in the order `_event_of_row` reads (other streams select more after it).
STORED_COLUMNS = (
    Job.id,
    Job.workspace_id,
    Job.kind,
    Job.status,
    Job.attempts,
    Job.event_seq,
    Job.progress,
    Job.message,
    Job.result,
    Job.error,
)
_IDS = bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))
_STORED_MANY = select(*STORED_COLUMNS).where(Job.id == any_(_IDS))
_SEQUENCES = select(Job.id, Job.event_seq).where(Job.id == any_(_IDS))


def parse_job_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _event_of_row(row: Any) -> JobEvent:
    job_id, workspace_id, kind, status, attempts, seq, progress, message, result, error = row
    return JobEvent(
        job_id=job_id,
        kind=kind,
        status=status,
        attempt=attempts,
        seq=seq,
        progress=progress,
        message=message,
        result=result,
        error=error,
        workspace_id=workspace_id,
    )


class StoredReads(BatchedReads[uuid.UUID, JobEvent]):
    """Reads of jobs' stored state for a whole process, batched (a subscribe storm, or
    every follower's catch-up after a reconnect, costs a few statements, not one per
    follower and a pool timeout)."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        super().__init__(self.read_many, "job-stored-reads")

    async def read_many(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, JobEvent]:
        # A short session per read: never hold a pooled connection across a `yield`.
        async with self._factory() as session:
            rows = (await session.execute(_STORED_MANY, {"ids": ids})).all()
        return {row[0]: _event_of_row(row) for row in rows}


_reads: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], StoredReads] = (
    weakref.WeakKeyDictionary()
)


def stored_reader(factory: async_sessionmaker[AsyncSession]) -> StoredReader:
    """The process's batched reader of stored state for this database."""
    reads = _reads.get(factory)
    if reads is None:
        reads = _reads[factory] = StoredReads(factory)
    return reads.read


class WatchCheck(Signal):
    """From the watcher: the stored sequence was at least `ahead` a whole period ago
    (None: the row is gone). Queued behind every message Redis had published by then."""

    __slots__ = ("ahead",)

    def __init__(self, ahead: int | None) -> None:
        self.ahead = ahead


class Follower:
    """One follow() as the watcher sees it: the sequence it has delivered, and the stored
    one the last round saw ahead of it."""

    __slots__ = ("ahead", "last", "subscription")

    def __init__(self, subscription: Subscription, last: int) -> None:
        self.subscription = subscription
        self.last = last
        self.ahead: int | None = None


class JobWatcher:
    """Every `period` seconds, one statement for every job followed through this hub;
    a check only to the followers whose job stayed ahead of their stream a whole period.
    Runs only while someone follows."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        hub: EventHub,
        period: float = WATCH_SECONDS,
    ) -> None:
        self._factory = factory
        self._hub = hub
        self._period = period
        self._followers: dict[uuid.UUID, set[Follower]] = {}
        self._task: asyncio.Task[None] | None = None
        self._sleeping = False
        self._slicer = WakeSlicer()
        self.rounds = 0  # statements issued
        self.checks = 0  # checks queued to followers

    def add(self, job_id: uuid.UUID, follower: Follower) -> None:
        self._followers.setdefault(job_id, set()).add(follower)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="job-watcher")

    def discard(self, job_id: uuid.UUID, follower: Follower) -> None:
        followers = self._followers.get(job_id)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[job_id]
        if not self._followers and self._task is not None and self._sleeping:
            self._task.cancel()  # nobody left; only ever while asleep, never mid-statement
            self._task = None

    async def _run(self) -> None:
        while self._followers:
            self._sleeping = True
            try:
                await asyncio.sleep(self._period)
            finally:
                self._sleeping = False
            if not self._followers:
                break
            try:
                await self._round()
            except Exception as exc:  # Postgres hiccup: the next round tries again
                log.warning("job_watch_failed", error=repr(exc))
        self._task = None

    async def _round(self) -> None:
        ids = list(self._followers)
        async with self._factory() as session:
            rows = (await session.execute(_SEQUENCES, {"ids": ids})).all()
        self.rounds += 1
        stored: dict[uuid.UUID, int] = {job_id: seq for job_id, seq in rows}
        due: list[tuple[Follower, int | None]] = []
        for job_id in ids:
            seq = stored.get(job_id)
            for follower in self._followers.get(job_id, ()):
                if seq is None:
                    due.append((follower, None))
                elif follower.ahead is not None and follower.last < follower.ahead:
                    due.append((follower, follower.ahead))
                    follower.ahead = None
                else:
                    follower.ahead = seq if seq > follower.last else None
        # Behind every message already published: a check that reaches a follower before
        # its late events would make it skip them. In slices, like the hub's fan-out.
        if due and await self._hub.fence():
            for follower, ahead in due:
                follower.subscription.offer(WatchCheck(ahead))
                await self._slicer.woke()
            self.checks += len(due)


_watchers: weakref.WeakKeyDictionary[
    EventHub, dict[async_sessionmaker[AsyncSession], JobWatcher]
] = weakref.WeakKeyDictionary()


def watcher_for(hub: EventHub, factory: async_sessionmaker[AsyncSession]) -> JobWatcher:
    """The process's one watcher for this hub and database."""
    by_factory = _watchers.setdefault(hub, {})
    watcher = by_factory.get(factory)
    if watcher is None:
        watcher = by_factory[factory] = JobWatcher(factory, hub)
    return watcher


# The hub hands the same decoded message to every subscriber of a channel: parse it into
# an event once for all of them. Keyed by identity, holding the message so ids stay unique;
# the latest few only (a result may be large): a miss just parses again.
_PARSED_KEEP = 128
_parsed: OrderedDict[int, tuple[dict[str, Any], JobEvent]] = OrderedDict()


def _event_of(message: dict[str, Any]) -> JobEvent:
    hit = _parsed.get(id(message))
    if hit is not None and hit[0] is message:
        return hit[1]
    event = JobEvent.from_message(message)
    _parsed[id(message)] = (message, event)
    if len(_parsed) > _PARSED_KEEP:
        _parsed.popitem(last=False)
    return event


async def follow(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    job_id: uuid.UUID,
    *,
    read_stored: StoredReader | None = None,
    watcher: JobWatcher | None = None,
) -> AsyncIterator[JobEvent]:
    """Yield the job's stored state (`catch_up`), then each change until it is final."""
    read = read_stored or stored_reader(factory)
    # Subscribe before reading the row so nothing published in between is missed. The
    # one read is both the visibility check and the stored state.
    async with hub.subscribe(job_channel(job_id)) as subscription:
        current = await read(job_id)
        if current is None or not can_read_workspace(principal, current.workspace_id):
            raise NotFound("No job with this id.")
        assert current.workspace_id is not None
        principal.require(current.workspace_id, Action.WORKSPACE_READ)
        yield replace(current, catch_up=True)
        if current.is_final:
            return
        watch = watcher or watcher_for(hub, factory)
        me = Follower(subscription, current.order)
        watch.add(job_id, me)
        try:
            while True:
                message = await subscription.get()
                if isinstance(message, dict):
                    event = _event_of(message)
                    if event.order <= me.last:
                        continue  # covered by a catch-up already delivered
                    if event.order > me.last + 1:
                        # The stream skipped a change: catch up from the row, not this event.
                        stored = await read(job_id)
                        if stored is None:
                            return
                        event = replace(
                            stored if stored.order >= event.order else event, catch_up=True
                        )
                else:
                    # GAP: events may be lost. A check: lost only if they still have not come.
                    if isinstance(message, WatchCheck):
                        ahead = message.ahead
                        if ahead is not None and me.last >= ahead:
                            continue
                    stored = await read(job_id)
                    if stored is None:
                        return
                    if stored.order <= me.last:
                        continue
                    event = replace(stored, catch_up=True)
                me.last = event.order
                yield event
                if event.is_final:
                    return
        finally:
            watch.discard(job_id, me)
