"""SQLAlchemy models. Import every model here so Alembic sees the whole metadata."""

from app.models import dashboard_indexes as dashboard_indexes
from app.models.ab_tests import AbTest, AbTestArm
from app.models.base import Base
from app.models.content import (
    AudienceSegment,
    Campaign,
    Content,
    ContentComment,
    ContentMedia,
    ContentVariation,
    ContentVersion,
    MediaAsset,
    ReviewLink,
)
from app.models.engagement import (
    EngagementBatch,
    EngagementDaily,
    EngagementDashboardDaily,
    EngagementEvent,
    EngagementEventId,
    EngagementHourly,
    EngagementRollupDelta,
)
from app.models.generation import Generation
from app.models.identity import PasswordResetToken, RefreshToken, User
from app.models.job import Job, JobStatus
from app.models.metrics import MetricSchedule, MetricSnapshot
from app.models.personalization import ContentPersonalization, ContentVariant
from app.models.prediction import EngagementModel
from app.models.publishing import (
    AccountStatus,
    CommentStatus,
    PostingSlot,
    PostSeries,
    PostTarget,
    ScheduledPost,
    SocialAccount,
    TargetStatus,
)
from app.models.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEventRow
from app.models.workspace import ApiKey, AuditEntry, Invitation, Membership, Workspace

__all__ = [
    "AbTest",
    "AbTestArm",
    "AccountStatus",
    "ApiKey",
    "AudienceSegment",
    "AuditEntry",
    "Base",
    "Campaign",
    "CommentStatus",
    "Content",
    "ContentComment",
    "ContentMedia",
    "ContentPersonalization",
    "ContentVariant",
    "ContentVariation",
    "ContentVersion",
    "EngagementBatch",
    "EngagementDaily",
    "EngagementDashboardDaily",
    "EngagementEvent",
    "EngagementEventId",
    "EngagementHourly",
    "EngagementModel",
    "EngagementRollupDelta",
    "Generation",
    "Invitation",
    "Job",
    "JobStatus",
    "MediaAsset",
    "Membership",
    "MetricSchedule",
    "MetricSnapshot",
    "PasswordResetToken",
    "PostSeries",
    "PostTarget",
    "PostingSlot",
    "RefreshToken",
    "ReviewLink",
    "ScheduledPost",
    "SocialAccount",
    "TargetStatus",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEventRow",
    "Workspace",
]
