"""contentPerformance: a content item's platform metrics, per target, per platform, in all.

The figures come from each PUBLISHED target's latest snapshot (app/models/metrics.py),
summed per platform and over the whole item. Counters a platform does not report stay
unknown (None) rather than 0: a sum is None only when no target reported that counter.
The rates are computed from the targets that can support them, so a platform without
impressions (Mastodon, Bluesky, LinkedIn's social actions) does not distort them:

- engagement rate = (likes + comments + shares) / impressions, over the targets that report
  impressions above 0 and at least one of the three (an unknown one counts as 0 there);
- CTR = clicks / impressions, over the targets that report impressions above 0 and clicks.

Either is None when no target qualifies. History is every snapshot over time: per target
as collected, and per platform (or in all) as the sum of each target's latest snapshot at
each collection time, a step function that only moves when a snapshot arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Row, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.models import Content, MetricSnapshot, PostTarget, ScheduledPost
from app.models import TargetStatus as S
from app.models.vocabulary import Platform
from app.permissions import Action
from app.services.lookup import scoped_row

COUNTERS = ("impressions", "reach", "likes", "comments", "shares", "clicks", "saves")
ENGAGEMENTS = ("likes", "comments", "shares")


class Counts(Protocol):
    """Anything carrying the counters (a snapshot row)."""

    @property
    def impressions(self) -> int | None: ...
    @property
    def reach(self) -> int | None: ...
    @property
    def likes(self) -> int | None: ...
    @property
    def comments(self) -> int | None: ...
    @property
    def shares(self) -> int | None: ...
    @property
    def clicks(self) -> int | None: ...
    @property
    def saves(self) -> int | None: ...


@dataclass(frozen=True)
class Figures:
    impressions: int | None = None
    reach: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    clicks: int | None = None
    saves: int | None = None
    engagement_rate: float | None = None
    ctr: float | None = None


def _sum(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def figures(members: Sequence[Counts]) -> Figures:
    """The counters summed over `members` and the rates (see the module's docstring)."""
    engaged = [
        m for m in members if m.impressions and any(getattr(m, k) is not None for k in ENGAGEMENTS)
    ]
    engagement_rate = None
    if engaged:
        numerator = sum(sum(getattr(m, k) or 0 for k in ENGAGEMENTS) for m in engaged)
        engagement_rate = numerator / sum(m.impressions or 0 for m in engaged)
    clicked = [m for m in members if m.impressions and m.clicks is not None]
    ctr = None
    if clicked:
        ctr = sum(m.clicks or 0 for m in clicked) / sum(m.impressions or 0 for m in clicked)
    sums = {k: _sum(getattr(m, k) for m in members) for k in COUNTERS}
    return Figures(**sums, engagement_rate=engagement_rate, ctr=ctr)


@dataclass(frozen=True)
class Snapshot:
    """One snapshot's counters (what history and the latest figures are made of)."""

    target_id: uuid.UUID
    platform: Platform
    collected_at: datetime
    impressions: int | None
    reach: int | None
    likes: int | None
    comments: int | None
    shares: int | None
    clicks: int | None
    saves: int | None


@dataclass(frozen=True)
class Point:
    collected_at: datetime
    figures: Figures


@dataclass(frozen=True)
class TargetPerformance:
    target_id: uuid.UUID
    platform: Platform
    published_at: datetime | None
    latest: Snapshot | None  # None: nothing collected yet
    figures: Figures


@dataclass(frozen=True)
class PlatformPerformance:
    platform: Platform
    targets: tuple[TargetPerformance, ...]
    figures: Figures
    collected_at: datetime | None


@dataclass(frozen=True)
class ContentPerformance:
    content_id: uuid.UUID
    workspace_id: uuid.UUID
    platforms: tuple[PlatformPerformance, ...]
    figures: Figures
    collected_at: datetime | None


SNAPSHOT_COLUMNS = (
    MetricSnapshot.target_id,
    MetricSnapshot.platform,
    MetricSnapshot.collected_at,
    *(getattr(MetricSnapshot, k) for k in COUNTERS),
)


def snapshot_of(row: Row[tuple[object, ...]] | Mapping[str, object]) -> Snapshot:
    values = row._mapping if isinstance(row, Row) else row
    return Snapshot(
        target_id=values["target_id"],  # type: ignore[arg-type]
        platform=Platform(str(values["platform"])),
        collected_at=values["collected_at"],  # type: ignore[arg-type]
        **{k: values[k] for k in COUNTERS},  # type: ignore[arg-type]
    )


def _latest(members: Iterable[datetime | None]) -> datetime | None:
    return max((m for m in members if m is not None), default=None)


async def content_performance(
    factory: async_sessionmaker[AsyncSession], principal: Principal, content_id: uuid.UUID
) -> ContentPerformance:
    """Two statements whatever the number of targets: the item (NOT_FOUND outside the
    caller's workspaces), then its published targets with their latest snapshots."""
    async with factory() as session:
        content = await scoped_row(session, Content, content_id, principal, Action.CONTENT_READ)
        targets = (await published_targets(session, [content.id])).get(content.id, [])
    return assemble(content.id, content.workspace_id, targets)


async def published_targets(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TargetPerformance]]:
    """Each item's PUBLISHED targets with their latest snapshots, first published first, in
    one statement whatever the number of items and targets (items without any are left
    out). The caller has checked that the items are visible."""
    if not content_ids:
        return {}
    latest = (
        select(*SNAPSHOT_COLUMNS)
        .where(MetricSnapshot.target_id == PostTarget.id)
        .order_by(MetricSnapshot.collected_at.desc())
        .limit(1)
        .lateral("latest")
    )
    rows = (
        await session.execute(
            select(
                ScheduledPost.content_id,
                PostTarget.id,
                PostTarget.platform,
                PostTarget.published_at,
                *(latest.c[c.key] for c in SNAPSHOT_COLUMNS if c.key not in ("platform",)),
            )
            .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
            .outerjoin(latest, true())
            .where(
                ScheduledPost.content_id.in_(list(content_ids)),
                PostTarget.status == S.PUBLISHED.value,
            )
            .order_by(PostTarget.published_at, PostTarget.id)
        )
    ).all()
    found: dict[uuid.UUID, list[TargetPerformance]] = {}
    for row in rows:
        snapshot = None
        if row.collected_at is not None:
            snapshot = snapshot_of({**row._mapping, "platform": row.platform})
        found.setdefault(row.content_id, []).append(
            TargetPerformance(
                target_id=row.id,
                platform=Platform(row.platform),
                published_at=row.published_at,
                latest=snapshot,
                figures=figures([snapshot]) if snapshot is not None else Figures(),
            )
        )
    return found


def assemble(
    content_id: uuid.UUID, workspace_id: uuid.UUID, targets: Sequence[TargetPerformance]
) -> ContentPerformance:
    """An item's figures per platform and in all, from its targets' latest snapshots."""
    by_platform: dict[Platform, list[TargetPerformance]] = {}
    for target in targets:
        by_platform.setdefault(target.platform, []).append(target)
    platforms = tuple(
        PlatformPerformance(
            platform=platform,
            targets=tuple(members),
            figures=figures([t.latest for t in members if t.latest is not None]),
            collected_at=_latest(t.latest.collected_at if t.latest else None for t in members),
        )
        for platform, members in sorted(by_platform.items(), key=lambda item: item[0].value)
    )
    return ContentPerformance(
        content_id=content_id,
        workspace_id=workspace_id,
        platforms=platforms,
        figures=figures([t.latest for t in targets if t.latest is not None]),
        collected_at=_latest(p.collected_at for p in platforms),
    )


async def history_for(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Snapshot]]:
    """Every snapshot of each item's published targets, oldest first (one statement; the DataLoader
    behind `history`, called for items the caller already passed `content_performance`
    for)."""
    rows = await session.execute(
        select(MetricSnapshot.content_id, *SNAPSHOT_COLUMNS)
        .join(PostTarget, PostTarget.id == MetricSnapshot.target_id)
        .where(
            MetricSnapshot.content_id.in_(list(content_ids)),
            PostTarget.status == S.PUBLISHED.value,  # as the latest figures
        )
        .order_by(MetricSnapshot.collected_at, MetricSnapshot.target_id)
    )
    found: dict[uuid.UUID, list[Snapshot]] = {}
    for row in rows.all():
        found.setdefault(row.content_id, []).append(snapshot_of(row))
    return found


def series(snapshots: Iterable[Snapshot]) -> list[Point]:
    """Summed figures over time: at each collection time, each target's latest snapshot up
    to then (pass the snapshots of one target, one platform, or all, oldest first)."""
    latest: dict[uuid.UUID, Snapshot] = {}
    points: list[Point] = []
    for snapshot in snapshots:
        latest[snapshot.target_id] = snapshot
        point = Point(snapshot.collected_at, figures(list(latest.values())))
        if points and points[-1].collected_at == snapshot.collected_at:
            points[-1] = point  # several targets collected at the same instant: one point
        else:
            points.append(point)
    return points
