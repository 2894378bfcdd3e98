"""Client review links: made by members, used by guests with the token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from app.errors import ValidationFailed
from app.services.content import review_links
from resolvers.common import attempt, principal_of, state_of
from schema.context import Info
from schema.ids import parse_id
from schema.types.content.review_links import (
    ReviewedContent,
    ReviewLink,
    ReviewLinkPayload,
    ReviewResponsePayload,
)
from schema.types.vocabulary import Decision

Token = Annotated[str, strawberry.argument(description="The token from the review URL.")]


@strawberry.type
class ReviewQuery:
    @strawberry.field(
        description="What a review link shows. Public: the token is the permission. "
        "Each use is audited."
    )
    async def review_link_content(
        self,
        info: Info,
        token: Token,
        reviewer_name: Annotated[
            str | None, strawberry.argument(description="Who is looking.")
        ] = None,
    ) -> ReviewedContent | None:
        try:
            view = await review_links.view(state_of(info), principal_of(info), token, reviewer_name)
        except ValidationFailed:
            return None  # invalid, expired or revoked: nothing to see
        return ReviewedContent.of(view)

    @strawberry.field(description="Review links of an item, newest first. Requires member role.")
    async def review_links(
        self,
        info: Info,
        content_id: Annotated[relay.GlobalID, strawberry.argument(description="Content ID.")],
    ) -> list[ReviewLink]:
        rows = await review_links.links_for(
            state_of(info), principal_of(info), parse_id(content_id, "Content", "contentId")
        )
        return [ReviewLink.from_row(r) for r in rows]


@strawberry.type
class ReviewMutation:
    @strawberry.mutation(
        description="Make a review link for someone without an account. Requires member role; "
        "the link can approve only while its creator is an admin or owner."
    )
    async def create_review_link(
        self,
        info: Info,
        content_id: Annotated[relay.GlobalID, strawberry.argument(description="Content ID.")],
        expires_at: Annotated[
            datetime | None,
            strawberry.argument(description="When it stops working (default 14 days, at most 90)."),
        ] = None,
    ) -> ReviewLinkPayload:
        state = state_of(info)
        result, errors = await attempt(
            review_links.create(
                state,
                principal_of(info),
                parse_id(content_id, "Content", "contentId"),
                expires_at=expires_at,
            )
        )
        if result is None:
            return ReviewLinkPayload(review_link=None, url=None, token=None, errors=errors)
        link, token = result
        return ReviewLinkPayload(
            review_link=ReviewLink.from_row(link),
            url=review_links.link_url(state, token),
            token=token,
            errors=[],
        )

    @strawberry.mutation(description="Revoke a review link at once. Requires member role.")
    async def revoke_review_link(
        self,
        info: Info,
        id: Annotated[relay.GlobalID, strawberry.argument(description="Review link ID.")],
    ) -> ReviewLinkPayload:
        link, errors = await attempt(
            review_links.revoke(state_of(info), principal_of(info), parse_id(id, "ReviewLink"))
        )
        return ReviewLinkPayload(
            review_link=ReviewLink.from_row(link) if link else None,
            url=None,
            token=None,
            errors=errors,
        )

    @strawberry.mutation(
        description="A guest's answer through a review link: approve, request changes or comment. "
        "Public: the token is the permission. Audited."
    )
    async def respond_to_review_link(
        self,
        info: Info,
        token: Token,
        decision: Annotated[Decision, strawberry.argument(description="The decision.")],
        reviewer_name: Annotated[
            str, strawberry.argument(description="Your name, shown in the thread.")
        ],
        comment: Annotated[str | None, strawberry.argument(description="Your comment.")] = None,
    ) -> ReviewResponsePayload:
        view, errors = await attempt(
            review_links.respond(
                state_of(info),
                principal_of(info),
                token,
                decision=decision,
                reviewer_name=reviewer_name,
                comment=comment,
            )
        )
        return ReviewResponsePayload(
            content=ReviewedContent.of(view) if view else None, errors=errors
        )
