"""Reading an endpoint's deliveries, and sending one again (`redeliverWebhook`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from app.auth import Principal
from app.jobs import store as jobs
from app.models import WebhookDelivery, WebhookEndpoint
from app.pagination import Page, fetch_page, newest_first
from app.permissions import Action
from app.services import lookup
from app.services.audit import trail as audit
from app.services.outgoing.endpoints import is_admin
from app.services.outgoing.outbox import add_delivery
from app.state import AppState


async def list_deliveries(
    state: AppState,
    principal: Principal,
    endpoint_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
) -> Page[WebhookDelivery]:
    """An endpoint's deliveries, newest first."""
    endpoint = await lookup.fetch_scoped(
        state.read_session_factory, WebhookEndpoint, endpoint_id, principal, Action.ACCOUNT_MANAGE
    )
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    page: Page[WebhookDelivery] = await fetch_page(
        state.read_session_factory,
        query,
        newest_first(WebhookDelivery),
        first=first,
        after=after,
    )
    return page


async def redeliver(
    state: AppState, principal: Principal, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """The same event to the same endpoint once more, as a new delivery (its own id and
    attempts; the body's event id is the same, for receivers that dedupe by it)."""
    async with state.session_factory() as session, session.begin():
        original = await lookup.scoped_row(
            session, WebhookDelivery, delivery_id, principal, Action.ACCOUNT_MANAGE
        )
        delivery, job_id = add_delivery(
            session, original.workspace_id, original.endpoint_id, original.event_id, original.event
        )
        audit.record_row(
            session,
            principal,
            "redeliverWebhook",
            delivery,
            {"endpoint_id": str(original.endpoint_id), "from": str(original.id)},
        )
        await session.flush()
        await session.refresh(delivery)
    await jobs.enqueue(state.arq, job_id, 0)
    return delivery


async def visible(
    state: AppState, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[WebhookDelivery | None]:
    """Deliveries by id for `node(id:)`, one statement: None outside the caller's admin
    workspaces."""
    async with state.read_session_factory() as session:
        rows = (
            await session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        ).all()
    by_id = {r.id: r for r in rows if is_admin(principal, r.workspace_id)}
    return [by_id.get(i) for i in ids]
