"""Analytics: when to post (optimalPostingTimes) and what works (insights)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.services.analytics import insights, timing
from resolvers.common import WorkspaceId, principal_of, state_of, workspace_of
from schema.context import Info
from schema.types.analytics.timing import Insight, OptimalPostingTimes
from schema.types.vocabulary import Platform


@strawberry.type
class TimingQuery:
    @strawberry.field(
        description="The best hours of the week to post, from the workspace's own published "
        "posts of the last year (engagement rate by local weekday and hour, smoothed over "
        "neighbouring hours, shrunk toward the platform's typical pattern), with confidence "
        "and sample size; with thin history, the platform's typical times, saying so. "
        "Requires viewer role."
    )
    async def optimal_posting_times(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        platform: Annotated[
            Platform | None, strawberry.argument(description="Only this platform's posts.")
        ] = None,
        timezone: Annotated[
            str, strawberry.argument(description="IANA zone of the answer (the audience's).")
        ] = "UTC",
    ) -> OptimalPostingTimes:
        found = await timing.optimal_times(
            state_of(info).read_session_factory,
            principal_of(info),
            workspace_of(workspace_id),
            Platform(platform).value if platform is not None else None,
            timezone,
        )
        return OptimalPostingTimes.of(found)

    @strawberry.field(
        description="Three to five statements computed from the workspace's posts published "
        "in [from, to) (at most 366 days), each with the numbers behind it: the strongest "
        "differences in engagement rate (at least 1.2x, at least 8 posts per group, "
        "Mann-Whitney U significant after a Benjamini-Hochberg correction at 5% FDR), one "
        "per kind of comparison. Fewer, or none, when the data do not "
        "support more. Requires viewer role."
    )
    async def insights(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        from_: Annotated[
            datetime, strawberry.argument(name="from", description="Start (inclusive).")
        ],
        to: Annotated[datetime, strawberry.argument(description="End (exclusive).")],
    ) -> list[Insight]:
        found = await insights.workspace_insights(
            state_of(info).read_session_factory,
            principal_of(info),
            workspace_of(workspace_id),
            from_,
            to,
        )
        return [Insight.of(i) for i in found]
