"""campaignPerformance: a campaign's content from platform snapshots and first-party events,
in all, per platform, per item (ranked) and per day."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated

import strawberry
from strawberry import relay

from app.services.analytics import campaigns
from app.services.analytics.performance import Figures
from schema.context import Info
from schema.ids import to_global_id
from schema.types.analytics.comparison import EngagementEventCounts
from schema.types.analytics.performance import ContentPerformance, PerformanceFigures
from schema.types.content.campaigns import Campaign
from schema.types.content.items import Content
from schema.types.vocabulary import FigureSource, PerformanceMetric, Platform


@strawberry.type(
    description="Platform figures summed over posts: each published target's latest snapshot."
)
class SnapshotFigures(PerformanceFigures):
    source: FigureSource = strawberry.field(description="Always PLATFORM_SNAPSHOTS.")

    @classmethod
    def of(cls, value: Figures) -> SnapshotFigures:
        return cls(source=FigureSource.PLATFORM_SNAPSHOTS, **asdict(value))


@strawberry.type(description="A campaign's posts on one platform.")
class CampaignPlatformPerformance:
    platform: Platform = strawberry.field(description="The platform.")
    published_posts: int = strawberry.field(description="Published targets on it.")
    figures: SnapshotFigures = strawberry.field(
        description="Their platform figures (latest snapshots)."
    )
    events: EngagementEventCounts = strawberry.field(
        description="First-party events about those targets."
    )

    @classmethod
    def of(cls, value: campaigns.CampaignPlatform) -> CampaignPlatformPerformance:
        return cls(
            platform=Platform(value.platform.value),
            published_posts=value.published_posts,
            figures=SnapshotFigures.of(value.figures),
            events=EngagementEventCounts.of(value.events),
        )


@strawberry.type(description="One content item of a campaign, ranked by the chosen metric.")
class CampaignContentPerformance:
    content_id: relay.GlobalID = strawberry.field(description="The item.")
    rank: int | None = strawberry.field(
        description="1 is the best on the ranking metric; equal values share a rank. Null "
        "when its value is unknown (not published where that counter is reported)."
    )
    value: float | None = strawberry.field(description="Its value of the ranking metric.")
    published_posts: int = strawberry.field(description="Its published targets.")
    first_published_at: datetime | None = strawberry.field(
        description="When its first target went out."
    )
    performance: ContentPerformance = strawberry.field(
        description="Its platform figures, as contentPerformance gives them."
    )
    events: EngagementEventCounts = strawberry.field(description="Its first-party events.")
    row_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The content item.")
    async def content(self, info: Info) -> Content | None:
        [node] = await Content.resolve_nodes(info=info, node_ids=[str(self.row_id)])
        return node

    @classmethod
    def of(cls, value: campaigns.CampaignItem) -> CampaignContentPerformance:
        return cls(
            content_id=to_global_id("Content", value.content_id),
            rank=value.rank,
            value=value.value,
            published_posts=value.published_posts,
            first_published_at=value.first_published_at,
            performance=ContentPerformance.of(value.performance),
            events=EngagementEventCounts.of(value.events),
            row_id=value.content_id,
        )


@strawberry.type(description="One UTC day of a campaign.")
class CampaignDay:
    day: date = strawberry.field(description="The day (UTC).")
    posts_published: int = strawberry.field(description="Targets published that day.")
    figures: SnapshotFigures = strawberry.field(
        description="Platform figures of the targets published that day (their latest "
        "snapshots: a snapshot is cumulative, so it counts on its post's day)."
    )
    events: EngagementEventCounts = strawberry.field(
        description="First-party events that happened that day."
    )

    @classmethod
    def of(cls, value: campaigns.CampaignDay) -> CampaignDay:
        return cls(
            day=value.day,
            posts_published=value.posts_published,
            figures=SnapshotFigures.of(value.figures),
            events=EngagementEventCounts.of(value.events),
        )


First = Annotated[int, strawberry.argument(description="How many (1-50).")]


@strawberry.type(
    description="How a campaign's content performed. Platform figures (snapshots) and "
    "first-party events are kept apart, each saying its source: the same like may be "
    "counted by both."
)
class CampaignPerformance:
    campaign: Campaign = strawberry.field(
        description="The campaign: its name, status, objectives, dates and budget."
    )
    start_date: date | None = strawberry.field(description="The campaign's first day, if set.")
    end_date: date | None = strawberry.field(description="The campaign's last day, if set.")
    objectives: list[str] = strawberry.field(description="The campaign's goals, as entered.")
    ranked_by: PerformanceMetric = strawberry.field(
        description="The metric contents, top and bottom are ranked by."
    )
    figures: SnapshotFigures = strawberry.field(
        description="Platform figures over every published target of the campaign's items."
    )
    events: EngagementEventCounts = strawberry.field(
        description="First-party events about the campaign's items, all time."
    )
    platforms: list[CampaignPlatformPerformance] = strawberry.field(
        description="Per platform with posts or events, by name."
    )
    contents: list[CampaignContentPerformance] = strawberry.field(
        description="Every live item of the campaign, best first; unknown values last."
    )
    published_posts: int = strawberry.field(
        description="Published targets (one post on one account) of the campaign's items."
    )
    published_contents: int = strawberry.field(
        description="Items with at least one published target."
    )
    first_published_at: datetime | None = strawberry.field(description="The first post.")
    last_published_at: datetime | None = strawberry.field(description="The latest post.")
    daily: list[CampaignDay] = strawberry.field(
        description="Each UTC day from the first with a post or an event (or the campaign's "
        "start) to the last (or its end, if past), zeros where nothing happened; at most the "
        "newest 1,000 days."
    )
    result: strawberry.Private[campaigns.CampaignPerformance]

    @strawberry.field(description="The best items with a known value, best first.")
    def top(self, first: First = 5) -> list[CampaignContentPerformance]:
        return [CampaignContentPerformance.of(i) for i in self.result.top(max(1, min(first, 50)))]

    @strawberry.field(description="The worst items with a known value, worst first.")
    def bottom(self, first: First = 5) -> list[CampaignContentPerformance]:
        worst = self.result.bottom(max(1, min(first, 50)))
        return [CampaignContentPerformance.of(i) for i in worst]

    @classmethod
    def of(cls, value: campaigns.CampaignPerformance) -> CampaignPerformance:
        row = value.campaign
        return cls(
            campaign=Campaign.from_row(row),
            start_date=row.start_date,
            end_date=row.end_date,
            objectives=list(row.objectives),
            ranked_by=value.rank_by,
            figures=SnapshotFigures.of(value.figures),
            events=EngagementEventCounts.of(value.events),
            platforms=[CampaignPlatformPerformance.of(p) for p in value.platforms],
            contents=[CampaignContentPerformance.of(i) for i in value.items],
            published_posts=value.published_posts,
            published_contents=value.published_items,
            first_published_at=value.first_published_at,
            last_published_at=value.last_published_at,
            daily=[CampaignDay.of(d) for d in value.days],
            result=value,
        )
