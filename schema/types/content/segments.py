"""Audience segments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from app.models import AudienceSegment as SegmentRow
from schema.context import Info, visible_rows
from schema.types.errors import UserError


@strawberry.type(description="Who the segment is.")
class SegmentAttributes:
    industry: str | None = strawberry.field(description="E.g. 'fintech'.")
    experience_level: str | None = strawberry.field(description="E.g. 'beginner', 'expert'.")
    interests: list[str] = strawberry.field(description="Topics they care about.")


@strawberry.input(description="Who the segment is; on update omitted fields stay as they are.")
class SegmentAttributesInput:
    industry: str | None = strawberry.field(default=None, description="E.g. 'fintech'.")
    experience_level: str | None = strawberry.field(default=None, description="E.g. 'beginner'.")
    interests: list[str] | None = strawberry.field(
        default=None, description="Topics they care about."
    )


@strawberry.input(description="Segment changes; omitted fields stay as they are.")
class UpdateAudienceSegmentInput:
    name: str | None = strawberry.field(default=None, description="New name.")
    description: str | None = strawberry.field(default=None, description="New description.")
    attributes: SegmentAttributesInput | None = strawberry.field(
        default=None, description="New attributes."
    )


@strawberry.type(description="An audience segment content can be personalised for.")
class AudienceSegment(relay.Node):
    id: relay.NodeID[str]
    name: str = strawberry.field(description="Segment name.")
    description: str = strawberry.field(description="Who they are, in words.")
    attributes: SegmentAttributes = strawberry.field(description="Structured attributes.")
    embedded: bool = strawberry.field(description="Its embedding is computed (used for matching).")
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="Last change.")

    @classmethod
    def from_row(cls, row: SegmentRow) -> AudienceSegment:
        attrs = row.attributes
        return cls(
            id=str(row.id),
            name=row.name,
            description=row.description,
            attributes=SegmentAttributes(
                industry=attrs.get("industry"),
                experience_level=attrs.get("experience_level"),
                interests=list(attrs.get("interests", [])),
            ),
            embedded=row.embedding is not None,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[AudienceSegment | None]:
        rows = await visible_rows(info.context, info.context.loaders.content.segments, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


@strawberry.type(description="Result of audience segment mutations.")
class AudienceSegmentPayload:
    segment: AudienceSegment | None = strawberry.field(description="The segment after the change.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")
