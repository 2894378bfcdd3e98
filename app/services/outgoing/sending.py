"""The `deliver_webhook` job: one attempt to POST one event to one endpoint.

Request: `POST <endpoint url>`, `Content-Type: application/json`, body
`{"id": <event id>, "type": <event>, "created_at", "workspace_id", "data": {...}}`, and
- `X-SmartContent-Event`: the event (POST_PUBLISHED, ...);
- `X-SmartContent-Delivery`: the delivery id, the same on every retry (receivers dedupe by
  it: an attempt whose answer was lost is sent again);
- `X-SmartContent-Timestamp`: Unix seconds when it was signed;
- `X-SmartContent-Signature`: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the
  endpoint's secret, the webhook publisher's scheme (app/platforms/adapters/webhook.py).

Outcome: 2xx delivered; a network error, 408, 429 or 5xx is retried by the job runner with
exponential back-off until the job's attempts run out; any other answer is final. The HTTP
client is the outbound-guarded one: private, loopback and link-local addresses are refused
after DNS resolution and on every redirect (unless OUTBOUND_ALLOW_PRIVATE_NETWORKS=true).
Every attempt's status code, error and duration is written on the delivery row.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select, update

from app.infra import outbound
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.logging import get_logger
from app.models import WebhookDelivery, WebhookEndpoint, WebhookEventRow
from app.models.vocabulary import WebhookDeliveryStatus as D
from app.platforms.adapters.webhook import sign
from app.security.keys import load_keys
from app.services.outgoing.outbox import DELIVER_WEBHOOK
from app.settings import Settings

log = get_logger(__name__)

MAX_ERROR = 500
MAX_ANSWER = 1024
RETRIED_STATUSES = frozenset({408, 429})


class RetryLater(Exception):
    """A retryable failure: the runner backs off and tries again while attempts remain."""


@dataclass(frozen=True)
class Outcome:
    status: D
    response_status: int | None
    error: str | None
    retry: bool = False


def body_of(event: WebhookEventRow) -> bytes:
    document = {
        "id": str(event.id),
        "type": event.event,
        "created_at": event.created_at.isoformat(),
        "workspace_id": str(event.workspace_id),
        "data": event.payload,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def headers_of(
    event: WebhookEventRow, delivery_id: uuid.UUID, secret: str, body: bytes
) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-SmartContent-Event": event.event,
        "X-SmartContent-Delivery": str(delivery_id),
        "X-SmartContent-Timestamp": timestamp,
        "X-SmartContent-Signature": sign(secret, timestamp, body),
    }


def _said(status: int, head: bytes, secret: str) -> str:
    """The answer, short, never echoing our secret."""
    text = " ".join(head.decode("utf-8", "replace").split())[:200]
    if secret:
        text = text.replace(secret, "***")
    return f"HTTP {status}" + (f": {text}" if text else "")


async def _post(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """POST; the status and at most MAX_ANSWER bytes of the answer (an endpoint is
    user-chosen: its answer is never read whole)."""
    async with http.stream("POST", url, content=body, headers=headers) as response:
        head = b""
        async for chunk in response.aiter_bytes():
            head += chunk
            if len(head) >= MAX_ANSWER:
                break
        return response.status_code, head[:MAX_ANSWER]


async def send(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], secret: str
) -> Outcome:
    """POST once and judge the answer."""
    try:
        status, head = await _post(http, url, body, headers)
    except outbound.OutboundBlocked as exc:
        return Outcome(D.FAILED, None, exc.message)
    except httpx.TooManyRedirects:
        return Outcome(D.FAILED, None, "The endpoint redirects too often.")
    except httpx.HTTPError as exc:
        return Outcome(D.PENDING, None, f"Cannot reach the endpoint ({type(exc).__name__}).", True)
    if 200 <= status < 300:
        return Outcome(D.SUCCEEDED, status, None)
    said = _said(status, head, secret)
    if status >= 500 or status in RETRIED_STATUSES:
        return Outcome(D.PENDING, status, said, True)
    return Outcome(D.FAILED, status, said)


async def _load(
    ctx: JobContext, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, WebhookEndpoint, WebhookEventRow] | None:
    async with ctx.factory() as session:
        row = (
            await session.execute(
                select(WebhookDelivery, WebhookEndpoint, WebhookEventRow)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .join(WebhookEventRow, WebhookEventRow.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.id == delivery_id)
            )
        ).first()
    return (row[0], row[1], row[2]) if row is not None else None


async def _save(
    ctx: JobContext, delivery_id: uuid.UUID, outcome: Outcome, duration_ms: int | None
) -> None:
    """Record this attempt on the delivery (guarded: only a delivery still PENDING)."""
    values: dict[str, Any] = {
        "status": outcome.status.value,
        "attempts": WebhookDelivery.attempts + 1,
        "response_status": outcome.response_status,
        "error": outcome.error[:MAX_ERROR] if outcome.error else None,
        "duration_ms": duration_ms,
        "last_attempt_at": func.now(),
    }
    if outcome.status is D.SUCCEEDED:
        values["delivered_at"] = func.now()
    async with ctx.factory() as session, session.begin():
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == D.PENDING.value)
            .values(**values)
        )


async def deliver(ctx: JobContext) -> dict[str, Any]:
    settings = ctx.settings
    if settings is None:
        raise PermanentJobError("the webhook job needs the worker's settings")
    delivery_id = uuid.UUID(str(ctx.payload["delivery_id"]))
    loaded = await _load(ctx, delivery_id)
    if loaded is None:
        return {"skipped": "the delivery or its endpoint was deleted"}
    delivery, endpoint, event = loaded
    if delivery.status != D.PENDING.value:
        return {"skipped": f"already {delivery.status}"}
    if not endpoint.active:
        await _save(ctx, delivery_id, Outcome(D.FAILED, None, "The endpoint is disabled."), None)
        return {"skipped": "endpoint disabled"}
    secret = load_keys(settings).box.decrypt(endpoint.secret)
    body = body_of(event)
    outcome, duration_ms = await _attempt(settings, endpoint.url, event, delivery_id, secret, body)
    last = ctx.job.attempts >= ctx.job.max_attempts
    if outcome.retry and last:
        outcome = Outcome(D.FAILED, outcome.response_status, outcome.error)
    await _save(ctx, delivery_id, outcome, duration_ms)
    log.info(
        "webhook_attempt",
        delivery_id=str(delivery_id),
        endpoint_id=str(endpoint.id),
        webhook_event=event.event,
        status=outcome.status.value,
        response_status=outcome.response_status,
        duration_ms=duration_ms,
    )
    if outcome.status is D.SUCCEEDED:
        return {"delivered": True, "response_status": outcome.response_status}
    if outcome.retry:
        raise RetryLater(outcome.error or "retry")
    # Final (or out of attempts): a runner exception records it on the job too.
    raise PermanentJobError(outcome.error or "the endpoint refused the event")


async def _attempt(
    settings: Settings,
    url: str,
    event: WebhookEventRow,
    delivery_id: uuid.UUID,
    secret: str,
    body: bytes,
) -> tuple[Outcome, int]:
    started = time.monotonic()
    timeout = min(settings.publish_request_timeout_seconds, 30.0)
    async with outbound.client(settings, timeout=timeout, max_connections=4) as http:
        outcome = await send(http, url, body, headers_of(event, delivery_id, secret, body), secret)
    return outcome, int((time.monotonic() - started) * 1000)


JOB_HANDLERS: dict[str, Handler] = {DELIVER_WEBHOOK: deliver}
