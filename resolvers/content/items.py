"""Content items: read one or a page, create, edit, soft-delete, restore, restore a version."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.models import Content as ContentRow
from app.services.content import items, library
from app.services.content.duplicates import Duplicate
from resolvers.common import (
    After,
    First,
    WorkspaceId,
    attempt,
    principal_of,
    state_of,
    workspace_of,
    workspace_page,
)
from schema.context import Info
from schema.ids import parse_id, to_global_id
from schema.lookahead import Selected
from schema.pagination import Connection
from schema.types.content.item_inputs import (
    ContentFilterInput,
    CreateContentInput,
    UpdateContentInput,
)
from schema.types.content.items import Content, ContentPayload, DuplicateWarning
from schema.types.errors import UserError
from schema.types.vocabulary import ContentOrder

ContentId = Annotated[relay.GlobalID, strawberry.argument(description="Global ID of the content.")]


def content_payload(
    row: ContentRow | None, errors: list[UserError], duplicates: list[Duplicate] | None = None
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


@strawberry.type
class ContentItemQuery:
    @strawberry.field(
        description="One content item (also when soft-deleted). Requires viewer role."
    )
    async def content(self, info: Info, id: ContentId) -> Content:
        row = await items.get(state_of(info), principal_of(info), parse_id(id, "Content"))
        return Content.from_row(row)

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
        page = await workspace_page(
            info,
            library.list_contents,
            workspace_id,
            first,
            after,
            filters=(filter or ContentFilterInput()).to_filter(),
            order=order_by,
            comment_counts="commentCount" in Selected.of(info, "edges", "node"),
        )
        return await Content.library_page(info, page)


@strawberry.type
class ContentItemMutation:
    @strawberry.mutation(
        description="Create a draft. Warns about near-duplicates. Requires member role."
    )
    async def create_content(
        self,
        info: Info,
        input: Annotated[CreateContentInput, strawberry.argument(description="The item.")],
    ) -> ContentPayload:
        workspace_id = workspace_of(input.workspace_id)
        call = items.create(state_of(info), principal_of(info), workspace_id, input.to_fields())
        result, errors = await attempt(call)
        row, duplicates = result if result else (None, [])
        return content_payload(row, errors, duplicates)

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
        call = items.update_content(
            state_of(info),
            principal_of(info),
            parse_id(id, "Content"),
            input.to_fields(),
            expected_version=expected_version,
        )
        result, errors = await attempt(call)
        row, duplicates = result if result else (None, [])
        return content_payload(row, errors, duplicates)

    @strawberry.mutation(description="Soft-delete (restorable). Members: own items; admins: any.")
    async def delete_content(self, info: Info, id: ContentId) -> ContentPayload:
        call = items.set_deleted(state_of(info), principal_of(info), parse_id(id, "Content"), True)
        return content_payload(*await attempt(call))

    @strawberry.mutation(description="Undo a soft delete. Members: own items; admins: any.")
    async def restore_content(self, info: Info, id: ContentId) -> ContentPayload:
        call = items.set_deleted(state_of(info), principal_of(info), parse_id(id, "Content"), False)
        return content_payload(*await attempt(call))

    @strawberry.mutation(description="Make an old version current again (stored as a new version).")
    async def restore_content_version(
        self,
        info: Info,
        version_id: Annotated[
            relay.GlobalID, strawberry.argument(description="A ContentVersion id.")
        ],
    ) -> ContentPayload:
        version = parse_id(version_id, "ContentVersion", "versionId")
        call = items.restore_version(state_of(info), principal_of(info), version)
        return content_payload(*await attempt(call))
