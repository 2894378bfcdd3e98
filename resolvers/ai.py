"""AI generation: start a generation, read its record, follow its progress."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from strawberry import relay

from app.errors import NotFound
from app.jobs.events import parse_job_id
from app.services.ai import editing, following, generation, personalization, variants
from resolvers.common import (
    After,
    First,
    WorkspaceId,
    attempt,
    page_limit,
    principal_of,
    state_of,
)
from schema.context import Info
from schema.ids import parse_id
from schema.pagination import Connection, page_size
from schema.types.ai import (
    CancelGenerationPayload,
    GenerateContentInput,
    GenerateContentPayload,
    GenerateVariantsPayload,
    GenerationJob,
    GenerationJobFilterInput,
    GenerationProgress,
    PersonalizeContentPayload,
    RefineContentPayload,
    TransformContentPayload,
)
from schema.types.jobs import Job
from schema.types.vocabulary import Platform

JobId = Annotated[
    relay.GlobalID, strawberry.argument(description="Global ID of the generation job.")
]


@strawberry.type
class AIQuery:
    @strawberry.field(
        description="A generation's durable record: prompt template and version, provider, "
        "model, tokens, cost estimate, latency and attempts. Visible to readers of its "
        "workspace (null otherwise)."
    )
    async def generation_job(self, info: Info, id: JobId) -> GenerationJob | None:
        job_id = parse_job_id(id.node_id) if id.type_name == "Job" else None
        if job_id is None:
            return None
        try:
            job, record = await generation.get_generation(
                state_of(info), principal_of(info), job_id
            )
        except NotFound:
            return None
        return GenerationJob.from_rows(job, record)

    @strawberry.field(
        description="A workspace's generation jobs, newest first, each with its durable "
        "record. Requires viewer role."
    )
    async def generation_jobs(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: First = 20,
        after: After = None,
        filter: Annotated[
            GenerationJobFilterInput | None, strawberry.argument(description="Narrow the list.")
        ] = None,
    ) -> Connection[GenerationJob]:
        page = await generation.list_generations(
            state_of(info),
            principal_of(info),
            parse_id(workspace_id, "Workspace", "workspaceId"),
            first=page_size(first, page_limit(info)),
            after=after,
            filters=(filter or GenerationJobFilterInput()).to_filter(),
        )
        jobs = await info.context.loaders.jobs.job.load_many([row.job_id for row in page.items])
        by_id = {job.id: job for job in jobs if job is not None}
        return Connection.of(page, lambda row: GenerationJob.from_rows(by_id[row.job_id], row))


@strawberry.type
class AIMutation:
    @strawberry.mutation(
        description="Draft a content item with AI (member role). Returns the queued job at "
        "once; follow it with generationProgress. The result is one DRAFT item (in the "
        "campaign if given) with one variation per platform, each within the platform's "
        "rules. The same request within a short window returns the same job."
    )
    async def generate_content(
        self,
        info: Info,
        input: Annotated[GenerateContentInput, strawberry.argument(description="What to write.")],
    ) -> GenerateContentPayload:
        row, errors = await attempt(
            generation.start_generation(state_of(info), principal_of(info), input.to_request())
        )
        return GenerateContentPayload(job=Job.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(
        description='Rewrite an item with AI following an instruction ("shorter", "more '
        'formal", "add a call to action"). Returns the queued job at once; the result '
        "is stored as the item's next version, so restoreContentVersion undoes it. Same "
        "rules as updateContent (members edit drafts)."
    )
    async def refine_content(
        self,
        info: Info,
        content_id: Annotated[
            relay.GlobalID, strawberry.argument(description="Global ID of the content.")
        ],
        instruction: Annotated[
            str, strawberry.argument(description="What to change (at most 500 characters).")
        ],
    ) -> RefineContentPayload:
        row, errors = await attempt(
            editing.start_refinement(
                state_of(info),
                principal_of(info),
                parse_id(content_id, "Content", "contentId"),
                instruction,
            )
        )
        return RefineContentPayload(job=Job.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(
        description="Repurpose an item for platforms with AI: one variation per platform "
        "(an existing one is rewritten), repaired to the platform's rules (numbered X "
        "threads, at most 30 Instagram hashtags, email subject and preheader, ...). Returns "
        "the queued job at once."
    )
    async def transform_content(
        self,
        info: Info,
        content_id: Annotated[
            relay.GlobalID, strawberry.argument(description="Global ID of the content.")
        ],
        platforms: Annotated[
            list[Platform], strawberry.argument(description="Platforms to write for.")
        ],
    ) -> TransformContentPayload:
        row, errors = await attempt(
            editing.start_transform(
                state_of(info),
                principal_of(info),
                parse_id(content_id, "Content", "contentId"),
                platforms,
            )
        )
        return TransformContentPayload(job=Job.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(
        description="Write one version of an item per audience segment with AI, each in "
        "the brand voice with a list of what changed and why; the item itself is unchanged "
        "and personalising for a segment again replaces its version. 1 to 10 segments of "
        "the item's workspace. Returns the queued job at once (stage `personalization`, "
        "`variationIndex` = the segment's position). Same rules as updateContent."
    )
    async def personalize_content(
        self,
        info: Info,
        content_id: Annotated[
            relay.GlobalID, strawberry.argument(description="Global ID of the content.")
        ],
        segment_ids: Annotated[
            list[relay.GlobalID],
            strawberry.argument(description="Audience segments to write for (1 to 10)."),
        ],
    ) -> PersonalizeContentPayload:
        row, errors = await attempt(
            personalization.start_personalization(
                state_of(info),
                principal_of(info),
                parse_id(content_id, "Content", "contentId"),
                [parse_id(s, "AudienceSegment", "segmentIds") for s in segment_ids],
            )
        )
        return PersonalizeContentPayload(job=Job.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(
        description="Write A/B-test variants of an item with AI (1 to 5 per call): each takes "
        "a different hook and says which, is labelled B, C, ... (the item is A) and carries "
        "its text for each of the item's platforms within their rules. The item itself is "
        "unchanged. Returns the queued job at once (stage `variant`). Same rules as "
        "updateContent."
    )
    async def generate_variants(
        self,
        info: Info,
        content_id: Annotated[
            relay.GlobalID, strawberry.argument(description="Global ID of the content.")
        ],
        count: Annotated[int, strawberry.argument(description="How many variants (1 to 5).")],
    ) -> GenerateVariantsPayload:
        row, errors = await attempt(
            variants.start_variants(
                state_of(info),
                principal_of(info),
                parse_id(content_id, "Content", "contentId"),
                count,
            )
        )
        return GenerateVariantsPayload(job=Job.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(
        description="Stop a queued or running generation (member role): the job becomes "
        "CANCELLED at once, its provider stream is stopped and nothing is saved."
    )
    async def cancel_generation(self, info: Info, job_id: JobId) -> CancelGenerationPayload:
        parsed = parse_job_id(job_id.node_id) if job_id.type_name == "Job" else None
        if parsed is None:
            raise NotFound("No generation job with this id.")
        row, errors = await attempt(
            generation.cancel_generation(state_of(info), principal_of(info), parsed)
        )
        return CancelGenerationPayload(job=Job.from_row(row) if row else None, errors=errors)


@strawberry.type
class AISubscription:
    @strawberry.subscription(
        description="Follow a generation as it is written: first the current state with the "
        "text so far, then each delta and stage change in order; the last event is final "
        "(SUCCEEDED with the content, or FAILED with the error). Readers of its workspace."
    )
    async def generation_progress(
        self, info: Info, job_id: JobId
    ) -> AsyncGenerator[GenerationProgress, None]:
        parsed = parse_job_id(job_id.node_id) if job_id.type_name == "Job" else None
        if parsed is None:
            raise NotFound("No generation job with this id.")
        state = state_of(info)
        stream = following.follow(
            state.session_factory,
            state.hub,
            principal_of(info),
            parsed,
            generation.GENERATION_KINDS,
        )
        async for event in stream:
            info.context.fresh_loaders()
            yield GenerationProgress.from_event(event)
