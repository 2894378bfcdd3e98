"""Client review links: a tokenised URL through which someone without an account reads one
item and its variations, approves it, requests changes or comments. Every use is audited;
links expire and can be revoked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import Content, ContentComment, Membership, ReviewLink, Workspace
from app.models.vocabulary import ContentStatus
from app.permissions import Action, Role, allows
from app.security import tokens
from app.services import lookup
from app.services.audit import trail as audit
from app.services.content.comments import MAX_COMMENT
from app.services.outgoing import outbox
from app.state import AppState

MAX_LIFETIME = timedelta(days=90)
TOKEN_PREFIX = "rv_"  # noqa: S105 - a marker, not a secret


class Decision(StrEnum):
    APPROVE = "APPROVE"
    REQUEST_CHANGES = "REQUEST_CHANGES"
    COMMENT = "COMMENT"


@dataclass(frozen=True)
class ReviewView:
    link: ReviewLink
    content: Content
    workspace_name: str


def link_url(state: AppState, token: str) -> str:
    return f"{state.settings.public_url}/review/{token}"


async def create(
    state: AppState, principal: Principal, content_id: uuid.UUID, *, expires_at: datetime | None
) -> tuple[ReviewLink, str]:
    now = datetime.now(UTC)
    expires_at = expires_at or now + timedelta(days=14)
    if expires_at <= now:
        raise ValidationFailed(
            [FieldError("expiresAt", UserErrorCode.IN_THE_PAST, "Expiry must be in the future.")]
        )
    if expires_at > now + MAX_LIFETIME:
        raise ValidationFailed(
            [FieldError("expiresAt", UserErrorCode.TOO_FAR, "A review link lives at most 90 days.")]
        )
    token = tokens.new_opaque_token(TOKEN_PREFIX)
    async with state.session_factory() as session, session.begin():
        content = await lookup.scoped_row(
            session, Content, content_id, principal, Action.CONTENT_SUBMIT
        )
        link = ReviewLink(
            id=uuid.uuid4(),
            content_id=content_id,
            workspace_id=content.workspace_id,
            token_hash=tokens.token_hash(token),
            created_by_id=principal.user_id,
            expires_at=expires_at,
        )
        session.add(link)
        audit.record(
            session,
            principal,
            "createReviewLink",
            workspace_id=content.workspace_id,
            target_type="Content",
            target_id=content_id,
            details={"link_id": str(link.id), "expires_at": expires_at.isoformat()},
        )
    return link, token


async def revoke(state: AppState, principal: Principal, link_id: uuid.UUID) -> ReviewLink:
    async with state.session_factory() as session, session.begin():
        link = await lookup.scoped_row(
            session, ReviewLink, link_id, principal, Action.CONTENT_SUBMIT, for_update=True
        )
        if link.revoked_at is None:
            link.revoked_at = datetime.now(UTC)
        audit.record(
            session,
            principal,
            "revokeReviewLink",
            workspace_id=link.workspace_id,
            target_type="Content",
            target_id=link.content_id,
            details={"link_id": str(link.id)},
        )
    return link


async def links_for(
    state: AppState, principal: Principal, content_id: uuid.UUID
) -> list[ReviewLink]:
    async with state.session_factory() as session:
        await lookup.scoped_row(session, Content, content_id, principal, Action.CONTENT_SUBMIT)
        rows = await session.scalars(
            select(ReviewLink)
            .where(ReviewLink.content_id == content_id)
            .order_by(ReviewLink.created_at.desc())
        )
        return list(rows.all())


def _guest(principal: Principal, name: str) -> Principal:
    """The audit actor for a review-link guest: no account, a name they typed."""
    return Principal(kind="anonymous", meta=principal.meta, label=f"review-link:{name}"[:320])


INVALID = ValidationFailed(
    [
        FieldError(
            "token", UserErrorCode.INVALID_LINK, "This review link is invalid, expired or revoked."
        )
    ]
)


async def _open(
    session: AsyncSession, token: str, *, for_update: bool
) -> tuple[ReviewLink, Content]:
    query = select(ReviewLink).where(ReviewLink.token_hash == tokens.token_hash(token))
    link = await session.scalar(query)
    now = datetime.now(UTC)
    if link is None or link.revoked_at is not None or link.expires_at <= now:
        raise INVALID
    content = await session.get(Content, link.content_id, with_for_update=for_update)
    if content is None or content.deleted_at is not None:
        raise INVALID
    return link, content


async def can_approve(session: AsyncSession, link: ReviewLink) -> bool:
    """Whether the link may approve: its creator must hold the approve right in the
    workspace *now* (a link is no way round a role, nor outlives a demotion or removal).
    A link whose creator is gone (account deleted) can only comment."""
    if link.created_by_id is None:
        return False
    role = await session.scalar(
        select(Membership.role).where(
            Membership.workspace_id == link.workspace_id,
            Membership.user_id == link.created_by_id,
        )
    )
    return role is not None and allows(Role.parse(role), Action.CONTENT_APPROVE)


async def view(
    state: AppState, principal: Principal, token: str, reviewer_name: str | None
) -> ReviewView:
    async with state.session_factory() as session, session.begin():
        link, content = await _open(session, token, for_update=False)
        workspace = await session.get(Workspace, content.workspace_id)
        audit.record(
            session,
            _guest(principal, reviewer_name or "guest"),
            "viewReviewLink",
            workspace_id=content.workspace_id,
            target_type="Content",
            target_id=content.id,
            details={"link_id": str(link.id)},
        )
    return ReviewView(
        link=link, content=content, workspace_name=workspace.name if workspace else ""
    )


async def respond(
    state: AppState,
    principal: Principal,
    token: str,
    *,
    decision: Decision,
    reviewer_name: str,
    comment: str | None,
) -> ReviewView:
    """Approve (IN_REVIEW -> APPROVED), request changes (-> DRAFT) or just comment."""
    name = reviewer_name.strip()
    text = (comment or "").strip()
    errors = []
    if not name or len(name) > 200:
        errors.append(
            FieldError(
                "reviewerName", UserErrorCode.INVALID, "Give your name (1 to 200 characters)."
            )
        )
    if len(text) > MAX_COMMENT:
        errors.append(
            FieldError("comment", UserErrorCode.TOO_LONG, f"At most {MAX_COMMENT} characters.")
        )
    if decision is not Decision.APPROVE and not text:
        errors.append(FieldError("comment", UserErrorCode.REQUIRED, "Say what you think."))
    if errors:
        raise ValidationFailed(errors)
    async with state.session_factory() as session, session.begin():
        link, content = await _open(session, token, for_update=True)
        current = ContentStatus(content.status)
        allowed = {
            Decision.APPROVE: {ContentStatus.IN_REVIEW},
            Decision.REQUEST_CHANGES: {ContentStatus.IN_REVIEW, ContentStatus.APPROVED},
            Decision.COMMENT: set(ContentStatus),
        }[decision]
        if current not in allowed:
            raise ValidationFailed(
                [
                    FieldError(
                        "decision",
                        UserErrorCode.INVALID_TRANSITION,
                        f"Content that is {current.value} cannot take this decision.",
                    )
                ]
            )
        # Approving, or undoing an approval, is the approver's to delegate: a link made by
        # someone without the approve right can comment and send an item in review back.
        approver_only = decision is Decision.APPROVE or (
            decision is Decision.REQUEST_CHANGES and current is ContentStatus.APPROVED
        )
        if approver_only and not await can_approve(session, link):
            raise ValidationFailed(
                [
                    FieldError(
                        "decision",
                        UserErrorCode.NOT_ALLOWED,
                        "This review link can comment and request changes on an item in "
                        "review, but not approve: ask an admin for a link that can.",
                    )
                ]
            )
        if decision is Decision.APPROVE:
            content.status = ContentStatus.APPROVED.value
            await outbox.content_approved(session, content)
        elif decision is Decision.REQUEST_CHANGES:
            content.status = ContentStatus.DRAFT.value
        kind = {
            "APPROVE": "APPROVAL",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "COMMENT": "COMMENT",
        }[decision.value]
        session.add(
            ContentComment(
                id=uuid.uuid4(),
                content_id=content.id,
                author_id=None,
                review_link_id=link.id,
                author_name=name,
                kind=kind,
                body=text or "Approved.",
            )
        )
        await session.execute(
            update(ReviewLink).where(ReviewLink.id == link.id).values(reviewer_name=name)
        )
        audit.record(
            session,
            _guest(principal, name),
            "respondToReviewLink",
            workspace_id=content.workspace_id,
            target_type="Content",
            target_id=content.id,
            details={
                "link_id": str(link.id),
                "decision": decision.value,
                "from": current.value,
                "to": content.status,
            },
        )
        workspace = await session.get(Workspace, content.workspace_id)
    return ReviewView(
        link=link, content=content, workspace_name=workspace.name if workspace else ""
    )
