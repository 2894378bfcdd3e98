"""Scheduling: put content on the calendar for one or more accounts, move it, cancel it,
publish it now, and resolve targets whose outcome is unknown.

Each mutation is one transaction over the post, its targets, the content's workflow status
(through the workflow table) and the audit entry; arq jobs are enqueued and events sent
after commit (a lost enqueue is the sweeper's to recover).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import FieldError, NotFound, UserErrorCode, ValidationFailed
from app.models import (
    Content,
    ContentVariation,
    PostTarget,
    ScheduledPost,
    SocialAccount,
    Workspace,
)
from app.models import TargetStatus as S
from app.models.vocabulary import ContentStatus
from app.permissions import Action
from app.services import lookup
from app.services.audit import trail as audit
from app.services.content.workflow import TRANSITIONS
from app.services.publishing import checks, delivery, events, recurrence, transitions
from app.services.publishing.comment_checks import replacement
from app.services.publishing.recurrence_rules import Recurrence, problems
from app.services.publishing.timezones import to_utc, zone
from app.state import AppState

MAX_ACCOUNTS = 20
MAX_AHEAD = timedelta(days=2 * 366)
# Statuses a cancel takes back; PUBLISHING is already on its way, the rest are final.
CANCELLABLE = (S.PENDING.value, S.UNKNOWN.value)


@dataclass(frozen=True)
class ScheduleRequest:
    content_id: uuid.UUID | None
    variation_id: uuid.UUID | None
    account_ids: Sequence[uuid.UUID]
    scheduled_at: datetime
    timezone: str
    first_comment: str | None = None
    recurrence: Recurrence | None = None


def refuse(field: str | None, code: UserErrorCode, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, code, message)])


def checked_time(scheduled_at: datetime, timezone: str) -> datetime:
    """The UTC instant; a time without offset is a wall-clock time in `timezone`."""
    tz = zone(timezone)
    if tz is None:
        raise refuse("timezone", UserErrorCode.INVALID, f"Unknown time zone {timezone!r}.")
    when = to_utc(scheduled_at, tz)
    if when is None:
        raise refuse(
            "scheduledAt",
            UserErrorCode.INVALID,
            f"{scheduled_at:%Y-%m-%d %H:%M} does not exist in {timezone} (the clocks skip it).",
        )
    now = datetime.now(UTC)
    if when <= now:
        raise refuse("scheduledAt", UserErrorCode.IN_THE_PAST, "The time lies in the past.")
    if when > now + MAX_AHEAD:
        raise refuse("scheduledAt", UserErrorCode.TOO_FAR, "At most two years ahead.")
    return when


async def _post_row(
    session: AsyncSession, principal: Principal, post_id: uuid.UUID, *, lock: bool = True
) -> ScheduledPost:
    try:
        return await lookup.scoped_row(
            session, ScheduledPost, post_id, principal, Action.CONTENT_PUBLISH, for_update=lock
        )
    except NotFound:
        raise NotFound("No such scheduled post.") from None


def schedule_content(
    principal: Principal, workspace: Workspace, content: Content
) -> ContentStatus | None:
    """Move content to SCHEDULED through the workflow table (None: it stays, being
    SCHEDULED or PUBLISHED already). Refusals name the reason."""
    current = ContentStatus(content.status)
    if current in (ContentStatus.SCHEDULED, ContentStatus.PUBLISHED):
        return None
    action = TRANSITIONS.get((current, ContentStatus.SCHEDULED))
    needs_approval = workspace.approval_required and current is not ContentStatus.APPROVED
    if needs_approval and current in (ContentStatus.DRAFT, ContentStatus.IN_REVIEW):
        raise refuse(
            "contentId",
            UserErrorCode.APPROVAL_REQUIRED,
            f"This workspace requires approval before scheduling; the content is {current.value}.",
        )
    if action is None:
        raise refuse(
            "contentId",
            UserErrorCode.INVALID_TRANSITION,
            f"Content that is {current.value} cannot be scheduled.",
        )
    principal.require(content.workspace_id, action)
    content.status = ContentStatus.SCHEDULED.value
    content.updated_by_id = principal.user_id
    return current


async def _source(
    session: AsyncSession, principal: Principal, request: ScheduleRequest
) -> tuple[Content, ContentVariation | None]:
    if (request.content_id is None) == (request.variation_id is None):
        raise refuse("contentId", UserErrorCode.REQUIRED, "Give a contentId or a variationId.")
    variation = None
    content_id = request.content_id
    if request.variation_id is not None:
        variation = await lookup.scoped_row(
            session, ContentVariation, request.variation_id, principal, Action.CONTENT_READ
        )
        content_id = variation.content_id
    assert content_id is not None
    content = await lookup.scoped_row(
        session, Content, content_id, principal, Action.CONTENT_READ, for_update=True
    )
    principal.require(content.workspace_id, Action.CONTENT_PUBLISH)
    if content.deleted_at is not None:
        raise refuse("contentId", UserErrorCode.DELETED, "Restore the content first.")
    return content, variation


async def _accounts(
    session: AsyncSession, workspace_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[SocialAccount]:
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise refuse("socialAccountIds", UserErrorCode.REQUIRED, "Choose at least one account.")
    if len(unique) > MAX_ACCOUNTS:
        raise refuse("socialAccountIds", UserErrorCode.TOO_MANY, f"At most {MAX_ACCOUNTS}.")
    rows = await session.scalars(
        select(SocialAccount).where(
            SocialAccount.id.in_(unique), SocialAccount.workspace_id == workspace_id
        )
    )
    found = {row.id: row for row in rows.all()}
    if len(found) != len(unique):
        raise refuse(
            "socialAccountIds",
            UserErrorCode.NOT_FOUND,
            "An account does not exist in this content's workspace.",
        )
    return [found[i] for i in unique]


async def schedule_post(
    state: AppState, principal: Principal, request: ScheduleRequest
) -> ScheduledPost:
    when = checked_time(request.scheduled_at, request.timezone)
    if request.recurrence is not None and (errors := problems(request.recurrence, when)):
        raise ValidationFailed(errors)
    async with state.session_factory() as session, session.begin():
        post, targets = await schedule_in(state, session, principal, request, when)
    await announce(state, targets)
    return post


async def schedule_in(
    state: AppState,
    session: AsyncSession,
    principal: Principal,
    request: ScheduleRequest,
    when: datetime,
) -> tuple[ScheduledPost, list[PostTarget]]:
    """schedulePost inside the caller's transaction (`when`: the checked UTC instant);
    the caller commits, then `announce`s the targets."""
    content, variation = await _source(session, principal, request)
    workspace = await session.get(Workspace, content.workspace_id)
    assert workspace is not None
    accounts = await _accounts(session, content.workspace_id, request.account_ids)
    first_comment = request.first_comment or None
    await checks.check_targets(
        state, session, content, variation, accounts, first_comment=first_comment
    )
    post, targets = await create_post(
        state,
        session,
        principal,
        workspace,
        content,
        variation,
        accounts,
        when,
        request.timezone,
        first_comment=first_comment,
        recurrence_rule=request.recurrence,
    )
    await session.flush()
    return post, targets


async def create_post(
    state: AppState,
    session: AsyncSession,
    principal: Principal,
    workspace: Workspace,
    content: Content,
    variation: ContentVariation | None,
    accounts: Sequence[SocialAccount],
    when: datetime,
    timezone: str,
    *,
    action: str = "schedulePost",
    defer_targets: bool = False,
    first_comment: str | None = None,
    recurrence_rule: Recurrence | None = None,
) -> tuple[ScheduledPost, list[PostTarget]]:
    """The post, its PENDING targets, the content's move and the audit entry, added to the
    session (checked already: `checks.check_targets`). `defer_targets`: neither flush nor
    add the targets; the caller flushes its posts, then adds them (a bulk import writes
    all its posts, then all targets, in a few statements)."""
    previous = schedule_content(principal, workspace, content)
    post = ScheduledPost(
        id=uuid.uuid4(),
        workspace_id=content.workspace_id,
        content_id=content.id,
        variation_id=variation.id if variation else None,
        scheduled_at=when,
        timezone=timezone,
        created_by_id=principal.user_id,
    )
    if recurrence_rule is not None:  # the series first: the post refers to it
        await recurrence.start(session, recurrence_rule, post, list(accounts), first_comment)
    session.add(post)
    if not defer_targets:
        await session.flush()  # the targets refer to it (no ORM relationship orders them)
    targets = recurrence.new_targets(
        post_id=post.id,
        workspace_id=post.workspace_id,
        accounts=[(a.id, a.platform) for a in accounts],
        when=when,
        timezone=timezone,
        max_attempts=state.settings.publish_max_attempts,
        first_comment=first_comment,
        series_id=post.series_id,
    )
    if not defer_targets:
        session.add_all(targets)
    audit.record_row(
        session,
        principal,
        action,
        post,
        {
            "content_id": str(content.id),
            "accounts": [str(a.id) for a in accounts],
            "scheduled_at": when.isoformat(),
            "timezone": timezone,
            **({"content_status": [previous.value, "SCHEDULED"]} if previous else {}),
            **({"first_comment": True} if first_comment else {}),
            **({"series_id": str(post.series_id)} if post.series_id else {}),
        },
    )
    return post, targets


async def announce(state: AppState, targets: Sequence[PostTarget]) -> None:
    """After commit: each target's deferred arq job and its status event."""
    for target in targets:
        await delivery.enqueue(state.arq, target.id, 0, due=target.scheduled_at)
    await events.emit(state.hub, list(targets))


async def _pending(session: AsyncSession, post_id: uuid.UUID) -> list[PostTarget]:
    rows = await session.scalars(
        select(PostTarget)
        .where(PostTarget.post_id == post_id, PostTarget.status == S.PENDING.value)
        .with_for_update()
    )
    return list(rows.all())


async def _move(
    state: AppState,
    principal: Principal,
    post_id: uuid.UUID,
    when: datetime | None,
    timezone: str | None,
    action_name: str,
    first_comment: str | None = None,
) -> ScheduledPost:
    """Move a post's PENDING targets to `when` (None: now); `first_comment`: replace
    theirs ("" removes it)."""
    async with state.session_factory() as session, session.begin():
        post = await _post_row(session, principal, post_id)
        pending = await _pending(session, post.id)
        if not pending:
            raise refuse(
                None, UserErrorCode.INVALID_STATE, "Nothing of this post is waiting to go out."
            )
        changes = replacement(state.settings, pending, first_comment)
        due = when or datetime.now(UTC)
        post.scheduled_at = due
        if timezone is not None:
            post.timezone = timezone
        moved = []
        for target in pending:
            row = await transitions.apply(
                session,
                [PostTarget.id == target.id, PostTarget.status == S.PENDING.value],
                {
                    "scheduled_at": due,
                    "timezone": post.timezone,
                    "next_attempt_at": due,
                    "enqueue_generation": PostTarget.enqueue_generation + 1,
                    **changes,
                },
            )
            if row is not None:
                moved.append(row)
        audit.record_row(session, principal, action_name, post, {"scheduled_at": due.isoformat()})
    for row in moved:
        await delivery.enqueue(
            state.arq, row.id, row.attempts, generation=row.enqueue_generation, due=due
        )
    await events.emit(state.hub, moved)
    return post


async def reschedule_post(
    state: AppState,
    principal: Principal,
    post_id: uuid.UUID,
    scheduled_at: datetime,
    timezone: str | None,
    first_comment: str | None = None,
) -> ScheduledPost:
    """Move what has not gone out yet; published, failed or cancelled targets stay."""
    if timezone is None:
        async with state.session_factory() as session:
            timezone = (await _post_row(session, principal, post_id, lock=False)).timezone
    when = checked_time(scheduled_at, timezone)
    return await _move(state, principal, post_id, when, timezone, "reschedulePost", first_comment)


async def publish_now(state: AppState, principal: Principal, post_id: uuid.UUID) -> ScheduledPost:
    """Make the post's waiting targets due now."""
    return await _move(state, principal, post_id, None, None, "publishNow")


async def cancel_post(
    state: AppState, principal: Principal, post_id: uuid.UUID, *, cancel_series: bool = False
) -> ScheduledPost:
    """Cancel what has not gone out (PENDING, UNKNOWN); the content goes back to APPROVED
    once none of it is left to publish. `cancel_series`: the post's whole series stops
    (no further occurrence is made) and every occurrence not out yet is cancelled too."""
    async with state.session_factory() as session, session.begin():
        post = await _post_row(session, principal, post_id)
        series_stopped, which = False, PostTarget.post_id == post.id
        if cancel_series:  # every occurrence not out yet, and no more of them
            series_stopped = await recurrence.cancel(session, post.series_id)
            which = PostTarget.series_id == post.series_id
        rows = (
            await session.scalars(
                update(PostTarget)
                .where(which, PostTarget.status.in_(CANCELLABLE))
                .values(
                    status=S.CANCELLED.value, locked_until=None, event_seq=PostTarget.event_seq + 1
                )
                .returning(PostTarget)
                .execution_options(synchronize_session=False, populate_existing=True)
            )
        ).all()
        if not rows and not series_stopped:
            raise refuse(
                None, UserErrorCode.INVALID_STATE, "Nothing of this post is left to cancel."
            )
        await transitions.unschedule_if_idle(session, post.content_id)
        detail = {"targets": len(rows), **({"series": True} if cancel_series else {})}
        audit.record_row(session, principal, "cancelScheduledPost", post, detail)
    await events.emit(state.hub, list(rows))
    return post
