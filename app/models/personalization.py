"""AI-written alternatives of a content item that leave the item itself unchanged: one
personalised version per audience segment, and A/B-test variants."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDPrimaryKey


class ContentPersonalization(UUIDPrimaryKey, Timestamps, Base):
    """The item rewritten for one audience segment; personalising again replaces it."""

    __tablename__ = "content_personalizations"
    __table_args__ = (
        UniqueConstraint("content_id", "segment_id"),
        CheckConstraint("length(btrim(body)) > 0", name="body_not_empty"),
        Index("ix_content_personalizations_segment_id", "segment_id"),
        Index("ix_content_personalizations_generation_id", "generation_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    segment_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("audience_segments.id", ondelete="CASCADE"), nullable=False
    )
    # The generation that wrote the current text.
    generation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("generations.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    # What changed and why: [{"change": str, "reason": str | None}].
    changes: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    # The item's version the text was written from (the item may have changed since).
    based_on_version: Mapped[int] = mapped_column(Integer, nullable=False)


class ContentVariant(UUIDPrimaryKey, Base):
    """An A/B-test alternative of the item (the item itself is "A"), kept for tests to
    reference: generating more adds new labels, never rewrites old ones."""

    __tablename__ = "content_variants"
    __table_args__ = (
        UniqueConstraint("content_id", "label"),
        CheckConstraint("label ~ '^[A-Z]{1,3}$'", name="label_letters"),
        CheckConstraint("length(btrim(body)) > 0", name="body_not_empty"),
        Index("ix_content_variants_generation_id", "generation_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    content_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="CASCADE"), nullable=False
    )
    generation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("generations.id", ondelete="SET NULL")
    )
    label: Mapped[str] = mapped_column(String(3), nullable=False)  # "B", "C", ...
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    # The hook or angle this variant takes, as stated by its writer.
    angle: Mapped[str] = mapped_column(Text, nullable=False)
    # The variant's text for each platform the item has a variation for, repaired to that
    # platform's rules: [{"platform", "body", "subject", "preheader", "repairs"}].
    platform_texts: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    based_on_version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
