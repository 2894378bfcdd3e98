"""The media library: uploads (GraphQL multipart request spec), alt text, deletion, and
attaching media to content."""

from __future__ import annotations

from typing import Annotated, Any, cast

import strawberry
from strawberry import relay
from strawberry.file_uploads import Upload

from app.services.content import media
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
from schema.ids import parse_id
from schema.pagination import Connection
from schema.types.content.media import MediaAsset, MediaPayload
from schema.types.errors import SuccessPayload

MediaId = Annotated[relay.GlobalID, strawberry.argument(description="Media asset ID.")]


def _payload(row: Any, errors: list[Any]) -> MediaPayload:
    return MediaPayload(media=MediaAsset.from_row(row) if row is not None else None, errors=errors)


@strawberry.type
class MediaQuery:
    @strawberry.field(
        description="The media library of a workspace, newest first. Requires viewer role."
    )
    async def media_assets(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: First = 50,
        after: After = None,
    ) -> Connection[MediaAsset]:
        page = await workspace_page(info, media.list_media, workspace_id, first, after)
        return Connection.of(page, MediaAsset.from_row)


@strawberry.type
class MediaMutation:
    @strawberry.mutation(
        description="Upload an image (JPEG, PNG, GIF, WebP) or video (MP4, MOV, WebM) with the "
        "GraphQL multipart request spec. The type is detected from the content; sizes are "
        "limited by MAX_IMAGE_BYTES / MAX_VIDEO_BYTES. Requires member role."
    )
    async def upload_media(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        file: Annotated[Upload, strawberry.argument(description="The file (multipart part).")],
        alt_text: Annotated[str, strawberry.argument(description="Alternative text.")] = "",
    ) -> MediaPayload:
        row, errors = await attempt(
            media.upload(
                state_of(info),
                principal_of(info),
                workspace_of(workspace_id),
                cast(media.Readable, file),
                alt_text=alt_text,
            )
        )
        return _payload(row, errors)

    @strawberry.mutation(description="Change a medium's alt text. Requires member role.")
    async def update_media(
        self,
        info: Info,
        id: MediaId,
        alt_text: Annotated[str, strawberry.argument(description="Alternative text.")],
    ) -> MediaPayload:
        row, errors = await attempt(
            media.update_alt_text(
                state_of(info), principal_of(info), parse_id(id, "MediaAsset"), alt_text
            )
        )
        return _payload(row, errors)

    @strawberry.mutation(description="Delete a medium (members: own uploads; admins: any).")
    async def delete_media(self, info: Info, id: MediaId) -> SuccessPayload:
        _, errors = await attempt(
            media.delete_asset(state_of(info), principal_of(info), parse_id(id, "MediaAsset"))
        )
        return SuccessPayload.of(errors)

    @strawberry.mutation(
        description="Set the media attached to a content item, in order. Requires member role."
    )
    async def set_content_media(
        self,
        info: Info,
        content_id: Annotated[relay.GlobalID, strawberry.argument(description="Content ID.")],
        media_ids: Annotated[
            list[relay.GlobalID], strawberry.argument(description="Media, in order.")
        ],
    ) -> SuccessPayload:
        ids = [parse_id(m, "MediaAsset", "mediaIds") for m in media_ids]
        _, errors = await attempt(
            media.set_content_media(
                state_of(info),
                principal_of(info),
                parse_id(content_id, "Content", "contentId"),
                ids,
            )
        )
        return SuccessPayload.of(errors)
