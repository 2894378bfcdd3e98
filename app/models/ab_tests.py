"""A/B tests of a content item: the item itself is the control "A", its AI-written
variants (content_variants: "B", "C", ...) the other arms, each with a share of the traffic.

A test counts the first-party events that name its arm's label (`variant`) about its
content, from its start to its stop (app/services/analytics/ab_test_results.py). At most
one test of an item runs at a time (a partial unique index), so an event's label belongs
to one running test.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDPrimaryKey
from app.models.vocabulary import AbTestMetric, AbTestStatus, one_of

CONTROL_LABEL = "A"


class AbTest(UUIDPrimaryKey, Base):
    """One test: what it measures, and its window (started_at up to stopped_at or now)."""

    __tablename__ = "ab_tests"
    __table_args__ = (
        CheckConstraint(one_of("metric", AbTestMetric), name="metric_valid"),
        CheckConstraint(one_of("status", AbTestStatus), name="status_valid"),
        # A stopped test has its end, a running one none; the end never precedes the start.
        CheckConstraint(
            "(status = 'STOPPED') = (stopped_at IS NOT NULL)", name="stopped_at_when_stopped"
        ),
        CheckConstraint("stopped_at >= started_at", name="stops_after_start"),
        Index(
            "ix_ab_tests_one_running",
            "content_id",
            unique=True,
            postgresql_where=text("status = 'RUNNING'"),
        ),
        # abTests(workspaceId, contentId?): newest first.
        Index("ix_ab_tests_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_ab_tests_content_created", "content_id", "created_at", "id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    metric: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class AbTestArm(Base):
    """One arm of a test, in order: position 0 is the control (the item itself, no
    variant), then the variants as the test named them."""

    __tablename__ = "ab_test_arms"
    __table_args__ = (
        PrimaryKeyConstraint("test_id", "position"),
        UniqueConstraint("test_id", "label"),
        UniqueConstraint("test_id", "variant_id"),
        CheckConstraint("(position = 0) = (variant_id IS NULL)", name="control_first"),
        CheckConstraint("label ~ '^[A-Z]{1,3}$'", name="label_letters"),
        CheckConstraint("share > 0 AND share <= 1", name="share_range"),
        Index("ix_ab_test_arms_variant_id", "variant_id"),
    )

    test_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("ab_tests.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    # The label events name (`variant`): "A" for the control, the variant's own otherwise.
    label: Mapped[str] = mapped_column(String(3), nullable=False)
    # No cascade: a variant a test references is never deleted on its own (it goes only
    # with its content, and the test with it).
    variant_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("content_variants.id")
    )
    share: Mapped[float] = mapped_column(Float, nullable=False)
