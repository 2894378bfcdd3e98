"""Steps the outgoing webhook tests share: an endpoint made through the API, its jobs,
one job attempt run in this process (the worker's runner, no arq)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from app.jobs import runner
from app.models import Job, WebhookDelivery
from app.services.outgoing.outbox import DELIVER_WEBHOOK
from app.settings import Settings
from app.state import AppState
from tests.outgoing.event_receiver import EventReceiver
from tests.publishing.conftest import Team, approved_content, call
from workers.tasks import HANDLERS

CREATE = """
mutation($i: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $i) {
    endpoint { id url events active description } secret errors { field code message }
  }
}
"""
DELIVERIES = """
query($id: ID!) { webhookDeliveries(endpointId: $id) { edges { node {
  id event eventId status attempts responseStatus error durationMs lastAttemptAt deliveredAt
} } } }
"""


async def create_endpoint(
    client: httpx.AsyncClient, team: Team, url: str, events: list[str]
) -> dict[str, Any]:
    data = await call(
        client,
        team.owner,
        CREATE,
        {"i": {"workspaceId": team.workspace_id, "url": url, "events": events}},
    )
    payload: dict[str, Any] = data["createWebhookEndpoint"]
    assert payload["errors"] == [], payload
    return payload


async def deliveries_of(
    client: httpx.AsyncClient, team: Team, endpoint_id: str
) -> list[dict[str, Any]]:
    data = await call(client, team.owner, DELIVERIES, {"id": endpoint_id})
    return [edge["node"] for edge in data["webhookDeliveries"]["edges"]]


async def webhook_jobs(state: AppState) -> list[Job]:
    async with state.session_factory() as session:
        rows = await session.scalars(
            select(Job).where(Job.kind == DELIVER_WEBHOOK).order_by(Job.created_at, Job.id)
        )
        return list(rows.all())


async def delivery_row(state: AppState, delivery_id: uuid.UUID) -> WebhookDelivery:
    async with state.session_factory() as session:
        row = await session.get(WebhookDelivery, delivery_id)
    assert row is not None
    return row


class Quiet:
    """Job events go nowhere (no subscriber here)."""

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        return None


async def run_job(state: AppState, job_id: uuid.UUID, settings: Settings | None = None) -> str:
    """One attempt of a job with the worker's handlers, as the worker runs it."""
    return await runner.run(
        job_id,
        factory=state.session_factory,
        publisher=Quiet(),
        enqueuer=None,
        lease_seconds=10,
        handlers=HANDLERS,
        settings=settings or state.settings,
        timeout_seconds=15,
    )


async def approved_and_job(
    client: httpx.AsyncClient, state: AppState, team: Team, events: EventReceiver
) -> tuple[dict[str, Any], str, Job]:
    """An endpoint for CONTENT_APPROVED, content approved, and the job that reports it."""
    endpoint = await create_endpoint(client, team, events.url, ["CONTENT_APPROVED"])
    content_id = await approved_content(client, team)
    [job] = await webhook_jobs(state)
    return endpoint, content_id, job
