"""First-party engagement events of given content items, summed from the daily rollup
(app/models/engagement.py EngagementDaily), never from the raw events: all time per item
and platform (compareContent, campaignPerformance), and per UTC day (campaignPerformance).

Events about a post target carry its platform; events about the item itself (on the
customer's own site) have none and count only in the item's total. Callers check that the
items are visible; each function is one statement whatever the number of items.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import EngagementDaily
from app.models.vocabulary import EngagementEventType as E
from app.models.vocabulary import Platform


@dataclass(frozen=True)
class EventCounts:
    """Events per type and the sum of the conversions' values."""

    counts: dict[E, int] = field(default_factory=lambda: dict.fromkeys(E, 0))
    conversion_value: float = 0.0

    def count(self, kind: E) -> int:
        return self.counts.get(kind, 0)

    @property
    def engagement_rate(self) -> float | None:
        """(likes + comments + shares) / impressions; None without impressions."""
        shown = self.count(E.IMPRESSION)
        engaged = self.count(E.LIKE) + self.count(E.COMMENT) + self.count(E.SHARE)
        return engaged / shown if shown else None

    @property
    def ctr(self) -> float | None:
        shown = self.count(E.IMPRESSION)
        return self.count(E.CLICK) / shown if shown else None


def total(parts: Iterable[EventCounts]) -> EventCounts:
    counts = dict.fromkeys(E, 0)
    value = 0.0
    for part in parts:
        for kind in E:
            counts[kind] += part.count(kind)
        value += part.conversion_value
    return EventCounts(counts, value)


class _Sums:
    """Adds rollup rows up into EventCounts."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(E, 0)
        self.value = Decimal(0)

    def add(self, event_type: str, events: int, value_sum: Decimal | None) -> None:
        kind = E(event_type)
        self.counts[kind] += int(events)
        if kind is E.CONVERSION and value_sum is not None:
            self.value += value_sum

    def done(self) -> EventCounts:
        return EventCounts(self.counts, float(self.value))


@dataclass(frozen=True)
class ItemEvents:
    """One item's events in all and per platform (only platforms with events)."""

    total: EventCounts
    platforms: dict[Platform, EventCounts]


async def all_time(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ItemEvents]:
    """Each item's events since the first, in all and per platform; an item without
    events answers zeros."""
    table = EngagementDaily
    rows = (
        await session.execute(
            select(
                table.content_id,
                table.platform,
                table.event_type,
                func.sum(table.events),
                func.sum(table.value_sum),
            )
            .where(table.content_id.in_(list(content_ids)))
            .group_by(table.content_id, table.platform, table.event_type)
        )
    ).all()
    totals: dict[uuid.UUID, _Sums] = {}
    by_platform: dict[uuid.UUID, dict[Platform, _Sums]] = {}
    for content_id, platform, event_type, events, value in rows:
        totals.setdefault(content_id, _Sums()).add(event_type, events, value)
        if platform is not None:
            sums = by_platform.setdefault(content_id, {}).setdefault(Platform(platform), _Sums())
            sums.add(event_type, events, value)
    return {
        content_id: ItemEvents(
            total=totals[content_id].done() if content_id in totals else EventCounts(),
            platforms={p: s.done() for p, s in sorted(by_platform.get(content_id, {}).items())},
        )
        for content_id in content_ids
    }


async def per_day(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[date, EventCounts]:
    """The items' events summed per UTC day (days without events left out)."""
    table = EngagementDaily
    day = func.date(func.timezone("UTC", table.bucket_start)).label("day")
    rows = (
        await session.execute(
            select(day, table.event_type, func.sum(table.events), func.sum(table.value_sum))
            .where(table.content_id.in_(list(content_ids)))
            .group_by(day, table.event_type)
        )
    ).all()
    days: dict[date, _Sums] = {}
    for on, event_type, events, value in rows:
        days.setdefault(on, _Sums()).add(event_type, events, value)
    return {on: sums.done() for on, sums in sorted(days.items())}
