"""Follow a job's events: stored state first, then every live event in order.

Each event carries the row's `event_seq`, which grows by one with every published change.
While the hub is healthy a subscriber gets every event, in sequence. It jumps only after a
real gap, and then says so (`catch_up`): the hub reported one (queue overflow, Redis
reconnect), the live stream skipped a sequence number (a publish was lost), or the stored
state stayed ahead of the stream for a whole resync period (the event never came). A jump
delivers the stored state, the source of truth.

The periodic resync read (pub/sub is at-most-once, so silence is checked against Postgres)
never jumps by itself: the read may finish after the job moved on, while the intermediate
events are still queued for this subscriber; they are delivered first.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import NotFound
from app.infra.realtime import GAP, EventHub
from app.jobs.store import JobEvent, get_visible, job_channel
from app.models import Job

# Even with no message at all, re-read the row now and then: pub/sub is at-most-once.
RESYNC_SECONDS = 15.0

# Reads the job's stored state (None: the job is gone).
StoredReader = Callable[[uuid.UUID], Awaitable[JobEvent | None]]


def parse_job_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def stored_reader(factory: async_sessionmaker[AsyncSession]) -> StoredReader:
    async def read(job_id: uuid.UUID) -> JobEvent | None:
        # A short session per read: never hold a pooled connection across a `yield`.
        async with factory() as session:
            row = await session.get(Job, job_id)
            return JobEvent.of(row) if row is not None else None

    return read


async def follow(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    job_id: uuid.UUID,
    *,
    read_stored: StoredReader | None = None,
    resync_seconds: float = RESYNC_SECONDS,
) -> AsyncIterator[JobEvent]:
    """Yield the job's stored state (`catch_up`), then each change until it is final."""
    await get_visible(factory, principal, job_id)
    read = read_stored or stored_reader(factory)
    # Subscribe before reading the row so nothing published in between is missed.
    async with hub.subscribe(job_channel(job_id)) as subscription:
        current = await read(job_id)
        if current is None:
            raise NotFound("No job with this id.")
        last = current.order
        yield replace(current, catch_up=True)
        if current.is_final:
            return
        # A stored sequence a silent resync saw ahead of the stream: if the stream has not
        # reached it by the next resync, those events are not coming.
        ahead: int | None = None
        while True:
            try:
                message = await subscription.get(wait=resync_seconds)
            except TimeoutError:
                message = None
            if message is None or message is GAP:
                stored = await read(job_id)
                if stored is None:
                    return
                lost = message is GAP or (ahead is not None and last < ahead)
                if not lost:
                    ahead = stored.order if stored.order > last else None
                    continue
                ahead = None
                if stored.order <= last:
                    continue
                event = replace(stored, catch_up=True)
            else:
                assert isinstance(message, dict)
                event = JobEvent.from_message(message)
                if event.order <= last:
                    continue  # covered by a catch-up already delivered
                if event.order > last + 1:
                    # The stream skipped a change: catch up from the row, not this event.
                    stored = await read(job_id)
                    if stored is None:
                        return
                    event = replace(stored if stored.order >= event.order else event, catch_up=True)
                if ahead is not None and event.order >= ahead:
                    ahead = None
            last = event.order
            yield event
            if event.is_final:
                return
