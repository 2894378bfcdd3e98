"""Outgoing webhooks as admins see them: endpoints, their deliveries, the secret once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from app.models import WebhookDelivery as DeliveryRow
from app.models import WebhookEndpoint as EndpointRow
from app.models.vocabulary import WebhookEvent as EventValue
from app.services.outgoing import deliveries, endpoints
from app.services.outgoing.endpoints import EndpointChanges, EndpointWithSecret
from schema.context import Info
from schema.ids import parse_id
from schema.loaders.base import uuid_or_nil
from schema.types.errors import UserError
from schema.types.vocabulary import WebhookDeliveryStatus, WebhookEvent


def _events(values: Iterable[str]) -> list[WebhookEvent]:
    return [WebhookEvent(v) for v in values]


@strawberry.type(
    description="A URL a workspace's events are POSTed to, signed with its secret "
    '(X-SmartContent-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">).'
)
class WebhookEndpoint(relay.Node):
    id: relay.NodeID[str]
    url: str = strawberry.field(description="Where events are POSTed.")
    description: str | None = strawberry.field(description="What it is for.")
    events: list[WebhookEvent] = strawberry.field(description="The events it receives.")
    active: bool = strawberry.field(description="False: paused, nothing is sent to it.")
    created_at: datetime = strawberry.field(description="When it was registered.")
    updated_at: datetime = strawberry.field(description="Last change.")

    @classmethod
    def from_row(cls, row: EndpointRow) -> WebhookEndpoint:
        return cls(
            id=str(row.id),
            url=row.url,
            description=row.description,
            events=_events(row.events),
            active=row.active,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WebhookEndpoint | None]:
        ids = [uuid_or_nil(i) for i in node_ids]
        rows = await endpoints.visible(info.context.state, info.context.principal, ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


@strawberry.type(
    description="One event sent (or being sent) to one endpoint; the UUID in its ID is the "
    "X-SmartContent-Delivery header, the same on every retry."
)
class WebhookDelivery(relay.Node):
    id: relay.NodeID[str]
    event: WebhookEvent = strawberry.field(description="What happened.")
    event_id: str = strawberry.field(description="The event's id (the body's `id`).")
    status: WebhookDeliveryStatus = strawberry.field(description="Where it stands.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    response_status: int | None = strawberry.field(
        description="The HTTP status of the latest attempt's answer, if one came."
    )
    error: str | None = strawberry.field(description="Why the latest attempt failed, if it did.")
    duration_ms: int | None = strawberry.field(
        description="How long the latest attempt took, in milliseconds."
    )
    created_at: datetime = strawberry.field(description="When the event was recorded.")
    last_attempt_at: datetime | None = strawberry.field(description="When it was last tried.")
    delivered_at: datetime | None = strawberry.field(description="When the endpoint took it.")

    @classmethod
    def from_row(cls, row: DeliveryRow) -> WebhookDelivery:
        return cls(
            id=str(row.id),
            event=WebhookEvent(row.event),
            event_id=str(row.event_id),
            status=WebhookDeliveryStatus(row.status),
            attempts=row.attempts,
            response_status=row.response_status,
            error=row.error,
            duration_ms=row.duration_ms,
            created_at=row.created_at,
            last_attempt_at=row.last_attempt_at,
            delivered_at=row.delivered_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WebhookDelivery | None]:
        ids = [uuid_or_nil(i) for i in node_ids]
        rows = await deliveries.visible(info.context.state, info.context.principal, ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


@strawberry.input(description="Register a URL for some of the workspace's events.")
class CreateWebhookEndpointInput:
    workspace_id: relay.GlobalID = strawberry.field(description="Workspace it belongs to.")
    url: str = strawberry.field(
        description="Where to POST (https; public addresses only; at most 2000 characters; "
        "no user name or password in it)."
    )
    events: list[WebhookEvent] = strawberry.field(description="Which events (at least one).")
    description: str | None = strawberry.field(
        default=None, description="What it is for (at most 500 characters)."
    )

    def event_values(self) -> list[EventValue]:
        return [EventValue(e.value) for e in self.events]


@strawberry.input(description="Change an endpoint; fields left out stay as they are.")
class UpdateWebhookEndpointInput:
    id: relay.GlobalID = strawberry.field(description="The endpoint.")
    url: str | None = strawberry.field(default=None, description="A new URL (checked again).")
    events: list[WebhookEvent] | None = strawberry.field(
        default=None, description="The new set of events (at least one)."
    )
    description: str | None = strawberry.field(
        default=None, description="A new description (empty clears it)."
    )
    active: bool | None = strawberry.field(
        default=None, description="False pauses it; true resumes."
    )

    def endpoint_id(self) -> uuid.UUID:
        return parse_id(self.id, "WebhookEndpoint", "id")

    def to_fields(self) -> EndpointChanges:
        return EndpointChanges(
            url=self.url,
            events=[EventValue(e.value) for e in self.events] if self.events is not None else None,
            description=self.description,
            active=self.active,
        )


@strawberry.type(description="Result of updateWebhookEndpoint.")
class WebhookEndpointPayload:
    endpoint: WebhookEndpoint | None = strawberry.field(description="The endpoint. Null on errors.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")

    @classmethod
    def of(cls, row: EndpointRow | None, errors: list[UserError]) -> WebhookEndpointPayload:
        return cls(endpoint=WebhookEndpoint.from_row(row) if row else None, errors=errors)


@strawberry.type(
    description="Result of createWebhookEndpoint and rotateWebhookSecret: the signing "
    "secret is shown here once."
)
class WebhookEndpointSecretPayload:
    endpoint: WebhookEndpoint | None = strawberry.field(description="The endpoint. Null on errors.")
    secret: str | None = strawberry.field(
        description="The signing secret: store it now, it is never shown again."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")

    @classmethod
    def of(
        cls, result: EndpointWithSecret | None, errors: list[UserError]
    ) -> WebhookEndpointSecretPayload:
        if result is None:
            return cls(endpoint=None, secret=None, errors=errors)
        return cls(
            endpoint=WebhookEndpoint.from_row(result.endpoint), secret=result.secret, errors=errors
        )


@strawberry.type(description="Result of deleteWebhookEndpoint.")
class DeleteWebhookEndpointPayload:
    deleted_id: relay.GlobalID | None = strawberry.field(
        description="The deleted endpoint's ID. Null on errors."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")

    @classmethod
    def of(cls, deleted: uuid.UUID | None, errors: list[UserError]) -> DeleteWebhookEndpointPayload:
        gid = relay.GlobalID("WebhookEndpoint", str(deleted)) if deleted else None
        return cls(deleted_id=gid, errors=errors)


@strawberry.type(description="Result of redeliverWebhook.")
class WebhookDeliveryPayload:
    delivery: WebhookDelivery | None = strawberry.field(
        description="The new delivery. Null on errors."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")

    @classmethod
    def of(cls, row: DeliveryRow | None, errors: list[UserError]) -> WebhookDeliveryPayload:
        return cls(delivery=WebhookDelivery.from_row(row) if row else None, errors=errors)
