"""analyticsDashboard and exportAnalytics: a workspace's figures over a period."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime

import strawberry
from strawberry import relay

from app.services.analytics import dashboard, dashboard_rows, export
from schema.context import Info
from schema.ids import to_global_id
from schema.types.content.items import Content
from schema.types.vocabulary import Platform


@strawberry.type(
    description="Figures of one source (platform metrics or first-party events) or of both "
    "combined. A field that does not apply to a source is null: posts and contentItems for "
    "first-party events, views and conversions for platform metrics; a platform counter is "
    "also null when no published target's platform reports it."
)
class DashboardFigures:
    posts: int | None = strawberry.field(
        description="Post targets (one post on one account) published in the period."
    )
    content_items: int | None = strawberry.field(
        description="Distinct content items behind those posts."
    )
    impressions: int | None = strawberry.field(
        description="Times shown: the platforms' impressions, IMPRESSION events."
    )
    views: int | None = strawberry.field(description="VIEW events.")
    likes: int | None = strawberry.field(description="Likes, favourites, reactions.")
    comments: int | None = strawberry.field(description="Comments or replies.")
    shares: int | None = strawberry.field(description="Shares, reposts and quotes.")
    clicks: int | None = strawberry.field(description="Link clicks, CLICK events.")
    conversions: int | None = strawberry.field(description="CONVERSION events.")
    conversion_value: float | None = strawberry.field(
        description="Sum of the CONVERSION events' values."
    )
    engagements: int | None = strawberry.field(description="likes + comments + shares.")
    engagement_rate: float | None = strawberry.field(
        description="Engagements / impressions (impression-weighted average), over what "
        "can support it: first-party events and the targets whose platform reports "
        "impressions above 0; null without impressions."
    )
    ctr: float | None = strawberry.field(
        description="Clicks / impressions over what reports both; null without impressions."
    )

    @classmethod
    def of(cls, value: dashboard.Figures) -> DashboardFigures:
        return cls(**asdict(value))


@strawberry.type(description="One platform's figures in the period, both sources.")
class DashboardPlatform:
    platform: Platform = strawberry.field(description="The platform.")
    impressions: int = strawberry.field(description="Impressions, both sources.")
    engagements: int = strawberry.field(description="likes + comments + shares, both sources.")
    engagement_rate: float | None = strawberry.field(
        description="Engagements / impressions over what can support it; null without impressions."
    )

    @classmethod
    def of(cls, value: dashboard.PlatformFigures) -> DashboardPlatform:
        return cls(
            platform=Platform(value.platform),
            impressions=value.impressions,
            engagements=value.engagements,
            engagement_rate=value.engagement_rate,
        )


@strawberry.type(description="A content item among the period's best, both sources.")
class DashboardPerformer:
    content_id: relay.GlobalID = strawberry.field(description="The item's global ID.")
    platforms: list[Platform] = strawberry.field(
        description="Platforms its published posts and events were on."
    )
    impressions: int = strawberry.field(description="Impressions, both sources.")
    engagements: int = strawberry.field(description="likes + comments + shares, both sources.")
    engagement_rate: float | None = strawberry.field(
        description="Engagements / impressions over what can support it; null without impressions."
    )
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def of(cls, value: dashboard.Performer) -> DashboardPerformer:
        return cls(
            content_id=to_global_id("Content", value.content_id),
            platforms=[Platform(p) for p in value.platforms],
            impressions=value.impressions,
            engagements=value.engagements,
            engagement_rate=value.engagement_rate,
            row_id=value.content_id,
        )

    @strawberry.field(description="The content item (null if no longer visible).")
    async def content(self, info: Info) -> Content | None:
        row = await info.context.loaders.content.contents.load(self.row_id)
        return Content.from_row(row) if row else None

    @strawberry.field(description="The item's title (null if no longer visible).")
    async def title(self, info: Info) -> str | None:
        row = await info.context.loaders.content.contents.load(self.row_id)
        return row.title if row else None


@strawberry.type(description="A headline figure now and in the previous period.")
class DashboardChange:
    current: float | None = strawberry.field(description="The value in the period.")
    previous: float | None = strawberry.field(
        description="The value in the previous period (the same length, just before `from`)."
    )
    relative: float | None = strawberry.field(
        description="(current - previous) / previous; null when the previous is 0 or null."
    )

    @classmethod
    def of(cls, value: dashboard.Change) -> DashboardChange:
        return cls(current=value.current, previous=value.previous, relative=value.relative)


@strawberry.type(description="The combined headline figures against the previous period.")
class DashboardChanges:
    posts: DashboardChange = strawberry.field(description="Posts published.")
    impressions: DashboardChange = strawberry.field(description="Impressions.")
    engagements: DashboardChange = strawberry.field(description="Engagements.")
    clicks: DashboardChange = strawberry.field(description="Clicks.")
    engagement_rate: DashboardChange = strawberry.field(description="Engagement rate.")
    ctr: DashboardChange = strawberry.field(description="Click-through rate.")


@strawberry.type(
    description="A workspace's analytics over [from, to). Platform metrics: the posts "
    "published in the period, each by its latest snapshot (attributed to the publish date, "
    "as social dashboards do). First-party events: those that occurred in the period, from "
    "the rollups at hour granularity (an hour counts when it starts in the period). Shown "
    "separately and combined; headline fields are the combined ones."
)
class AnalyticsDashboard:
    from_: datetime = strawberry.field(name="from", description="Start of the period.")
    to: datetime = strawberry.field(description="End of the period (exclusive).")
    previous_from: datetime = strawberry.field(
        description="Start of the previous period (which ends at `from`)."
    )
    posts: int = strawberry.field(description="Posts published in the period.")
    impressions: int = strawberry.field(description="Impressions, both sources.")
    engagement_rate: float | None = strawberry.field(
        description="Average engagement rate (impression-weighted), both sources; null "
        "without impressions."
    )
    platform: DashboardFigures = strawberry.field(description="Platform metrics alone.")
    first_party: DashboardFigures = strawberry.field(description="First-party events alone.")
    combined: DashboardFigures = strawberry.field(description="Both sources.")
    previous: DashboardFigures = strawberry.field(
        description="Both sources in the previous period."
    )
    platforms: list[DashboardPlatform] = strawberry.field(
        description="Each platform with posts or events in the period."
    )
    top_platform: DashboardPlatform | None = strawberry.field(
        description="The platform with the best engagement rate among those with at least "
        f"{dashboard.MIN_PLATFORM_IMPRESSIONS} impressions in the period; without one, the "
        "one with the most engagements; null without any."
    )
    top_performers: list[DashboardPerformer] = strawberry.field(
        description=f"The {dashboard_rows.TOP_PERFORMERS} content items with the most engagements "
        "in the period (both sources), best first."
    )
    change: DashboardChanges = strawberry.field(
        description="Headline figures against the previous period."
    )

    @classmethod
    def of(cls, value: dashboard.Dashboard) -> AnalyticsDashboard:
        combined = value.current.combined
        return cls(
            from_=value.period.since,
            to=value.period.until,
            previous_from=value.period.previous.since,
            posts=combined.posts or 0,
            impressions=combined.impressions or 0,
            engagement_rate=combined.engagement_rate,
            platform=DashboardFigures.of(value.current.platform),
            first_party=DashboardFigures.of(value.current.first_party),
            combined=DashboardFigures.of(combined),
            previous=DashboardFigures.of(value.previous.combined),
            platforms=[DashboardPlatform.of(p) for p in value.platforms],
            top_platform=DashboardPlatform.of(value.top_platform) if value.top_platform else None,
            top_performers=[DashboardPerformer.of(p) for p in value.top_performers],
            change=DashboardChanges(
                **{name: DashboardChange.of(value.change(name)) for name in dashboard.HEADLINES}
            ),
        )


@strawberry.type(description="A signed, short-lived link to download an analytics export.")
class AnalyticsExport:
    url: str = strawberry.field(
        description="GET it (no Authorization header needed) before `expiresAt`; it works "
        "only while its creator may still read the workspace."
    )
    expires_at: datetime = strawberry.field(description="When the link stops working.")
    filename: str = strawberry.field(description="The file's name.")

    @classmethod
    def of(cls, value: export.ExportLink) -> AnalyticsExport:
        return cls(url=value.url, expires_at=value.expires_at, filename=value.filename)
