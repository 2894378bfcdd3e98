"""Uploaded images and videos."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from app.models import MediaAsset as MediaRow
from schema.context import Info, visible_rows
from schema.types.errors import UserError


@strawberry.type(description="An uploaded image or video.")
class MediaAsset(relay.Node):
    id: relay.NodeID[str]
    kind: str = strawberry.field(description="IMAGE or VIDEO.")
    mime_type: str = strawberry.field(
        description="Type detected from the file's content, e.g. image/png."
    )
    filename: str = strawberry.field(description="Cleaned original file name.")
    size_bytes: int = strawberry.field(description="Size in bytes.")
    width: int | None = strawberry.field(description="Pixels (images).")
    height: int | None = strawberry.field(description="Pixels (images).")
    alt_text: str = strawberry.field(description="Alternative text for accessibility.")
    sha256: str = strawberry.field(description="SHA-256 of the file.")
    created_at: datetime = strawberry.field(description="When it was uploaded.")
    row: strawberry.Private[MediaRow]

    @strawberry.field(description="Download URL, valid for an hour.")
    def url(self, info: Info) -> str:
        return info.context.state.storage.url(self.row.storage_key)

    @strawberry.field(description="Thumbnail URL (images, 320 px), valid for an hour.")
    def thumbnail_url(self, info: Info) -> str | None:
        key = self.row.thumbnail_key
        return info.context.state.storage.url(key) if key else None

    @classmethod
    def from_row(cls, row: MediaRow) -> MediaAsset:
        return cls(
            id=str(row.id),
            kind=row.kind,
            mime_type=row.mime_type,
            filename=row.filename,
            size_bytes=row.size_bytes,
            width=row.width,
            height=row.height,
            alt_text=row.alt_text,
            sha256=row.sha256,
            created_at=row.created_at,
            row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[MediaAsset | None]:
        rows = await visible_rows(info.context, info.context.loaders.content.media, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


@strawberry.type(description="Result of uploadMedia / updateMedia.")
class MediaPayload:
    media: MediaAsset | None = strawberry.field(description="The media asset.")
    errors: list[UserError] = strawberry.field(
        description="Why it failed (type, size, broken image), if it did."
    )
