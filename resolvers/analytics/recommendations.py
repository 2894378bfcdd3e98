"""Analytics: what to write or post next (recommendations)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.models.vocabulary import RecommendationKind as Kind
from app.services.analytics import recommendations
from resolvers.common import WorkspaceId, principal_of, state_of, workspace_of
from schema.context import Info
from schema.ids import parse_id
from schema.types.analytics.recommendations import Recommendation
from schema.types.vocabulary import RecommendationKind


@strawberry.type
class RecommendationsQuery:
    @strawberry.field(
        description="What to write or post next, best first: a hybrid of similarity "
        "(embeddings), performance (engagement rate normalised within each platform, shrunk "
        "when impressions are few; popularity decays it with age) and a collaborative "
        "signal (first-party visitors engaging with the same items), each with an "
        "explanation and the numbers behind it. Empty when the data say nothing. "
        "Requires viewer role."
    )
    async def recommendations(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        kind: Annotated[RecommendationKind, strawberry.argument(description="What to suggest.")],
        first: Annotated[int, strawberry.argument(description="How many, 1-50.")] = 10,
        content_id: Annotated[
            relay.GlobalID | None,
            strawberry.argument(
                description="SIMILAR_HIGH_PERFORMERS: the draft to anchor on (default: the "
                "workspace's five most recently updated drafts)."
            ),
        ] = None,
    ) -> list[Recommendation]:
        found = await recommendations.recommendations(
            state_of(info).read_session_factory,
            principal_of(info),
            workspace_of(workspace_id),
            Kind(kind),
            first,
            content_id=parse_id(content_id, "Content", "contentId") if content_id else None,
        )
        return [Recommendation.of(r) for r in found]
