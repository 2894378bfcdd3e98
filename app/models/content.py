"""The content library: items, versions, comments, platform variations, campaigns,
audience segments, media and client review links."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDPrimaryKey
from app.models.vocabulary import (
    CampaignStatus,
    CommentKind,
    ContentFormat,
    ContentStatus,
    ContentType,
    MediaKind,
    Platform,
    one_of,
)
from app.settings import embedding_dimensions

DIM = embedding_dimensions()


class Campaign(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(one_of("status", CampaignStatus), name="status_valid"),
        CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR end_date >= start_date", name="dates_ordered"
        ),
        CheckConstraint("budget IS NULL OR budget >= 0", name="budget_non_negative"),
        Index(
            "ix_campaigns_workspace_id_created_at",
            "workspace_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    objectives: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="DRAFT")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )


class Content(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "contents"
    __table_args__ = (
        CheckConstraint(one_of("content_type", ContentType), name="content_type_valid"),
        CheckConstraint(one_of("format", ContentFormat), name="format_valid"),
        CheckConstraint(one_of("status", ContentStatus), name="status_valid"),
        # The library's default listing: newest first, live items only.
        Index(
            "ix_contents_workspace_created",
            "workspace_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_contents_workspace_status", "workspace_id", "status"),
        Index("ix_contents_workspace_type", "workspace_id", "content_type"),
        Index(
            "ix_contents_workspace_updated",
            "workspace_id",
            text("updated_at DESC"),
            text("id DESC"),
        ),
        Index("ix_contents_campaign_id", "campaign_id"),
        Index("ix_contents_created_by_id", "created_by_id"),
        Index("ix_contents_tags", "tags", postgresql_using="gin"),
        Index("ix_contents_search", "search_vector", postgresql_using="gin"),
        Index(
            "ix_contents_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str] = mapped_column(String(16), nullable=False)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="DRAFT")
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Maintained by Postgres: title weighs more than body.
    search_vector: Mapped[Any] = mapped_column(
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(body, '')), 'B')",
            persisted=True,
        ),
    )
    embedding: Mapped[Any] = mapped_column(Vector(DIM), nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(100))
    embedded_version: Mapped[int | None] = mapped_column(Integer)
    # Metrics of `body` and its brand-voice warnings (app/ai/metrics.py TextMetrics.stored),
    # written in the same statement as the text; null until measured.
    text_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    text_metrics_version: Mapped[int | None] = mapped_column(Integer)  # ALGORITHM_VERSION


class ContentVersion(UUIDPrimaryKey, Base):
    __tablename__ = "content_versions"
    __table_args__ = (UniqueConstraint("content_id", "version"),)

    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )


class ContentComment(UUIDPrimaryKey, Base):
    __tablename__ = "content_comments"
    __table_args__ = (
        CheckConstraint(one_of("kind", CommentKind), name="kind_valid"),
        Index("ix_content_comments_content_id_created", "content_id", "created_at"),
    )

    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    # Set when the comment came through a client review link (no account).
    review_link_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("review_links.id", ondelete="SET NULL")
    )
    author_name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False, server_default="COMMENT")
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )


class ContentVariation(UUIDPrimaryKey, Timestamps, Base):
    """A per-platform version of a content item, checked against that platform's rules."""

    __tablename__ = "content_variations"
    __table_args__ = (
        CheckConstraint(one_of("platform", Platform), name="platform_valid"),
        UniqueConstraint("content_id", "platform"),
    )

    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    subject: Mapped[str | None] = mapped_column(String(500))  # email
    preheader: Mapped[str | None] = mapped_column(String(500))  # email
    media_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    # Metrics of `body` and its brand-voice warnings (app/ai/metrics.py TextMetrics.stored),
    # written in the same statement as the text; null until measured.
    text_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    text_metrics_version: Mapped[int | None] = mapped_column(Integer)  # ALGORITHM_VERSION


class AudienceSegment(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "audience_segments"
    __table_args__ = (
        Index(
            "ix_audience_segments_workspace_id_created",
            "workspace_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # {industry, experience_level, interests[]}
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    embedding: Mapped[Any] = mapped_column(Vector(DIM), nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(100))


class MediaAsset(UUIDPrimaryKey, Base):
    __tablename__ = "media_assets"
    __table_args__ = (
        CheckConstraint(one_of("kind", MediaKind), name="kind_valid"),
        Index(
            "ix_media_assets_workspace_id_created",
            "workspace_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    mime_type: Mapped[str] = mapped_column(String(100), nullable=False)
    filename: Mapped[str] = mapped_column(String(300), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    alt_text: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    storage_key: Mapped[str] = mapped_column(String(500), nullable=False)
    thumbnail_key: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )


class ContentMedia(Base):
    __tablename__ = "content_media"
    __table_args__ = (Index("ix_content_media_media_id", "media_id"),)

    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), primary_key=True
    )
    media_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("media_assets.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class ReviewLink(UUIDPrimaryKey, Base):
    """A tokenised URL through which someone without an account reviews one item."""

    __tablename__ = "review_links"
    __table_args__ = (
        Index("uq_review_links_token_hash", "token_hash", unique=True),
        Index("ix_review_links_content_id", "content_id"),
    )

    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    reviewer_name: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
