"""Platform metrics of published posts: one snapshot row per collection, and each target's
collection schedule (app/services/analytics/metrics.py).

Snapshots are only ever inserted: a failed collection writes nothing to them, so earlier
snapshots survive any platform error. The schedule row is the collector's state: the next
step (1 h, 6 h, 24 h, 72 h, 7 d after publishing), when it is due, the failed attempts
within the step, and the lease of the collector holding it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDPrimaryKey
from app.models.publishing import PostTarget
from app.models.vocabulary import Platform, one_of

# The number of collection steps (app/services/analytics/metrics.py STEPS): a schedule
# whose metrics_step reached it is finished.
STEP_COUNT = 5

# The collector's discovery path: recently published targets (post_targets is publishing's
# table; the index serves only this query, so it is declared beside it).
Index(
    "ix_post_targets_published_at",
    PostTarget.published_at,
    postgresql_where=text("status = 'PUBLISHED'"),
)


class MetricSnapshot(UUIDPrimaryKey, Base):
    """What a platform reported for one target at one time; None where it says nothing."""

    __tablename__ = "metric_snapshots"
    __table_args__ = (
        CheckConstraint(one_of("platform", Platform), name="platform_valid"),
        CheckConstraint(f"step BETWEEN 0 AND {STEP_COUNT - 1}", name="step_valid"),
        # A target's latest snapshot and its history.
        Index("ix_metric_snapshots_target_collected", "target_id", "collected_at"),
        # A content item's history (contentPerformance).
        Index("ix_metric_snapshots_content_collected", "content_id", "collected_at"),
        # A workspace's snapshots by time (performanceUpdated catch-up, dashboards).
        Index("ix_metric_snapshots_workspace_collected", "workspace_id", "collected_at"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    target_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("post_targets.id", ondelete="CASCADE"), nullable=False
    )
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    # The schedule step this collection served (0: 1 h ... 4: 7 d).
    step: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    collected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    impressions: Mapped[int | None] = mapped_column(BigInteger)
    reach: Mapped[int | None] = mapped_column(BigInteger)
    likes: Mapped[int | None] = mapped_column(BigInteger)
    comments: Mapped[int | None] = mapped_column(BigInteger)
    shares: Mapped[int | None] = mapped_column(BigInteger)
    clicks: Mapped[int | None] = mapped_column(BigInteger)
    saves: Mapped[int | None] = mapped_column(BigInteger)
    # The platform's own counters as it named them (views, quotes, bookmarks...).
    raw: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class MetricSchedule(Base):
    """When a published target's metrics are collected next."""

    __tablename__ = "metric_schedules"
    __table_args__ = (
        CheckConstraint(f"metrics_step BETWEEN 0 AND {STEP_COUNT}", name="metrics_step_valid"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        # The collector's due query (finished schedules drop out of the index).
        Index(
            "ix_metric_schedules_due",
            "next_metrics_at",
            postgresql_where=text("next_metrics_at IS NOT NULL"),
        ),
    )

    target_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("post_targets.id", ondelete="CASCADE"),
        primary_key=True,
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The next step to collect (STEP_COUNT: finished).
    metrics_step: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    # Due time of the next collection (a retry's, or a claim's lease end); None: finished.
    next_metrics_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Failed attempts within the current step.
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    # Set by the claim: only the collector holding this lease may write the outcome.
    lease_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_collected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
