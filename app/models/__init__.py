"""SQLAlchemy models. Import every model here so Alembic sees the whole metadata."""

from app.models.base import Base
from app.models.identity import PasswordResetToken, RefreshToken, User
from app.models.job import Job, JobStatus
from app.models.workspace import ApiKey, AuditEntry, Invitation, Membership, Workspace

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Invitation",
    "Job",
    "JobStatus",
    "Membership",
    "PasswordResetToken",
    "RefreshToken",
    "User",
    "Workspace",
]
