"""Follow a job's events: stored state first, then live pub/sub, resynchronising on gaps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import NotFound
from app.infra.realtime import GAP, EventHub
from app.jobs.store import JobEvent, get_visible, job_channel
from app.models import Job

# Even with no message at all, re-read the row now and then: pub/sub is at-most-once.
RESYNC_SECONDS = 15.0


def parse_job_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def _stored(factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> JobEvent | None:
    # A short session per read: never hold a pooled connection across a `yield`.
    async with factory() as session:
        row = await session.get(Job, job_id)
        return JobEvent.of(row) if row is not None else None


async def follow(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    job_id: uuid.UUID,
) -> AsyncIterator[JobEvent]:
    await get_visible(factory, principal, job_id)
    # Subscribe before reading the row so nothing published in between is missed.
    async with hub.subscribe(job_channel(job_id)) as subscription:
        current = await _stored(factory, job_id)
        if current is None:
            raise NotFound("No job with this id.")
        last = current.order
        yield current
        if current.is_final:
            return
        while True:
            try:
                message = await subscription.get(wait=RESYNC_SECONDS)
            except TimeoutError:
                message = GAP
            if message is GAP:
                event = await _stored(factory, job_id)
                if event is None:
                    return
            else:
                assert isinstance(message, dict)
                event = JobEvent.from_message(message)
            if event.order <= last:
                continue
            last = event.order
            yield event
            if event.is_final:
                return
