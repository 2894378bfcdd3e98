"""analyticsDashboard: a workspace's headline figures over a period, from two sources shown
separately and combined, with the change against the previous period.

The design decision (also in README.md):

- platform: the post targets PUBLISHED within [from, to), each counted by its latest
  metric snapshot, attributed to its publish date as the social platforms' own dashboards
  do (a post published in the period keeps collecting after it). `posts` counts those
  targets, `contentItems` the distinct items behind them. Counters a platform does not
  report stay unknown (None) as contentPerformance does, and the platform rates use only
  the targets that can support them (performance.py's rule);
- first-party: events that occurred within [from, to), read from the rollups, never from
  the raw events: the dashboard's daily rollup (`engagement_dashboard_daily`, one row per
  day, item and platform with the event types as columns) for whole UTC days inside the
  period and the hourly one for the partial days at its edges, so the cost follows the
  number of rollup rows, not of events. Granularity is the hour: an hour bucket counts
  when its start lies in [from, to) (a `from` inside an hour starts at the next whole
  hour; `to` = now includes the running hour);
- combined: impressions, engagements (likes + comments + shares) and clicks of both, the
  engagement rate (the impression-weighted average: engagements / impressions over what
  can support it: the first-party events and the platform targets reporting impressions)
  and the CTR; a rate is None when there are no impressions, never a fake 0.

The previous period has the same length and ends at `from`. The whole dashboard is ONE
statement (dashboard_rows.py): both sources and both periods grouped per (period, item,
platform), then totals per source and per platform by GROUPING SETS and the rows of the
five best items, a few dozen rows whatever the number of items, folded here. The CSV
export (export.py) streams the same grouped rows for the current period, so its columns
sum to these figures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.permissions import Action
from app.services.analytics.dashboard_rows import (
    COUNTERS,
    CURRENT,
    PLATFORM,
    PREVIOUS,
    TOP_PERFORMERS,
    Period,
    checked_period,
    dashboard_query,
)

# For this transaction only (SET LOCAL): the statement runs in one process.
SERIAL = text("SET LOCAL max_parallel_workers_per_gather = 0")
# A platform needs this many impressions in the period to be the top platform by
# engagement rate (a post shown 3 times with 1 like is not a 33% platform).
MIN_PLATFORM_IMPRESSIONS = 100

# ---- folding the rows into figures ----------------------------------------------------


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass
class Totals:
    """Sums over some grouped rows of one source (None: no row reported the counter)."""

    targets: int = 0
    content_items: int = 0
    counters: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(COUNTERS))
    conversion_value: Decimal = Decimal(0)
    rate: tuple[int, int] = (0, 0)  # engagements, impressions that can support a rate
    ctr: tuple[int, int] = (0, 0)  # clicks, impressions that can support a CTR

    def add(self, row: Any) -> None:
        if row.source == PLATFORM:
            self.targets += int(row.targets or 0)
            self.content_items += int(row.content_items or 0)
        for name in COUNTERS:
            if name == "conversion_value":
                continue
            value = _int(getattr(row, name))
            if value is not None:
                self.counters[name] = (self.counters[name] or 0) + value
        if row.source == PLATFORM:
            self.rate = _plus(self.rate, row.rated_engaged, row.rated_impressions)
            self.ctr = _plus(self.ctr, row.ctr_clicks, row.ctr_impressions)
        else:
            self.conversion_value += Decimal(row.conversion_value or 0)
            self.rate = _plus(
                self.rate, int(row.likes) + int(row.comments) + int(row.shares), row.impressions
            )
            self.ctr = _plus(self.ctr, row.clicks, row.impressions)

    @property
    def engagements(self) -> int | None:
        parts = [self.counters[k] for k in ("likes", "comments", "shares")]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None


def _plus(pair: tuple[int, int], top: Any, bottom: Any) -> tuple[int, int]:
    return pair[0] + int(top or 0), pair[1] + int(bottom or 0)


def _ratio(pair: tuple[int, int]) -> float | None:
    return pair[0] / pair[1] if pair[1] else None


@dataclass(frozen=True)
class Figures:
    """One source's figures, or both combined. Platform-only counters (posts, content
    items) are None for first-party figures; first-party-only ones (views, conversions)
    are None for platform figures."""

    posts: int | None
    content_items: int | None
    impressions: int | None
    views: int | None
    likes: int | None
    comments: int | None
    shares: int | None
    clicks: int | None
    conversions: int | None
    conversion_value: float | None
    engagements: int | None
    engagement_rate: float | None
    ctr: float | None


def _figures(totals: Totals, *, platform: bool) -> Figures:
    c = totals.counters
    return Figures(
        posts=totals.targets if platform else None,
        content_items=totals.content_items if platform else None,
        impressions=c["impressions"] if platform else c["impressions"] or 0,
        views=None if platform else c["views"] or 0,
        likes=c["likes"] if platform else c["likes"] or 0,
        comments=c["comments"] if platform else c["comments"] or 0,
        shares=c["shares"] if platform else c["shares"] or 0,
        clicks=c["clicks"] if platform else c["clicks"] or 0,
        conversions=None if platform else c["conversions"] or 0,
        conversion_value=None if platform else float(totals.conversion_value),
        engagements=totals.engagements if platform else totals.engagements or 0,
        engagement_rate=_ratio(totals.rate),
        ctr=_ratio(totals.ctr),
    )


def _combined(platform: Totals, first_party: Totals) -> Figures:
    both = Totals(
        targets=platform.targets,
        content_items=platform.content_items,
        rate=_plus(platform.rate, *first_party.rate),
        ctr=_plus(platform.ctr, *first_party.ctr),
        conversion_value=first_party.conversion_value,
    )
    for name in COUNTERS:
        values = [t.counters[name] for t in (platform, first_party)]
        known = [v for v in values if v is not None]
        both.counters[name] = sum(known) if known else None
    return replace(
        _figures(both, platform=True),
        views=first_party.counters["views"] or 0,
        conversions=first_party.counters["conversions"] or 0,
        conversion_value=float(first_party.conversion_value),
        impressions=both.counters["impressions"] or 0,
        engagements=both.engagements or 0,
        clicks=both.counters["clicks"] or 0,
    )


@dataclass(frozen=True)
class Sources:
    platform: Figures
    first_party: Figures
    combined: Figures


def _sources(rows: Iterable[Any]) -> Sources:
    platform, first_party = Totals(), Totals()
    for row in rows:
        (platform if row.source == PLATFORM else first_party).add(row)
    return Sources(
        platform=_figures(platform, platform=True),
        first_party=_figures(first_party, platform=False),
        combined=_combined(platform, first_party),
    )


@dataclass(frozen=True)
class PlatformFigures:
    platform: str
    impressions: int
    engagements: int
    engagement_rate: float | None


@dataclass(frozen=True)
class Performer:
    content_id: uuid.UUID
    platforms: tuple[str, ...]
    impressions: int
    engagements: int
    engagement_rate: float | None


@dataclass(frozen=True)
class Change:
    current: float | None
    previous: float | None

    @property
    def relative(self) -> float | None:
        """(current - previous) / previous; None when the previous is 0 or unknown."""
        if self.current is None or not self.previous:
            return None
        return (self.current - self.previous) / self.previous


HEADLINES = ("posts", "impressions", "engagements", "clicks", "engagement_rate", "ctr")


@dataclass(frozen=True)
class Dashboard:
    workspace_id: uuid.UUID
    period: Period
    current: Sources
    previous: Sources
    platforms: tuple[PlatformFigures, ...]
    top_platform: PlatformFigures | None
    top_performers: tuple[Performer, ...]

    def change(self, name: str) -> Change:
        return Change(getattr(self.current.combined, name), getattr(self.previous.combined, name))


def _per_key(rows: Iterable[Any], key: str) -> dict[Any, Totals]:
    found: dict[Any, Totals] = {}
    for row in rows:
        found.setdefault(getattr(row, key), Totals()).add(row)
    return found


def _platforms(rows: Sequence[Any]) -> tuple[PlatformFigures, ...]:
    """Both sources per platform (first-party events about the customer's own site have no
    platform and are left out here)."""
    result = []
    for name, totals in _per_key([r for r in rows if r.platform is not None], "platform").items():
        result.append(
            PlatformFigures(
                platform=name,
                impressions=totals.counters["impressions"] or 0,
                engagements=totals.engagements or 0,
                engagement_rate=_ratio(totals.rate),
            )
        )
    return tuple(sorted(result, key=lambda p: p.platform))


def top_platform(platforms: Sequence[PlatformFigures]) -> PlatformFigures | None:
    """The best engagement rate among platforms with MIN_PLATFORM_IMPRESSIONS; without any,
    the most engagements; None when no platform had any engagement or impression."""
    shown = [
        p
        for p in platforms
        if p.impressions >= MIN_PLATFORM_IMPRESSIONS and p.engagement_rate is not None
    ]
    if shown:
        return max(shown, key=lambda p: (p.engagement_rate or 0.0, p.impressions, p.platform))
    engaged = [p for p in platforms if p.engagements or p.impressions]
    if not engaged:
        return None
    return max(engaged, key=lambda p: (p.engagements, p.impressions, p.platform))


def _performers(rows: Sequence[Any]) -> tuple[Performer, ...]:
    platforms: dict[uuid.UUID, set[str]] = {}
    for row in rows:
        if row.platform is not None:
            platforms.setdefault(row.content_id, set()).add(row.platform)
    performers = []
    for content_id, totals in _per_key(rows, "content_id").items():
        performers.append(
            Performer(
                content_id=content_id,
                platforms=tuple(sorted(platforms.get(content_id, ()))),
                impressions=totals.counters["impressions"] or 0,
                engagements=totals.engagements or 0,
                engagement_rate=_ratio(totals.rate),
            )
        )
    performers.sort(key=lambda p: (-p.engagements, -p.impressions, str(p.content_id)))
    return tuple(performers[:TOP_PERFORMERS])


async def dashboard(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    workspace_id: uuid.UUID,
    since: datetime,
    until: datetime,
) -> Dashboard:
    """One statement: both sources over this period and the previous one."""
    principal.require(workspace_id, Action.CONTENT_READ)
    period = checked_period(since, until)
    async with factory() as session:
        # A few tens of thousands of rollup rows: parallel workers cost more than they save
        # (bench/README.md), and on a busy machine they wait for a core too.
        await session.execute(SERIAL)
        statement, params = dashboard_query(workspace_id, [period, period.previous])
        rows = (await session.execute(statement, params)).all()

    def of(kind: str, at: int) -> list[Any]:
        return [r for r in rows if r.kind == kind and r.period == at]

    platforms = _platforms(of("platform", CURRENT))
    return Dashboard(
        workspace_id=workspace_id,
        period=period,
        current=_sources(of("total", CURRENT)),
        previous=_sources(of("total", PREVIOUS)),
        platforms=platforms,
        top_platform=top_platform(platforms),
        top_performers=_performers(of("content", CURRENT)),
    )
