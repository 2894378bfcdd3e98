"""Resolving targets a person must decide on: one whose outcome is UNKNOWN did go out
(confirmPostPublished), or should be sent again (retryPost, also for FAILED ones)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import NotFound, UserErrorCode
from app.models import AccountStatus, Content, PostTarget, ScheduledPost, SocialAccount, Workspace
from app.models import TargetStatus as S
from app.permissions import Action
from app.services import lookup
from app.services.audit import trail as audit
from app.services.publishing import delivery, events, transitions
from app.services.publishing.scheduling import refuse, schedule_content
from app.state import AppState


async def _target_row(
    session: AsyncSession, principal: Principal, target_id: uuid.UUID
) -> PostTarget:
    try:
        return await lookup.scoped_row(
            session, PostTarget, target_id, principal, Action.CONTENT_PUBLISH, for_update=True
        )
    except NotFound:
        raise NotFound("No such post target.") from None


async def confirm_published(
    state: AppState,
    principal: Principal,
    target_id: uuid.UUID,
    *,
    platform_url: str | None,
    platform_post_id: str | None,
) -> PostTarget:
    """A person checked the platform: the UNKNOWN target did go out."""
    if platform_url is not None and len(platform_url) > 2000:
        raise refuse("platformUrl", UserErrorCode.TOO_LONG, "At most 2,000 characters.")
    if platform_post_id is not None and len(platform_post_id) > 255:
        raise refuse("platformPostId", UserErrorCode.TOO_LONG, "At most 255 characters.")
    async with state.session_factory() as session, session.begin():
        target = await _target_row(session, principal, target_id)
        row = await transitions.apply(
            session,
            [PostTarget.id == target.id, PostTarget.status == S.UNKNOWN.value],
            {
                "status": S.PUBLISHED.value,
                "published_at": datetime.now(UTC),
                "platform_url": platform_url or target.platform_url,
                "platform_post_id": platform_post_id or target.platform_post_id,
                "in_doubt": False,
                "error": None,
                "resolved_by_id": principal.user_id,
            },
        )
        if row is None:
            raise refuse(None, UserErrorCode.INVALID_STATE, "Only a post whose outcome is UNKNOWN.")
        await transitions.mark_content_published(session, row.post_id)
        audit.record_row(session, principal, "confirmPostPublished", row)
    await events.emit(state.hub, [row])
    return row


async def retry_target(state: AppState, principal: Principal, target_id: uuid.UUID) -> PostTarget:
    """Send an UNKNOWN or FAILED target again, now, with a fresh allowance of attempts.
    For UNKNOWN this is the person's decision that it did not go out."""
    async with state.session_factory() as session, session.begin():
        target = await _target_row(session, principal, target_id)
        account = await session.get(SocialAccount, target.social_account_id)
        if account is None or account.status != AccountStatus.CONNECTED.value:
            raise refuse(
                None,
                UserErrorCode.ACCOUNT_NOT_CONNECTED,
                "The account is not connected; connect it again first.",
            )
        row = await transitions.apply(
            session,
            [
                PostTarget.id == target.id,
                PostTarget.status.in_((S.UNKNOWN.value, S.FAILED.value)),
            ],
            {
                "status": S.PENDING.value,
                "next_attempt_at": datetime.now(UTC),
                "max_attempts": PostTarget.attempts + state.settings.publish_max_attempts,
                "enqueue_generation": PostTarget.enqueue_generation + 1,
                "in_doubt": False,
                "error": None,
                "resolved_by_id": principal.user_id,
            },
        )
        if row is None:
            raise refuse(
                None, UserErrorCode.INVALID_STATE, "Only a FAILED or UNKNOWN post can be retried."
            )
        post = await session.get(ScheduledPost, row.post_id)
        assert post is not None
        content = await session.get(Content, post.content_id, with_for_update=True)
        workspace = await session.get(Workspace, row.workspace_id)
        assert content is not None and workspace is not None
        schedule_content(principal, workspace, content)
        audit.record_row(session, principal, "retryPost", row)
    await delivery.enqueue(state.arq, row.id, row.attempts, generation=row.enqueue_generation)
    await events.emit(state.hub, [row])
    return row
