"""Root subscription fields."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry
from strawberry import relay

from app.errors import NotFound
from app.services import job_events
from schema.context import Context
from schema.types.job import JobEvent


@strawberry.type(description="Live updates over websockets (graphql-transport-ws).")
class Subscription:
    @strawberry.subscription(
        description="Follow a job: first its current state, then every change, in order; "
        "completes after the job succeeds or fails."
    )
    async def job_events(
        self,
        info: strawberry.Info[Context, Any],
        id: Annotated[relay.GlobalID, strawberry.argument(description="Global ID of the job.")],
    ) -> AsyncGenerator[JobEvent, None]:
        job_id = job_events.parse_job_id(id.node_id) if id.type_name == "Job" else None
        if job_id is None:
            raise NotFound("No job with this id.")
        state = info.context.state
        stream = job_events.follow(state.session_factory, state.hub, job_id)
        async for event in stream:
            info.context.fresh_loaders()
            yield JobEvent.from_value(event)
