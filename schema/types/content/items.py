"""Content items, versions, comments, platform variations and campaigns."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, TypeVar

import strawberry
from strawberry import relay

from app.models import ContentComment as CommentRow
from app.models import ContentVersion as VersionRow
from app.models import MediaAsset as MediaRow
from app.pagination import Page
from app.permissions import Action
from app.services.content.library import ContentRecord, ListedContent
from app.services.content.variations import VariationRecord
from schema.context import Info, current_loaders
from schema.ids import to_global_id
from schema.lazy import PENDING, Pending, on_read
from schema.loaders.base import uuid_or_nil
from schema.lookahead import Later, Selected, load_map, nothing
from schema.pagination import Connection, page_size
from schema.types.analytics.prediction import (
    PLATFORM_ARGUMENT,
    PREDICTED_DESCRIPTION,
    EngagementPrediction,
    predicted_engagement,
)
from schema.types.content.campaigns import Campaign
from schema.types.content.media import MediaAsset
from schema.types.content.metrics import (
    METRICS_DESCRIPTION,
    WARNINGS_DESCRIPTION,
    ContentWarning,
    TextMetrics,
)
from schema.types.content.variants import ContentPersonalization, ContentVariant
from schema.types.content.variations import RULE_FIELDS, ContentVariation
from schema.types.errors import UserError
from schema.types.identity import User, load_user
from schema.types.vocabulary import ContentFormat, ContentStatus, ContentType, Platform

T = TypeVar("T")


@strawberry.type(description="A stored version of a content item's text.")
class ContentVersion:
    id: relay.GlobalID = strawberry.field(description="Pass to restoreContentVersion.")
    version: int = strawberry.field(description="Version number (1 is the first).")
    title: str = strawberry.field(description="Title at this version.")
    body: str = strawberry.field(description="Body at this version.")
    format: ContentFormat = strawberry.field(description="Format at this version.")
    created_at: datetime = strawberry.field(description="When it was saved.")
    author_id: strawberry.Private[uuid.UUID | None]
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Who saved it (null if the account was deleted).")
    async def author(self, info: Info) -> User | None:
        return await load_user(info, self.author_id)

    @strawberry.field(
        description=PREDICTED_DESCRIPTION + " Of this version's body, without media; null if "
        "the item is gone."
    )
    async def predicted_engagement(
        self,
        info: Info,
        platform: Annotated[Platform | None, PLATFORM_ARGUMENT] = None,
    ) -> EngagementPrediction | None:
        item = await info.context.loaders.content.contents.load(self.content_id)
        if item is None:
            return None
        return await predicted_engagement(
            info,
            workspace_id=item.workspace_id,
            text=self.body,
            platform=Platform(platform).value if platform is not None else None,
            content_type=item.content_type,
        )

    @classmethod
    def from_row(cls, row: VersionRow) -> ContentVersion:
        return cls(
            id=to_global_id("ContentVersion", row.id),
            version=row.version,
            title=row.title,
            body=row.body,
            format=ContentFormat(row.format),
            created_at=row.created_at,
            author_id=row.created_by_id,
            content_id=row.content_id,
        )


@strawberry.type(description="A comment in an item's review thread.")
class ContentComment:
    id: relay.GlobalID = strawberry.field(description="Global ID of the comment.")
    kind: str = strawberry.field(description="COMMENT, CHANGES_REQUESTED or APPROVAL.")
    body: str = strawberry.field(description="The text.")
    author_name: str = strawberry.field(description="Name shown (also for review-link guests).")
    via_review_link: bool = strawberry.field(description="Written through a client review link.")
    created_at: datetime = strawberry.field(description="When.")
    author_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The author's account, if they have one.")
    async def author(self, info: Info) -> User | None:
        return await load_user(info, self.author_id)

    @classmethod
    def from_row(cls, row: CommentRow) -> ContentComment:
        return cls(
            id=to_global_id("ContentComment", row.id),
            kind=row.kind,
            body=row.body,
            author_name=row.author_name,
            via_review_link=row.review_link_id is not None,
            created_at=row.created_at,
            author_id=row.author_id,
        )


@strawberry.type(description="A similar item and how close it is (cosine similarity 0..1).")
class SimilarContent:
    similarity: float = strawberry.field(
        description="1 means identical meaning (per the embedder)."
    )
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The similar item.")
    async def content(self, info: Info) -> Content | None:
        row = await info.context.loaders.content.contents.load(self.content_id)
        return Content.from_row(row) if row else None


_PRELOADABLE = frozenset({"author", "campaign", "commentCount", "variations"})


@strawberry.type(description="A piece of content: blog post, social post, email or ad copy.")
class Content(relay.Node):
    id: relay.NodeID[str]
    title: str = strawberry.field(description="Title (email subject for emails).")
    body: str = strawberry.field(description="The text, in `format`.")
    content_type: ContentType = strawberry.field(description="What kind of piece this is.")
    format: ContentFormat = strawberry.field(description="How the body is written.")
    status: ContentStatus = strawberry.field(description="Where it is in the review workflow.")
    tags: list[str] = strawberry.field(description="Lower-case tags.")
    version: int = strawberry.field(
        description="Current version; pass as expectedVersion when updating."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="Last change.")
    deleted_at: datetime | None = strawberry.field(
        description="Set when soft-deleted (restorable)."
    )
    embedded: bool = strawberry.field(description="Findable by meaning (its embedding is current).")
    # Relations: set by Content.preload when a page asks for them, otherwise loaded when
    # read (PENDING until then: see schema.lazy, and the on_read below). Plain fields, not
    # resolvers: see schema.lookahead.Later.
    author: User | Later[User | None] | Pending | None = strawberry.field(
        description="Who created it (null if the account was deleted).", graphql_type=User | None
    )
    campaign: Campaign | Later[Campaign | None] | Pending | None = strawberry.field(
        description="The campaign it belongs to, if any.", graphql_type=Campaign | None
    )
    comment_count: int | Later[int] | Pending = strawberry.field(
        description="Number of comments.", graphql_type=int
    )
    variations: list[ContentVariation] | Later[list[ContentVariation]] | Pending = strawberry.field(
        description="Per-platform variations.", graphql_type=list[ContentVariation]
    )
    # An entity, or a plain row from a list page (ContentRecord: the fields read here).
    row: strawberry.Private[ContentRecord]

    @strawberry.field(description=METRICS_DESCRIPTION + " Of the body.")
    def text_metrics(self) -> TextMetrics | None:
        return TextMetrics.of(self.row.text_metrics, self.row.text_metrics_version)

    @strawberry.field(description=WARNINGS_DESCRIPTION)
    def warnings(self) -> list[ContentWarning]:
        return ContentWarning.all_of(self.row.text_metrics)

    @strawberry.field(description="Attached media, in order (see setContentMedia).")
    async def media(self, info: Info) -> list[MediaAsset]:
        rows = await info.context.loaders.content.media_by_content.load(self.row.id)
        return [MediaAsset.from_row(r) for r in rows]

    @strawberry.field(description="Stored versions, newest first (at most the last 50).")
    async def versions(self, info: Info) -> list[ContentVersion]:
        rows = await info.context.loaders.content.versions_by_content.load(self.row.id)
        return [ContentVersion.from_row(r) for r in rows]

    @strawberry.field(description="The review thread, oldest first.")
    async def comments(self, info: Info) -> list[ContentComment]:
        rows = await info.context.loaders.content.comments_by_content.load(self.row.id)
        return [ContentComment.from_row(r) for r in rows]

    @strawberry.field(description="Versions written for audience segments (personalizeContent).")
    async def personalizations(self, info: Info) -> list[ContentPersonalization]:
        rows = await info.context.loaders.content.personalizations_by_content.load(self.row.id)
        return [ContentPersonalization.from_row(r) for r in rows]

    @strawberry.field(description="A/B-test variants B, C, ... (generateVariants).")
    async def variants(self, info: Info) -> list[ContentVariant]:
        rows = await info.context.loaders.content.variants_by_content.load(self.row.id)
        return [ContentVariant.from_row(r) for r in rows]

    @strawberry.field(
        description=PREDICTED_DESCRIPTION + " Of the body, with the item's attached media."
    )
    async def predicted_engagement(
        self,
        info: Info,
        platform: Annotated[Platform | None, PLATFORM_ARGUMENT] = None,
    ) -> EngagementPrediction:
        media = await info.context.loaders.content.media_by_content.load(self.row.id)
        return await predicted_engagement(
            info,
            workspace_id=self.row.workspace_id,
            text=self.row.body,
            platform=Platform(platform).value if platform is not None else None,
            content_type=self.row.content_type,
            has_media=bool(media),
        )

    @strawberry.field(description="Nearest items by meaning (empty until this item is embedded).")
    async def similar(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many (at most 50).")] = 5,
    ) -> list[SimilarContent]:
        size = page_size(first, 50)
        hits = await info.context.loaders.content.similar.load((self.row.id, size))
        return [SimilarContent(similarity=round(sim, 4), content_id=cid) for cid, sim in hits]

    @classmethod
    def from_row(cls, row: ContentRecord) -> Content:
        return cls(
            id=str(row.id),
            title=row.title,
            body=row.body,
            content_type=ContentType(row.content_type),
            format=ContentFormat(row.format),
            status=ContentStatus(row.status),
            tags=list(row.tags),
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            deleted_at=row.deleted_at,
            embedded=row.embedded_version == row.version,
            author=PENDING if row.created_by_id else None,
            campaign=PENDING if row.campaign_id else None,
            comment_count=PENDING,
            variations=PENDING,
            row=row,
        )

    @classmethod
    async def preload(cls, info: Info, items: Sequence[Content], selected: Selected) -> None:
        """Load the relations `selected` asks for, for all `items` at once.

        One batch per relation, as the loaders would make, but awaited here once instead of
        per item: the items' fields then resolve without awaiting (see schema/lookahead.py).
        """
        if not items or not (selected.names & _PRELOADABLE):
            return
        loaders = info.context.loaders
        rows = [item.row for item in items]
        ids = [row.id for row in rows]
        users, campaigns, counts, variations = await asyncio.gather(
            load_map(loaders.identity.users, [r.created_by_id for r in rows if r.created_by_id])
            if "author" in selected
            else nothing(),
            load_map(loaders.content.campaigns, [r.campaign_id for r in rows if r.campaign_id])
            if "campaign" in selected
            else nothing(),
            load_map(loaders.content.comment_counts, ids)
            if "commentCount" in selected
            else nothing(),
            load_map(loaders.content.variations_by_content, ids)
            if "variations" in selected
            else nothing(),
        )
        below = selected.below("variations").names
        check = bool(below & RULE_FIELDS)
        media: dict[uuid.UUID, MediaRow | None] | None = None
        if check or "media" in below:
            media_ids = [m for found in variations.values() for v in found for m in v.media_ids]
            media = await load_map(loaders.content.media, media_ids)

        def variation(v: VariationRecord) -> ContentVariation:
            if media is None:
                return ContentVariation.from_row(v)
            attached = [m for i in v.media_ids if (m := media.get(i))]
            return ContentVariation.from_row(v, attached, check=check)

        # One object per author or campaign, however many items share it.
        authors = {i: User.from_row(u) for i, u in users.items() if u is not None}
        in_campaign = {i: Campaign.from_row(c) for i, c in campaigns.items() if c is not None}
        for item in items:
            row = item.row
            if "author" in selected:
                item.author = authors.get(row.created_by_id) if row.created_by_id else None
            if "campaign" in selected:
                item.campaign = in_campaign.get(row.campaign_id) if row.campaign_id else None
            if "commentCount" in selected:
                item.comment_count = counts[row.id]
            if "variations" in selected:
                item.variations = [variation(v) for v in variations[row.id]]

    @classmethod
    async def connection(cls, info: Info, page: Page[ContentRecord]) -> Connection[Content]:
        """A page of items with the relations the query selects loaded up front."""
        connection = Connection.of(page, cls.from_row)
        nodes = [edge.node for edge in connection.edges]
        await cls.preload(info, nodes, Selected.of(info, "edges", "node"))
        return connection

    @classmethod
    async def library_page(cls, info: Info, page: Page[ListedContent]) -> Connection[Content]:
        """`connection` for the library's list: counts read with the rows go to the loader
        first, so the preload finds them there (no statement of their own)."""
        counts = {r.id: r.comment_count for r in page.items if r.comment_count is not None}
        info.context.loaders.content.comment_counts.prime_many(counts)
        return await cls.connection(info, page)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Content | None]:
        loaders = info.context.loaders
        rows = await loaders.content.contents.load_many([uuid_or_nil(i) for i in node_ids])
        principal = info.context.principal
        out: list[Content | None] = []
        for row in rows:
            if row is None or principal.role_in(row.workspace_id) is None:
                out.append(None)
            else:
                principal.require(row.workspace_id, Action.CONTENT_READ)
                out.append(cls.from_row(row))
        return out


on_read(
    Content,
    author=lambda item: Later(lambda: _author(item.row)),
    campaign=lambda item: Later(lambda: _campaign(item.row)),
    comment_count=lambda item: Later(
        lambda: current_loaders().content.comment_counts.load(item.row.id)
    ),
    variations=lambda item: Later(lambda: _variations(item.row)),
)


async def _author(row: ContentRecord) -> User | None:
    assert row.created_by_id is not None
    user = await current_loaders().identity.users.load(row.created_by_id)
    return User.from_row(user) if user else None


async def _campaign(row: ContentRecord) -> Campaign | None:
    assert row.campaign_id is not None
    campaign = await current_loaders().content.campaigns.load(row.campaign_id)
    return Campaign.from_row(campaign) if campaign else None


async def _variations(row: ContentRecord) -> list[ContentVariation]:
    rows = await current_loaders().content.variations_by_content.load(row.id)
    return [ContentVariation.from_row(v) for v in rows]


@strawberry.type(description="A near-duplicate found when saving (shared wording).")
class DuplicateWarning:
    similarity: float = strawberry.field(description="Text similarity 0..1 (trigram overlap).")
    title: str = strawberry.field(description="The other item's title.")
    content_id: relay.GlobalID = strawberry.field(description="The other item.")


@strawberry.type(description="Result of createContent / updateContent and workflow mutations.")
class ContentPayload:
    content: Content | None = strawberry.field(description="The item after the change.")
    duplicates: list[DuplicateWarning] = strawberry.field(
        description="Existing items that look like near-duplicates "
        "(a warning; the change was saved)."
    )
    errors: list[UserError] = strawberry.field(
        description="Why it failed (e.g. CONFLICT), if it did."
    )


@strawberry.type(description="Result of addComment.")
class CommentPayload:
    comment: ContentComment | None = strawberry.field(description="The new comment.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")
