"""Background jobs: the `ping` diagnostic, reading a job, following its events or a
workspace's."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from app.errors import NotFound
from app.jobs import events as job_events
from app.jobs import workspace_events
from app.services.ops import diagnostics
from resolvers.common import WorkspaceId, attempt, principal_of, state_of, workspace_of
from schema.context import Info
from schema.types.jobs import Job, JobEvent, PingPayload, WorkspaceEvent

JobId = Annotated[relay.GlobalID, strawberry.argument(description="Global ID of the job.")]


@strawberry.type
class JobQuery:
    @strawberry.field(description="A background job. Visible to readers of its workspace.")
    async def job(self, info: Info, id: JobId) -> Job | None:
        if id.type_name != "Job":
            return None
        nodes = await Job.resolve_nodes(info=info, node_ids=[id.node_id])
        return nodes[0]


@strawberry.type
class JobMutation:
    @strawberry.mutation(
        description="Queue a `ping` job in a workspace (member role). The worker completes it "
        "and publishes its events; follow them with `jobEvents`. "
        "Proves API -> worker -> subscriber."
    )
    async def ping(
        self,
        info: Info,
        workspace_id: Annotated[
            relay.GlobalID, strawberry.argument(description="Workspace the job belongs to.")
        ],
        message: Annotated[
            str, strawberry.argument(description="Echoed back in the result.")
        ] = "ping",
        delay_ms: Annotated[
            int,
            strawberry.argument(
                description="How long the worker waits before answering (0-10000 ms)."
            ),
        ] = 0,
    ) -> PingPayload:
        state = state_of(info)
        row, errors = await attempt(
            diagnostics.start_ping(
                state.session_factory,
                state.arq,
                principal_of(info),
                workspace_of(workspace_id),
                message=message,
                delay_ms=delay_ms,
                max_attempts=state.settings.job_max_attempts,
            )
        )
        return PingPayload(job=Job.from_row(row) if row else None, errors=errors)


@strawberry.type
class JobSubscription:
    @strawberry.subscription(
        description="Follow a job: first its current state, then every change, in order; "
        "completes after the job succeeds or fails. Visible to readers of its workspace."
    )
    async def job_events(self, info: Info, id: JobId) -> AsyncGenerator[JobEvent, None]:
        job_id = job_events.parse_job_id(id.node_id) if id.type_name == "Job" else None
        if job_id is None:
            raise NotFound("No job with this id.")
        state = state_of(info)
        stream = job_events.follow(state.session_factory, state.hub, principal_of(info), job_id)
        async for event in stream:
            info.context.fresh_loaders()
            yield JobEvent.from_value(event)

    @strawberry.subscription(
        description="Follow every job of a workspace (generations, embeddings, ...) for "
        "dashboards: first a snapshot of its QUEUED and RUNNING jobs (plus those changed "
        "since `since`), then the state of each job that changes. Status changes arrive at "
        "once, a job's progress at most once a second; never generated text (follow one "
        "generation with `generationProgress`). A new snapshot follows any gap. To "
        "reconnect, subscribe again with `since` = the newest `updatedAt` you received. "
        "Requires viewer role; ends with FORBIDDEN if that role is taken away."
    )
    async def workspace_events(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        since: Annotated[
            datetime | None,
            strawberry.argument(
                description="Also include in the first snapshot the jobs that changed after "
                "this instant (finished ones too): the newest `updatedAt` you received."
            ),
        ] = None,
    ) -> AsyncGenerator[WorkspaceEvent, None]:
        state = state_of(info)
        stream = workspace_events.follow_workspace(
            state.session_factory,
            state.hub,
            principal_of(info),
            workspace_of(workspace_id),
            since=since,
            progress_seconds=state.settings.workspace_events_progress_seconds,
            resync_seconds=state.settings.workspace_events_resync_seconds,
        )
        async for event in stream:
            yield WorkspaceEvent.from_value(event)
