"""SQLAlchemy models. Import every model here so Alembic sees the whole metadata."""

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
from app.models.generation import Generation
from app.models.identity import PasswordResetToken, RefreshToken, User
from app.models.job import Job, JobStatus
from app.models.personalization import ContentPersonalization, ContentVariant
from app.models.workspace import ApiKey, AuditEntry, Invitation, Membership, Workspace

__all__ = [
    "ApiKey",
    "AudienceSegment",
    "AuditEntry",
    "Base",
    "Campaign",
    "Content",
    "ContentComment",
    "ContentMedia",
    "ContentPersonalization",
    "ContentVariant",
    "ContentVariation",
    "ContentVersion",
    "Generation",
    "Invitation",
    "Job",
    "JobStatus",
    "MediaAsset",
    "Membership",
    "PasswordResetToken",
    "RefreshToken",
    "ReviewLink",
    "User",
    "Workspace",
]
