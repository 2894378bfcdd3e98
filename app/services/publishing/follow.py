"""Follow a workspace's post deliveries: each target's changes as they happen.

It starts with the deliveries in flight (pending, publishing or unknown, soonest first, at
most MAX_ACTIVE) as catch-up events, then follows. Every event is answered from the
target's stored row (the event only says which row changed), so a subscriber sees states
as Postgres holds them. After a gap (hub overflow, Redis reconnect) it catches up on every
target changed since the last one it saw; an event older than what was already delivered
for its target is dropped.

The rows are read for the whole process (`target_reader`): the N subscribers of a
workspace woken by one event cost one statement together, not one each, and get the same
row object (read-only: the schema builds its own values from it).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.infra.batched_reads import BatchedReads
from app.infra.realtime import GAP, EventHub
from app.models import PostTarget
from app.models import TargetStatus as S
from app.permissions import Action
from app.services.publishing.calendar import targets_updated_since
from app.services.publishing.events import channel

MAX_SEEN = 10_000
MAX_ACTIVE = 100


_TARGETS = select(PostTarget).where(
    PostTarget.id == any_(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
)

# Reads a target's stored row (None: gone).
TargetReader = Callable[[uuid.UUID], Awaitable[PostTarget | None]]


@dataclass(frozen=True)
class TargetChange:
    target: PostTarget
    catch_up: bool


_readers: weakref.WeakKeyDictionary[
    async_sessionmaker[AsyncSession], BatchedReads[uuid.UUID, PostTarget]
] = weakref.WeakKeyDictionary()


def target_reads(
    factory: async_sessionmaker[AsyncSession],
) -> BatchedReads[uuid.UUID, PostTarget]:
    """The process's batched reader of post targets for this database."""
    reads = _readers.get(factory)
    if reads is None:

        async def read_many(ids: list[uuid.UUID]) -> dict[uuid.UUID, PostTarget]:
            # A short session per read: never hold a pooled connection across a `yield`.
            async with factory() as session:
                rows = await session.scalars(_TARGETS, {"ids": ids})
                return {row.id: row for row in rows.all()}

        reads = _readers[factory] = BatchedReads(read_many, "post-target-reads")
    return reads


async def active_targets(session: AsyncSession, workspace_id: uuid.UUID) -> list[PostTarget]:
    rows = await session.scalars(
        select(PostTarget)
        .where(
            PostTarget.workspace_id == workspace_id,
            PostTarget.status.in_((S.PENDING.value, S.PUBLISHING.value, S.UNKNOWN.value)),
        )
        .order_by(PostTarget.scheduled_at, PostTarget.id)
        .limit(MAX_ACTIVE)
    )
    return list(rows.all())


async def follow(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    read_target: TargetReader | None = None,
) -> AsyncIterator[TargetChange]:
    principal.require(workspace_id, Action.CONTENT_READ)
    read = read_target or target_reads(factory).read
    seen: dict[uuid.UUID, int] = {}
    async with hub.subscribe(channel(workspace_id)) as subscription:
        # Short sessions only: never hold a pooled connection across a `yield`.
        async with factory() as session:
            now = await session.scalar(select(func.now()))
            active = await active_targets(session, workspace_id)
        assert isinstance(now, datetime)
        since = now
        for row in active:
            seen[row.id] = row.event_seq
            yield TargetChange(row, True)
        async for message in subscription:
            if message is GAP:
                async with factory() as session:
                    rows = await targets_updated_since(session, workspace_id, since)
                changes = [TargetChange(row, True) for row in rows]
            else:
                assert isinstance(message, dict)
                try:
                    target_id = uuid.UUID(str(message.get("target_id")))
                except ValueError:
                    continue
                found = await read(target_id)
                if found is None or found.workspace_id != workspace_id:
                    continue
                changes = [TargetChange(found, False)]
            for change in changes:
                row = change.target
                if seen.get(row.id, -1) >= row.event_seq:
                    continue  # already delivered this state (or a later one)
                if len(seen) >= MAX_SEEN:
                    seen.clear()  # bounded memory; at worst one state is shown twice
                seen[row.id] = row.event_seq
                since = max(since, row.updated_at)
                yield change
