"""Analytics: a content item's platform metrics (contentPerformance) and a workspace's new
snapshots as they are collected (performanceUpdated)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from app.services.analytics import performance, performance_updates
from resolvers.common import WorkspaceId, principal_of, state_of, workspace_of
from schema.context import Info
from schema.ids import parse_id
from schema.types.analytics.performance import ContentPerformance, PerformanceUpdate

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


@strawberry.type
class PerformanceSubscription:
    @strawberry.subscription(
        description="Each new metrics snapshot of the workspace's published targets, as the "
        "collector stores it; after missed events, those collected meanwhile (catchUp). "
        "Readers of the workspace."
    )
    async def performance_updated(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        since: Annotated[
            datetime | None,
            strawberry.argument(
                description="Reconnecting: first send the snapshots collected from this time "
                "on (your last collectedAt; at most 500, oldest first, catchUp true)."
            ),
        ] = None,
    ) -> AsyncGenerator[PerformanceUpdate, None]:
        state = state_of(info)
        stream = performance_updates.follow(
            state.session_factory,
            state.hub,
            principal_of(info),
            workspace_of(workspace_id),
            since=since,
        )
        async for update in stream:
            info.context.fresh_loaders()
            yield PerformanceUpdate.of(update)
