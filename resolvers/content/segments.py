"""Audience segments."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.services.content import segments
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
from schema.types.content.segments import (
    AudienceSegment,
    AudienceSegmentPayload,
    SegmentAttributesInput,
    UpdateAudienceSegmentInput,
)
from schema.types.errors import SuccessPayload

SegmentId = Annotated[relay.GlobalID, strawberry.argument(description="Segment ID.")]


def _fields(
    name: str | None, description: str | None, attributes: SegmentAttributesInput | None
) -> segments.SegmentFields:
    attrs = attributes or SegmentAttributesInput()
    return segments.SegmentFields(
        name=name,
        description=description,
        industry=attrs.industry,
        experience_level=attrs.experience_level,
        interests=attrs.interests,
    )


def _payload(row: object, errors: list) -> AudienceSegmentPayload:  # type: ignore[type-arg]
    return AudienceSegmentPayload(
        segment=AudienceSegment.from_row(row) if row is not None else None,  # type: ignore[arg-type]
        errors=errors,
    )


@strawberry.type
class SegmentQuery:
    @strawberry.field(
        description="Audience segments of a workspace, newest first. Requires viewer role."
    )
    async def audience_segments(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: First = 50,
        after: After = None,
    ) -> Connection[AudienceSegment]:
        page = await workspace_page(info, segments.list_segments, workspace_id, first, after)
        return Connection.of(page, AudienceSegment.from_row)


@strawberry.type
class SegmentMutation:
    @strawberry.mutation(
        description="Create an audience segment; it is embedded by a job. Requires member role."
    )
    async def create_audience_segment(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        name: Annotated[str, strawberry.argument(description="Segment name.")],
        description: Annotated[
            str, strawberry.argument(description="Who they are, in words.")
        ] = "",
        attributes: Annotated[
            SegmentAttributesInput | None, strawberry.argument(description="Structured attributes.")
        ] = None,
    ) -> AudienceSegmentPayload:
        row, errors = await attempt(
            segments.create(
                state_of(info),
                principal_of(info),
                workspace_of(workspace_id),
                _fields(name, description, attributes),
            )
        )
        return _payload(row, errors)

    @strawberry.mutation(
        description="Change an audience segment (re-embedded). Requires member role."
    )
    async def update_audience_segment(
        self,
        info: Info,
        id: SegmentId,
        input: Annotated[
            UpdateAudienceSegmentInput, strawberry.argument(description="The changes.")
        ],
    ) -> AudienceSegmentPayload:
        row, errors = await attempt(
            segments.update_segment(
                state_of(info),
                principal_of(info),
                parse_id(id, "AudienceSegment"),
                _fields(input.name, input.description, input.attributes),
            )
        )
        return _payload(row, errors)

    @strawberry.mutation(description="Delete an audience segment. Requires admin role.")
    async def delete_audience_segment(self, info: Info, id: SegmentId) -> SuccessPayload:
        _, errors = await attempt(
            segments.delete(state_of(info), principal_of(info), parse_id(id, "AudienceSegment"))
        )
        return SuccessPayload.of(errors)
