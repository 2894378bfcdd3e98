"""Content items, versions, comments, platform variations and campaigns."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry import relay

from app.models import Campaign as CampaignRow
from app.models import Content as ContentRow
from app.models import ContentComment as CommentRow
from app.models import ContentVariation as VariationRow
from app.models import ContentVersion as VersionRow
from app.models import MediaAsset as MediaRow
from app.models.vocabulary import Platform as PlatformValue
from app.pagination import Page
from app.permissions import Action
from app.platforms.rules import Evaluation
from app.services.content import variations as variation_service
from schema.context import Context, current_loaders, visible_rows
from schema.ids import to_global_id
from schema.lookahead import MISSING, Later, Missing, Selected, load_map, nothing
from schema.pagination import Connection, page_size
from schema.types.errors import UserError
from schema.types.identity import User, load_user
from schema.types.media import MediaAsset

Info = strawberry.Info[Context, Any]
T = TypeVar("T")


@strawberry.enum(description="What kind of piece this is.")
class ContentType(Enum):
    BLOG_POST = strawberry.enum_value("BLOG_POST", description="Long-form article.")
    SOCIAL_POST = strawberry.enum_value("SOCIAL_POST", description="A post for social networks.")
    EMAIL = strawberry.enum_value("EMAIL", description="A newsletter or campaign email.")
    AD_COPY = strawberry.enum_value("AD_COPY", description="Advertising copy.")


@strawberry.enum(description="How the body is written.")
class ContentFormat(Enum):
    MARKDOWN = strawberry.enum_value("MARKDOWN", description="Markdown.")
    HTML = strawberry.enum_value("HTML", description="HTML.")
    PLAIN = strawberry.enum_value("PLAIN", description="Plain text.")


@strawberry.enum(
    description="Review workflow: DRAFT -> IN_REVIEW -> APPROVED -> SCHEDULED -> PUBLISHED -> "
    "ARCHIVED, and back to DRAFT when changes are requested."
)
class ContentStatus(Enum):
    DRAFT = strawberry.enum_value("DRAFT", description="Being written; members edit it.")
    IN_REVIEW = strawberry.enum_value("IN_REVIEW", description="Submitted; waiting for an admin.")
    APPROVED = strawberry.enum_value("APPROVED", description="Approved; may be scheduled.")
    SCHEDULED = strawberry.enum_value("SCHEDULED", description="Queued for publishing.")
    PUBLISHED = strawberry.enum_value("PUBLISHED", description="Out in the world.")
    ARCHIVED = strawberry.enum_value("ARCHIVED", description="Kept for the record.")


@strawberry.enum(description="Where content goes. One list, used everywhere.")
class Platform(Enum):
    X = strawberry.enum_value("X", description="X (Twitter): 280 per post, numbered threads.")
    LINKEDIN = strawberry.enum_value("LINKEDIN", description="LinkedIn: 3,000 characters.")
    FACEBOOK = strawberry.enum_value("FACEBOOK", description="Facebook: 63,206 characters.")
    INSTAGRAM = strawberry.enum_value(
        "INSTAGRAM", description="Instagram: 2,200 characters, 30 hashtags, needs media."
    )
    THREADS = strawberry.enum_value("THREADS", description="Threads: 500 characters.")
    MASTODON = strawberry.enum_value("MASTODON", description="Mastodon: 500 characters.")
    BLUESKY = strawberry.enum_value("BLUESKY", description="Bluesky: 300 characters.")
    EMAIL = strawberry.enum_value("EMAIL", description="Email: subject up to 100, preheader.")
    WEBHOOK = strawberry.enum_value("WEBHOOK", description="A webhook you host: no limits.")

    def to_value(self) -> PlatformValue:
        return PlatformValue(self.name)


@strawberry.enum(description="Sort order of a content list.")
class ContentOrder(Enum):
    CREATED_DESC = strawberry.enum_value("CREATED_DESC", description="Newest first.")
    CREATED_ASC = strawberry.enum_value("CREATED_ASC", description="Oldest first.")
    UPDATED_DESC = strawberry.enum_value("UPDATED_DESC", description="Recently changed first.")
    TITLE_ASC = strawberry.enum_value("TITLE_ASC", description="By title, A to Z.")


@strawberry.enum(description="Campaign lifecycle.")
class CampaignStatus(Enum):
    DRAFT = strawberry.enum_value("DRAFT", description="Being planned.")
    ACTIVE = strawberry.enum_value("ACTIVE", description="Running.")
    PAUSED = strawberry.enum_value("PAUSED", description="On hold.")
    COMPLETED = strawberry.enum_value("COMPLETED", description="Finished.")


@strawberry.type(description="A platform rule the text or media breaks.")
class RuleViolation:
    code: str = strawberry.field(description="E.g. TOO_LONG, TOO_MANY_HASHTAGS, SUBJECT_TOO_LONG.")
    message: str = strawberry.field(description="Human-readable explanation.")
    part: int | None = strawberry.field(description="Thread part (1-based) it applies to, if any.")


@strawberry.type(
    description="A per-platform version of a content item, checked against that platform's rules."
)
class ContentVariation(relay.Node):
    id: relay.NodeID[str]
    platform: Platform = strawberry.field(description="Target platform.")
    body: str = strawberry.field(description="Text for this platform.")
    subject: str | None = strawberry.field(description="Email subject (EMAIL only).")
    preheader: str | None = strawberry.field(description="Email preheader (EMAIL only).")
    updated_at: datetime = strawberry.field(description="Last change.")
    # The rule check: computed up front when a page asks for it (see Content.preload),
    # otherwise when first read. Plain fields, not resolvers: see schema.lookahead.Later.
    character_count: int | Later[int] = strawberry.field(
        description="Characters as the platform counts them (X: links count 23).",
        graphql_type=int,
    )
    within_limits: bool | Later[bool] = strawberry.field(
        description="True when no rule is broken.", graphql_type=bool
    )
    violations: list[RuleViolation] | Later[list[RuleViolation]] = strawberry.field(
        description="Every rule the variation breaks (empty when within limits).",
        graphql_type=list[RuleViolation],
    )
    parts: list[str] | Later[list[str]] = strawberry.field(
        description="X: the numbered thread parts; other platforms: the whole text.",
        graphql_type=list[str],
    )
    row: strawberry.Private[VariationRow]
    # The attached media once known: at once when none are attached, or loaded with a page.
    media_rows: strawberry.Private[list[MediaRow] | Missing] = MISSING

    @strawberry.field(description="Attached media, in order.", graphql_type=list[MediaAsset])
    def media(self, info: Info) -> list[MediaAsset] | Awaitable[list[MediaAsset]]:
        known = self.media_rows
        if known is not MISSING:
            return _media_in_order(self.row.media_ids, known)

        async def later() -> list[MediaAsset]:
            return [MediaAsset.from_row(m) for m in await _attached_media(self.row)]

        return later()

    @classmethod
    def from_row(
        cls, row: VariationRow, media: list[MediaRow] | Missing = MISSING, *, check: bool = False
    ) -> ContentVariation:
        """`media`: the attached media rows if already loaded; `check`: run the rule check
        now (needs the media) rather than when a field first reads it."""
        media = media if row.media_ids else []
        if check and media is not MISSING:
            done = variation_service.check(row, media)
            character_count: int | Later[int] = done.character_count
            within_limits: bool | Later[bool] = done.within_limits
            violations: list[RuleViolation] | Later[list[RuleViolation]] = _violations(done)
            parts: list[str] | Later[list[str]] = list(done.parts) or [row.body]
        else:
            later = Later(lambda: _check_later(row, media))
            character_count = later.then(lambda e: e.character_count)
            within_limits = later.then(lambda e: e.within_limits)
            violations = later.then(_violations)
            parts = later.then(lambda e: list(e.parts) or [row.body])
        return cls(
            id=str(row.id),
            platform=Platform[row.platform],
            body=row.body,
            subject=row.subject,
            preheader=row.preheader,
            updated_at=row.updated_at,
            character_count=character_count,
            within_limits=within_limits,
            violations=violations,
            parts=parts,
            row=row,
            media_rows=media,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ContentVariation | None]:
        rows = await visible_rows(info.context, info.context.loaders.variations, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


def _violations(evaluation: Evaluation) -> list[RuleViolation]:
    return [
        RuleViolation(code=v.code, message=v.message, part=v.part) for v in evaluation.violations
    ]


async def _attached_media(row: VariationRow) -> list[MediaRow]:
    """A variation's media, in order, through the operation's loader."""
    found = await current_loaders().media.load_many(row.media_ids)
    return [m for m in found if m is not None]


async def _check_later(row: VariationRow, media: list[MediaRow] | Missing) -> Evaluation:
    return variation_service.check(row, await _attached_media(row) if media is MISSING else media)


def _media_in_order(ids: list[uuid.UUID], rows: list[MediaRow]) -> list[MediaAsset]:
    by_id = {m.id: m for m in rows}
    return [MediaAsset.from_row(by_id[i]) for i in ids if i in by_id]


# Variation fields computed by the rule check (which covers media limits too).
_RULE_FIELDS = frozenset({"characterCount", "withinLimits", "violations", "parts"})


@strawberry.type(description="A stored version of a content item's text.")
class ContentVersion:
    id: relay.GlobalID = strawberry.field(description="Pass to restoreContentVersion.")
    version: int = strawberry.field(description="Version number (1 is the first).")
    title: str = strawberry.field(description="Title at this version.")
    body: str = strawberry.field(description="Body at this version.")
    format: ContentFormat = strawberry.field(description="Format at this version.")
    created_at: datetime = strawberry.field(description="When it was saved.")
    author_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="Who saved it (null if the account was deleted).")
    async def author(self, info: Info) -> User | None:
        return await load_user(info, self.author_id)

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
        row = await info.context.loaders.contents.load(self.content_id)
        return Content.from_row(row) if row else None


@strawberry.type(description="A marketing campaign grouping content.")
class Campaign(relay.Node):
    id: relay.NodeID[str]
    name: str = strawberry.field(description="Campaign name.")
    objectives: list[str] = strawberry.field(description="What it should achieve.")
    start_date: date | None = strawberry.field(description="First day.")
    end_date: date | None = strawberry.field(description="Last day.")
    budget: Decimal | None = strawberry.field(description="Budget (workspace currency).")
    status: CampaignStatus = strawberry.field(description="Lifecycle state.")
    created_at: datetime = strawberry.field(description="When it was created.")
    row: strawberry.Private[CampaignRow]

    @strawberry.field(description="Content in this campaign, newest first.")
    async def contents(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size (at most 100).")] = 50,
        after: Annotated[
            str | None, strawberry.argument(description="Cursor to start after.")
        ] = None,
    ) -> Connection[Content]:
        info.context.principal.require(self.row.workspace_id, Action.CONTENT_READ)
        size = page_size(first, info.context.state.settings.max_page_size)
        # Batched across the campaigns of a list (one statement), like every relation.
        page = await info.context.loaders.campaign_contents.load((self.row.id, size, after))
        return await Content.connection(info, page)

    @classmethod
    def from_row(cls, row: CampaignRow) -> Campaign:
        return cls(
            id=str(row.id),
            name=row.name,
            objectives=list(row.objectives),
            start_date=row.start_date,
            end_date=row.end_date,
            budget=row.budget,
            status=CampaignStatus(row.status),
            created_at=row.created_at,
            row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Campaign | None]:
        rows = await visible_rows(info.context, info.context.loaders.campaigns, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


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
    # read. Plain fields, not resolvers: see schema.lookahead.Later.
    author: User | Later[User | None] | None = strawberry.field(
        description="Who created it (null if the account was deleted).", graphql_type=User | None
    )
    campaign: Campaign | Later[Campaign | None] | None = strawberry.field(
        description="The campaign it belongs to, if any.", graphql_type=Campaign | None
    )
    comment_count: int | Later[int] = strawberry.field(
        description="Number of comments.", graphql_type=int
    )
    variations: list[ContentVariation] | Later[list[ContentVariation]] = strawberry.field(
        description="Per-platform variations.", graphql_type=list[ContentVariation]
    )
    row: strawberry.Private[ContentRow]

    @strawberry.field(description="Attached media, in order (see setContentMedia).")
    async def media(self, info: Info) -> list[MediaAsset]:
        rows = await info.context.loaders.media_by_content.load(self.row.id)
        return [MediaAsset.from_row(r) for r in rows]

    @strawberry.field(description="Stored versions, newest first (at most the last 50).")
    async def versions(self, info: Info) -> list[ContentVersion]:
        rows = await info.context.loaders.versions_by_content.load(self.row.id)
        return [ContentVersion.from_row(r) for r in rows]

    @strawberry.field(description="The review thread, oldest first.")
    async def comments(self, info: Info) -> list[ContentComment]:
        rows = await info.context.loaders.comments_by_content.load(self.row.id)
        return [ContentComment.from_row(r) for r in rows]

    @strawberry.field(description="Nearest items by meaning (empty until this item is embedded).")
    async def similar(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many (at most 50).")] = 5,
    ) -> list[SimilarContent]:
        size = page_size(first, 50)
        hits = await info.context.loaders.similar.load((self.row.id, size))
        return [SimilarContent(similarity=round(sim, 4), content_id=cid) for cid, sim in hits]

    @classmethod
    def from_row(cls, row: ContentRow) -> Content:
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
            author=Later(lambda: _author(row)) if row.created_by_id else None,
            campaign=Later(lambda: _campaign(row)) if row.campaign_id else None,
            comment_count=Later(lambda: current_loaders().comment_counts.load(row.id)),
            variations=Later(lambda: _variations(row)),
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
            load_map(loaders.users, [r.created_by_id for r in rows if r.created_by_id])
            if "author" in selected
            else nothing(),
            load_map(loaders.campaigns, [r.campaign_id for r in rows if r.campaign_id])
            if "campaign" in selected
            else nothing(),
            load_map(loaders.comment_counts, ids) if "commentCount" in selected else nothing(),
            load_map(loaders.variations_by_content, ids) if "variations" in selected else nothing(),
        )
        below = selected.below("variations").names
        check = bool(below & _RULE_FIELDS)
        media: dict[uuid.UUID, MediaRow | None] | None = None
        if check or "media" in below:
            media_ids = [m for found in variations.values() for v in found for m in v.media_ids]
            media = await load_map(loaders.media, media_ids)

        def variation(v: VariationRow) -> ContentVariation:
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
    async def connection(cls, info: Info, page: Page[ContentRow]) -> Connection[Content]:
        """A page of items with the relations the query selects loaded up front."""
        connection = Connection.of(page, cls.from_row)
        nodes = [edge.node for edge in connection.edges]
        await cls.preload(info, nodes, Selected.of(info, "edges", "node"))
        return connection

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Content | None]:
        loaders = info.context.loaders
        rows = await loaders.contents.load_many([loaders.uuid_or_nil(i) for i in node_ids])
        principal = info.context.principal
        out: list[Content | None] = []
        for row in rows:
            if row is None or principal.role_in(row.workspace_id) is None:
                out.append(None)
            else:
                principal.require(row.workspace_id, Action.CONTENT_READ)
                out.append(cls.from_row(row))
        return out


async def _author(row: ContentRow) -> User | None:
    assert row.created_by_id is not None
    user = await current_loaders().users.load(row.created_by_id)
    return User.from_row(user) if user else None


async def _campaign(row: ContentRow) -> Campaign | None:
    assert row.campaign_id is not None
    campaign = await current_loaders().campaigns.load(row.campaign_id)
    return Campaign.from_row(campaign) if campaign else None


async def _variations(row: ContentRow) -> list[ContentVariation]:
    rows = await current_loaders().variations_by_content.load(row.id)
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


@strawberry.type(description="Result of createVariation / updateVariation.")
class VariationPayload:
    variation: ContentVariation | None = strawberry.field(description="The variation.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="Result of addComment.")
class CommentPayload:
    comment: ContentComment | None = strawberry.field(description="The new comment.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="Result of campaign mutations.")
class CampaignPayload:
    campaign: Campaign | None = strawberry.field(description="The campaign after the change.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="One search result.")
class SearchHit:
    score: float = strawberry.field(
        description="Relevance: ts_rank (KEYWORD), cosine similarity (SEMANTIC) "
        "or RRF score (HYBRID)."
    )
    snippet: str | None = strawberry.field(
        description="Matching passage with <mark> around hits (keyword matches only)."
    )
    content_id: strawberry.Private[uuid.UUID]
    # Read with the hits when the query selects `content` (see searchContent).
    found: strawberry.Private[Content | Missing | None] = MISSING

    @strawberry.field(description="The item.", graphql_type=Content | None)
    def content(self, info: Info) -> Content | Awaitable[Content | None] | None:
        if self.found is not MISSING:
            return self.found

        async def later() -> Content | None:
            row = await info.context.loaders.contents.load(self.content_id)
            return Content.from_row(row) if row else None

        return later()


@strawberry.enum(description="How searchContent matches.")
class SearchMode(Enum):
    KEYWORD = strawberry.enum_value(
        "KEYWORD", description="Words (Postgres full-text search, ranked)."
    )
    SEMANTIC = strawberry.enum_value(
        "SEMANTIC", description="Meaning (embeddings, cosine similarity)."
    )
    HYBRID = strawberry.enum_value("HYBRID", description="Both, merged by reciprocal rank fusion.")


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


@strawberry.input(description="A platform variation's fields.")
class VariationInput:
    body: str | None = strawberry.field(
        default=None, description="Text (create: defaults to the item's body)."
    )
    subject: str | None = strawberry.field(default=None, description="Email subject.")
    preheader: str | None = strawberry.field(default=None, description="Email preheader.")
    media_ids: list[relay.GlobalID] | None = strawberry.field(
        default=None, description="Attached media, in order."
    )


@strawberry.input(description="Campaign fields; on update omitted fields stay as they are.")
class CampaignInput:
    name: str | None = strawberry.field(default=None, description="Name (required on create).")
    objectives: list[str] | None = strawberry.field(
        default=None, description="What it should achieve."
    )
    start_date: date | None = strawberry.field(default=None, description="First day.")
    end_date: date | None = strawberry.field(default=None, description="Last day.")
    budget: Decimal | None = strawberry.field(default=None, description="Budget.")
    status: CampaignStatus | None = strawberry.field(default=None, description="Lifecycle state.")
