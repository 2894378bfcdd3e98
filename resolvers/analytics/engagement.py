"""Recording engagement events through GraphQL (the batch endpoint is POST /ingest/events)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.services.analytics import ingest
from resolvers.common import WorkspaceId, attempt, principal_of, state_of, workspace_of
from schema.context import Info
from schema.types.analytics.engagement import EngagementEventInput, RecordEngagementEventsPayload


@strawberry.type
class EngagementMutation:
    @strawberry.mutation(
        description="Record first-party engagement events in a workspace (member role, or an "
        "API key of one): each event is checked on its own, refused ones come back with "
        "their reasons, and an event id already recorded counts as a duplicate, never "
        "twice. Rollups show them within seconds. For large batches use "
        "`POST /ingest/events`."
    )
    async def record_engagement_events(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        events: Annotated[
            list[EngagementEventInput],
            strawberry.argument(description="The events (at most INGEST_MAX_EVENTS)."),
        ],
    ) -> RecordEngagementEventsPayload:
        state = state_of(info)
        report, errors = await attempt(
            ingest.record(
                ingest.Ingest.of(state),
                principal_of(info),
                workspace_of(workspace_id),
                [event.to_fields() for event in events],
            )
        )
        return RecordEngagementEventsPayload.of(report, errors)
