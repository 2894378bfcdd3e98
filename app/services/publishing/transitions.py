"""Every state change of a target, each one UPDATE guarded by the state it leaves.

An attempt owns a target while the row says PUBLISHING with that attempt's number; any
write of an attempt names both, so a duplicate arq job, a stale attempt whose lease ran
out, or a second worker finds nothing to change. Two workers can never both hold one
target: the claim moves PENDING -> PUBLISHING in one statement and only one wins.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import AccountStatus, Content, PostTarget, ScheduledPost, SocialAccount
from app.models import TargetStatus as S
from app.models.vocabulary import ContentStatus
from app.platforms.publishing import Published
from app.services.content.workflow import TRANSITIONS
from app.services.outgoing import outbox
from app.services.publishing import comments, recurrence

# Publishing moves content along the workflow table's own edge.
assert (ContentStatus.SCHEDULED, ContentStatus.PUBLISHED) in TRANSITIONS
assert (ContentStatus.SCHEDULED, ContentStatus.APPROVED) in TRANSITIONS

# A content item stays SCHEDULED while any of its targets may still go out (or went).
LIVE = (S.PENDING.value, S.PUBLISHING.value, S.PUBLISHED.value, S.UNKNOWN.value)
# arq may start a deferred job a moment before the due time Postgres sees.
EARLY_TOLERANCE_SECONDS = 1.0


def seconds(value: float) -> Any:
    return text(f"interval '{float(value)} seconds'")


def _held(target_id: uuid.UUID, attempt: int) -> list[ColumnElement[bool]]:
    return [
        PostTarget.id == target_id,
        PostTarget.status == S.PUBLISHING.value,
        PostTarget.attempts == attempt,
    ]


async def _one(
    factory: async_sessionmaker[AsyncSession],
    where: list[ColumnElement[bool]],
    values: dict[str, Any],
) -> PostTarget | None:
    async with factory() as session, session.begin():
        return await apply(session, where, values)


async def apply(
    session: AsyncSession, where: list[ColumnElement[bool]], values: dict[str, Any]
) -> PostTarget | None:
    stmt = (
        update(PostTarget)
        .where(*where)
        .values(event_seq=PostTarget.event_seq + 1, **values)
        .returning(PostTarget)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.scalars(stmt)).one_or_none()


async def claim(
    session: AsyncSession,
    target_id: uuid.UUID,
    expected_attempts: int,
    lease_seconds: float,
) -> PostTarget | None:
    """PENDING and due -> PUBLISHING, the next attempt, with a lease (in the caller's
    transaction). None: not ours (not due yet, done, held elsewhere, or the arq job is
    stale)."""
    return await apply(
        session,
        [
            PostTarget.id == target_id,
            PostTarget.status == S.PENDING.value,
            PostTarget.attempts == expected_attempts,
            PostTarget.attempts < PostTarget.max_attempts,
            PostTarget.next_attempt_at <= func.now() + seconds(EARLY_TOLERANCE_SECONDS),
        ],
        {
            "status": S.PUBLISHING.value,
            "attempts": PostTarget.attempts + 1,
            "locked_until": func.now() + seconds(lease_seconds),
            "started_at": func.now(),
        },
    )


async def published(
    factory: async_sessionmaker[AsyncSession],
    target: PostTarget,
    attempt: int,
    result: Published,
    *,
    content_scheduled: bool = True,
) -> PostTarget | None:
    """-> PUBLISHED, and its content SCHEDULED -> PUBLISHED, in one transaction.

    Normally guarded by this attempt's hold. An attempt whose lease ran out but whose post
    did go out still records it (the row moved on past it: a later attempt in doubt, or
    UNKNOWN): the platform has the post, so PUBLISHED is the truth; a later attempt then
    finds nothing to write. `content_scheduled=False`: the content was seen PUBLISHED
    already, so its row is left alone (every target of a busy item would queue on it)."""
    async with factory() as session, session.begin():
        row = await apply(
            session,
            [
                PostTarget.id == target.id,
                PostTarget.status != S.PUBLISHED.value,
                PostTarget.attempts >= attempt,
            ],
            {
                "status": S.PUBLISHED.value,
                "platform_post_id": result.platform_post_id or None,
                "platform_url": result.url,
                "part_ids": list(result.part_ids),
                "published_at": func.now(),
                "locked_until": None,
                "in_doubt": False,
                "error": None,
            },
        )
        if row is not None and content_scheduled:
            await mark_content_published(session, row.post_id)
        await outbox.post_published(session, row)
        if row is not None:  # its first comment's job, the series' next post (if any)
            await after_done(session, row)
        return row


async def after_done(session: AsyncSession, row: PostTarget) -> None:
    """What follows a target's end, in its transaction; no SQL for a target with neither
    a first comment nor a series."""
    if row.status == S.PUBLISHED.value:
        await comments.queue(session, row)
    await recurrence.after_done(session, row)


async def mark_content_published(session: AsyncSession, post_id: uuid.UUID) -> None:
    content_id = (
        select(ScheduledPost.content_id).where(ScheduledPost.id == post_id).scalar_subquery()
    )
    await session.execute(
        update(Content)
        .where(Content.id == content_id, Content.status == ContentStatus.SCHEDULED.value)
        .values(status=ContentStatus.PUBLISHED.value)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


async def unschedule_if_idle(session: AsyncSession, content_id: uuid.UUID) -> None:
    """SCHEDULED -> APPROVED (the workflow's "unscheduled") once nothing of it is left to go."""
    live = (
        select(PostTarget.id)
        .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
        .where(ScheduledPost.content_id == content_id, PostTarget.status.in_(LIVE))
        .exists()
    )
    await session.execute(
        update(Content)
        .where(Content.id == content_id, Content.status == ContentStatus.SCHEDULED.value, ~live)
        .values(status=ContentStatus.APPROVED.value)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


async def retry_later(
    factory: async_sessionmaker[AsyncSession],
    target_id: uuid.UUID,
    attempt: int,
    error: str,
    *,
    delay_seconds: float,
    in_doubt: bool,
) -> PostTarget | None:
    """-> PENDING, next attempt after `delay_seconds`. `in_doubt`: this attempt may have
    reached the platform (the flag stays set until an outcome is known)."""
    values: dict[str, Any] = {
        "status": S.PENDING.value,
        "error": error,
        "locked_until": None,
        "next_attempt_at": func.now() + seconds(delay_seconds),
    }
    if in_doubt:
        values["in_doubt"] = True
    return await _one(factory, _held(target_id, attempt), values)


async def failed(
    factory: async_sessionmaker[AsyncSession],
    target_id: uuid.UUID,
    attempt: int,
    error: str,
    *,
    reconnect_account: uuid.UUID | None = None,
) -> PostTarget | None:
    """-> FAILED for good. `reconnect_account`: the platform refused the account's token,
    so the account is marked NEEDS_RECONNECT (with the reason) in the same transaction."""
    async with factory() as session, session.begin():
        row = await apply(
            session,
            _held(target_id, attempt),
            {"status": S.FAILED.value, "error": error, "locked_until": None},
        )
        if row is not None:
            content_id = await session.scalar(
                select(ScheduledPost.content_id).where(ScheduledPost.id == row.post_id)
            )
            if content_id is not None:
                await unschedule_if_idle(session, content_id)
            await outbox.post_failed(session, row, reconnect_account)
            await after_done(session, row)
        if row is not None and reconnect_account is not None:
            await needs_reconnect(session, reconnect_account, error)
        return row


async def needs_reconnect(session: AsyncSession, account_id: uuid.UUID, reason: str) -> bool:
    """CONNECTED -> NEEDS_RECONNECT with the platform's reason (in the caller's
    transaction); False when the account was not CONNECTED (already marked, disconnected)."""
    result = await session.execute(
        update(SocialAccount)
        .where(
            SocialAccount.id == account_id,
            SocialAccount.status == AccountStatus.CONNECTED.value,
        )
        .values(status=AccountStatus.NEEDS_RECONNECT.value, status_reason=reason)
        .returning(SocialAccount.id)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return result.first() is not None


async def unknown(
    factory: async_sessionmaker[AsyncSession], target_id: uuid.UUID, attempt: int, error: str
) -> PostTarget | None:
    """-> UNKNOWN: it may be out, and the platform cannot be asked; a person decides."""
    return await _one(
        factory,
        _held(target_id, attempt),
        {"status": S.UNKNOWN.value, "error": error, "locked_until": None, "in_doubt": True},
    )


async def release(
    factory: async_sessionmaker[AsyncSession],
    target_id: uuid.UUID,
    attempt: int,
    *,
    sent: bool,
) -> PostTarget | None:
    """Worker shutdown mid-attempt: back to PENDING at once. Before anything was sent the
    attempt does not count; once sent, it counts and its outcome is in doubt."""
    values: dict[str, Any] = {
        "status": S.PENDING.value,
        "locked_until": None,
        "next_attempt_at": func.now(),
    }
    if sent:
        values["in_doubt"] = True
        values["error"] = "The worker stopped while sending; the post may have gone out."
    else:
        values["attempts"] = attempt - 1
    return await _one(factory, _held(target_id, attempt), values)
