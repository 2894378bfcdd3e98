"""Platform variations of a content item: its text per platform, checked against the
platform's rules, with media and a predicted engagement."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TypeVar

import strawberry
from strawberry import relay

from app.models import MediaAsset as MediaRow
from app.platforms.rules import Evaluation
from app.services.content import variations as variation_service
from app.services.content.variations import VariationFields, VariationRecord
from schema.context import Info, current_loaders, visible_rows
from schema.ids import parse_id
from schema.lazy import PENDING, Pending, on_read
from schema.lookahead import MISSING, Later, Missing
from schema.types.analytics.prediction import (
    PREDICTED_DESCRIPTION,
    EngagementPrediction,
    content_type_of,
    predicted_engagement,
)
from schema.types.content.media import MediaAsset
from schema.types.content.metrics import (
    METRICS_DESCRIPTION,
    WARNINGS_DESCRIPTION,
    ContentWarning,
    TextMetrics,
)
from schema.types.errors import UserError
from schema.types.vocabulary import ContentType, Platform

T = TypeVar("T")


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
    # otherwise when a field is first read (PENDING until then: see schema.lazy, and the
    # on_read below). Plain fields, not resolvers: see schema.lookahead.Later.
    character_count: int | Later[int] | Pending = strawberry.field(
        description="Characters as the platform counts them (X: CJK and emoji 2, links 23; "
        "Bluesky: graphemes).",
        graphql_type=int,
    )
    within_limits: bool | Later[bool] | Pending = strawberry.field(
        description="True when no rule is broken.", graphql_type=bool
    )
    violations: list[RuleViolation] | Later[list[RuleViolation]] | Pending = strawberry.field(
        description="Every rule the variation breaks (empty when within limits).",
        graphql_type=list[RuleViolation],
    )
    parts: list[str] | Later[list[str]] | Pending = strawberry.field(
        description="X: the numbered thread parts; other platforms: the whole text.",
        graphql_type=list[str],
    )
    # An entity, or a plain row from a page (VariationRecord: the fields read here).
    row: strawberry.Private[VariationRecord]
    # The attached media once known: at once when none are attached, or loaded with a page.
    media_rows: strawberry.Private[list[MediaRow] | Missing] = MISSING
    # The rule check run for the fields above, once for all of them, when one is read.
    rule_check: strawberry.Private[Later[Evaluation] | None] = None

    @strawberry.field(description=METRICS_DESCRIPTION + " Of the body (not subject or preheader).")
    def text_metrics(self) -> TextMetrics | None:
        return TextMetrics.of(self.row.text_metrics, self.row.text_metrics_version)

    @strawberry.field(description=WARNINGS_DESCRIPTION)
    def warnings(self) -> list[ContentWarning]:
        return ContentWarning.all_of(self.row.text_metrics)

    @strawberry.field(
        description=PREDICTED_DESCRIPTION + " Of the body on this platform, with its media."
    )
    async def predicted_engagement(self, info: Info) -> EngagementPrediction:
        content_type = await content_type_of(info, self.row.content_id)
        return await predicted_engagement(
            info,
            workspace_id=self.row.workspace_id,
            text=self.row.body,
            platform=self.row.platform,
            content_type=content_type or ContentType.SOCIAL_POST.value,
            has_media=bool(self.row.media_ids),
        )

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
        cls, row: VariationRecord, media: list[MediaRow] | Missing = MISSING, *, check: bool = False
    ) -> ContentVariation:
        """`media`: the attached media rows if already loaded; `check`: run the rule check
        now (needs the media) rather than when a field first reads it."""
        media = media if row.media_ids else []
        if check and media is not MISSING:
            done = variation_service.check(row, media)
            character_count: int | Pending = done.character_count
            within_limits: bool | Pending = done.within_limits
            violations: list[RuleViolation] | Pending = _violations(done)
            parts: list[str] | Pending = _parts(done, row.body)
        else:
            character_count = within_limits = violations = parts = PENDING
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
        rows = await visible_rows(info.context, info.context.loaders.content.variations, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


def _checked(
    pick: Callable[[Evaluation, VariationRecord], T],
) -> Callable[[ContentVariation], Later[T]]:
    """A rule-check field's value on first read: `pick` from the variation's one check."""

    def make(variation: ContentVariation) -> Later[T]:
        row, check = variation.row, variation.rule_check
        if check is None:
            media = variation.media_rows
            check = variation.rule_check = Later(lambda: _check_later(row, media))
        return check.then(lambda e: pick(e, row))

    return make


on_read(
    ContentVariation,
    character_count=_checked(lambda e, _: e.character_count),
    within_limits=_checked(lambda e, _: e.within_limits),
    violations=_checked(lambda e, _: _violations(e)),
    parts=_checked(lambda e, row: _parts(e, row.body)),
)


def _parts(evaluation: Evaluation, body: str) -> list[str]:
    return list(evaluation.parts) or [body]


def _violations(evaluation: Evaluation) -> list[RuleViolation]:
    return [
        RuleViolation(code=v.code, message=v.message, part=v.part) for v in evaluation.violations
    ]


async def _attached_media(row: VariationRecord) -> list[MediaRow]:
    """A variation's media, in order, through the operation's loader."""
    found = await current_loaders().content.media.load_many(row.media_ids)
    return [m for m in found if m is not None]


async def _check_later(row: VariationRecord, media: list[MediaRow] | Missing) -> Evaluation:
    return variation_service.check(row, await _attached_media(row) if media is MISSING else media)


def _media_in_order(ids: list[uuid.UUID], rows: list[MediaRow]) -> list[MediaAsset]:
    by_id = {m.id: m for m in rows}
    return [MediaAsset.from_row(by_id[i]) for i in ids if i in by_id]


# Variation fields computed by the rule check (which covers media limits too).
RULE_FIELDS = frozenset({"characterCount", "withinLimits", "violations", "parts"})


@strawberry.type(description="Result of createVariation / updateVariation.")
class VariationPayload:
    variation: ContentVariation | None = strawberry.field(description="The variation.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


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

    def to_fields(self) -> VariationFields:
        media_ids = self.media_ids
        return VariationFields(
            body=self.body,
            subject=self.subject,
            preheader=self.preheader,
            media_ids=None
            if media_ids is None
            else [parse_id(v, "MediaAsset", "mediaIds") for v in media_ids],
        )
