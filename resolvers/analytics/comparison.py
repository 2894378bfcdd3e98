"""Analytics: content items side by side (compareContent)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.services.analytics import comparison
from resolvers.common import principal_of, state_of
from schema.context import Info
from schema.ids import parse_id
from schema.types.analytics.comparison import ContentComparison


@strawberry.type
class ComparisonQuery:
    @strawberry.field(
        description="Compare 2 to 10 content items: each one's platform figures (as "
        "contentPerformance) and first-party events (all time), and per metric the ranks, "
        "ratios to the best and to the mean, and the winner, in all and per platform. "
        "BAD_USER_INPUT for fewer than 2, more than 10 or repeated ids (extensions.reason: "
        "TOO_SHORT, TOO_MANY, DUPLICATE); NOT_FOUND when any item is not visible to you. "
        "Requires viewer role in each item's workspace."
    )
    async def compare_content(
        self,
        info: Info,
        ids: Annotated[
            list[relay.GlobalID],
            strawberry.argument(description="Global IDs of the content items, 2 to 10."),
        ],
    ) -> ContentComparison:
        parsed = [parse_id(value, "Content", "ids") for value in ids]
        result = await comparison.compare_content(
            state_of(info).read_session_factory, principal_of(info), parsed
        )
        return ContentComparison.of(result)
