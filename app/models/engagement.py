"""First-party engagement events: raw events (partitioned by month), their identities
(idempotency), the pending rollup deltas and the hourly, daily and dashboard rollups.

Why a separate identity table: Postgres requires a unique index on a partitioned table to
include the partition key, so `UNIQUE (workspace_id, event_id)` cannot be enforced on
`engagement_events` itself (partitioned on `occurred_at`); with the time in the key, the
same event re-sent with another `occurredAt` would be stored twice. `engagement_event_ids`
is a plain table whose primary key is the event's identity: ingest inserts the batch's
identities there (a plain INSERT; ON CONFLICT DO NOTHING when that finds a duplicate) and
writes the raw rows only for the identities it inserted, in the same transaction, so an
event id is stored once whatever its time.

The raw table's partitions (`engagement_events_y2026m12`, ... and the default one that
catches any month without its own) live in the `engagement_partitions` schema: they are
created at run time (app/services/analytics/partitions.py), not by migrations, and the
metadata only knows the parent.

Rollups are kept by adding counts (app/services/analytics/rollups.py): each ingest writes,
in its own transaction, one `engagement_batches` row, and its raw rows carry that batch's
id; the worker deletes batch rows and adds their raw rows' counts per (hour bucket,
content, target, type, A/B variant) to the rollups in one transaction, so every stored
event is counted exactly once. `engagement_rollup_deltas` holds counts written by ingest
before batches (revision 0020), drained the same way. `engagement_dashboard_daily` holds
the same daily counts per (content, platform) with the types as columns, for the
dashboard (revision 0021), kept by the same statement.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base
from app.models.vocabulary import EngagementEventType, Platform, one_of

PARTITION_SCHEMA = "engagement_partitions"
EVENT_ID_MAX_LENGTH = 128
# Event ids are identifiers: compared bytewise (memcmp), not by the locale's rules, in the
# identity index and the batch's sort.
# Rollups key events without a post target (first-party, on the customer's own site) under
# this target id: a primary key column cannot be NULL.
NO_TARGET = uuid.UUID(int=0)
# An A/B arm's label ("A" is the content itself, "B", "C"... its ContentVariants). Rollups
# key events that name no arm under NO_VARIANT (a primary key column cannot be NULL).
VARIANT_MAX_LENGTH = 3
NO_VARIANT = ""
# numeric(20, 6): values are exact (conversions carry money), so sums are exact too.
VALUE_PRECISION, VALUE_SCALE = 20, 6


class EngagementEvent(Base):
    """One raw event, as received. No primary key in the database (see the module's
    docstring); the mapper identifies rows by their event identity."""

    __tablename__ = "engagement_events"
    __table_args__ = (
        CheckConstraint(one_of("event_type", EngagementEventType), name="event_type_valid"),
        CheckConstraint(one_of("platform", Platform), name="platform_valid"),
        CheckConstraint("variant ~ '^[A-Z]{1,3}$'", name="variant_label"),
        # Time-ordered inserts make a BRIN index tiny and cheap to maintain; range scans
        # over raw events (rebuilding rollups, exports) use it.
        Index("ix_engagement_events_occurred_brin", "occurred_at", postgresql_using="brin"),
        # The rollup worker finds a batch's rows by it (ids grow as rows are appended, so
        # each block range holds a narrow range of ids; inserts cost next to nothing).
        Index(
            "ix_engagement_events_batch_brin",
            "batch_id",
            postgresql_using="brin",
            postgresql_with={"autosummarize": "on"},
        ),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    event_id: Mapped[str] = mapped_column(
        String(EVENT_ID_MAX_LENGTH, collation="C"), nullable=False
    )
    content_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # The post target (one post on one account) the event is about, when it is one.
    target_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    platform: Mapped[str | None] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(16), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    value: Mapped[Decimal | None] = mapped_column(Numeric(VALUE_PRECISION, VALUE_SCALE))
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The A/B arm the event belongs to, when it names one.
    variant: Mapped[str | None] = mapped_column(String(VARIANT_MAX_LENGTH))
    # The ingest batch that stored it (`engagement_batches`), until the rollups count it;
    # NULL for rows stored before batches (counted through deltas).
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

    __mapper_args__ = {"primary_key": [workspace_id, event_id]}


class EngagementEventId(Base):
    """The identity of every stored event: what makes ingest idempotent."""

    __tablename__ = "engagement_event_ids"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "event_id"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    event_id: Mapped[str] = mapped_column(
        String(EVENT_ID_MAX_LENGTH, collation="C"), nullable=False
    )
    # Where the raw row is (its partition).
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class EngagementBatch(Base):
    """One ingest's stored events, waiting to be added to the rollups: the worker
    aggregates the raw rows with this `batch_id` and deletes the row in one transaction.
    `first_at` / `last_at` bound their times (so it reads only their partitions)."""

    __tablename__ = "engagement_batches"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    events: Mapped[int] = mapped_column(Integer, nullable=False)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class EngagementRollupDelta(Base):
    """Counts one ingest added to one hour bucket, waiting to be added to the rollups."""

    __tablename__ = "engagement_rollup_deltas"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    content_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    target_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    platform: Mapped[str | None] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(16), nullable=False)
    variant: Mapped[str] = mapped_column(
        String(VARIANT_MAX_LENGTH), nullable=False, server_default=NO_VARIANT
    )
    events: Mapped[int] = mapped_column(BigInteger, nullable=False)
    value_sum: Mapped[Decimal] = mapped_column(Numeric(30, VALUE_SCALE), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class _Rollup:
    """Events and the sum of their values per (workspace, bucket, content, target, type,
    variant). `target_id` is NO_TARGET for events about the content itself; `variant` is
    NO_VARIANT for events that name no A/B arm; `platform` is the target's (None without
    one)."""

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    content_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    target_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    event_type: Mapped[str] = mapped_column(String(16), nullable=False)
    variant: Mapped[str] = mapped_column(
        String(VARIANT_MAX_LENGTH), nullable=False, server_default=NO_VARIANT
    )
    platform: Mapped[str | None] = mapped_column(String(16))
    events: Mapped[int] = mapped_column(BigInteger, nullable=False)
    value_sum: Mapped[Decimal] = mapped_column(Numeric(30, VALUE_SCALE), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


_ROLLUP_KEY = ("workspace_id", "bucket_start", "content_id", "target_id", "event_type", "variant")


class EngagementHourly(_Rollup, Base):
    """Hourly rollup (UTC hours)."""

    __tablename__ = "engagement_hourly"
    __table_args__ = (
        PrimaryKeyConstraint(*_ROLLUP_KEY),
        Index("ix_engagement_hourly_content", "content_id", "bucket_start"),
    )


class EngagementDaily(_Rollup, Base):
    """Daily rollup (UTC days)."""

    __tablename__ = "engagement_daily"
    __table_args__ = (
        PrimaryKeyConstraint(*_ROLLUP_KEY),
        Index("ix_engagement_daily_content", "content_id", "bucket_start"),
    )


# The dashboard rollup keys events without a platform (about the content itself, on the
# customer's own site) under this platform: a primary key column cannot be NULL.
NO_PLATFORM = ""
# Its counter columns, each the events of one type (the conversions' values summed apart).
DASHBOARD_COUNTERS = {
    "views": "VIEW",
    "impressions": "IMPRESSION",
    "clicks": "CLICK",
    "likes": "LIKE",
    "shares": "SHARE",
    "comments": "COMMENT",
    "conversions": "CONVERSION",
}


def _counter() -> Mapped[int]:
    return mapped_column(BigInteger, nullable=False, server_default="0")


class EngagementDashboardDaily(Base):
    """Daily rollup per (workspace, UTC day, content, platform) with the event types as
    columns: what analyticsDashboard and the export read for whole days (~7x fewer rows
    than engagement_daily, which keeps target, type and variant apart). Kept by the rollup
    applier in the transaction that updates the other rollups. `platform` is NO_PLATFORM
    for events without one. Only the primary key is indexed: counter updates stay HOT, and
    rows of a day are written together, so a range read touches adjacent pages."""

    __tablename__ = "engagement_dashboard_daily"
    __table_args__ = (
        PrimaryKeyConstraint("workspace_id", "bucket_start", "content_id", "platform"),
        CheckConstraint(f"platform = '' OR {one_of('platform', Platform)}", name="platform_valid"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    content_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    views: Mapped[int] = _counter()
    impressions: Mapped[int] = _counter()
    clicks: Mapped[int] = _counter()
    likes: Mapped[int] = _counter()
    shares: Mapped[int] = _counter()
    comments: Mapped[int] = _counter()
    conversions: Mapped[int] = _counter()
    conversion_value: Mapped[Decimal] = mapped_column(
        Numeric(30, VALUE_SCALE), nullable=False, server_default="0"
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
