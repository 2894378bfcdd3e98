"""The durable record of one AI generation job: what was asked, with which prompt, which
provider and model answered, what it cost and how long it took."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDPrimaryKey
from app.models.vocabulary import GenerationOperation, one_of


class Generation(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "generations"
    __table_args__ = (
        CheckConstraint(one_of("operation", GenerationOperation), name="operation_valid"),
        Index("uq_generations_job_id", "job_id", unique=True),
        Index(
            "ix_generations_workspace_created",
            "workspace_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
        # An identical request within a short window returns the same job.
        Index("ix_generations_workspace_fingerprint", "workspace_id", "fingerprint"),
        Index("ix_generations_content_id", "content_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    operation: Mapped[str] = mapped_column(String(16), nullable=False)
    content_type: Mapped[str] = mapped_column(String(16), nullable=False)
    # The validated input, as the worker reads it.
    request: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    prompt_template: Mapped[str] = mapped_column(String(100), nullable=False)
    prompt_version: Mapped[int] = mapped_column(Integer, nullable=False)
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # True when some provider reported no usage and the counts are estimates.
    tokens_estimated: Mapped[bool] = mapped_column(nullable=False, server_default="false")
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    first_token_ms: Mapped[float | None] = mapped_column(Float)
    total_ms: Mapped[float | None] = mapped_column(Float)
    # Provider calls made (retries included) over every attempt of the job.
    provider_calls: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    # One entry per completion of the last attempt: stage, provider, model, tokens, timings.
    calls: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    # The text streamed so far in the running attempt, flushed now and then, so a
    # subscriber that arrives mid-stream can catch up: {attempt, index, stage, text, ...}.
    partial: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Alternative drafts (when more than one was asked for): [{title, body, ...}].
    alternatives: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    content_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contents.id", ondelete="SET NULL")
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
