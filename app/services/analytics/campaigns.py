"""campaignPerformance: how a campaign's content did, from both sources side by side.

Platform figures are contentPerformance's (each PUBLISHED target's latest snapshot,
performance.published_targets), first-party events the daily rollup's (event_totals):
the two are never added together, since a platform's like and a first-party LIKE event
may be the same like seen twice. Totals, per platform, per item (ranked by one metric,
as compareContent ranks: app/services/analytics/comparison.py), and a daily series where
platform figures count on the day their target was published (a snapshot is cumulative:
it cannot be split by day) and events on the day they happened (UTC).

Five statements whatever the size of the campaign: the campaign (NOT_FOUND outside the
caller's workspaces), its live items, their targets with latest snapshots, their events in
all, their events per day.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.models import Campaign, Content
from app.models.vocabulary import PerformanceMetric as M
from app.models.vocabulary import Platform
from app.permissions import Action
from app.services.analytics import comparison, event_totals, performance
from app.services.analytics.event_totals import EventCounts
from app.services.analytics.performance import ContentPerformance, Figures, TargetPerformance
from app.services.lookup import scoped_row

MAX_DAYS = 1000  # the daily series keeps the newest days past this


@dataclass(frozen=True)
class CampaignItem:
    content_id: uuid.UUID
    performance: ContentPerformance
    events: EventCounts
    published_posts: int
    first_published_at: datetime | None
    value: float | None  # of the ranking metric
    rank: int | None  # None: value unknown


@dataclass(frozen=True)
class CampaignPlatform:
    platform: Platform
    figures: Figures
    events: EventCounts
    published_posts: int


@dataclass(frozen=True)
class CampaignDay:
    day: date
    posts_published: int
    figures: Figures  # latest snapshots of the targets published that day
    events: EventCounts  # events that happened that day


@dataclass(frozen=True)
class CampaignPerformance:
    campaign: Campaign
    rank_by: M
    figures: Figures
    events: EventCounts
    platforms: tuple[CampaignPlatform, ...]
    items: tuple[CampaignItem, ...]  # best first; unknown values last
    published_posts: int
    first_published_at: datetime | None
    last_published_at: datetime | None
    days: tuple[CampaignDay, ...]

    @property
    def published_items(self) -> int:
        return sum(1 for item in self.items if item.published_posts)

    def top(self, first: int) -> list[CampaignItem]:
        """The best `first` items with a known value, best first."""
        return [item for item in self.items if item.rank is not None][:first]

    def bottom(self, first: int) -> list[CampaignItem]:
        """The worst `first` items with a known value, worst first."""
        ranked = [item for item in self.items if item.rank is not None]
        return ranked[::-1][:first]


def _latest(targets: Iterable[TargetPerformance]) -> Figures:
    return performance.figures([t.latest for t in targets if t.latest is not None])


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _days(
    campaign: Campaign,
    targets: Sequence[TargetPerformance],
    events: dict[date, EventCounts],
    today: date,
) -> tuple[CampaignDay, ...]:
    """Every day from the first with data (or the campaign's start) to the last with data
    (or its end, if past), zeros where nothing happened."""
    published: dict[date, list[TargetPerformance]] = {}
    for target in targets:
        if target.published_at is not None:
            published.setdefault(_day(target.published_at), []).append(target)
    known = set(published) | set(events)
    if campaign.start_date is not None:
        known.add(campaign.start_date)
    if campaign.end_date is not None:
        known.add(min(campaign.end_date, today))
    if not known:
        return ()
    start, end = min(known), max(known)
    start = max(start, end - timedelta(days=MAX_DAYS - 1))
    out = []
    on = start
    while on <= end:
        members = published.get(on, [])
        out.append(CampaignDay(on, len(members), _latest(members), events.get(on, EventCounts())))
        on += timedelta(days=1)
    return tuple(out)


async def _items(session: AsyncSession, campaign: Campaign) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(Content.id)
        .where(Content.campaign_id == campaign.id, Content.deleted_at.is_(None))
        .order_by(Content.created_at, Content.id)
    )
    return list(rows.all())


async def campaign_performance(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    campaign_id: uuid.UUID,
    rank_by: M = M.ENGAGEMENT_RATE,
) -> CampaignPerformance:
    async with factory() as session:
        campaign = await scoped_row(session, Campaign, campaign_id, principal, Action.CONTENT_READ)
        ids = await _items(session, campaign)
        targets = await performance.published_targets(session, ids) if ids else {}
        events = await event_totals.all_time(session, ids) if ids else {}
        daily = await event_totals.per_day(session, ids) if ids else {}
    everything = [t for members in targets.values() for t in members]
    performances = {
        content_id: performance.assemble(
            content_id, campaign.workspace_id, targets.get(content_id, [])
        )
        for content_id in ids
    }
    item_events = {content_id: events[content_id] for content_id in ids}
    ranked = comparison.rank(
        rank_by,
        [
            (
                content_id,
                comparison.value_of(
                    rank_by, performances[content_id].figures, item_events[content_id].total
                ),
            )
            for content_id in ids
        ],
    )
    items = []
    for standing in ranked.standings:
        own = targets.get(standing.content_id, [])
        items.append(
            CampaignItem(
                content_id=standing.content_id,
                performance=performances[standing.content_id],
                events=item_events[standing.content_id].total,
                published_posts=len(own),
                first_published_at=min(
                    (t.published_at for t in own if t.published_at), default=None
                ),
                value=standing.value,
                rank=standing.rank,
            )
        )
    # Best first, unknown values last; ties in the order the items were created.
    items.sort(key=lambda item: (item.rank is None, item.rank or 0))
    on_platform: dict[Platform, list[TargetPerformance]] = {}
    for target in everything:
        on_platform.setdefault(target.platform, []).append(target)
    event_platforms = {p for e in item_events.values() for p in e.platforms}
    platforms = tuple(
        CampaignPlatform(
            platform=platform,
            figures=_latest(on_platform.get(platform, [])),
            events=event_totals.total(
                e.platforms[platform] for e in item_events.values() if platform in e.platforms
            ),
            published_posts=len(on_platform.get(platform, [])),
        )
        for platform in sorted(set(on_platform) | event_platforms, key=lambda p: p.value)
    )
    moments = [t.published_at for t in everything if t.published_at is not None]
    return CampaignPerformance(
        campaign=campaign,
        rank_by=rank_by,
        figures=_latest(everything),
        events=event_totals.total(e.total for e in item_events.values()),
        platforms=platforms,
        items=tuple(items),
        published_posts=len(everything),
        first_published_at=min(moments, default=None),
        last_published_at=max(moments, default=None),
        days=_days(campaign, everything, daily, datetime.now(UTC).date()),
    )
