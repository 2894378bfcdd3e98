"""Outgoing webhooks: endpoints (admins), their deliveries, redelivery."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.services.outgoing import deliveries, endpoints
from resolvers.common import (
    After,
    First,
    WorkspaceId,
    attempt,
    page_limit,
    principal_of,
    state_of,
    workspace_page,
)
from schema.context import Info
from schema.ids import parse_id
from schema.pagination import Connection, page_size
from schema.types.outgoing import (
    CreateWebhookEndpointInput,
    DeleteWebhookEndpointPayload,
    UpdateWebhookEndpointInput,
    WebhookDelivery,
    WebhookDeliveryPayload,
    WebhookEndpoint,
    WebhookEndpointPayload,
    WebhookEndpointSecretPayload,
)

EndpointId = Annotated[
    relay.GlobalID, strawberry.argument(description="Global ID of the webhook endpoint.")
]


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="A workspace's webhook endpoints, newest first. Admins.")
    async def webhook_endpoints(
        self, info: Info, workspace_id: WorkspaceId, first: First = 50, after: After = None
    ) -> Connection[WebhookEndpoint]:
        page = await workspace_page(info, endpoints.list_endpoints, workspace_id, first, after)
        return Connection.of(page, WebhookEndpoint.from_row)

    @strawberry.field(
        description="An endpoint's deliveries, newest first: each event with its latest "
        "attempt's status code, error and duration. Admins."
    )
    async def webhook_deliveries(
        self, info: Info, endpoint_id: EndpointId, first: First = 50, after: After = None
    ) -> Connection[WebhookDelivery]:
        page = await deliveries.list_deliveries(
            state_of(info),
            principal_of(info),
            parse_id(endpoint_id, "WebhookEndpoint", "endpointId"),
            first=page_size(first, page_limit(info)),
            after=after,
        )
        return Connection.of(page, WebhookDelivery.from_row)


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Register a URL for some of the workspace's events; returns its signing "
        "secret once. Requires admin role."
    )
    async def create_webhook_endpoint(
        self,
        info: Info,
        input: Annotated[CreateWebhookEndpointInput, strawberry.argument(description="What.")],
    ) -> WebhookEndpointSecretPayload:
        call = endpoints.create(
            state_of(info),
            principal_of(info),
            parse_id(input.workspace_id, "Workspace", "workspaceId"),
            url=input.url,
            events=input.event_values(),
            description=input.description,
        )
        return WebhookEndpointSecretPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Change an endpoint's URL, events, description, or pause it. Requires "
        "admin role."
    )
    async def update_webhook_endpoint(
        self,
        info: Info,
        input: Annotated[UpdateWebhookEndpointInput, strawberry.argument(description="What.")],
    ) -> WebhookEndpointPayload:
        call = endpoints.update(
            state_of(info), principal_of(info), input.endpoint_id(), input.to_fields()
        )
        return WebhookEndpointPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Delete an endpoint and its delivery history. Requires admin role."
    )
    async def delete_webhook_endpoint(
        self, info: Info, id: EndpointId
    ) -> DeleteWebhookEndpointPayload:
        call = endpoints.delete(state_of(info), principal_of(info), parse_id(id, "WebhookEndpoint"))
        return DeleteWebhookEndpointPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Give an endpoint a new signing secret (returned once; the old one stops "
        "at once). Requires admin role."
    )
    async def rotate_webhook_secret(
        self, info: Info, id: EndpointId
    ) -> WebhookEndpointSecretPayload:
        call = endpoints.rotate_secret(
            state_of(info), principal_of(info), parse_id(id, "WebhookEndpoint")
        )
        return WebhookEndpointSecretPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Send a delivery's event to its endpoint again, as a new delivery. "
        "Requires admin role."
    )
    async def redeliver_webhook(
        self,
        info: Info,
        delivery_id: Annotated[
            relay.GlobalID, strawberry.argument(description="Global ID of the delivery.")
        ],
    ) -> WebhookDeliveryPayload:
        call = deliveries.redeliver(
            state_of(info),
            principal_of(info),
            parse_id(delivery_id, "WebhookDelivery", "deliveryId"),
        )
        return WebhookDeliveryPayload.of(*await attempt(call))
