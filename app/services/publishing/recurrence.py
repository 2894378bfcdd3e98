"""Recurring posts: a series of ScheduledPosts, every N days at the same local time.

A series (`post_series`) keeps what each occurrence repeats (content, variation, accounts,
first comment) and its rule: every `every_days` days from the first occurrence's wall-clock
time in its zone (slot k is the anchor plus k * N local days, so 09:00 Europe/Berlin stays
09:00 across DST changes), ending `until` a time or after `count` posts.

The next occurrence is created when one of the current occurrence's targets is done
(PUBLISHED or FAILED), in that transition's transaction (`continue_series`, called from
transitions), or by `sweep_once` for occurrences done another way (cancelled, confirmed by
hand). It takes the first slot after the current one that is still in the future: after
a long outage the series re-anchors on the next future slot, and the missed slots are
skipped, never sent in a burst. Exactly one next occurrence exists per occurrence:
`(series_id, occurrence_index)` is unique and the insert does nothing on conflict.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.logging import get_logger
from app.models import Content, PostSeries, PostTarget, ScheduledPost, SocialAccount
from app.models import TargetStatus as S
from app.services.publishing import comments
from app.services.publishing.recurrence_rules import Recurrence, local_wall_time, next_slot

if TYPE_CHECKING:  # at run time transitions imports these modules
    from app.services.publishing.transitions import Target as AttemptTarget

log = get_logger(__name__)

# An occurrence is done (the next one may be made) once a target of it ended so.
DONE = (S.PUBLISHED.value, S.FAILED.value, S.CANCELLED.value)


async def start(
    session: AsyncSession,
    rule: Recurrence,
    post: ScheduledPost,
    accounts: Sequence[SocialAccount],
    first_comment: str | None,
) -> PostSeries:
    """Make `post` (not yet added) the first occurrence of a new series with `rule`,
    anchored on its time; the series row is written first (the post refers to it)."""
    until = rule.until
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    series = PostSeries(
        id=uuid.uuid4(),
        workspace_id=post.workspace_id,
        content_id=post.content_id,
        variation_id=post.variation_id,
        account_ids=[a.id for a in accounts],
        every_days=rule.every_days,
        until=until,
        count=rule.count,
        timezone=post.timezone,
        anchor_local=local_wall_time(post.scheduled_at, post.timezone),
        first_comment=first_comment,
        created_by_id=post.created_by_id,
    )
    session.add(series)
    await session.flush()
    post.series_id = series.id
    post.occurrence_index = 0
    post.occurrence_slot = 0
    return series


async def cancel(session: AsyncSession, series_id: uuid.UUID | None) -> bool:
    """Stop the series: no occurrence after this. False: it was stopped already."""
    if series_id is None:
        raise ValidationFailed(
            [FieldError("cancelSeries", UserErrorCode.INVALID, "This post is not recurring.")]
        )
    stopped = await session.execute(
        update(PostSeries)
        .where(PostSeries.id == series_id, PostSeries.cancelled_at.is_(None))
        .values(cancelled_at=datetime.now(UTC))
        .returning(PostSeries.id)
        .execution_options(synchronize_session=False)
    )
    return stopped.first() is not None


async def _end(session: AsyncSession, series_id: uuid.UUID) -> None:
    await session.execute(
        update(PostSeries)
        .where(PostSeries.id == series_id, PostSeries.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


async def after_done(session: AsyncSession, target: PostTarget) -> None:
    """The hook in a target's final transition: the next occurrence, in a savepoint so a
    fault here can never undo the transition being recorded (the sweep tries again)."""
    if target.series_id is None:
        return
    try:
        async with session.begin_nested():
            await continue_series(session, target)
    except Exception as exc:
        log.warning("series_continue_failed", target_id=str(target.id), error=repr(exc))


async def continue_series(
    session: AsyncSession, target: PostTarget, *, now: datetime | None = None
) -> ScheduledPost | None:
    """In the caller's transaction: the occurrence after `target`'s, if the series goes
    on and it does not exist yet (None otherwise: no series, cancelled, ended, made)."""
    if target.series_id is None:
        return None
    series = await session.get(PostSeries, target.series_id, populate_existing=True)
    if series is None or series.cancelled_at is not None or series.ended_at is not None:
        return None
    post = await session.get(ScheduledPost, target.post_id)
    if post is None or post.occurrence_index is None or post.occurrence_slot is None:
        return None
    index = post.occurrence_index + 1
    content = await session.get(Content, series.content_id)
    if (series.count is not None and index >= series.count) or (
        content is None or content.deleted_at is not None
    ):
        await _end(session, series.id)
        return None
    found = next_slot(series, post.occurrence_slot, now or datetime.now(UTC))
    if found is None:
        await _end(session, series.id)
        return None
    slot, when = found
    rows = (
        await session.execute(
            select(SocialAccount.id, SocialAccount.platform).where(
                SocialAccount.id.in_(series.account_ids),
                SocialAccount.workspace_id == series.workspace_id,
            )
        )
    ).all()
    if not rows:
        await _end(session, series.id)
        return None
    post_id = uuid.uuid4()
    made = await session.scalar(
        insert(ScheduledPost)
        .values(
            id=post_id,
            workspace_id=series.workspace_id,
            content_id=series.content_id,
            variation_id=series.variation_id,
            scheduled_at=when,
            timezone=series.timezone,
            created_by_id=series.created_by_id,
            series_id=series.id,
            occurrence_index=index,
            occurrence_slot=slot,
        )
        .on_conflict_do_nothing(index_elements=["series_id", "occurrence_index"])
        .returning(ScheduledPost.id)
    )
    if made is None:
        return None  # another run of the hook made it
    session.add_all(
        new_targets(
            post_id=post_id,
            workspace_id=series.workspace_id,
            accounts=[(r.id, r.platform) for r in rows],
            when=when,
            timezone=series.timezone,
            max_attempts=target.max_attempts,
            first_comment=series.first_comment,
            series_id=series.id,
        )
    )
    await session.flush()
    log.info("series_continued", series_id=str(series.id), index=index, slot=slot)
    return await session.get(ScheduledPost, post_id)


def new_targets(
    *,
    post_id: uuid.UUID,
    workspace_id: uuid.UUID,
    accounts: Sequence[tuple[uuid.UUID, str]],
    when: datetime,
    timezone: str,
    max_attempts: int,
    first_comment: str | None,
    series_id: uuid.UUID | None,
) -> list[PostTarget]:
    """One PENDING target per account (schedulePost and every occurrence of a series)."""
    targets = []
    for account_id, platform in accounts:
        target_id = uuid.uuid4()
        targets.append(
            PostTarget(
                id=target_id,
                post_id=post_id,
                workspace_id=workspace_id,
                social_account_id=account_id,
                platform=platform,
                status=S.PENDING.value,
                scheduled_at=when,
                timezone=timezone,
                next_attempt_at=when,
                attempts=0,
                max_attempts=max_attempts,
                idempotency_key=f"sc-{target_id.hex}",
                enqueue_generation=0,
                event_seq=0,
                in_doubt=False,
                first_comment=first_comment,
                comment_status=comments.initial_status(first_comment),
                comment_attempts=0,
                series_id=series_id,
            )
        )
    return targets


async def next_targets(
    session: AsyncSession, target: PostTarget | AttemptTarget
) -> list[PostTarget]:
    """The PENDING targets of the occurrence after `target`'s (to enqueue after commit)."""
    current = (
        select(ScheduledPost.occurrence_index)
        .where(ScheduledPost.id == target.post_id)
        .scalar_subquery()
    )
    rows = await session.scalars(
        select(PostTarget)
        .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
        .where(
            ScheduledPost.series_id == target.series_id,
            ScheduledPost.occurrence_index == current + 1,
            PostTarget.status == S.PENDING.value,
        )
    )
    return list(rows.all())


async def next_times(
    session: AsyncSession, post_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """For the posts given, the time of the occurrence after each that exists already."""
    nxt = aliased(ScheduledPost)
    rows = await session.execute(
        select(ScheduledPost.id, nxt.scheduled_at)
        .join(
            nxt,
            (nxt.series_id == ScheduledPost.series_id)
            & (nxt.occurrence_index == ScheduledPost.occurrence_index + 1),
        )
        .where(ScheduledPost.id.in_(post_ids))
    )
    return {row[0]: row[1] for row in rows.all()}


async def sweep(session: AsyncSession, batch: int = 100) -> list[ScheduledPost]:
    """In the sweeper's transaction: the next occurrence of occurrences done without the
    hook having run (cancelled, confirmed by hand). Their targets are days ahead; the
    publishing sweeper enqueues them once due if nothing did before."""
    nxt = ScheduledPost.__table__.alias("nxt")
    done = (
        await session.scalars(
            select(PostTarget)
            .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
            .join(PostSeries, PostSeries.id == ScheduledPost.series_id)
            .where(
                PostSeries.cancelled_at.is_(None),
                PostSeries.ended_at.is_(None),
                PostTarget.status.in_(DONE),
                ~select(nxt.c.id)
                .where(
                    nxt.c.series_id == ScheduledPost.series_id,
                    nxt.c.occurrence_index == ScheduledPost.occurrence_index + 1,
                )
                .exists(),
            )
            .limit(batch)
        )
    ).all()
    made = []
    for target in done:  # a second target of one post finds its next one made: a no-op
        post = await continue_series(session, target)
        if post is not None:
            made.append(post)
    return made


# delivery.enqueue, passed in (delivery calls this module, so it cannot import delivery).
EnqueueTarget = Callable[..., Awaitable[bool]]


async def enqueue_next(
    factory: async_sessionmaker[AsyncSession],
    target: PostTarget | AttemptTarget | None,
    enqueue: EnqueueTarget,
) -> None:
    """After commit: hand the next occurrence's targets to arq, deferred to their time."""
    if target is None or target.series_id is None:
        return
    async with factory() as session:
        rows = await next_targets(session, target)
    for row in rows:
        await enqueue(
            row.id, row.attempts, generation=row.enqueue_generation, due=row.next_attempt_at
        )
