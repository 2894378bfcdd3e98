"""engagementTrends: first-party engagement per hour, day or week."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.models.vocabulary import EngagementEventType as E
from app.services.analytics import trends


@strawberry.type(description="First-party engagement events in one bucket (UTC).")
class EngagementTrendPoint:
    bucket_start: datetime = strawberry.field(
        description="Start of the hour, day or week (Monday) in UTC."
    )
    views: int = strawberry.field(description="VIEW events.")
    clicks: int = strawberry.field(description="CLICK events.")
    likes: int = strawberry.field(description="LIKE events.")
    shares: int = strawberry.field(description="SHARE events.")
    comments: int = strawberry.field(description="COMMENT events.")
    impressions: int = strawberry.field(description="IMPRESSION events.")
    conversions: int = strawberry.field(description="CONVERSION events.")
    conversion_value: float = strawberry.field(description="Sum of the CONVERSION events' values.")
    engagement_rate: float | None = strawberry.field(
        description="(likes + comments + shares) / impressions; null without impressions."
    )
    ctr: float | None = strawberry.field(
        description="clicks / impressions; null without impressions."
    )

    @classmethod
    def of(cls, point: trends.TrendPoint) -> EngagementTrendPoint:
        c = point.counts
        return cls(
            bucket_start=point.bucket_start,
            views=c[E.VIEW],
            clicks=c[E.CLICK],
            likes=c[E.LIKE],
            shares=c[E.SHARE],
            comments=c[E.COMMENT],
            impressions=c[E.IMPRESSION],
            conversions=c[E.CONVERSION],
            conversion_value=point.conversion_value,
            engagement_rate=point.engagement_rate,
            ctr=point.ctr,
        )
