"""Root mutation: each domain's mutations."""

from __future__ import annotations

import strawberry

from resolvers.ai import AIMutation
from resolvers.analytics.ab_tests import AbTestMutation
from resolvers.analytics.engagement import EngagementMutation
from resolvers.analytics.prediction import PredictionMutation
from resolvers.content.campaigns import CampaignMutation
from resolvers.content.items import ContentItemMutation
from resolvers.content.media import MediaMutation
from resolvers.content.review_links import ReviewMutation
from resolvers.content.segments import SegmentMutation
from resolvers.content.variations import VariationMutation
from resolvers.content.workflow import WorkflowMutation
from resolvers.identity import IdentityMutation
from resolvers.jobs import JobMutation
from resolvers.outgoing import WebhookMutation
from resolvers.publishing import PublishingMutation
from resolvers.publishing_imports import ScheduleImportMutation
from resolvers.workspaces.api_keys import ApiKeyMutation
from resolvers.workspaces.teams import WorkspaceMutation


@strawberry.type(description="Entry points for changing data.")
class Mutation(
    IdentityMutation,
    WorkspaceMutation,
    ApiKeyMutation,
    ContentItemMutation,
    WorkflowMutation,
    VariationMutation,
    CampaignMutation,
    MediaMutation,
    SegmentMutation,
    ReviewMutation,
    JobMutation,
    AIMutation,
    PublishingMutation,
    PredictionMutation,
    EngagementMutation,
    AbTestMutation,
    ScheduleImportMutation,
    WebhookMutation,
):
    pass
