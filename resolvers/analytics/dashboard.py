"""Analytics: analyticsDashboard and exportAnalytics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.services.analytics import dashboard, export
from resolvers.common import WorkspaceId, principal_of, state_of, workspace_of
from schema.context import Info
from schema.types.analytics.dashboard import AnalyticsDashboard, AnalyticsExport
from schema.types.vocabulary import ExportFormat

From = Annotated[
    datetime,
    strawberry.argument(name="from", description="Start of the period (with an offset)."),
]
To = Annotated[datetime, strawberry.argument(description="End of the period (exclusive).")]


@strawberry.type
class DashboardQuery:
    @strawberry.field(
        description="A workspace's analytics over [from, to) (at most 366 days): posts, "
        "impressions, average engagement rate, top platform, top 5 performers and the change "
        "against the previous period of the same length, from platform metrics and "
        "first-party events, shown separately and combined. Requires viewer role."
    )
    async def analytics_dashboard(
        self, info: Info, workspace_id: WorkspaceId, from_: From, to: To
    ) -> AnalyticsDashboard:
        value = await dashboard.dashboard(
            state_of(info).read_session_factory,
            principal_of(info),
            workspace_of(workspace_id),
            from_,
            to,
        )
        return AnalyticsDashboard.of(value)

    @strawberry.field(
        description="A signed link (valid 10 minutes, for you only) to download the "
        "dashboard's figures over [from, to) as a file: one row per content item, platform "
        "and source, whose columns sum to the dashboard's figures. Requires viewer role."
    )
    async def export_analytics(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        from_: From,
        to: To,
        format: Annotated[
            ExportFormat, strawberry.argument(description="The file format.")
        ] = ExportFormat.CSV,
    ) -> AnalyticsExport:
        state = state_of(info)
        link = export.create_link(
            principal_of(info),
            state.keys.signing_secret,
            state.settings.api_url,
            workspace_of(workspace_id),
            from_,
            to,
            ExportFormat(format),
        )
        return AnalyticsExport.of(link)
