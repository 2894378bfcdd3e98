"""AI-written alternatives of a content item that leave the item unchanged: personalised
versions (one per audience segment) and A/B-test variants. Not to be confused with
platform variations (schema/types/content/variations.py), which are the item's own text
per platform."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.models import ContentPersonalization as PersonalizationRow
from app.models import ContentVariant as VariantRow
from schema.context import Info, visible_rows
from schema.types.analytics.prediction import (
    PLATFORM_ARGUMENT,
    PREDICTED_DESCRIPTION,
    EngagementPrediction,
    content_type_of,
    predicted_engagement,
)
from schema.types.content.segments import AudienceSegment
from schema.types.vocabulary import ContentType, Platform


async def _predicted(
    info: Info,
    workspace_id: uuid.UUID,
    content_id: uuid.UUID,
    text: str,
    platform: Platform | None,
) -> EngagementPrediction:
    """An alternative text of an item, scored as the item's content type (no media)."""
    content_type = await content_type_of(info, content_id)
    return await predicted_engagement(
        info,
        workspace_id=workspace_id,
        text=text,
        platform=Platform(platform).value if platform is not None else None,
        content_type=content_type or ContentType.SOCIAL_POST.value,
    )


@strawberry.type(description="One change a personalisation made, and why.")
class PersonalizationChange:
    change: str = strawberry.field(description="What was changed.")
    reason: str | None = strawberry.field(
        description="Why, in terms of the segment (null if the writer gave no reason)."
    )


@strawberry.type(
    description="The item rewritten for one audience segment by personalizeContent, with "
    "what changed and why. One per item and segment: personalising again replaces it."
)
class ContentPersonalization(relay.Node):
    id: relay.NodeID[str]
    title: str = strawberry.field(description="Title of this version.")
    body: str = strawberry.field(description="Text of this version.")
    changes: list[PersonalizationChange] = strawberry.field(
        description="What differs from the item and why, most important first (as the "
        "model listed them; the offline writer lists the rule-based edits it made)."
    )
    metrics: JSON = strawberry.field(
        description="Text metrics: words, readability, sentiment, hashtags, warnings."
    )
    based_on_version: int = strawberry.field(
        description="The item's version it was written from (the item may have changed since)."
    )
    created_at: datetime = strawberry.field(description="When it was first written.")
    updated_at: datetime = strawberry.field(description="When it was last rewritten.")
    segment_id: strawberry.Private[uuid.UUID]
    workspace_id: strawberry.Private[uuid.UUID]
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description=PREDICTED_DESCRIPTION + " Of its body, without media.")
    async def predicted_engagement(
        self,
        info: Info,
        platform: Annotated[Platform | None, PLATFORM_ARGUMENT] = None,
    ) -> EngagementPrediction:
        return await _predicted(info, self.workspace_id, self.content_id, self.body, platform)

    @strawberry.field(description="The audience segment it is written for.")
    async def segment(self, info: Info) -> AudienceSegment | None:
        row = await info.context.loaders.content.segments.load(self.segment_id)
        return AudienceSegment.from_row(row) if row is not None else None

    @classmethod
    def from_row(cls, row: PersonalizationRow) -> ContentPersonalization:
        return cls(
            id=str(row.id),
            title=row.title,
            body=row.body,
            changes=[
                PersonalizationChange(
                    change=str(c.get("change") or ""),
                    reason=str(c["reason"]) if c.get("reason") else None,
                )
                for c in row.changes
            ],
            metrics=cast(JSON, row.metrics),
            based_on_version=row.based_on_version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            segment_id=row.segment_id,
            workspace_id=row.workspace_id,
            content_id=row.content_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ContentPersonalization | None]:
        loader = info.context.loaders.content.personalizations
        rows = await visible_rows(info.context, loader, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


@strawberry.type(description="A variant's text for one of the item's platforms.")
class VariantPlatformText:
    platform: Platform = strawberry.field(
        description="The platform (one the item has a variation for)."
    )
    body: str = strawberry.field(description="Text for it, within the platform's text rules.")
    subject: str | None = strawberry.field(description="Email subject (EMAIL only).")
    preheader: str | None = strawberry.field(description="Email preheader (EMAIL only).")
    repairs: list[str] = strawberry.field(
        description="What was done to fit the rules (e.g. 'TOO_LONG: re-split into numbered "
        "parts')."
    )
    workspace_id: strawberry.Private[uuid.UUID]
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description=PREDICTED_DESCRIPTION + " Of this text on its platform, without media."
    )
    async def predicted_engagement(self, info: Info) -> EngagementPrediction:
        return await _predicted(
            info, self.workspace_id, self.content_id, self.body, Platform(self.platform)
        )

    @classmethod
    def from_json(cls, value: dict[str, Any], row: VariantRow) -> VariantPlatformText:
        return cls(
            workspace_id=row.workspace_id,
            content_id=row.content_id,
            platform=Platform(value["platform"]),
            body=str(value.get("body") or ""),
            subject=value.get("subject"),
            preheader=value.get("preheader"),
            repairs=[str(r) for r in value.get("repairs") or []],
        )


@strawberry.type(
    description="An A/B-test alternative of the item written by generateVariants (the item "
    "itself is variant A). Pass its id to an A/B test."
)
class ContentVariant(relay.Node):
    id: relay.NodeID[str]
    label: str = strawberry.field(description='"B", "C", ... in the order they were written.')
    title: str = strawberry.field(description="Title (the subject line for emails).")
    body: str = strawberry.field(description="Text of the variant.")
    angle: str = strawberry.field(
        description="The hook or angle it takes and how it differs from the item, as its "
        "writer stated it."
    )
    platform_texts: list[VariantPlatformText] = strawberry.field(
        description="Its text for each platform the item had a variation for when it was "
        "written, repaired to that platform's rules."
    )
    metrics: JSON = strawberry.field(
        description="Text metrics: words, readability, sentiment, hashtags, warnings."
    )
    based_on_version: int = strawberry.field(description="The item's version it was written from.")
    created_at: datetime = strawberry.field(description="When it was written.")
    workspace_id: strawberry.Private[uuid.UUID]
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description=PREDICTED_DESCRIPTION + " Of its body, without media.")
    async def predicted_engagement(
        self,
        info: Info,
        platform: Annotated[Platform | None, PLATFORM_ARGUMENT] = None,
    ) -> EngagementPrediction:
        return await _predicted(info, self.workspace_id, self.content_id, self.body, platform)

    @classmethod
    def from_row(cls, row: VariantRow) -> ContentVariant:
        return cls(
            id=str(row.id),
            label=row.label,
            title=row.title,
            body=row.body,
            angle=row.angle,
            platform_texts=[VariantPlatformText.from_json(t, row) for t in row.platform_texts],
            metrics=cast(JSON, row.metrics),
            based_on_version=row.based_on_version,
            created_at=row.created_at,
            workspace_id=row.workspace_id,
            content_id=row.content_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ContentVariant | None]:
        rows = await visible_rows(info.context, info.context.loaders.content.variants, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]
