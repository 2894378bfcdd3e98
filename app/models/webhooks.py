"""Outgoing webhooks: endpoints a workspace registered, the outbox of events, and each
event's delivery to each endpoint.

An event row and its delivery rows (with the job that sends each) are written in the
transaction of the state change they report: a rolled-back change leaves no event, a
committed one is never lost (the job row survives the process).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDPrimaryKey
from app.models.vocabulary import WebhookDeliveryStatus, WebhookEvent, one_of


def _events_valid() -> str:
    values = ", ".join(repr(v.value) for v in WebhookEvent)
    return f"cardinality(events) > 0 AND events <@ ARRAY[{values}]::varchar[]"


class WebhookEndpoint(UUIDPrimaryKey, Timestamps, Base):
    """A URL a workspace's admins registered for some events, with its signing secret
    (encrypted with the MultiFernet keys)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint(_events_valid(), name="events_valid"),
        Index(
            "ix_webhook_endpoints_workspace_created",
            "workspace_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    description: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )


class WebhookEventRow(UUIDPrimaryKey, Base):
    """One event that happened (the outbox): what every subscribed endpoint is sent."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        CheckConstraint(one_of("event", WebhookEvent), name="event_valid"),
        Index("ix_webhook_events_workspace_id", "workspace_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()"), nullable=False
    )


class WebhookDelivery(UUIDPrimaryKey, Timestamps, Base):
    """One event to one endpoint; its id is the X-SmartContent-Delivery header (the same
    on every retry, for receivers' dedupe). Holds the latest attempt's outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(one_of("status", WebhookDeliveryStatus), name="status_valid"),
        CheckConstraint(one_of("event", WebhookEvent), name="event_valid"),
        Index(
            "ix_webhook_deliveries_endpoint_created",
            "endpoint_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
        Index("ix_webhook_deliveries_event_id", "event_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False
    )
    event: Mapped[str] = mapped_column(String(32), nullable=False)  # the event's, copied
    # The durable job that sends it (app/jobs); not a foreign key: jobs are pruned apart.
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=WebhookDeliveryStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    response_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
