"""Publishing: connected social accounts, scheduled posts with one target per account, and
weekly posting slots.

A target's row is the source of truth of its delivery (the arq job only triggers an
attempt): every state change is one guarded UPDATE (app/services/publishing/delivery.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDPrimaryKey
from app.models.vocabulary import Platform, one_of


class AccountStatus(StrEnum):
    CONNECTED = "CONNECTED"
    # The platform refused its token (revoked, refresh failed): a person must reconnect.
    NEEDS_RECONNECT = "NEEDS_RECONNECT"
    DISCONNECTED = "DISCONNECTED"


class TargetStatus(StrEnum):
    """One target's delivery: PENDING -> PUBLISHING -> PUBLISHED | FAILED | UNKNOWN, or
    CANCELLED before it went out. A retryable failure goes back to PENDING."""

    PENDING = "PENDING"
    PUBLISHING = "PUBLISHING"
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    # The platform may have accepted the post but could not tell us: a person decides.
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in (TargetStatus.PUBLISHED, TargetStatus.FAILED, TargetStatus.CANCELLED)


class CommentStatus(StrEnum):
    """A target's first comment, posted as its own step once the target is PUBLISHED."""

    NONE = "NONE"  # no first comment asked for
    PENDING = "PENDING"  # waiting for the post, or for its next attempt
    PUBLISHING = "PUBLISHING"
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"
    # It may have been posted but the platform could not tell us: a person checks.
    UNKNOWN = "UNKNOWN"


class SocialAccount(UUIDPrimaryKey, Timestamps, Base):
    """A place a workspace publishes to, with its credentials encrypted at rest."""

    __tablename__ = "social_accounts"
    __table_args__ = (
        CheckConstraint(one_of("platform", Platform), name="platform_valid"),
        CheckConstraint(one_of("status", AccountStatus), name="status_valid"),
        Index(
            "ix_social_accounts_workspace_created",
            "workspace_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
        # Connecting the same platform account again updates it instead of adding a twin.
        Index(
            "uq_social_accounts_external",
            "workspace_id",
            "platform",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL AND status <> 'DISCONNECTED'"),
        ),
        # The token refresher's path: connected accounts by expiry.
        Index(
            "ix_social_accounts_token_expiry",
            "token_expires_at",
            postgresql_where=text("status = 'CONNECTED' AND token_expires_at IS NOT NULL"),
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=AccountStatus.CONNECTED.value
    )
    # Why it needs reconnecting (the platform's words), shown to admins.
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The platform's id of the account (user, page, DID...); None where it has none.
    external_id: Mapped[str | None] = mapped_column(String(255))
    # app.platforms.publishing.Credentials as JSON, encrypted with the MultiFernet keys;
    # None once disconnected (nothing kept that could still act).
    credentials: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    disconnected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PostSeries(UUIDPrimaryKey, Timestamps, Base):
    """A recurring post: every `every_days` days at the first occurrence's local time in
    `timezone`, until `until` or for `count` posts. Each occurrence is a ScheduledPost
    (`series_id`, `occurrence_index`), created when the one before it is done."""

    __tablename__ = "post_series"
    __table_args__ = (
        CheckConstraint("every_days BETWEEN 1 AND 366", name="every_days_valid"),
        CheckConstraint("count IS NULL OR count BETWEEN 1 AND 1000", name="count_valid"),
        CheckConstraint("until IS NOT NULL OR count IS NOT NULL", name="has_end"),
        Index("ix_post_series_workspace_id", "workspace_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    variation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("content_variations.id", ondelete="SET NULL")
    )
    account_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    every_days: Mapped[int] = mapped_column(Integer, nullable=False)
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    count: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    # The first occurrence's wall-clock time in `timezone`: occurrence slot k is this
    # plus k * every_days local days (09:00 stays 09:00 across DST changes).
    anchor_local: Mapped[datetime] = mapped_column(DateTime(timezone=False), nullable=False)
    first_comment: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once no further occurrence is due (its end reached, the content deleted).
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )


class ScheduledPost(UUIDPrimaryKey, Timestamps, Base):
    """A content item (or one of its variations) scheduled to one or more accounts."""

    __tablename__ = "scheduled_posts"
    __table_args__ = (
        Index("ix_scheduled_posts_workspace_scheduled", "workspace_id", "scheduled_at", "id"),
        Index("ix_scheduled_posts_content_id", "content_id"),
        # Exactly one post per occurrence of a series, however often the hook runs.
        UniqueConstraint("series_id", "occurrence_index"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    # Set when one variation was scheduled; otherwise each target takes the content's
    # variation for its platform, or the content's own text.
    variation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("content_variations.id", ondelete="SET NULL")
    )
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # IANA name the time was chosen in (the calendar shows it there).
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    # A recurring post's occurrence: 0, 1, 2... in order of creation; `occurrence_slot` is
    # the series slot its time was taken from (slots missed while workers were down are
    # skipped, so slots can jump where indexes do not).
    series_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("post_series.id", ondelete="SET NULL")
    )
    occurrence_index: Mapped[int | None] = mapped_column(Integer)
    occurrence_slot: Mapped[int | None] = mapped_column(Integer)


class PostTarget(UUIDPrimaryKey, Timestamps, Base):
    """One post on one account: its own status, attempts, error and platform id."""

    __tablename__ = "post_targets"
    __table_args__ = (
        CheckConstraint(one_of("status", TargetStatus), name="status_valid"),
        CheckConstraint(one_of("platform", Platform), name="platform_valid"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint(one_of("comment_status", CommentStatus), name="comment_status_valid"),
        UniqueConstraint("post_id", "social_account_id"),
        UniqueConstraint("idempotency_key"),
        # The sweeper's two paths: due pending targets, and publishing ones past their lease.
        Index(
            "ix_post_targets_pending_due",
            "next_attempt_at",
            postgresql_where=text("status = 'PENDING'"),
        ),
        Index(
            "ix_post_targets_publishing_lease",
            "locked_until",
            postgresql_where=text("status = 'PUBLISHING'"),
        ),
        # Lists and the calendar: a workspace's targets by time (and by status).
        Index("ix_post_targets_workspace_scheduled", "workspace_id", "scheduled_at"),
        Index("ix_post_targets_workspace_status", "workspace_id", "status", "scheduled_at"),
        # Catch-up of postStatusChanged subscribers after a gap.
        Index("ix_post_targets_workspace_updated", "workspace_id", "updated_at"),
        Index("ix_post_targets_account_status", "social_account_id", "status"),
        # The comments sweep: published targets whose first comment still waits.
        Index(
            "ix_post_targets_comment_waiting",
            "published_at",
            postgresql_where=text(
                "status = 'PUBLISHED' AND comment_status IN ('PENDING', 'PUBLISHING')"
            ),
        ),
    )

    post_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("scheduled_posts.id", ondelete="CASCADE"), nullable=False
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    social_account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("social_accounts.id", ondelete="CASCADE"), nullable=False
    )
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=TargetStatus.PENDING.value
    )
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    # When the next attempt may start: the scheduled time, then each retry's back-off.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="5")
    # The attempt holding the target (PUBLISHING) owns it until then.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when an attempt may have reached the platform without our knowing the outcome
    # (answer lost, worker lost): the next attempt looks the post up, or relies on the
    # platform's idempotency key, or parks the target as UNKNOWN; never a blind repost.
    in_doubt: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    # Sent where the platform de-duplicates by one; stable across retries.
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)
    # Part of the arq job id; bumped to enqueue again past a stale arq entry.
    enqueue_generation: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Grows with every state change: orders postStatusChanged events.
    event_seq: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    platform_post_id: Mapped[str | None] = mapped_column(String(255))
    platform_url: Mapped[str | None] = mapped_column(Text)
    part_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who resolved an UNKNOWN target by hand (confirmPostPublished / retryPost).
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    # The first comment, its own step after the post (app/services/publishing/comments.py).
    first_comment: Mapped[str | None] = mapped_column(Text)
    comment_status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=CommentStatus.NONE.value
    )
    comment_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    comment_platform_id: Mapped[str | None] = mapped_column(String(255))
    comment_error: Mapped[str | None] = mapped_column(Text)
    # Copied from the post so the publish hook knows without a query (most posts: None).
    series_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class PostingSlot(UUIDPrimaryKey, Base):
    """A weekly local time an account posts at (the posting queue fills these)."""

    __tablename__ = "posting_slots"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_valid"),
        UniqueConstraint("social_account_id", "weekday", "local_time"),
        Index("ix_posting_slots_workspace_id", "workspace_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    social_account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("social_accounts.id", ondelete="CASCADE"), nullable=False
    )
    weekday: Mapped[int] = mapped_column(SmallInteger, nullable=False)  # 0 Monday .. 6 Sunday
    local_time: Mapped[time] = mapped_column(Time, nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
