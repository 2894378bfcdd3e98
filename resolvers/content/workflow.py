"""The review workflow (submit, approve, request changes) and the review thread."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.services.content import comments, workflow
from resolvers.common import attempt, principal_of, state_of
from resolvers.content.items import ContentId, content_payload
from schema.context import Info
from schema.ids import parse_id
from schema.types.content.items import CommentPayload, ContentComment, ContentPayload
from schema.types.vocabulary import ContentStatus


async def _move(
    info: Info, id: ContentId, target: ContentStatus, name: str, comment: str | None = None
) -> ContentPayload:
    call = workflow.transition(
        state_of(info),
        principal_of(info),
        parse_id(id, "Content"),
        target,
        action_name=name,
        comment=comment,
    )
    return content_payload(*await attempt(call))


@strawberry.type
class WorkflowMutation:
    @strawberry.mutation(description="DRAFT -> IN_REVIEW. Requires member role.")
    async def submit_for_review(self, info: Info, id: ContentId) -> ContentPayload:
        return await _move(info, id, ContentStatus.IN_REVIEW, "submitForReview")

    @strawberry.mutation(description="IN_REVIEW -> APPROVED. Requires admin role.")
    async def approve_content(self, info: Info, id: ContentId) -> ContentPayload:
        return await _move(info, id, ContentStatus.APPROVED, "approveContent")

    @strawberry.mutation(
        description="IN_REVIEW or APPROVED -> DRAFT, with a comment. Requires admin role."
    )
    async def request_changes(
        self,
        info: Info,
        id: ContentId,
        comment: Annotated[str, strawberry.argument(description="What to change.")],
    ) -> ContentPayload:
        return await _move(info, id, ContentStatus.DRAFT, "requestChanges", comment)

    @strawberry.mutation(
        description="DRAFT, APPROVED or PUBLISHED -> ARCHIVED. Requires admin role."
    )
    async def archive_content(self, info: Info, id: ContentId) -> ContentPayload:
        call = workflow.archive(state_of(info), principal_of(info), parse_id(id, "Content"))
        return content_payload(*await attempt(call))

    @strawberry.mutation(description="ARCHIVED -> DRAFT. Requires admin role.")
    async def unarchive_content(self, info: Info, id: ContentId) -> ContentPayload:
        call = workflow.unarchive(state_of(info), principal_of(info), parse_id(id, "Content"))
        return content_payload(*await attempt(call))

    @strawberry.mutation(description="Add to an item's review thread. Requires member role.")
    async def add_comment(
        self,
        info: Info,
        content_id: ContentId,
        body: Annotated[str, strawberry.argument(description="The comment.")],
    ) -> CommentPayload:
        target = parse_id(content_id, "Content", "contentId")
        call = comments.add_comment(state_of(info), principal_of(info), target, body)
        row, errors = await attempt(call)
        return CommentPayload(comment=ContentComment.from_row(row) if row else None, errors=errors)
