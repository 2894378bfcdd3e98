"""Engagement models: each trained version with its held-out quality (app/services/
analytics/engagement_model.py).

A version belongs to a workspace, or to the whole instance (`workspace_id` NULL): the
prior that answers for workspaces without enough history of their own. The fitted model
is stored as a pickle with an HMAC of it under a key derived from the app's secret; a
blob whose HMAC does not match is never unpickled (a model is derived data: one that
cannot be verified is trained again).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDPrimaryKey


class EngagementModel(UUIDPrimaryKey, Base):
    """One trained version of a workspace's (or the instance's) engagement model."""

    __tablename__ = "engagement_models"
    __table_args__ = (
        UniqueConstraint("workspace_id", "version", postgresql_nulls_not_distinct=True),
        CheckConstraint("n_train > 0 AND n_test > 0", name="sizes_positive"),
        # The newest version of a workspace (and of the instance prior).
        Index("ix_engagement_models_workspace_version", "workspace_id", "version"),
    )

    workspace_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    algorithm: Mapped[str] = mapped_column(String(64), nullable=False)
    trained_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    n_train: Mapped[int] = mapped_column(Integer, nullable=False)
    n_test: Mapped[int] = mapped_column(Integer, nullable=False)
    mae: Mapped[float] = mapped_column(Float, nullable=False)
    baseline_mae: Mapped[float] = mapped_column(Float, nullable=False)
    spearman: Mapped[float | None] = mapped_column(Float)
    features: Mapped[list[Any]] = mapped_column(JSONB, nullable=False)
    blob: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
