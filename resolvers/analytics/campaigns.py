"""Analytics: how a campaign's content performed (campaignPerformance)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.services.analytics import campaigns
from resolvers.common import principal_of, state_of
from schema.context import Info
from schema.ids import parse_id
from schema.types.analytics.campaigns import CampaignPerformance
from schema.types.vocabulary import PerformanceMetric


@strawberry.type
class CampaignPerformanceQuery:
    @strawberry.field(
        description="How a campaign's content performed: totals from platform snapshots and "
        "from first-party events (each saying its source), per platform, every item ranked "
        "by `rankBy` (with top and bottom), published posts, first and last publish, a "
        "daily series, and the campaign's dates and objectives. Requires viewer role in the "
        "campaign's workspace (NOT_FOUND outside it)."
    )
    async def campaign_performance(
        self,
        info: Info,
        campaign_id: Annotated[
            relay.GlobalID, strawberry.argument(description="Global ID of the campaign.")
        ],
        rank_by: Annotated[
            PerformanceMetric,
            strawberry.argument(description="The metric items are ranked by (higher is better)."),
        ] = PerformanceMetric.ENGAGEMENT_RATE,
    ) -> CampaignPerformance:
        result = await campaigns.campaign_performance(
            state_of(info).read_session_factory,
            principal_of(info),
            parse_id(campaign_id, "Campaign", "campaignId"),
            PerformanceMetric(rank_by),
        )
        return CampaignPerformance.of(result)
