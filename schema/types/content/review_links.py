"""Client review links and what a guest sees through one."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry import relay

from app.models import ContentComment as CommentRow
from app.models import ReviewLink as ReviewLinkRow
from app.services.content.review_links import ReviewView
from schema.context import Info
from schema.ids import to_global_id
from schema.types.content.variations import ContentVariation
from schema.types.errors import UserError
from schema.types.vocabulary import ContentFormat, ContentStatus, ContentType


@strawberry.type(
    description="A tokenised link through which someone without an account reviews one item."
)
class ReviewLink:
    id: relay.GlobalID = strawberry.field(description="Pass to revokeReviewLink.")
    created_at: datetime = strawberry.field(description="When it was made.")
    expires_at: datetime = strawberry.field(description="When it stops working.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked, if it was.")
    reviewer_name: str | None = strawberry.field(description="Name the last reviewer gave.")

    @classmethod
    def from_row(cls, row: ReviewLinkRow) -> ReviewLink:
        return cls(
            id=to_global_id("ReviewLink", row.id),
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            reviewer_name=row.reviewer_name,
        )


@strawberry.type(description="Result of createReviewLink / revokeReviewLink.")
class ReviewLinkPayload:
    review_link: ReviewLink | None = strawberry.field(description="The link.")
    url: str | None = strawberry.field(
        description="createReviewLink only: the URL to send. Shown once."
    )
    token: str | None = strawberry.field(description="createReviewLink only: the token in the URL.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="A comment as a guest reviewer sees it (names only, no accounts).")
class ReviewComment:
    author_name: str = strawberry.field(description="Who wrote it.")
    kind: str = strawberry.field(description="COMMENT, CHANGES_REQUESTED or APPROVAL.")
    body: str = strawberry.field(description="The text.")
    created_at: datetime = strawberry.field(description="When.")

    @classmethod
    def from_row(cls, row: CommentRow) -> ReviewComment:
        return cls(
            author_name=row.author_name, kind=row.kind, body=row.body, created_at=row.created_at
        )


@strawberry.type(description="What a review link shows: one item, its variations and its thread.")
class ReviewedContent:
    workspace_name: str = strawberry.field(description="Whose content this is.")
    title: str = strawberry.field(description="Title.")
    body: str = strawberry.field(description="The text.")
    format: ContentFormat = strawberry.field(description="How the body is written.")
    content_type: ContentType = strawberry.field(description="Kind of piece.")
    status: ContentStatus = strawberry.field(description="Where it is in the workflow.")
    expires_at: datetime = strawberry.field(description="When the link stops working.")
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Per-platform variations.")
    async def variations(self, info: Info) -> list[ContentVariation]:
        rows = await info.context.loaders.content.variations_by_content.load(self.content_id)
        return [ContentVariation.from_row(r) for r in rows]

    @strawberry.field(description="The review thread, oldest first.")
    async def comments(self, info: Info) -> list[ReviewComment]:
        rows = await info.context.loaders.content.comments_by_content.load(self.content_id)
        return [ReviewComment.from_row(r) for r in rows]

    @classmethod
    def of(cls, view: ReviewView) -> ReviewedContent:
        c = view.content
        return cls(
            workspace_name=view.workspace_name,
            title=c.title,
            body=c.body,
            format=ContentFormat(c.format),
            content_type=ContentType(c.content_type),
            status=ContentStatus(c.status),
            expires_at=view.link.expires_at,
            content_id=c.id,
        )


@strawberry.type(description="Result of respondToReviewLink.")
class ReviewResponsePayload:
    content: ReviewedContent | None = strawberry.field(description="The item after the response.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")
