"""Analytics: engagement over time (engagementTrends)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.services.analytics import trends
from resolvers.common import WorkspaceId, principal_of, state_of, workspace_of
from schema.context import Info
from schema.types.analytics.trends import EngagementTrendPoint
from schema.types.vocabulary import Platform, TrendInterval


@strawberry.type
class TrendsQuery:
    @strawberry.field(
        description="A workspace's first-party engagement events (POST /ingest/events, "
        "recordEngagementEvents) per HOUR, DAY or WEEK (UTC; weeks start on Monday) from the "
        "bucket holding `from` up to `to` (exclusive), at most 1,000 buckets, empty buckets "
        "as zeros; from the rollups, so events show within seconds of ingest. `platform`: "
        "only events about that platform's post targets. Requires viewer role."
    )
    async def engagement_trends(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        interval: Annotated[TrendInterval, strawberry.argument(description="Bucket size.")],
        from_: Annotated[
            datetime, strawberry.argument(name="from", description="Start (its bucket's).")
        ],
        to: Annotated[datetime, strawberry.argument(description="End (exclusive).")],
        platform: Annotated[
            Platform | None, strawberry.argument(description="Only this platform's targets.")
        ] = None,
    ) -> list[EngagementTrendPoint]:
        points = await trends.trends(
            state_of(info).read_session_factory,
            principal_of(info),
            workspace_of(workspace_id),
            TrendInterval(interval),
            from_,
            to,
            Platform(platform).value if platform is not None else None,
        )
        return [EngagementTrendPoint.of(p) for p in points]
