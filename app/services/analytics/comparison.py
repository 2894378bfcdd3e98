"""compareContent: 2-10 content items side by side, ranked per metric, in all and per
platform.

Each item's platform figures are contentPerformance's (performance.published_targets and
assemble: each PUBLISHED target's latest snapshot), its first-party events the daily
rollup's, all time (event_totals). Three statements whatever the number of items: the
items, their targets with latest snapshots, their rolled-up events.

Per metric (app/models/vocabulary.py PerformanceMetric), every item gets its value, its
rank (1 is best; equal values share a rank, the next rank skips: 1, 1, 3), its ratio to
the best value and to the mean of the known values; the metric has a winner only when
every item's value is known and one is strictly the highest (a tie, or an item whose
platform does not report the counter, leaves it undecided: None). Higher is better for
every metric.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import BadUserInput, UserErrorCode
from app.models import Content
from app.models.vocabulary import EngagementEventType as E
from app.models.vocabulary import FigureSource, Platform
from app.models.vocabulary import PerformanceMetric as M
from app.permissions import Action
from app.services.analytics import event_totals, performance
from app.services.analytics.event_totals import EventCounts
from app.services.analytics.performance import ContentPerformance, Figures
from app.services.lookup import not_found

MIN_ITEMS, MAX_ITEMS = 2, 10

PLATFORM_METRICS: dict[M, Callable[[Figures], float | None]] = {
    M.IMPRESSIONS: lambda f: f.impressions,
    M.REACH: lambda f: f.reach,
    M.LIKES: lambda f: f.likes,
    M.COMMENTS: lambda f: f.comments,
    M.SHARES: lambda f: f.shares,
    M.CLICKS: lambda f: f.clicks,
    M.SAVES: lambda f: f.saves,
    M.ENGAGEMENT_RATE: lambda f: f.engagement_rate,
    M.CTR: lambda f: f.ctr,
}
EVENT_METRICS: dict[M, Callable[[EventCounts], float]] = {
    M.EVENT_VIEWS: lambda c: c.count(E.VIEW),
    M.EVENT_IMPRESSIONS: lambda c: c.count(E.IMPRESSION),
    M.EVENT_CLICKS: lambda c: c.count(E.CLICK),
    M.EVENT_LIKES: lambda c: c.count(E.LIKE),
    M.EVENT_COMMENTS: lambda c: c.count(E.COMMENT),
    M.EVENT_SHARES: lambda c: c.count(E.SHARE),
    M.EVENT_CONVERSIONS: lambda c: c.count(E.CONVERSION),
    M.EVENT_CONVERSION_VALUE: lambda c: c.conversion_value,
}


def source_of(metric: M) -> FigureSource:
    return (
        FigureSource.PLATFORM_SNAPSHOTS
        if metric in PLATFORM_METRICS
        else FigureSource.FIRST_PARTY_EVENTS
    )


def value_of(metric: M, figures: Figures, events: EventCounts) -> float | None:
    """One metric of an item (or of one of its platforms)."""
    if metric in PLATFORM_METRICS:
        return PLATFORM_METRICS[metric](figures)
    return EVENT_METRICS[metric](events)


@dataclass(frozen=True)
class Standing:
    """One item on one metric."""

    content_id: uuid.UUID
    value: float | None
    rank: int | None  # None: value unknown
    ratio_to_best: float | None
    ratio_to_mean: float | None


@dataclass(frozen=True)
class MetricComparison:
    metric: M
    standings: tuple[Standing, ...]  # in the items' order
    best: float | None
    mean: float | None  # of the known values
    winner: uuid.UUID | None


def rank(metric: M, values: Sequence[tuple[uuid.UUID, float | None]]) -> MetricComparison:
    """Ranks, ratios and the winner of one metric over the items' values (pure)."""
    known = [v for _, v in values if v is not None]
    best = max(known, default=None)
    mean = sum(known) / len(known) if known else None
    standings = tuple(
        Standing(
            content_id=content_id,
            value=value,
            rank=None if value is None else 1 + sum(1 for k in known if k > value),
            ratio_to_best=value / best if value is not None and best else None,
            ratio_to_mean=value / mean if value is not None and mean else None,
        )
        for content_id, value in values
    )
    winner = None
    if best is not None and len(known) == len(values) and known.count(best) == 1:
        winner = next(s.content_id for s in standings if s.value == best)
    return MetricComparison(metric, standings, best, mean, winner)


@dataclass(frozen=True)
class ComparedItem:
    content_id: uuid.UUID
    performance: ContentPerformance  # contentPerformance's figures
    events: event_totals.ItemEvents  # first-party, all time


@dataclass(frozen=True)
class PlatformComparison:
    platform: Platform
    metrics: tuple[MetricComparison, ...]


@dataclass(frozen=True)
class Comparison:
    items: tuple[ComparedItem, ...]  # in the order asked
    metrics: tuple[MetricComparison, ...]  # every PerformanceMetric, in its order
    platforms: tuple[PlatformComparison, ...]  # every platform any item is on, by name


def _checked(ids: Sequence[uuid.UUID]) -> None:
    if len(ids) < MIN_ITEMS:
        raise BadUserInput(
            f"ids: compare at least {MIN_ITEMS} items.",
            extra={"field": "ids", "reason": UserErrorCode.TOO_SHORT.value},
        )
    if len(ids) > MAX_ITEMS:
        raise BadUserInput(
            f"ids: compare at most {MAX_ITEMS} items.",
            extra={"field": "ids", "reason": UserErrorCode.TOO_MANY.value},
        )
    if len(set(ids)) != len(ids):
        raise BadUserInput(
            "ids: each item may be given once.",
            extra={"field": "ids", "reason": UserErrorCode.DUPLICATE.value},
        )


async def _visible(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """Item id -> workspace id, each item checked as scoped_row would: one outside the
    caller's workspaces (or missing) is NOT_FOUND, one statement for all."""
    rows = (
        await session.execute(
            select(Content.id, Content.workspace_id).where(Content.id.in_(list(ids)))
        )
    ).all()
    found = {row.id: row.workspace_id for row in rows}
    for content_id in ids:
        workspace_id = found.get(content_id)
        if workspace_id is None or principal.role_in(workspace_id) is None:
            raise not_found(Content)
        principal.require(workspace_id, Action.CONTENT_READ)
    return found


def _platform_comparison(items: Sequence[ComparedItem], platform: Platform) -> PlatformComparison:
    empty_events = EventCounts()

    def figures_on(item: ComparedItem) -> Figures:
        return next(
            (p.figures for p in item.performance.platforms if p.platform is platform), Figures()
        )

    return PlatformComparison(
        platform,
        tuple(
            rank(
                metric,
                [
                    (
                        item.content_id,
                        value_of(
                            metric,
                            figures_on(item),
                            item.events.platforms.get(platform, empty_events),
                        ),
                    )
                    for item in items
                ],
            )
            for metric in M
        ),
    )


async def compare_content(
    factory: async_sessionmaker[AsyncSession], principal: Principal, ids: Sequence[uuid.UUID]
) -> Comparison:
    _checked(ids)
    async with factory() as session:
        workspaces = await _visible(session, principal, ids)
        targets = await performance.published_targets(session, ids)
        events = await event_totals.all_time(session, ids)
    items = tuple(
        ComparedItem(
            content_id=content_id,
            performance=performance.assemble(
                content_id, workspaces[content_id], targets.get(content_id, [])
            ),
            events=events[content_id],
        )
        for content_id in ids
    )
    metrics = tuple(
        rank(
            metric,
            [
                (item.content_id, value_of(metric, item.performance.figures, item.events.total))
                for item in items
            ],
        )
        for metric in M
    )
    on = {p.platform for item in items for p in item.performance.platforms}
    on |= {p for item in items for p in item.events.platforms}
    platforms = tuple(_platform_comparison(items, p) for p in sorted(on, key=lambda p: p.value))
    return Comparison(items, metrics, platforms)
