"""The outbox of outgoing webhook events: `record` is called inside the transaction of the
state change it reports (a post published or failed, content approved, an account needing
reconnection), so the event commits with the change or not at all.

For each active endpoint of the workspace subscribed to the event it writes one delivery
row and one durable job (`deliver_webhook`, app/services/outgoing/sending.py). Nothing is
written when no endpoint listens. The caller's transaction cannot enqueue the arq job
after its commit, so the jobs sweeper hands the job to a worker (within about two
SWEEPER_INTERVAL_SECONDS); `redeliverWebhook` enqueues at once.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs import store as jobs
from app.models import (
    Content,
    PostTarget,
    ScheduledPost,
    SocialAccount,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventRow,
)
from app.models.publishing import AccountStatus
from app.models.vocabulary import ContentStatus, WebhookDeliveryStatus, WebhookEvent

DELIVER_WEBHOOK = "deliver_webhook"
# Attempts per delivery (the job runner backs off 2, 4, 8 ... s between them, capped at 300).
MAX_ATTEMPTS = 8


async def _listening(
    session: AsyncSession, workspace_id: uuid.UUID, event: WebhookEvent
) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.workspace_id == workspace_id,
            WebhookEndpoint.active.is_(True),
            WebhookEndpoint.events.contains([event.value]),
        )
    )
    return list(rows.all())


def add_delivery(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    event_id: uuid.UUID,
    event: str,
) -> tuple[WebhookDelivery, uuid.UUID]:
    """A delivery row and the job that sends it, in the caller's transaction."""
    delivery_id = uuid.uuid4()
    job = jobs.new_job(
        session,
        DELIVER_WEBHOOK,
        {"delivery_id": str(delivery_id)},
        MAX_ATTEMPTS,
        workspace_id=workspace_id,
    )
    delivery = WebhookDelivery(
        id=delivery_id,
        workspace_id=workspace_id,
        endpoint_id=endpoint_id,
        event_id=event_id,
        event=event,
        job_id=job.id,
        status=WebhookDeliveryStatus.PENDING.value,
        attempts=0,
    )
    session.add(delivery)
    return delivery, job.id


async def record(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    event: WebhookEvent,
    payload: dict[str, Any],
    *,
    endpoints: list[uuid.UUID] | None = None,
) -> int:
    """Add `event` to the outbox in the caller's transaction: how many endpoints get it."""
    listening = (
        endpoints if endpoints is not None else await _listening(session, workspace_id, event)
    )
    if not listening:
        return 0
    row = WebhookEventRow(
        id=uuid.uuid4(), workspace_id=workspace_id, event=event.value, payload=payload
    )
    session.add(row)
    await session.flush()  # the deliveries refer to it (no ORM relationship orders them)
    for endpoint_id in listening:
        add_delivery(session, workspace_id, endpoint_id, row.id, event.value)
    await session.flush()
    return len(listening)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def _target_payload(session: AsyncSession, target: PostTarget) -> dict[str, Any]:
    content_id = await session.scalar(
        select(ScheduledPost.content_id).where(ScheduledPost.id == target.post_id)
    )
    return {
        "target_id": str(target.id),
        "post_id": str(target.post_id),
        "content_id": str(content_id) if content_id else None,
        "social_account_id": str(target.social_account_id),
        "platform": target.platform,
        "status": target.status,
        "attempts": target.attempts,
    }


async def post_published(session: AsyncSession, target: PostTarget | None) -> None:
    """POST_PUBLISHED for a target just moved to PUBLISHED (in that transaction); None:
    nothing moved."""
    if target is None:
        return
    listening = await _listening(session, target.workspace_id, WebhookEvent.POST_PUBLISHED)
    if not listening:
        return
    payload = await _target_payload(session, target)
    payload.update(
        platform_post_id=target.platform_post_id,
        platform_url=target.platform_url,
        published_at=_iso(target.published_at),
    )
    await record(
        session, target.workspace_id, WebhookEvent.POST_PUBLISHED, payload, endpoints=listening
    )


async def post_failed(
    session: AsyncSession, target: PostTarget, reconnect_account: uuid.UUID | None = None
) -> None:
    """POST_FAILED for a target just moved to FAILED; with `reconnect_account` (the
    platform refused its token; called before the account is marked), also
    ACCOUNT_NEEDS_RECONNECT if the account is still CONNECTED. The account row is locked
    here, so of two targets failing at once on one account only the first reports it."""
    listening = await _listening(session, target.workspace_id, WebhookEvent.POST_FAILED)
    if listening:
        payload = await _target_payload(session, target)
        payload["error"] = target.error
        await record(
            session, target.workspace_id, WebhookEvent.POST_FAILED, payload, endpoints=listening
        )
    if reconnect_account is None:
        return
    account = await session.scalar(
        select(SocialAccount)
        .where(
            SocialAccount.id == reconnect_account,
            SocialAccount.status == AccountStatus.CONNECTED.value,
        )
        .with_for_update()
    )
    if account is not None:
        await _reconnect(session, account, target.error)


async def posts_failed(session: AsyncSession, targets: list[PostTarget]) -> None:
    """POST_FAILED for each target just failed together (its account was disconnected)."""
    for target in targets:
        await post_failed(session, target)


async def account_needs_reconnect(session: AsyncSession, account: SocialAccount) -> None:
    """ACCOUNT_NEEDS_RECONNECT for an account just marked so (token refresh refused)."""
    await _reconnect(session, account, account.status_reason)


async def _reconnect(session: AsyncSession, account: SocialAccount, reason: str | None) -> None:
    await record(
        session,
        account.workspace_id,
        WebhookEvent.ACCOUNT_NEEDS_RECONNECT,
        {
            "social_account_id": str(account.id),
            "platform": account.platform,
            "name": account.name,
            "reason": reason,
        },
    )


async def content_moved(session: AsyncSession, content: Content, before: ContentStatus) -> None:
    """The workflow's hook: CONTENT_APPROVED when review approved it (IN_REVIEW -> APPROVED;
    unscheduling, SCHEDULED -> APPROVED, is no approval)."""
    if before is ContentStatus.IN_REVIEW and content.status == ContentStatus.APPROVED.value:
        await content_approved(session, content)


async def content_approved(session: AsyncSession, content: Content) -> None:
    """CONTENT_APPROVED for content just moved to APPROVED (in that transaction)."""
    await record(
        session,
        content.workspace_id,
        WebhookEvent.CONTENT_APPROVED,
        {"content_id": str(content.id), "title": content.title, "status": content.status},
    )
