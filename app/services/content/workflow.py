"""The review workflow: which status changes are allowed, to whom, and making them."""

from __future__ import annotations

import uuid

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import Content, Workspace
from app.models.vocabulary import ContentStatus
from app.permissions import PERMISSIONS, Action
from app.services import lookup
from app.services.audit import trail as audit
from app.services.content.comments import MAX_COMMENT, comment_row
from app.services.content.items import reload
from app.services.outgoing import outbox
from app.state import AppState

# The review workflow. Anything not listed is refused with a clear user error.
TRANSITIONS: dict[tuple[ContentStatus, ContentStatus], Action] = {
    (ContentStatus.DRAFT, ContentStatus.IN_REVIEW): Action.CONTENT_SUBMIT,
    (ContentStatus.IN_REVIEW, ContentStatus.APPROVED): Action.CONTENT_APPROVE,
    (ContentStatus.IN_REVIEW, ContentStatus.DRAFT): Action.CONTENT_APPROVE,  # changes requested
    (ContentStatus.APPROVED, ContentStatus.DRAFT): Action.CONTENT_APPROVE,  # changes requested
    (ContentStatus.APPROVED, ContentStatus.SCHEDULED): Action.CONTENT_PUBLISH,
    (
        ContentStatus.DRAFT,
        ContentStatus.SCHEDULED,
    ): Action.CONTENT_PUBLISH,  # only without required approval
    (ContentStatus.SCHEDULED, ContentStatus.APPROVED): Action.CONTENT_PUBLISH,  # unscheduled
    (ContentStatus.SCHEDULED, ContentStatus.PUBLISHED): Action.CONTENT_PUBLISH,
    (ContentStatus.PUBLISHED, ContentStatus.ARCHIVED): Action.CONTENT_PUBLISH,
    (ContentStatus.APPROVED, ContentStatus.ARCHIVED): Action.CONTENT_PUBLISH,
    (ContentStatus.DRAFT, ContentStatus.ARCHIVED): Action.CONTENT_APPROVE,
    (ContentStatus.ARCHIVED, ContentStatus.DRAFT): Action.CONTENT_APPROVE,
}


# Moves a caller must ask for by name (`sources`): un-archiving is not "request changes".
NAMED_ONLY = {(ContentStatus.ARCHIVED, ContentStatus.DRAFT)}


def entry_action(target: ContentStatus) -> Action | None:
    """The least privileged action that moves anything to `target`: whoever lacks it may
    not attempt the move at all, whatever the item's status (so the answer, FORBIDDEN, says
    nothing about the status)."""
    actions = [action for (_, to), action in TRANSITIONS.items() if to == target]
    return min(actions, key=lambda a: PERMISSIONS[a]) if actions else None


async def transition(
    state: AppState,
    principal: Principal,
    content_id: uuid.UUID,
    target: ContentStatus,
    *,
    action_name: str,
    comment: str | None = None,
    sources: frozenset[ContentStatus] | None = None,
) -> Content:
    """Move content through the workflow; refuse transitions the table does not list (and,
    with `sources`, moves from any other status). The role comes first: a caller who may
    never make this move gets FORBIDDEN before anything about the item is checked."""
    if comment is not None and len(comment) > MAX_COMMENT:
        raise ValidationFailed(
            [FieldError("comment", UserErrorCode.TOO_LONG, f"At most {MAX_COMMENT} characters.")]
        )
    async with state.session_factory() as session, session.begin():
        content = await lookup.scoped_row(
            session, Content, content_id, principal, None, for_update=True
        )
        principal.require(content.workspace_id, Action.CONTENT_READ)
        needed = entry_action(target)
        if needed is not None:
            principal.require(content.workspace_id, needed)
        current = ContentStatus(content.status)
        action = TRANSITIONS.get((current, target))
        allowed_from = (
            current in sources if sources is not None else ((current, target) not in NAMED_ONLY)
        )
        if not allowed_from:
            action = None
        if action is None or content.deleted_at is not None:
            raise ValidationFailed(
                [
                    FieldError(
                        None,
                        UserErrorCode.INVALID_TRANSITION,
                        f"Content that is {current.value} cannot become {target.value}.",
                    )
                ]
            )
        principal.require(content.workspace_id, action)
        if (current, target) == (ContentStatus.DRAFT, ContentStatus.SCHEDULED):
            workspace = await session.get(Workspace, content.workspace_id)
            if workspace is None or workspace.approval_required:
                raise ValidationFailed(
                    [
                        FieldError(
                            None,
                            UserErrorCode.APPROVAL_REQUIRED,
                            "This workspace requires approval before scheduling.",
                        )
                    ]
                )
        content.status = target.value
        content.updated_by_id = principal.user_id
        await outbox.content_moved(session, content, current)
        if comment:
            kind = "CHANGES_REQUESTED" if target == ContentStatus.DRAFT else "COMMENT"
            session.add(await comment_row(session, principal, content.id, comment, kind))
        audit.record(
            session,
            principal,
            action_name,
            workspace_id=content.workspace_id,
            target_type="Content",
            target_id=content.id,
            details={"from": current.value, "to": target.value},
        )
    return await reload(state, content_id)


async def archive(state: AppState, principal: Principal, content_id: uuid.UUID) -> Content:
    """DRAFT, APPROVED or PUBLISHED -> ARCHIVED: out of the way, kept. Requires admin role."""
    return await transition(
        state, principal, content_id, ContentStatus.ARCHIVED, action_name="archiveContent"
    )


async def unarchive(state: AppState, principal: Principal, content_id: uuid.UUID) -> Content:
    """ARCHIVED -> DRAFT, to work on it again. Requires admin role."""
    return await transition(
        state,
        principal,
        content_id,
        ContentStatus.DRAFT,
        action_name="unarchiveContent",
        sources=frozenset({ContentStatus.ARCHIVED}),
    )
