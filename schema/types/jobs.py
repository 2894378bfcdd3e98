"""Background jobs and their progress events."""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.jobs import workspace_events
from app.jobs.store import JobEvent as JobEventValue
from app.jobs.store import can_read
from app.models import Job as JobRow
from schema.context import Context
from schema.ids import to_global_id
from schema.loaders.base import uuid_or_nil
from schema.types.errors import UserError
from schema.types.vocabulary import JobStatus


@strawberry.type(
    description="A unit of background work (e.g. `ping`, embedding content and segments)."
)
class Job(relay.Node):
    id: relay.NodeID[str]
    kind: str = strawberry.field(description="What the job does, e.g. `ping`.")
    status: JobStatus = strawberry.field(description="Where the job is in its lifecycle.")
    progress: float = strawberry.field(description="Completion from 0.0 to 1.0.")
    message: str | None = strawberry.field(description="Latest progress message, if any.")
    attempts: int = strawberry.field(description="Attempts started so far.")
    max_attempts: int = strawberry.field(description="Attempts allowed before the job fails.")
    result: JSON | None = strawberry.field(description="Output of a succeeded job.")
    error: str | None = strawberry.field(description="Why the last attempt failed.")
    created_at: datetime = strawberry.field(description="When the job was created.")
    started_at: datetime | None = strawberry.field(description="When the last attempt started.")
    finished_at: datetime | None = strawberry.field(description="When the job succeeded or failed.")

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        return cls(
            id=str(row.id),
            kind=row.kind,
            status=JobStatus(row.status),
            progress=row.progress,
            message=row.message,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            result=cast(JSON, row.result),
            error=row.error,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls,
        *,
        info: strawberry.Info[Context, Any],
        node_ids: Iterable[str],
        required: bool = False,
    ) -> list[Job | None]:
        loaders = info.context.loaders
        principal = info.context.principal
        rows = await loaders.jobs.job.load_many([uuid_or_nil(i) for i in node_ids])
        return [
            cls.from_row(row) if row is not None and can_read(principal, row) else None
            for row in rows
        ]


@strawberry.type(description="A change in a job's state, streamed to subscribers in order.")
class JobEvent:
    sequence: int = strawberry.field(
        description="Increases with every change of the job; events arrive in this order."
    )
    attempt: int = strawberry.field(description="The attempt this event belongs to.")
    status: JobStatus = strawberry.field(description="Job status after this change.")
    progress: float = strawberry.field(description="Completion from 0.0 to 1.0.")
    message: str | None = strawberry.field(description="Progress message, if any.")
    result: JSON | None = strawberry.field(description="Output, once the job succeeded.")
    error: str | None = strawberry.field(description="Failure reason, if the attempt failed.")
    catch_up: bool = strawberry.field(
        description="True when this event is the job's stored state rather than the next "
        "change: the first event of a subscription, and the first after a gap (events lost "
        "to a slow client or a Redis reconnect). Changes before it may have been skipped: "
        "treat it as a snapshot. When false, `sequence` is the previous event's plus one."
    )
    job_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The job, as stored when this event is delivered.")
    async def job(self, info: strawberry.Info[Context, Any]) -> Job | None:
        row = await info.context.loaders.jobs.job.load(self.job_id)
        return Job.from_row(row) if row is not None else None

    def shared_key(self) -> Hashable:
        # With equality checked on a hit (schema.shared_events): the job's events are
        # numbered, and a catch-up and a live event of one number may differ.
        return (self.job_id, self.sequence, self.catch_up)

    @classmethod
    def from_value(cls, event: JobEventValue) -> JobEvent:
        return cls(
            sequence=event.seq,
            attempt=event.attempt,
            status=JobStatus(event.status),
            progress=event.progress,
            message=event.message,
            result=cast(JSON, event.result),
            error=event.error,
            catch_up=event.catch_up,
            job_id=event.job_id,
        )


@strawberry.type(
    description="One job of a workspace as `workspaceEvents` reports it: its state after a "
    "change, or as stored (snapshot)."
)
class WorkspaceJobState:
    job_id: relay.GlobalID = strawberry.field(description="The job (read it with `job(id)`).")
    kind: str = strawberry.field(
        description="What the job does: `generate_content`, `embed_content`, `ping`, ..."
    )
    status: JobStatus = strawberry.field(description="Job status after this change.")
    progress: float = strawberry.field(description="Completion from 0.0 to 1.0.")
    attempt: int = strawberry.field(description="Attempts started so far.")
    sequence: int = strawberry.field(
        description="The job's event sequence: grows with each of its changes. Ignore a state "
        "whose sequence is not above the last one you have for the job."
    )
    message: str | None = strawberry.field(
        description="Latest progress message; for generations the stage (`draft`, "
        "`variation:1`, `saving`, ...)."
    )
    error: str | None = strawberry.field(description="Why the last attempt failed, if it did.")
    content_id: relay.GlobalID | None = strawberry.field(
        description="The content item a generation saved (once SUCCEEDED); null otherwise."
    )
    updated_at: datetime = strawberry.field(
        description="When the job last changed (database clock): pass the newest you "
        "received as `since` when you subscribe again."
    )
    catch_up: bool = strawberry.field(
        description="True when read from the database (snapshot, periodic re-read) rather "
        "than a live change."
    )

    @classmethod
    def from_value(cls, state: workspace_events.JobState) -> WorkspaceJobState:
        return cls(
            job_id=to_global_id("Job", state.job_id),
            kind=state.kind,
            status=JobStatus(state.status),
            progress=state.progress,
            attempt=state.attempt,
            sequence=state.seq,
            message=state.message,
            error=state.error,
            content_id=to_global_id("Content", state.content_id) if state.content_id else None,
            updated_at=state.updated_at,
            catch_up=state.catch_up,
        )


@strawberry.type(
    description="What `workspaceEvents` streams: a snapshot of the workspace's jobs, or the "
    "latest state of the jobs that just changed."
)
class WorkspaceEvent:
    snapshot: bool = strawberry.field(
        description="True on the first event and after a gap (a slow client, a Redis "
        "reconnect): `jobs` then holds every QUEUED or RUNNING job of the workspace, and "
        "every job changed since `since` (or since the last event before the gap). A job "
        "you show as active that is absent from a snapshot has finished: read it with "
        "`job(id)`. False: `jobs` holds the jobs that just changed."
    )
    truncated: bool = strawberry.field(
        description="True when a snapshot had more jobs than it carries (500): the oldest "
        "changes were left out."
    )
    jobs: list[WorkspaceJobState] = strawberry.field(
        description="Each job's latest state, oldest change first; one entry per job."
    )

    def shared_key(self) -> Hashable:
        # Equality is checked on a hit: this only has to tell most events apart cheaply.
        return (self.snapshot, tuple((s.job_id.node_id, s.sequence) for s in self.jobs))

    @classmethod
    def from_value(cls, event: workspace_events.WorkspaceEvent) -> WorkspaceEvent:
        return cls(
            snapshot=event.snapshot,
            truncated=event.truncated,
            jobs=[WorkspaceJobState.from_value(state) for state in event.jobs],
        )


@strawberry.type(description="Result of `ping`.")
class PingPayload:
    job: Job | None = strawberry.field(
        description="The queued ping job; null when input was invalid."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing was queued, if so.")
