"""Every state change of a target, each one UPDATE guarded by the state it leaves.

Longer than 400 lines because every guarded transition of a target is here, side by
side, so that their guards (and what each leaves for the sweeper) can be read together.

An attempt owns a target while the row says PUBLISHING with that attempt's number; any
write of an attempt names both, so a duplicate arq job, a stale attempt whose lease ran
out, or a second worker finds nothing to change. Two workers can never both hold one
target: the claim moves PENDING -> PUBLISHING in one statement and only one wins.

An attempt's own writes (delivery.py) are single statements run without an explicit
transaction (one statement is atomic by itself): the claim returns what the post is made
of in the same statement (compose.py `claimed_load`), and PUBLISHED moves the content
along in the same statement. They return `Target`s, plain rows, not ORM objects: the ORM's
bookkeeping and the BEGIN/COMMIT round trips cost more than the statements.

What follows a target's end in its own transaction (outgoing webhook events, its first
comment's job, the series' next post: `after_done`) makes PUBLISHED a transaction again,
for the targets that have any of these (`followups`, read by the claim).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Interval,
    Row,
    Table,
    bindparam,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

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


_TARGETS = cast(Table, PostTarget.__table__)
_CONTENTS = cast(Table, Content.__table__)
_POSTS = cast(Table, ScheduledPost.__table__)
_T = _TARGETS.c


@dataclass(frozen=True, slots=True)
class Target:
    """A target's row as an attempt and its events need it (the columns of TARGET)."""

    id: uuid.UUID
    post_id: uuid.UUID
    workspace_id: uuid.UUID
    social_account_id: uuid.UUID
    platform: str
    status: str
    attempts: int
    max_attempts: int
    in_doubt: bool
    error: str | None
    idempotency_key: str
    event_seq: int
    enqueue_generation: int
    next_attempt_at: datetime
    # What may follow its end (comments.enqueue, recurrence.enqueue_next read them).
    first_comment: str | None
    comment_status: str
    series_id: uuid.UUID | None

    @classmethod
    def of(cls, row: Any) -> Target:  # a Row whose first columns are TARGET
        return cls(*row[: len(TARGET)])


TARGET = (
    _T.id,
    _T.post_id,
    _T.workspace_id,
    _T.social_account_id,
    _T.platform,
    _T.status,
    _T.attempts,
    _T.max_attempts,
    _T.in_doubt,
    _T.error,
    _T.idempotency_key,
    _T.event_seq,
    _T.enqueue_generation,
    _T.next_attempt_at,
    _T.first_comment,
    _T.comment_status,
    _T.series_id,
)
assert tuple(c.name for c in TARGET) == Target.__slots__


@asynccontextmanager
async def autocommit(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session on a pooled connection whose statements commit one by one (no BEGIN, no
    COMMIT: each of an attempt's writes is one statement, atomic by itself)."""
    async with factory() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


async def _execute(
    session: AsyncSession, statement: Any, params: dict[str, Any]
) -> Row[Any] | None:
    """Core execution on the session's connection (the ORM's execute path is not needed)."""
    conn: AsyncConnection = await session.connection()
    return (await conn.execute(statement, params)).first()


def _core_update(where: Sequence[ColumnElement[bool]], values: dict[str, Any]) -> Any:
    return (
        update(_TARGETS)
        .where(*where)
        .values(event_seq=_T.event_seq + 1, **values)
        .returning(*TARGET)
    )


async def _record(
    factory: async_sessionmaker[AsyncSession],
    where: Sequence[ColumnElement[bool]],
    values: dict[str, Any],
) -> Target | None:
    async with autocommit(factory) as session:
        row = await _execute(session, _core_update(where, values), {})
    return Target.of(row) if row is not None else None


def _held(target_id: uuid.UUID, attempt: int) -> list[ColumnElement[bool]]:
    return [
        PostTarget.id == target_id,
        PostTarget.status == S.PUBLISHING.value,
        PostTarget.attempts == attempt,
    ]


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


# PENDING and due -> PUBLISHING, the next attempt, with a lease (bound: target_id,
# expected_attempts, lease). Nothing comes back when the target is not ours: not due yet,
# done, held elsewhere, or the arq job is stale.
CLAIM = _core_update(
    [
        _T.id == bindparam("target_id"),
        _T.status == S.PENDING.value,
        _T.attempts == bindparam("expected_attempts"),
        _T.attempts < _T.max_attempts,
        _T.next_attempt_at <= func.now() + seconds(EARLY_TOLERANCE_SECONDS),
    ],
    {
        "status": S.PUBLISHING.value,
        "attempts": _T.attempts + 1,
        "locked_until": func.now() + bindparam("lease", type_=Interval),
        "started_at": func.now(),
    },
)


def claim_params(
    target_id: uuid.UUID, expected_attempts: int, lease_seconds: float
) -> dict[str, Any]:
    return {
        "target_id": target_id,
        "expected_attempts": expected_attempts,
        "lease": timedelta(seconds=lease_seconds),
    }


def _published_statement(*, content_scheduled: bool) -> Any:
    # Normally guarded by this attempt's hold. An attempt whose lease ran out but whose
    # post did go out still records it (the row moved on past it: a later attempt in doubt,
    # or UNKNOWN): the platform has the post, so PUBLISHED is the truth.
    target = _core_update(
        [
            _T.id == bindparam("target_id"),
            _T.status != S.PUBLISHED.value,
            _T.attempts >= bindparam("attempt"),
        ],
        {
            "status": S.PUBLISHED.value,
            "platform_post_id": bindparam("platform_post_id"),
            "platform_url": bindparam("platform_url"),
            "part_ids": bindparam("part_ids"),
            "published_at": func.now(),
            "locked_until": None,
            "in_doubt": False,
            "error": None,
        },
    ).cte("published_target")
    statement = select(*(target.c[c.name] for c in TARGET))
    if not content_scheduled:
        return statement
    # The content's own move, SCHEDULED -> PUBLISHED (the workflow table's edge), in the
    # same statement: it happens exactly when the target's does.
    contents, posts = _CONTENTS, _POSTS
    content = (
        update(contents)
        .where(
            contents.c.id == posts.c.content_id,
            posts.c.id == target.c.post_id,
            contents.c.status == ContentStatus.SCHEDULED.value,
        )
        .values(status=ContentStatus.PUBLISHED.value)
        .cte("published_content")
    )
    return statement.add_cte(content)


_PUBLISHED = {flag: _published_statement(content_scheduled=flag) for flag in (True, False)}


async def published(
    factory: async_sessionmaker[AsyncSession],
    target: Target,
    attempt: int,
    result: Published,
    *,
    content_scheduled: bool = True,
    followups: bool = False,
) -> Target | None:
    """-> PUBLISHED, and its content SCHEDULED -> PUBLISHED, in one statement. A later
    attempt of a target recorded this way finds nothing to write. `content_scheduled=False`:
    the content was seen PUBLISHED already, so its row is left alone (every target of a
    busy item would queue on it). `followups`: the target has a first comment or a series,
    or its workspace listens for POST_PUBLISHED: the same statement runs in a transaction
    with what follows (`after_done`)."""
    params = {
        "target_id": target.id,
        "attempt": attempt,
        "platform_post_id": result.platform_post_id or None,
        "platform_url": result.url,
        "part_ids": list(result.part_ids),
    }
    if not followups:
        async with autocommit(factory) as session:
            found = await _execute(session, _PUBLISHED[content_scheduled], params)
        return Target.of(found) if found is not None else None
    async with factory() as session, session.begin():
        found = (await session.execute(_PUBLISHED[content_scheduled], params)).first()
        if found is None:
            return None
        orm = await session.get(PostTarget, found.id)
        assert orm is not None
        await outbox.post_published(session, orm)
        await after_done(session, orm)
        return Target.of(found)


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
) -> Target | None:
    """-> PENDING, next attempt after `delay_seconds`. `in_doubt`: this attempt may have
    reached the platform (the flag stays set until an outcome is known)."""
    values: dict[str, Any] = {
        "status": S.PENDING.value,
        "error": error,
        "locked_until": None,
        "next_attempt_at": func.now() + literal(timedelta(seconds=delay_seconds), Interval),
    }
    if in_doubt:
        values["in_doubt"] = True
    return await _record(factory, _held(target_id, attempt), values)


async def failed(
    factory: async_sessionmaker[AsyncSession],
    target_id: uuid.UUID,
    attempt: int,
    error: str,
    *,
    reconnect_account: uuid.UUID | None = None,
) -> Target | None:
    """-> FAILED for good. `reconnect_account`: the platform refused the account's token,
    so the account is marked NEEDS_RECONNECT (with the reason) in the same transaction."""
    async with factory() as session, session.begin():
        found = (
            await session.execute(
                _core_update(
                    _held(target_id, attempt),
                    {"status": S.FAILED.value, "error": error, "locked_until": None},
                )
            )
        ).first()
        row = Target.of(found) if found is not None else None
        if row is not None:
            content_id = await session.scalar(
                select(ScheduledPost.content_id).where(ScheduledPost.id == row.post_id)
            )
            if content_id is not None:
                await unschedule_if_idle(session, content_id)
            orm = await session.get(PostTarget, row.id)
            assert orm is not None
            # Before the account is marked: ACCOUNT_NEEDS_RECONNECT only while it is CONNECTED.
            await outbox.post_failed(session, orm, reconnect_account)
            await after_done(session, orm)
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
) -> Target | None:
    """-> UNKNOWN: it may be out, and the platform cannot be asked; a person decides."""
    return await _record(
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
) -> Target | None:
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
    return await _record(factory, _held(target_id, attempt), values)
