"""Analytics: a content item's platform metrics (contentPerformance)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.services.analytics import performance
from resolvers.common import principal_of, state_of
from schema.context import Info
from schema.ids import parse_id
from schema.types.analytics.performance import ContentPerformance

ContentId = Annotated[
    relay.GlobalID, strawberry.argument(description="Global ID of the content item.")
]


@strawberry.type
class PerformanceQuery:
    @strawberry.field(
        description="A content item's platform metrics: per platform and per target "
        "impressions, reach, likes, comments, shares, clicks, engagement rate and CTR from "
        "each published target's latest snapshot, and their history. Requires viewer role."
    )
    async def content_performance(self, info: Info, content_id: ContentId) -> ContentPerformance:
        result = await performance.content_performance(
            state_of(info).read_session_factory,
            principal_of(info),
            parse_id(content_id, "Content", "contentId"),
        )
        return ContentPerformance.of(result)
