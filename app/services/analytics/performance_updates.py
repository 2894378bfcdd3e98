"""performanceUpdated: a workspace's new metrics snapshots, as the collector stores them.

Each event only names a snapshot; it is read from Postgres for every subscriber of the
workspace through one batched reader for the process (`_snapshot_reads`): N subscribers
woken by one event cost one statement, not N. After a gap (hub overflow, Redis reconnect)
each subscriber reads those collected since the last one it saw (catch-up).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.infra.batched_reads import BatchedReads
from app.infra.realtime import GAP, EventHub
from app.models import MetricSnapshot, PostTarget
from app.models import TargetStatus as S
from app.permissions import Action
from app.services.analytics.metrics_collector import channel
from app.services.analytics.performance import SNAPSHOT_COLUMNS, Snapshot, snapshot_of

MAX_SEEN = 10_000
# After a gap, snapshots collected this long before the last one seen are looked at again
# (collector hosts' clocks differ a little); those already delivered are skipped by id.
CATCH_UP_MARGIN = timedelta(minutes=1)
CATCH_UP_LIMIT = 500


@dataclass(frozen=True)
class SnapshotUpdate:
    snapshot_id: uuid.UUID
    content_id: uuid.UUID
    snapshot: Snapshot
    catch_up: bool


async def _updates(
    session: AsyncSession, workspace_id: uuid.UUID, since: datetime
) -> list[tuple[uuid.UUID, uuid.UUID, Snapshot]]:
    """Snapshots of the workspace's published targets collected since a time."""
    query = (
        select(MetricSnapshot.id, MetricSnapshot.content_id, *SNAPSHOT_COLUMNS)
        .join(PostTarget, PostTarget.id == MetricSnapshot.target_id)
        .where(
            MetricSnapshot.workspace_id == workspace_id,
            PostTarget.status == S.PUBLISHED.value,
            MetricSnapshot.collected_at >= since,
        )
        .order_by(MetricSnapshot.collected_at, MetricSnapshot.id)
        .limit(CATCH_UP_LIMIT)
    )
    rows = (await session.execute(query)).all()
    return [(row.id, row.content_id, snapshot_of(row)) for row in rows]


# A snapshot named by an event, for every subscriber of its workspace: (workspace, update).
_Found = tuple[uuid.UUID, tuple[uuid.UUID, uuid.UUID, Snapshot]]
_reads: weakref.WeakKeyDictionary[
    async_sessionmaker[AsyncSession], BatchedReads[uuid.UUID, _Found]
] = weakref.WeakKeyDictionary()


def _snapshot_reads(factory: async_sessionmaker[AsyncSession]) -> BatchedReads[uuid.UUID, _Found]:
    """The process's batched reader of announced snapshots (one statement per event for
    all of a workspace's subscribers, not one each); published targets' only, as _updates."""
    reads = _reads.get(factory)
    if reads is None:

        async def read_many(ids: list[uuid.UUID]) -> dict[uuid.UUID, _Found]:
            query = (
                select(MetricSnapshot.id, MetricSnapshot.workspace_id, MetricSnapshot.content_id)
                .add_columns(*SNAPSHOT_COLUMNS)
                .join(PostTarget, PostTarget.id == MetricSnapshot.target_id)
                .where(MetricSnapshot.id.in_(ids), PostTarget.status == S.PUBLISHED.value)
            )
            async with factory() as session:
                rows = (await session.execute(query)).all()
            return {r.id: (r.workspace_id, (r.id, r.content_id, snapshot_of(r))) for r in rows}

        reads = _reads[factory] = BatchedReads(read_many, "snapshot-reads")
    return reads


async def follow(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    since: datetime | None = None,
) -> AsyncIterator[SnapshotUpdate]:
    """Each new snapshot of the workspace, read from Postgres (the event only names it);
    after a gap (hub overflow, Redis reconnect), those collected meanwhile (catch-up).
    `since` (a reconnecting client's last `collectedAt`): first the snapshots collected
    from then on (at most CATCH_UP_LIMIT, oldest first)."""
    principal.require(workspace_id, Action.CONTENT_READ)
    seen: set[uuid.UUID] = set()
    async with hub.subscribe(channel(workspace_id)) as subscription:
        # Short sessions only: never hold a pooled connection across a `yield`.
        async with factory() as session:
            now = await session.scalar(select(func.now()))
            found = await _updates(session, workspace_id, since) if since is not None else []
        assert isinstance(now, datetime)
        for snapshot_id, content_id, snapshot in found:
            seen.add(snapshot_id)
            yield SnapshotUpdate(snapshot_id, content_id, snapshot, True)
        since = max([now, *(snapshot.collected_at for _, _, snapshot in found)])
        async for message in subscription:
            catch_up = message is GAP
            if catch_up:
                async with factory() as session:
                    found = await _updates(session, workspace_id, since - CATCH_UP_MARGIN)
            else:
                assert isinstance(message, dict)
                try:
                    snapshot_id = uuid.UUID(str(message.get("snapshot_id")))
                except ValueError:
                    continue
                hit = await _snapshot_reads(factory).read(snapshot_id)
                found = [hit[1]] if hit is not None and hit[0] == workspace_id else []
            for snapshot_id, content_id, snapshot in found:
                if snapshot_id in seen:
                    continue
                if len(seen) >= MAX_SEEN:
                    seen.clear()  # bounded memory; at worst one snapshot is shown twice
                seen.add(snapshot_id)
                since = max(since, snapshot.collected_at)
                yield SnapshotUpdate(snapshot_id, content_id, snapshot, catch_up)
