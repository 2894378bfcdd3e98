"""Inputs of the content item operations: create, update, and the library filter."""

from __future__ import annotations

import strawberry
from strawberry import relay

from app.services.content.items import ContentFields
from app.services.content.library import ContentFilter
from schema.ids import optional_id
from schema.types.vocabulary import ContentFormat, ContentStatus, ContentType


@strawberry.input(description="A new content item.")
class CreateContentInput:
    workspace_id: relay.GlobalID = strawberry.field(description="Workspace it belongs to.")
    title: str = strawberry.field(description="Title.")
    body: str = strawberry.field(description="The text.")
    content_type: ContentType = strawberry.field(
        default=ContentType.SOCIAL_POST, description="Kind of piece."
    )
    format: ContentFormat = strawberry.field(
        default=ContentFormat.MARKDOWN, description="How the body is written."
    )
    campaign_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Campaign, if any."
    )
    tags: list[str] = strawberry.field(default_factory=list, description="Tags.")

    def to_fields(self) -> ContentFields:
        return ContentFields(
            title=self.title,
            body=self.body,
            content_type=self.content_type,
            format=self.format,
            campaign_id=optional_id(self.campaign_id, "Campaign", "campaignId"),
            tags=self.tags,
        )


@strawberry.input(description="Content changes; omitted fields stay as they are.")
class UpdateContentInput:
    title: str | None = strawberry.field(default=None, description="New title.")
    body: str | None = strawberry.field(default=None, description="New text.")
    content_type: ContentType | None = strawberry.field(default=None, description="New kind.")
    format: ContentFormat | None = strawberry.field(default=None, description="New format.")
    campaign_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Move to this campaign."
    )
    remove_from_campaign: bool = strawberry.field(
        default=False, description="Detach from its campaign."
    )
    tags: list[str] | None = strawberry.field(default=None, description="Replace the tags.")

    def to_fields(self) -> ContentFields:
        return ContentFields(
            title=self.title,
            body=self.body,
            content_type=self.content_type,
            format=self.format,
            campaign_id=optional_id(self.campaign_id, "Campaign", "campaignId"),
            clear_campaign=self.remove_from_campaign,
            tags=self.tags,
        )


@strawberry.input(description="Narrow a content list.")
class ContentFilterInput:
    status: ContentStatus | None = strawberry.field(default=None, description="Only this status.")
    content_type: ContentType | None = strawberry.field(default=None, description="Only this kind.")
    campaign_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Only this campaign."
    )
    tag: str | None = strawberry.field(default=None, description="Only items with this tag.")
    created_by: relay.GlobalID | None = strawberry.field(
        default=None, description="Only this author."
    )
    deleted: bool = strawberry.field(default=False, description="List soft-deleted items instead.")

    def to_filter(self) -> ContentFilter:
        return ContentFilter(
            status=self.status,
            content_type=self.content_type,
            campaign_id=optional_id(self.campaign_id, "Campaign", "filter.campaignId"),
            tag=self.tag,
            created_by=optional_id(self.created_by, "User", "filter.createdBy"),
            deleted=self.deleted,
        )
