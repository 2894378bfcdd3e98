"""Root query: health, Relay `node`, and each domain's query fields."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.errors import BadUserInput
from app.services.ops import health
from resolvers.ai import AIQuery
from resolvers.analytics.ab_tests import AbTestQuery
from resolvers.analytics.campaigns import CampaignPerformanceQuery
from resolvers.analytics.comparison import ComparisonQuery
from resolvers.analytics.dashboard import DashboardQuery
from resolvers.analytics.performance import PerformanceQuery
from resolvers.analytics.prediction import PredictionQuery
from resolvers.analytics.recommendations import RecommendationsQuery
from resolvers.analytics.timing import TimingQuery
from resolvers.analytics.trends import TrendsQuery
from resolvers.audit import AuditQuery
from resolvers.content.campaigns import CampaignQuery
from resolvers.content.items import ContentItemQuery
from resolvers.content.media import MediaQuery
from resolvers.content.review_links import ReviewQuery
from resolvers.content.search import SearchQuery
from resolvers.content.segments import SegmentQuery
from resolvers.identity import IdentityQuery
from resolvers.jobs import JobQuery
from resolvers.outgoing import WebhookQuery
from resolvers.publishing import PublishingQuery
from resolvers.workspaces.api_keys import ApiKeyQuery
from resolvers.workspaces.teams import WorkspaceQuery
from schema.context import Info
from schema.types.ops import Health


@strawberry.type(description="Entry points for reading data.")
class Query(
    IdentityQuery,
    WorkspaceQuery,
    ApiKeyQuery,
    AuditQuery,
    ContentItemQuery,
    SearchQuery,
    CampaignQuery,
    MediaQuery,
    SegmentQuery,
    ReviewQuery,
    JobQuery,
    AIQuery,
    PublishingQuery,
    PerformanceQuery,
    PredictionQuery,
    TimingQuery,
    TrendsQuery,
    AbTestQuery,
    RecommendationsQuery,
    ComparisonQuery,
    CampaignPerformanceQuery,
    DashboardQuery,
    WebhookQuery,
):
    @strawberry.field(
        description="Fetch any object by its global ID (Relay). Null when it does not exist "
        "or is not visible to you."
    )
    async def node(
        self,
        info: Info,
        id: Annotated[relay.GlobalID, strawberry.argument(description="Global ID of the object.")],
    ) -> relay.Node | None:
        # Written out rather than `relay.node()`, whose field extension can serve only one
        # schema per process (tests and tools build several).
        try:
            node: relay.Node | None = await id.resolve_node(info, required=False)
        except (KeyError, ValueError, AssertionError) as exc:
            raise BadUserInput(f"Unknown object type in id: {id.type_name!r}") from exc
        return node

    @strawberry.field(
        description="Reachability of PostgreSQL and Redis, and the server version. Public."
    )
    async def health(self, info: Info) -> Health:
        state = info.context.state
        return Health.from_report(await health.check(state.read_session_factory, state.redis))
