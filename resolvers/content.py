"""The content library: items, workflow, comments, variations, campaigns and search."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry import relay

from app.models import Content as ContentRow
from app.models.vocabulary import ContentStatus
from app.services.content import campaigns, comments, library, search, variations, workflow
from app.services.content import items as content
from app.services.content.duplicates import Duplicate
from app.services.content.embedding import embedder_for
from app.services.content.items import ContentFields
from app.services.content.library import ContentFilter, OrderBy
from resolvers.common import (
    After,
    First,
    Info,
    WorkspaceId,
    attempt,
    page_limit,
    principal_of,
    state_of,
)
from schema.ids import parse_id, to_global_id
from schema.lookahead import Selected
from schema.pagination import Connection, page_size
from schema.types.content import (
    Campaign,
    CampaignInput,
    CampaignPayload,
    CampaignStatus,
    CommentPayload,
    Content,
    ContentComment,
    ContentFilterInput,
    ContentOrder,
    ContentPayload,
    ContentVariation,
    CreateContentInput,
    DuplicateWarning,
    Platform,
    SearchHit,
    SearchMode,
    UpdateContentInput,
    VariationInput,
    VariationPayload,
)
from schema.types.errors import UserError
from schema.types.identity import SuccessPayload

ContentId = Annotated[relay.GlobalID, strawberry.argument(description="Global ID of the content.")]


def _content_payload(
    row: ContentRow | None,
    errors: list[UserError],
    duplicates: list[Duplicate] | None = None,
) -> ContentPayload:
    return ContentPayload(
        content=Content.from_row(row) if row is not None else None,
        duplicates=[
            DuplicateWarning(
                similarity=round(d.similarity, 3),
                title=d.title,
                content_id=to_global_id("Content", d.content_id),
            )
            for d in duplicates or []
        ],
        errors=errors,
    )


def _media_ids(values: list[relay.GlobalID] | None) -> list[uuid.UUID] | None:
    return None if values is None else [parse_id(v, "MediaAsset", "mediaIds") for v in values]


@strawberry.type
class ContentQuery:
    @strawberry.field(
        description="One content item (also when soft-deleted). Requires viewer role."
    )
    async def content(self, info: Info, id: ContentId) -> Content:
        return Content.from_row(
            await content.get(state_of(info), principal_of(info), parse_id(id, "Content"))
        )

    @strawberry.field(description="The content library of a workspace. Requires viewer role.")
    async def contents(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: First = 50,
        after: After = None,
        filter: Annotated[
            ContentFilterInput | None, strawberry.argument(description="Narrow the list.")
        ] = None,
        order_by: Annotated[
            ContentOrder, strawberry.argument(description="Sort order.")
        ] = ContentOrder.CREATED_DESC,
    ) -> Connection[Content]:
        f = filter or ContentFilterInput()
        filters = ContentFilter(
            status=f.status.name if f.status else None,
            content_type=f.content_type.name if f.content_type else None,
            campaign_id=parse_id(f.campaign_id, "Campaign", "filter.campaignId")
            if f.campaign_id
            else None,
            tag=f.tag,
            created_by=parse_id(f.created_by, "User", "filter.createdBy") if f.created_by else None,
            deleted=f.deleted,
        )
        page = await library.list_contents(
            state_of(info),
            principal_of(info),
            parse_id(workspace_id, "Workspace", "workspaceId"),
            first=page_size(first, page_limit(info)),
            after=after,
            filters=filters,
            order=OrderBy(order_by.name),
        )
        return await Content.connection(info, page)

    @strawberry.field(
        description="Find content by words (KEYWORD), meaning (SEMANTIC) or both (HYBRID). "
        "Items are findable by keyword at once and by meaning once embedded. Requires viewer role."
    )
    async def search_content(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        query: Annotated[
            str,
            strawberry.argument(description="What to look for (web-search syntax for keywords)."),
        ],
        mode: Annotated[
            SearchMode, strawberry.argument(description="How to match.")
        ] = SearchMode.HYBRID,
        first: Annotated[
            int, strawberry.argument(description="How many results (at most 100).")
        ] = 20,
    ) -> list[SearchHit]:
        state = state_of(info)
        selected = Selected.of(info, "content")
        hits = await search.search_content(
            state,
            embedder_for(state.settings),
            principal_of(info),
            parse_id(workspace_id, "Workspace", "workspaceId"),
            query,
            search.SearchMode(mode.name),
            page_size(first, page_limit(info)),
            with_rows=bool(selected),
        )
        if not selected:
            return [
                SearchHit(score=round(h.score, 6), snippet=h.snippet, content_id=h.content_id)
                for h in hits
            ]
        items = {h.content_id: Content.from_row(h.row) for h in hits if h.row is not None}
        await Content.preload(info, list(items.values()), selected)
        return [
            SearchHit(
                score=round(h.score, 6),
                snippet=h.snippet,
                content_id=h.content_id,
                found=items.get(h.content_id),
            )
            for h in hits
        ]

    @strawberry.field(description="Campaigns of a workspace, newest first. Requires viewer role.")
    async def campaigns(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: First = 50,
        after: After = None,
        status: Annotated[
            CampaignStatus | None, strawberry.argument(description="Only this status.")
        ] = None,
    ) -> Connection[Campaign]:
        page = await campaigns.list_campaigns(
            state_of(info),
            principal_of(info),
            parse_id(workspace_id, "Workspace", "workspaceId"),
            first=page_size(first, page_limit(info)),
            after=after,
            status=status.name if status else None,
        )
        return Connection.of(page, Campaign.from_row)

    @strawberry.field(description="One campaign. Requires viewer role.")
    async def campaign(
        self,
        info: Info,
        id: Annotated[relay.GlobalID, strawberry.argument(description="Campaign ID.")],
    ) -> Campaign:
        row = await campaigns.get(state_of(info), principal_of(info), parse_id(id, "Campaign"))
        return Campaign.from_row(row)


@strawberry.type
class ContentMutation:
    @strawberry.mutation(
        description="Create a draft. Warns about near-duplicates. Requires member role."
    )
    async def create_content(
        self,
        info: Info,
        input: Annotated[CreateContentInput, strawberry.argument(description="The item.")],
    ) -> ContentPayload:
        fields = ContentFields(
            title=input.title,
            body=input.body,
            content_type=input.content_type.name,
            format=input.format.name,
            campaign_id=parse_id(input.campaign_id, "Campaign", "campaignId")
            if input.campaign_id
            else None,
            tags=input.tags,
        )
        result, errors = await attempt(
            content.create(
                state_of(info),
                principal_of(info),
                parse_id(input.workspace_id, "Workspace", "workspaceId"),
                fields,
            )
        )
        row, duplicates = result if result else (None, [])
        return _content_payload(row, errors, duplicates)

    @strawberry.mutation(
        description="Edit an item. `expectedVersion` must be its current version, else CONFLICT "
        "and nothing is written. Members edit drafts; admins also items in review or approved."
    )
    async def update_content(
        self,
        info: Info,
        id: ContentId,
        input: Annotated[UpdateContentInput, strawberry.argument(description="The changes.")],
        expected_version: Annotated[
            int, strawberry.argument(description="The version you edited.")
        ],
    ) -> ContentPayload:
        fields = ContentFields(
            title=input.title,
            body=input.body,
            content_type=input.content_type.name if input.content_type else None,
            format=input.format.name if input.format else None,
            campaign_id=parse_id(input.campaign_id, "Campaign", "campaignId")
            if input.campaign_id
            else None,
            clear_campaign=input.remove_from_campaign,
            tags=input.tags,
        )
        result, errors = await attempt(
            content.update_content(
                state_of(info),
                principal_of(info),
                parse_id(id, "Content"),
                fields,
                expected_version=expected_version,
            )
        )
        row, duplicates = result if result else (None, [])
        return _content_payload(row, errors, duplicates)

    @strawberry.mutation(description="Soft-delete (restorable). Members: own items; admins: any.")
    async def delete_content(self, info: Info, id: ContentId) -> ContentPayload:
        row, errors = await attempt(
            content.set_deleted(state_of(info), principal_of(info), parse_id(id, "Content"), True)
        )
        return _content_payload(row, errors)

    @strawberry.mutation(description="Undo a soft delete. Members: own items; admins: any.")
    async def restore_content(self, info: Info, id: ContentId) -> ContentPayload:
        row, errors = await attempt(
            content.set_deleted(state_of(info), principal_of(info), parse_id(id, "Content"), False)
        )
        return _content_payload(row, errors)

    @strawberry.mutation(description="Make an old version current again (stored as a new version).")
    async def restore_content_version(
        self,
        info: Info,
        version_id: Annotated[
            relay.GlobalID, strawberry.argument(description="A ContentVersion id.")
        ],
    ) -> ContentPayload:
        row, errors = await attempt(
            content.restore_version(
                state_of(info),
                principal_of(info),
                parse_id(version_id, "ContentVersion", "versionId"),
            )
        )
        return _content_payload(row, errors)

    @strawberry.mutation(description="DRAFT -> IN_REVIEW. Requires member role.")
    async def submit_for_review(self, info: Info, id: ContentId) -> ContentPayload:
        row, errors = await attempt(
            workflow.transition(
                state_of(info),
                principal_of(info),
                parse_id(id, "Content"),
                ContentStatus.IN_REVIEW,
                action_name="submitForReview",
            )
        )
        return _content_payload(row, errors)

    @strawberry.mutation(description="IN_REVIEW -> APPROVED. Requires admin role.")
    async def approve_content(self, info: Info, id: ContentId) -> ContentPayload:
        row, errors = await attempt(
            workflow.transition(
                state_of(info),
                principal_of(info),
                parse_id(id, "Content"),
                ContentStatus.APPROVED,
                action_name="approveContent",
            )
        )
        return _content_payload(row, errors)

    @strawberry.mutation(
        description="IN_REVIEW or APPROVED -> DRAFT, with a comment. Requires admin role."
    )
    async def request_changes(
        self,
        info: Info,
        id: ContentId,
        comment: Annotated[str, strawberry.argument(description="What to change.")],
    ) -> ContentPayload:
        row, errors = await attempt(
            workflow.transition(
                state_of(info),
                principal_of(info),
                parse_id(id, "Content"),
                ContentStatus.DRAFT,
                action_name="requestChanges",
                comment=comment,
            )
        )
        return _content_payload(row, errors)

    @strawberry.mutation(description="Add to an item's review thread. Requires member role.")
    async def add_comment(
        self,
        info: Info,
        content_id: ContentId,
        body: Annotated[str, strawberry.argument(description="The comment.")],
    ) -> CommentPayload:
        row, errors = await attempt(
            comments.add_comment(
                state_of(info),
                principal_of(info),
                parse_id(content_id, "Content", "contentId"),
                body,
            )
        )
        return CommentPayload(comment=ContentComment.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(
        description="Add a platform variation (one per platform). Requires member role."
    )
    async def create_variation(
        self,
        info: Info,
        content_id: ContentId,
        platform: Annotated[Platform, strawberry.argument(description="Target platform.")],
        input: Annotated[
            VariationInput | None,
            strawberry.argument(description="Its text; defaults to the item's."),
        ] = None,
    ) -> VariationPayload:
        data = input or VariationInput()
        fields = variations.VariationFields(
            body=data.body,
            subject=data.subject,
            preheader=data.preheader,
            media_ids=_media_ids(data.media_ids),
        )
        row, errors = await attempt(
            variations.create(
                state_of(info),
                principal_of(info),
                parse_id(content_id, "Content", "contentId"),
                platform.to_value(),
                fields,
            )
        )
        return VariationPayload(
            variation=ContentVariation.from_row(row) if row else None, errors=errors
        )

    @strawberry.mutation(description="Edit a platform variation. Requires member role.")
    async def update_variation(
        self,
        info: Info,
        id: Annotated[relay.GlobalID, strawberry.argument(description="Variation ID.")],
        input: Annotated[VariationInput, strawberry.argument(description="The changes.")],
    ) -> VariationPayload:
        fields = variations.VariationFields(
            body=input.body,
            subject=input.subject,
            preheader=input.preheader,
            media_ids=_media_ids(input.media_ids),
        )
        row, errors = await attempt(
            variations.update(
                state_of(info), principal_of(info), parse_id(id, "ContentVariation"), fields
            )
        )
        return VariationPayload(
            variation=ContentVariation.from_row(row) if row else None, errors=errors
        )

    @strawberry.mutation(description="Create a campaign. Requires member role.")
    async def create_campaign(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        name: Annotated[str, strawberry.argument(description="Campaign name.")],
        objectives: Annotated[
            list[str] | None, strawberry.argument(description="What it should achieve.")
        ] = None,
        start_date: Annotated[date | None, strawberry.argument(description="First day.")] = None,
        end_date: Annotated[date | None, strawberry.argument(description="Last day.")] = None,
        budget: Annotated[Decimal | None, strawberry.argument(description="Budget.")] = None,
    ) -> CampaignPayload:
        fields = campaigns.CampaignFields(
            name=name,
            objectives=objectives,
            start_date=start_date,
            end_date=end_date,
            budget=budget,
        )
        row, errors = await attempt(
            campaigns.create(
                state_of(info),
                principal_of(info),
                parse_id(workspace_id, "Workspace", "workspaceId"),
                fields,
            )
        )
        return CampaignPayload(campaign=Campaign.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Change a campaign (incl. its status). Requires member role.")
    async def update_campaign(
        self,
        info: Info,
        id: Annotated[relay.GlobalID, strawberry.argument(description="Campaign ID.")],
        input: Annotated[CampaignInput, strawberry.argument(description="The changes.")],
    ) -> CampaignPayload:
        fields = campaigns.CampaignFields(
            name=input.name,
            objectives=input.objectives,
            start_date=input.start_date,
            end_date=input.end_date,
            budget=input.budget,
            status=input.status.name if input.status else None,
        )
        row, errors = await attempt(
            campaigns.update(state_of(info), principal_of(info), parse_id(id, "Campaign"), fields)
        )
        return CampaignPayload(campaign=Campaign.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Delete a campaign; its content stays. Requires admin role.")
    async def delete_campaign(
        self,
        info: Info,
        id: Annotated[relay.GlobalID, strawberry.argument(description="Campaign ID.")],
    ) -> SuccessPayload:
        _, errors = await attempt(
            campaigns.delete(state_of(info), principal_of(info), parse_id(id, "Campaign"))
        )
        return SuccessPayload(success=not errors, errors=errors)
