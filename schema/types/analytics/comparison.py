"""compareContent: items side by side, ranked per metric in all and per platform; and the
first-party event counts it shares with campaignPerformance."""

from __future__ import annotations

import uuid

import strawberry
from strawberry import relay

from app.models.vocabulary import EngagementEventType as E
from app.services.analytics import comparison
from app.services.analytics.event_totals import EventCounts
from schema.context import Info
from schema.ids import to_global_id
from schema.types.analytics.performance import ContentPerformance
from schema.types.content.items import Content
from schema.types.vocabulary import FigureSource, PerformanceMetric, Platform


@strawberry.type(
    description="First-party engagement events (POST /ingest/events, recordEngagementEvents) "
    "counted from the rollups."
)
class EngagementEventCounts:
    source: FigureSource = strawberry.field(description="Always FIRST_PARTY_EVENTS.")
    views: int = strawberry.field(description="VIEW events.")
    impressions: int = strawberry.field(description="IMPRESSION events.")
    clicks: int = strawberry.field(description="CLICK events.")
    likes: int = strawberry.field(description="LIKE events.")
    comments: int = strawberry.field(description="COMMENT events.")
    shares: int = strawberry.field(description="SHARE events.")
    conversions: int = strawberry.field(description="CONVERSION events.")
    conversion_value: float = strawberry.field(description="Sum of the CONVERSION events' values.")
    engagement_rate: float | None = strawberry.field(
        description="(likes + comments + shares) / impressions; null without impressions."
    )
    ctr: float | None = strawberry.field(
        description="clicks / impressions; null without impressions."
    )

    @classmethod
    def of(cls, counts: EventCounts) -> EngagementEventCounts:
        return cls(
            source=FigureSource.FIRST_PARTY_EVENTS,
            views=counts.count(E.VIEW),
            impressions=counts.count(E.IMPRESSION),
            clicks=counts.count(E.CLICK),
            likes=counts.count(E.LIKE),
            comments=counts.count(E.COMMENT),
            shares=counts.count(E.SHARE),
            conversions=counts.count(E.CONVERSION),
            conversion_value=counts.conversion_value,
            engagement_rate=counts.engagement_rate,
            ctr=counts.ctr,
        )


async def _content(info: Info, content_id: uuid.UUID) -> Content | None:
    [node] = await Content.resolve_nodes(info=info, node_ids=[str(content_id)])
    return node


@strawberry.type(description="One item's standing on one metric.")
class MetricStanding:
    content_id: relay.GlobalID = strawberry.field(description="The item.")
    value: float | None = strawberry.field(
        description="Its value; null when unknown (its platforms do not report this counter, "
        "or it has no snapshot yet)."
    )
    rank: int | None = strawberry.field(
        description="1 is the best; equal values share a rank and the next rank skips (1, 1, "
        "3). Null when the value is unknown."
    )
    ratio_to_best: float | None = strawberry.field(
        description="value / the best value of the set (1.0 for the best); null when either "
        "is unknown or the best is 0."
    )
    ratio_to_mean: float | None = strawberry.field(
        description="value / the mean of the set's known values; null when either is unknown "
        "or the mean is 0."
    )

    @classmethod
    def of(cls, standing: comparison.Standing) -> MetricStanding:
        return cls(
            content_id=to_global_id("Content", standing.content_id),
            value=standing.value,
            rank=standing.rank,
            ratio_to_best=standing.ratio_to_best,
            ratio_to_mean=standing.ratio_to_mean,
        )


@strawberry.type(description="The compared items on one metric.")
class MetricComparison:
    metric: PerformanceMetric = strawberry.field(description="The metric (higher is better).")
    source: FigureSource = strawberry.field(description="Where its values come from.")
    best: float | None = strawberry.field(description="The highest known value.")
    mean: float | None = strawberry.field(description="The mean of the known values.")
    winner_id: relay.GlobalID | None = strawberry.field(
        description="The item with the strictly highest value; null when tied, or when any "
        "item's value is unknown."
    )
    standings: list[MetricStanding] = strawberry.field(
        description="Each item's value, rank and ratios, in the order the ids were given."
    )
    winner_content_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The winning item (see winnerId).")
    async def winner(self, info: Info) -> Content | None:
        if self.winner_content_id is None:
            return None
        return await _content(info, self.winner_content_id)

    @classmethod
    def of(cls, value: comparison.MetricComparison) -> MetricComparison:
        return cls(
            metric=value.metric,
            source=comparison.source_of(value.metric),
            best=value.best,
            mean=value.mean,
            winner_id=to_global_id("Content", value.winner) if value.winner else None,
            standings=[MetricStanding.of(s) for s in value.standings],
            winner_content_id=value.winner,
        )


@strawberry.type(description="The compared items on one platform.")
class PlatformComparison:
    platform: Platform = strawberry.field(description="The platform.")
    metrics: list[MetricComparison] = strawberry.field(
        description="Every metric over the items' targets on this platform (their latest "
        "snapshots) and their first-party events about those targets; an item not published "
        "there has unknown platform figures."
    )

    @classmethod
    def of(cls, value: comparison.PlatformComparison) -> PlatformComparison:
        return cls(
            platform=Platform(value.platform.value),
            metrics=[MetricComparison.of(m) for m in value.metrics],
        )


@strawberry.type(description="One compared item: its figures from both sources.")
class ComparedContent:
    content_id: relay.GlobalID = strawberry.field(description="The item.")
    performance: ContentPerformance = strawberry.field(
        description="Its platform figures, as contentPerformance gives them (platform "
        "snapshots, per platform and target, with history)."
    )
    events: EngagementEventCounts = strawberry.field(
        description="Its first-party events since the first, all platforms and its own site."
    )
    standings: list[MetricStanding] = strawberry.field(
        description="Its value, rank and ratios on every metric, in PerformanceMetric's order."
    )
    row_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The content item.")
    async def content(self, info: Info) -> Content | None:
        return await _content(info, self.row_id)


@strawberry.type(
    description="Content items side by side: each item's figures, and per metric the ranks, "
    "ratios to the best and to the mean, and the winner, in all and per platform."
)
class ContentComparison:
    items: list[ComparedContent] = strawberry.field(
        description="The items, in the order the ids were given."
    )
    metrics: list[MetricComparison] = strawberry.field(
        description="Every metric over all platforms (and, for first-party events, the "
        "items' own sites too)."
    )
    platforms: list[PlatformComparison] = strawberry.field(
        description="Per platform any item was published to or has events on, by name."
    )

    @classmethod
    def of(cls, value: comparison.Comparison) -> ContentComparison:
        metrics = [MetricComparison.of(m) for m in value.metrics]
        return cls(
            items=[
                ComparedContent(
                    content_id=to_global_id("Content", item.content_id),
                    performance=ContentPerformance.of(item.performance),
                    events=EngagementEventCounts.of(item.events.total),
                    standings=[m.standings[i] for m in metrics],
                    row_id=item.content_id,
                )
                for i, item in enumerate(value.items)
            ],
            metrics=metrics,
            platforms=[PlatformComparison.of(p) for p in value.platforms],
        )
