"""The SQL behind analyticsDashboard and exportAnalytics (dashboard.py has the design):
the rows per (source, period, content item, platform) of both sources, and the dashboard's
one statement over them.

Platform rows: the PUBLISHED targets of the period with their latest snapshot (LATERAL,
served by the snapshots' (target_id, collected_at) index), summed per group with the
sums the rates need (performance.py's rule). First-party rows: the rollups
(rollup_parts): for whole UTC days `engagement_dashboard_daily` (per day, item and
platform, the types as columns: ~7x fewer rows to aggregate than engagement_daily, read
through its primary key over adjacent pages), for the partial days at the edges the hourly
one (index-only scans of its (workspace_id, bucket_start) covering index,
app/models/dashboard_indexes.py).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Numeric,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID

from app.errors import BadUserInput
from app.models import (
    EngagementDashboardDaily,
    EngagementHourly,
    MetricSnapshot,
    PostTarget,
    ScheduledPost,
)
from app.models import TargetStatus as S
from app.models.engagement import NO_PLATFORM
from app.models.vocabulary import EngagementEventType as E

MAX_PERIOD = timedelta(days=366)
TOP_PERFORMERS = 5
CURRENT, PREVIOUS = 0, 1
PLATFORM, FIRST_PARTY = "PLATFORM", "FIRST_PARTY"
# Counters summed per group, in this order, for both sources (the CSV's columns too).
COUNTERS = (
    "impressions",
    "views",
    "likes",
    "comments",
    "shares",
    "clicks",
    "conversions",
    "conversion_value",
)
_FP_TYPES = {
    "impressions": E.IMPRESSION,
    "views": E.VIEW,
    "likes": E.LIKE,
    "comments": E.COMMENT,
    "shares": E.SHARE,
    "clicks": E.CLICK,
    "conversions": E.CONVERSION,
}


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    @property
    def previous(self) -> Period:
        return Period(self.since - (self.until - self.since), self.since)


def checked_period(since: datetime, until: datetime) -> Period:
    if since.tzinfo is None or until.tzinfo is None:
        raise BadUserInput("from and to need a time zone offset")
    if not since < until:
        raise BadUserInput("from must be before to")
    if until - since > MAX_PERIOD:
        raise BadUserInput(f"the period is at most {MAX_PERIOD.days} days")
    return Period(since.astimezone(UTC), until.astimezone(UTC))


# ---- the grouped rows (shared with the export) ---------------------------------------


def _sum(column: Any, where: ColumnElement[bool] | None = None) -> Any:
    total = func.sum(column)
    return total.filter(where) if where is not None else total


def _platform_rows(workspace_id: Any, periods: Sequence[Any]) -> Select[Any]:
    """Per (period, content, platform): published targets and their latest snapshots.
    `workspace_id` and the periods' bounds are values or bind parameters."""
    latest = (
        select(
            MetricSnapshot.impressions,
            MetricSnapshot.likes,
            MetricSnapshot.comments,
            MetricSnapshot.shares,
            MetricSnapshot.clicks,
        )
        .where(MetricSnapshot.target_id == PostTarget.id)
        .order_by(MetricSnapshot.collected_at.desc())
        .limit(1)
        .lateral("latest")
    )
    published = PostTarget.published_at
    period = case(
        *((and_(published >= p.since, published < p.until), i) for i, p in enumerate(periods)),
        else_=None,
    ).label("period")
    engaged = (
        func.coalesce(latest.c.likes, 0)
        + func.coalesce(latest.c.comments, 0)
        + func.coalesce(latest.c.shares, 0)
    )
    # performance.py's rule: rates only over targets that can support them.
    rated = and_(
        latest.c.impressions > 0,
        or_(*(latest.c[k].is_not(None) for k in ("likes", "comments", "shares"))),
    )
    clicked = and_(latest.c.impressions > 0, latest.c.clicks.is_not(None))
    return (
        select(
            literal(PLATFORM, String).label("source"),
            period,
            ScheduledPost.content_id,
            PostTarget.platform,
            func.count().label("targets"),
            _sum(latest.c.impressions).label("impressions"),
            cast(null(), Numeric).label("views"),
            _sum(latest.c.likes).label("likes"),
            _sum(latest.c.comments).label("comments"),
            _sum(latest.c.shares).label("shares"),
            _sum(latest.c.clicks).label("clicks"),
            cast(null(), Numeric).label("conversions"),
            cast(null(), Numeric).label("conversion_value"),
            _sum(engaged, rated).label("rated_engaged"),
            _sum(latest.c.impressions, rated).label("rated_impressions"),
            _sum(latest.c.clicks, clicked).label("ctr_clicks"),
            _sum(latest.c.impressions, clicked).label("ctr_impressions"),
        )
        .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
        .outerjoin(latest, true())
        .where(
            PostTarget.workspace_id == workspace_id,
            PostTarget.status == S.PUBLISHED.value,
            or_(*(and_(published >= p.since, published < p.until) for p in periods)),
        )
        .group_by(period, ScheduledPost.content_id, PostTarget.platform)
    )


def _day_ceil(at: datetime) -> datetime:
    floor = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return floor if floor == at else floor + timedelta(days=1)


def _day_floor(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def rollup_parts(period: Period) -> list[tuple[Any, datetime, datetime]]:
    """(rollup table, from, to) covering the period: whole UTC days from the dashboard's
    daily rollup, the partial days at the edges from the hourly one (bucket starts in
    [from, to))."""
    first_day, last_day = _day_ceil(period.since), _day_floor(period.until)
    if first_day >= last_day:
        return [(EngagementHourly, period.since, period.until)]
    parts: list[tuple[Any, datetime, datetime]] = []
    if period.since < first_day:
        parts.append((EngagementHourly, period.since, first_day))
    parts.append((EngagementDashboardDaily, first_day, last_day))
    if last_day < period.until:
        parts.append((EngagementHourly, last_day, period.until))
    return parts


def _first_party_rows(
    workspace_id: Any, parts: Sequence[Sequence[tuple[Any, Any, Any]]], detailed: Sequence[bool]
) -> Select[Any]:
    """Per (period, content, platform): first-party events from the rollups. Each rollup
    range is pivoted per type (FILTER) while it is summed per (content, platform), so the
    aggregate keeps few groups (a hash in memory, no sort); the ranges are then added up.
    A period not `detailed` is summed whole (one row, content and platform null): the
    previous period needs totals only."""

    def part(i: int, table: Any, lo: datetime, hi: datetime) -> Select[Any]:
        if table is EngagementDashboardDaily:
            return dense(i, lo, hi)
        keys = (table.content_id, table.platform) if detailed[i] else ()

        def count(kind: E) -> Any:
            return _sum(table.events, table.event_type == kind.value)

        return (
            select(
                literal(i, Integer).label("period"),
                *(keys or (cast(null(), PgUUID).label("content_id"),)),
                *(() if keys else (cast(null(), String).label("platform"),)),
                *(count(_FP_TYPES[k]).label(k) for k in COUNTERS if k != "conversion_value"),
                _sum(table.value_sum, table.event_type == E.CONVERSION.value).label(
                    "conversion_value"
                ),
            )
            .where(
                table.workspace_id == workspace_id,
                table.bucket_start >= lo,
                table.bucket_start < hi,
            )
            .group_by(*keys)
        )

    def dense(i: int, lo: datetime, hi: datetime) -> Select[Any]:
        # The types are columns already; NO_PLATFORM back to NULL as the other parts give.
        d = EngagementDashboardDaily
        platform = func.nullif(d.platform, NO_PLATFORM)
        keys = (d.content_id, platform) if detailed[i] else ()
        return (
            select(
                literal(i, Integer).label("period"),
                d.content_id if keys else cast(null(), PgUUID).label("content_id"),
                platform.label("platform") if keys else cast(null(), String).label("platform"),
                *(_sum(d.__table__.c[k]).label(k) for k in COUNTERS),
            )
            .where(d.workspace_id == workspace_id, d.bucket_start >= lo, d.bucket_start < hi)
            .group_by(*keys)
        )

    selects = [part(i, table, lo, hi) for i, ranges in enumerate(parts) for table, lo, hi in ranges]
    ranges = union_all(*selects).subquery("ranges").c
    return select(
        literal(FIRST_PARTY, String).label("source"),
        ranges.period,
        ranges.content_id,
        ranges.platform,
        cast(null(), Integer).label("targets"),
        *(func.coalesce(func.sum(ranges[k]), 0).label(k) for k in COUNTERS),
        cast(null(), Numeric).label("rated_engaged"),
        cast(null(), Numeric).label("rated_impressions"),
        cast(null(), Numeric).label("ctr_clicks"),
        cast(null(), Numeric).label("ctr_impressions"),
    ).group_by(ranges.period, ranges.content_id, ranges.platform)


_SUMMED = (*COUNTERS, "rated_engaged", "rated_impressions", "ctr_clicks", "ctr_impressions")


def grouped_rows(
    workspace_id: uuid.UUID, periods: Sequence[Period], detailed: Sequence[bool] | None = None
) -> Any:
    """Both sources' rows, one per (source, period, content, platform): what the
    dashboard folds and, for the current period alone, what the export streams."""
    return _grouped(
        workspace_id,
        periods,
        [rollup_parts(p) for p in periods],
        detailed or [True] * len(periods),
    )


def _grouped(
    workspace_id: Any,
    periods: Sequence[Any],
    parts: Sequence[Sequence[tuple[Any, Any, Any]]],
    detailed: Sequence[bool],
) -> Any:
    return union_all(
        _platform_rows(workspace_id, periods),
        _first_party_rows(workspace_id, parts, detailed),
    )


_TABLES = {t.__tablename__: t for t in (EngagementHourly, EngagementDashboardDaily)}


def dashboard_query(
    workspace_id: uuid.UUID, periods: Sequence[Period]
) -> tuple[Any, dict[str, Any]]:
    """The dashboard's statement and its parameters. The statement depends only on which
    rollup parts each period needs, so it is built once per shape (building and hashing it
    cost the API server ~10 ms a request, bench/README.md) and takes the workspace and
    the bounds as bind parameters."""
    parts = [rollup_parts(p) for p in periods]
    shape = tuple(tuple(table.__tablename__ for table, _, _ in ranges) for ranges in parts)
    params: dict[str, Any] = {"ws": workspace_id}
    for i, (period, ranges) in enumerate(zip(periods, parts, strict=True)):
        params |= {f"since_{i}": period.since, f"until_{i}": period.until}
        for j, (_, lo, hi) in enumerate(ranges):
            params |= {f"lo_{i}_{j}": lo, f"hi_{i}_{j}": hi}
    return _dashboard_statement(shape), params


@functools.lru_cache(maxsize=32)
def _dashboard_statement(shape: tuple[tuple[str, ...], ...]) -> Any:
    def at(name: str) -> Any:
        return bindparam(name, type_=DateTime(timezone=True))

    periods = [_Bounds(at(f"since_{i}"), at(f"until_{i}")) for i in range(len(shape))]
    parts = [
        [(_TABLES[name], at(f"lo_{i}_{j}"), at(f"hi_{i}_{j}")) for j, name in enumerate(names)]
        for i, names in enumerate(shape)
    ]
    ws = bindparam("ws", type_=PgUUID(as_uuid=True))
    return _dashboard_rows(ws, periods, parts)


@dataclass(frozen=True)
class _Bounds:
    since: Any
    until: Any


def dashboard_rows(workspace_id: uuid.UUID, periods: Sequence[Period]) -> Any:
    """dashboard_query's statement with its values bound (to EXPLAIN it)."""
    statement, params = dashboard_query(workspace_id, periods)
    return statement.params(params)


def _dashboard_rows(
    workspace_id: Any, periods: Sequence[Any], parts: Sequence[Sequence[tuple[Any, Any, Any]]]
) -> Any:
    """The dashboard's one statement: over the grouped rows, the totals per (source,
    period) and per (source, period, platform) (GROUPING SETS), and the rows of the
    current period's TOP_PERFORMERS items (ranked by engagements, both sources): a few
    dozen rows whatever the number of items."""
    detailed = [i == CURRENT for i in range(len(periods))]
    g = _grouped(workspace_id, periods, parts, detailed).cte("g").c
    sums = [func.sum(g[k]).label(k) for k in _SUMMED]
    totals = select(
        case((func.grouping(g.platform) == 1, "total"), else_="platform").label("kind"),
        g.source,
        g.period,
        g.platform,
        cast(null(), PgUUID).label("content_id"),
        func.sum(g.targets).label("targets"),
        func.count(distinct(g.content_id)).label("content_items"),
        *sums,
    ).group_by(
        func.grouping_sets(tuple_(g.source, g.period), tuple_(g.source, g.period, g.platform))
    )
    engaged = func.coalesce(g.likes, 0) + func.coalesce(g.comments, 0) + func.coalesce(g.shares, 0)
    top = (
        select(g.content_id)
        .where(g.period == CURRENT)
        .group_by(g.content_id)
        .order_by(
            func.sum(engaged).desc(), func.sum(func.coalesce(g.impressions, 0)).desc(), g.content_id
        )
        .limit(TOP_PERFORMERS)
    )
    performers = select(
        literal("content", String).label("kind"),
        g.source,
        g.period,
        g.platform,
        g.content_id,
        g.targets,
        literal(0, Integer).label("content_items"),
        *(g[k] for k in _SUMMED),
    ).where(g.period == CURRENT, g.content_id.in_(top))
    return union_all(totals, performers)
