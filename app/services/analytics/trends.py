"""engagementTrends: a workspace's first-party engagement events per hour, day or week,
read from the rollups (app/services/analytics/rollups.py), never from the raw events.

One statement: the hourly rollup for HOUR (counts per event type pivoted with FILTER), the
dashboard's daily one for DAY and WEEK (weeks start on Monday, UTC; the types are its
columns, ~7x fewer rows than engagement_daily), served by the rollups' (workspace_id,
bucket_start, ...) indexes. Buckets without events are filled with zeros so a chart
gets an even series; a period is bounded to MAX_POINTS buckets.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import BadUserInput
from app.models import EngagementDashboardDaily, EngagementHourly
from app.models.engagement import DASHBOARD_COUNTERS
from app.models.vocabulary import EngagementEventType as E
from app.models.vocabulary import TrendInterval
from app.permissions import Action

MAX_POINTS = 1000
STEP = {
    TrendInterval.HOUR: timedelta(hours=1),
    TrendInterval.DAY: timedelta(days=1),
    TrendInterval.WEEK: timedelta(weeks=1),
}


@dataclass(frozen=True)
class TrendPoint:
    bucket_start: datetime
    counts: dict[E, int]  # events per type
    conversion_value: float

    @property
    def engagement_rate(self) -> float | None:
        """(likes + comments + shares) / impressions; None without impressions."""
        shown = self.counts[E.IMPRESSION]
        engaged = self.counts[E.LIKE] + self.counts[E.COMMENT] + self.counts[E.SHARE]
        return engaged / shown if shown else None

    @property
    def ctr(self) -> float | None:
        shown = self.counts[E.IMPRESSION]
        return self.counts[E.CLICK] / shown if shown else None


def bucket_floor(value: datetime, interval: TrendInterval) -> datetime:
    """The start (UTC) of the bucket `value` falls in."""
    at = value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if interval is TrendInterval.HOUR:
        return at
    at = at.replace(hour=0)
    return at if interval is TrendInterval.DAY else at - timedelta(days=at.weekday())


def _checked(since: datetime, until: datetime, interval: TrendInterval) -> datetime:
    if since.tzinfo is None or until.tzinfo is None:
        raise BadUserInput("from and to need a time zone offset")
    if not since < until:
        raise BadUserInput("from must be before to")
    start = bucket_floor(since, interval)
    if (until - start) / STEP[interval] > MAX_POINTS:
        raise BadUserInput(
            f"at most {MAX_POINTS} buckets: choose a longer interval or a shorter period"
        )
    return start


async def trends(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    workspace_id: uuid.UUID,
    interval: TrendInterval,
    since: datetime,
    until: datetime,
    platform: str | None = None,
) -> list[TrendPoint]:
    """Buckets from the one holding `since` up to `until` (exclusive), oldest first."""
    principal.require(workspace_id, Action.CONTENT_READ)
    start = _checked(since, until, interval)
    table: Any = EngagementHourly if interval is TrendInterval.HOUR else EngagementDashboardDaily
    bucket = (
        func.date_trunc("week", table.bucket_start, "UTC")
        if interval is TrendInterval.WEEK
        else table.bucket_start
    ).label("bucket")
    if table is EngagementHourly:
        sums = [
            *(
                func.coalesce(func.sum(table.events).filter(table.event_type == kind.value), 0)
                for kind in E
            ),
            func.coalesce(
                func.sum(table.value_sum).filter(table.event_type == E.CONVERSION.value), 0
            ),
        ]
    else:  # the types are its columns
        column = {kind: name for name, kind in DASHBOARD_COUNTERS.items()}
        sums = [
            *(func.coalesce(func.sum(table.__table__.c[column[kind.value]]), 0) for kind in E),
            func.coalesce(func.sum(table.conversion_value), 0),
        ]
    query = (
        select(bucket, *sums)
        .where(
            table.workspace_id == workspace_id,
            table.bucket_start >= start,
            table.bucket_start < until,
        )
        .group_by(bucket)
    )
    if platform is not None:
        query = query.where(table.platform == platform)
    async with factory() as session:
        found = {row[0]: row for row in (await session.execute(query)).all()}
    points = []
    at = start
    while at < until:
        row = found.get(at)
        counts = {kind: int(row[i + 1]) if row else 0 for i, kind in enumerate(E)}
        value = float(row[len(E) + 1]) if row else 0.0
        points.append(TrendPoint(at, counts, value))
        at += STEP[interval]
    return points
