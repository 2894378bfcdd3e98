"""How well each item of a workspace performed, comparable across platforms.

Observations, two statements, both bounded:
- platform snapshots: each PUBLISHED target of the last HISTORY_DAYS (newest MAX_TARGETS)
  with its latest snapshot that reports impressions (history.latest_engagement):
  impressions and engaged = likes + comments + shares;
- first-party rollups (engagement_daily) of events about the item itself on the
  workspace's own site (target NO_TARGET): impressions = IMPRESSION + VIEW events, engaged =
  every other event (likes, comments, shares, clicks, conversions). This is the SITE
  channel. Events about a post target are left out: that post's platform snapshot already
  counts its engagement.

They are summed per (item, channel), channel = platform or SITE, then normalised within
the channel, so an X post and a LinkedIn post compare:
- shrinkage: rate = (engaged + PRIOR_IMPRESSIONS x channel rate) /
  (impressions + PRIOR_IMPRESSIONS), where the channel rate is the channel's pooled
  engaged / impressions (a beta prior worth PRIOR_IMPRESSIONS impressions): 3 likes on 10
  impressions is not a 30% hit;
- percentile: the mid-rank of that rate among the channel's items, in (0, 1);
- lift: the rate over the channel's median rate ("3.4x the median on LinkedIn").

An item's performance is the impressions-weighted mean of its channels' percentiles; its
main channel is the one with the most impressions (the figures its explanation quotes).
Popularity is performance decayed by the age of its last publication (half-life
HALF_LIFE_DAYS).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Content, EngagementDaily, PostTarget, ScheduledPost, TargetStatus
from app.models.engagement import NO_TARGET
from app.models.vocabulary import EngagementEventType
from app.services.analytics import history
from app.services.analytics.recommend.result import SITE, channel_name

HISTORY_DAYS = 365
MAX_TARGETS = 5_000  # newest published targets read: the cost is flat in workspace size
MAX_SITE_ITEMS = 5_000
PRIOR_IMPRESSIONS = 200.0
HALF_LIFE_DAYS = 60.0
SEEN = (EngagementEventType.IMPRESSION.value, EngagementEventType.VIEW.value)


@dataclass(frozen=True)
class Observation:
    content_id: uuid.UUID
    channel: str
    impressions: int
    engaged: int
    at: datetime  # publication (platform) or last day with events (site)


@dataclass
class ChannelScore:
    channel: str
    impressions: int
    engaged: int
    last_at: datetime
    rate: float = 0.0  # shrunk
    percentile: float = 0.5
    lift: float = 1.0
    median_rate: float = 0.0


@dataclass
class ItemScore:
    content_id: uuid.UUID
    channels: dict[str, ChannelScore] = field(default_factory=dict)
    performance: float = 0.5
    popularity: float = 0.0

    @property
    def main(self) -> ChannelScore:
        return max(self.channels.values(), key=lambda c: (c.impressions, c.channel))

    @property
    def last_at(self) -> datetime:
        return max(c.last_at for c in self.channels.values())

    def describe(self) -> str:
        """'3.4x the workspace's median engagement rate on LinkedIn (4.10% vs 1.21%,
        n=1,240 impressions)'"""
        main = self.main
        return (
            f"{main.lift:.1f}x the workspace's median engagement rate on "
            f"{channel_name(main.channel)} ({main.rate:.2%} vs {main.median_rate:.2%}, "
            f"n={main.impressions:,} impressions)"
        )


def _midranks(values: Sequence[float]) -> list[float]:
    """Percentile of each value among `values`: (rank - 0.5) / n, ties sharing the mean."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = ((i + j) / 2 + 0.5) / len(values)
        i = j + 1
    return ranks


def score_items(observations: Iterable[Observation], now: datetime) -> dict[uuid.UUID, ItemScore]:
    items: dict[uuid.UUID, ItemScore] = {}
    by_channel: dict[str, list[ChannelScore]] = {}
    for obs in observations:
        if obs.impressions <= 0:
            continue
        item = items.setdefault(obs.content_id, ItemScore(obs.content_id))
        score = item.channels.get(obs.channel)
        if score is None:
            score = item.channels[obs.channel] = ChannelScore(obs.channel, 0, 0, obs.at)
            by_channel.setdefault(obs.channel, []).append(score)
        score.impressions += obs.impressions
        score.engaged += obs.engaged
        score.last_at = max(score.last_at, obs.at)
    for scores in by_channel.values():
        pooled = sum(s.engaged for s in scores) / sum(s.impressions for s in scores)
        for s in scores:
            s.rate = (s.engaged + PRIOR_IMPRESSIONS * pooled) / (s.impressions + PRIOR_IMPRESSIONS)
        middle = median(s.rate for s in scores)
        for s, pct in zip(scores, _midranks([s.rate for s in scores]), strict=True):
            s.percentile = pct
            s.median_rate = middle
            s.lift = s.rate / middle if middle > 0 else 1.0
    for item in items.values():
        weight = sum(c.impressions for c in item.channels.values())
        item.performance = (
            sum(c.percentile * c.impressions for c in item.channels.values()) / weight
        )
        age_days = max((now - item.last_at).total_seconds() / 86400, 0.0)
        item.popularity = item.performance * math.pow(0.5, age_days / HALF_LIFE_DAYS)
    return items


def top_performers(items: dict[uuid.UUID, ItemScore], limit: int) -> list[ItemScore]:
    """Best first: above their main channel's median, by performance."""
    above = [i for i in items.values() if i.main.lift > 1.0]
    above.sort(key=lambda i: (-i.performance, str(i.content_id)))
    return above[:limit]


async def _platform(
    session: AsyncSession, workspace_id: uuid.UUID, since: datetime
) -> list[Observation]:
    latest = history.latest_engagement()
    query = (
        select(
            Content.id,
            PostTarget.platform,
            PostTarget.published_at,
            latest.c.impressions,
            latest.c.engaged,
        )
        .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
        .join(Content, Content.id == ScheduledPost.content_id)
        .join(latest, true())
        .where(
            PostTarget.workspace_id == workspace_id,
            PostTarget.status == TargetStatus.PUBLISHED.value,
            PostTarget.published_at >= since,
            Content.workspace_id == workspace_id,
            Content.deleted_at.is_(None),
        )
        .order_by(PostTarget.published_at.desc())
        .limit(MAX_TARGETS)
    )
    rows = (await session.execute(query)).all()
    return [
        Observation(r.id, r.platform, int(r.impressions), int(r.engaged), r.published_at)
        for r in rows
        if r.published_at is not None
    ]


async def _site(
    session: AsyncSession, workspace_id: uuid.UUID, since: datetime
) -> list[Observation]:
    seen = func.sum(case((EngagementDaily.event_type.in_(SEEN), EngagementDaily.events), else_=0))
    engaged = func.sum(
        case((EngagementDaily.event_type.in_(SEEN), 0), else_=EngagementDaily.events)
    )
    query = (
        select(
            EngagementDaily.content_id,
            seen.label("seen"),
            engaged.label("engaged"),
            func.max(EngagementDaily.bucket_start).label("last"),
        )
        .join(Content, Content.id == EngagementDaily.content_id)
        .where(
            EngagementDaily.workspace_id == workspace_id,
            EngagementDaily.bucket_start >= since,
            EngagementDaily.target_id == NO_TARGET,
            Content.workspace_id == workspace_id,
            Content.deleted_at.is_(None),
        )
        .group_by(EngagementDaily.content_id)
        .order_by(seen.desc())
        .limit(MAX_SITE_ITEMS)
    )
    rows = (await session.execute(query)).all()
    return [
        Observation(r.content_id, SITE, int(r.seen or 0), int(r.engaged or 0), r.last) for r in rows
    ]


async def workspace_scores(
    session: AsyncSession, workspace_id: uuid.UUID, now: datetime
) -> dict[uuid.UUID, ItemScore]:
    since = now - timedelta(days=HISTORY_DAYS)
    observations = await _platform(session, workspace_id, since)
    observations += await _site(session, workspace_id, since)
    return score_items(observations, now)
