"""An item's review thread: comments written by members (and, through review links, guests)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import Content, ContentComment, User
from app.permissions import Action
from app.services import lookup
from app.services.audit import trail as audit
from app.state import AppState

MAX_COMMENT = 10_000


async def comment_row(
    session: AsyncSession, principal: Principal, content_id: uuid.UUID, body: str, kind: str
) -> ContentComment:
    name = principal.label
    if principal.user_id is not None:
        user = await session.get(User, principal.user_id)
        name = user.name if user else name
    return ContentComment(
        id=uuid.uuid4(),
        content_id=content_id,
        author_id=principal.user_id,
        author_name=name,
        kind=kind,
        body=body,
    )


async def add_comment(
    state: AppState, principal: Principal, content_id: uuid.UUID, body: str
) -> ContentComment:
    body = body.strip()
    if not body:
        raise ValidationFailed([FieldError("body", UserErrorCode.REQUIRED, "Write something.")])
    if len(body) > MAX_COMMENT:
        raise ValidationFailed(
            [FieldError("body", UserErrorCode.TOO_LONG, f"At most {MAX_COMMENT} characters.")]
        )
    async with state.session_factory() as session, session.begin():
        content = await lookup.scoped_row(
            session, Content, content_id, principal, Action.CONTENT_EDIT
        )
        comment = await comment_row(session, principal, content_id, body, "COMMENT")
        session.add(comment)
        audit.record(
            session,
            principal,
            "addComment",
            workspace_id=content.workspace_id,
            target_type="Content",
            target_id=content_id,
            details={"comment_id": str(comment.id)},
        )
    return comment


async def comments_for(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ContentComment]]:
    query = (
        select(ContentComment)
        .where(ContentComment.content_id.in_(content_ids))
        .order_by(ContentComment.content_id, ContentComment.created_at)
    )
    out: dict[uuid.UUID, list[ContentComment]] = {i: [] for i in content_ids}
    for row in (await session.scalars(query)).all():
        out[row.content_id].append(row)
    return out


async def comment_counts(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(ContentComment.content_id, func.count())
        .where(ContentComment.content_id.in_(content_ids))
        .group_by(ContentComment.content_id)
    )
    return {content_id: count for content_id, count in rows.all()}
