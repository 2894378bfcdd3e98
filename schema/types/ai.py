"""AI generation: the request input, the durable generation record, the progress stream."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.models import Generation as GenerationRow
from app.models import Job as JobRow
from app.services.ai.following import ProgressEvent
from app.services.ai.generation import GenerateRequest, GenerationFilter
from schema.context import Info
from schema.ids import optional_id, parse_id, to_global_id
from schema.loaders.base import uuid_or_nil
from schema.types.analytics.prediction import (
    PLATFORM_ARGUMENT,
    PREDICTED_DESCRIPTION,
    EngagementPrediction,
    predicted_engagement,
)
from schema.types.content.items import Content
from schema.types.content.variants import ContentPersonalization, ContentVariant
from schema.types.errors import UserError
from schema.types.jobs import Job
from schema.types.vocabulary import (
    ContentType,
    GenerationLength,
    GenerationOperation,
    JobStatus,
    Platform,
)


@strawberry.input(description="What to write. The job drafts one content item (DRAFT).")
class GenerateContentInput:
    workspace_id: relay.GlobalID = strawberry.field(description="Workspace it belongs to.")
    brief: str = strawberry.field(
        description="What the piece is about, in your words (at most 5,000 characters)."
    )
    content_type: ContentType = strawberry.field(
        default=ContentType.SOCIAL_POST, description="Kind of piece; picks the prompt template."
    )
    tone: str | None = strawberry.field(
        default=None, description="Tone for this piece; the brand voice's tone otherwise."
    )
    length: GenerationLength = strawberry.field(
        default=GenerationLength.MEDIUM, description="How long the draft should be."
    )
    keywords: list[str] = strawberry.field(
        default_factory=list, description="Words to work in (at most 20)."
    )
    audience_segment_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Audience segment to write for."
    )
    campaign_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Campaign the new item joins."
    )
    variations: int = strawberry.field(
        default=1,
        description="Drafts to write, 1 to 5: the item's text plus alternatives to pick from.",
    )
    platforms: list[Platform] = strawberry.field(
        default_factory=list,
        description="One variation per platform, repaired to the platform's rules.",
    )

    def to_request(self) -> GenerateRequest:
        return GenerateRequest(
            workspace_id=parse_id(self.workspace_id, "Workspace", "workspaceId"),
            brief=self.brief,
            content_type=self.content_type.value,
            tone=self.tone,
            length=self.length.value,
            keywords=self.keywords,
            audience_segment_id=optional_id(
                self.audience_segment_id, "AudienceSegment", "audienceSegmentId"
            ),
            campaign_id=optional_id(self.campaign_id, "Campaign", "campaignId"),
            variations=self.variations,
            platforms=self.platforms,
        )


@strawberry.input(description="Narrow a list of generation jobs.")
class GenerationJobFilterInput:
    operation: GenerationOperation | None = strawberry.field(
        default=None, description="Only this operation."
    )
    content_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Only jobs that wrote or edited this content item."
    )

    def to_filter(self) -> GenerationFilter:
        return GenerationFilter(
            operation=self.operation.value if self.operation else None,
            content_id=optional_id(self.content_id, "Content", "filter.contentId"),
        )


@strawberry.type(description="Result of generateContent: the queued (or identical recent) job.")
class GenerateContentPayload:
    job: Job | None = strawberry.field(
        description="The generation job; follow it with generationProgress. Null on errors."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing was queued, if so.")


@strawberry.type(description="Result of refineContent: the queued (or identical recent) job.")
class RefineContentPayload:
    job: Job | None = strawberry.field(
        description="The job; the refined text becomes the item's next version. Null on errors."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing was queued, if so.")


@strawberry.type(description="Result of transformContent: the queued (or identical recent) job.")
class TransformContentPayload:
    job: Job | None = strawberry.field(
        description="The job; it writes one variation per platform. Null on errors."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing was queued, if so.")


@strawberry.type(description="Result of personalizeContent: the queued (or identical recent) job.")
class PersonalizeContentPayload:
    job: Job | None = strawberry.field(
        description="The job; it writes one version of the item per segment (see "
        "Content.personalizations). Null on errors."
    )
    errors: list[UserError] = strawberry.field(
        description="Why nothing was queued, if so (NOT_FOUND: a segment is not in the "
        "item's workspace)."
    )


@strawberry.type(description="Result of generateVariants: the queued (or identical recent) job.")
class GenerateVariantsPayload:
    job: Job | None = strawberry.field(
        description="The job; it adds A/B-test variants to the item (see Content.variants). "
        "Null on errors."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing was queued, if so.")


@strawberry.type(description="Result of cancelGeneration.")
class CancelGenerationPayload:
    job: Job | None = strawberry.field(description="The job, now CANCELLED. Null on errors.")
    errors: list[UserError] = strawberry.field(
        description="Why it was not cancelled (INVALID_STATE: it had already finished)."
    )


@strawberry.type(description="An alternative draft written when more than one was asked for.")
class GeneratedAlternative:
    title: str = strawberry.field(description="Its title.")
    body: str = strawberry.field(description="Its text.")
    metrics: JSON = strawberry.field(
        description="Text metrics: words, readability, sentiment, hashtags, warnings."
    )
    workspace_id: strawberry.Private[uuid.UUID]
    content_type: strawberry.Private[str]

    @strawberry.field(description=PREDICTED_DESCRIPTION + " Of its body, without media.")
    async def predicted_engagement(
        self,
        info: Info,
        platform: Annotated[Platform | None, PLATFORM_ARGUMENT] = None,
    ) -> EngagementPrediction:
        return await predicted_engagement(
            info,
            workspace_id=self.workspace_id,
            text=self.body,
            platform=Platform(platform).value if platform is not None else None,
            content_type=self.content_type,
        )


@strawberry.type(
    description="The durable record of a generation: prompt, provider, usage, cost, timing."
)
class GenerationJob:
    job: Job = strawberry.field(description="The background job that runs it.")
    operation: GenerationOperation = strawberry.field(description="What the job does.")
    content_type: ContentType = strawberry.field(description="Kind of piece asked for.")
    prompt_template: str = strawberry.field(
        description="Prompt template used (a file in app/ai/prompts)."
    )
    prompt_version: int = strawberry.field(description="Version of that template.")
    provider: str | None = strawberry.field(
        description="Who wrote it: openai, anthropic, or offline (the draft writer, not an "
        "LLM). Null until it has run."
    )
    model: str | None = strawberry.field(description="Model that answered.")
    input_tokens: int = strawberry.field(description="Prompt tokens, all calls together.")
    output_tokens: int = strawberry.field(description="Generated tokens, all calls together.")
    tokens_estimated: bool = strawberry.field(
        description="True when a provider reported no usage and the counts are estimates."
    )
    cost_usd: float | None = strawberry.field(
        description="Estimated cost in US dollars from list prices; null when unknown."
    )
    latency_to_first_token_ms: float | None = strawberry.field(
        description="Milliseconds from the start of the attempt to the first text."
    )
    total_ms: float | None = strawberry.field(description="Milliseconds the attempt took.")
    provider_calls: int = strawberry.field(
        description="Calls made to providers, retries included, over every attempt."
    )
    attempts: int = strawberry.field(description="Attempts of the job so far.")
    error: str | None = strawberry.field(description="Why the last attempt failed, if it did.")
    calls: JSON = strawberry.field(
        description="Each completion of the saved attempt: stage, provider, model, tokens, "
        "timings, retries and fallback."
    )
    alternatives: list[GeneratedAlternative] = strawberry.field(
        description="Alternative drafts to pick from (when variations > 1)."
    )
    created_at: datetime = strawberry.field(description="When it was requested.")
    finished_at: datetime | None = strawberry.field(description="When the item was saved.")
    content_id: strawberry.Private[uuid.UUID | None]
    generation_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The content item it wrote or worked on, once saved.")
    async def content(self, info: Info) -> Content | None:
        if self.content_id is None:
            return None
        [node] = await Content.resolve_nodes(info=info, node_ids=[str(self.content_id)])
        return node

    @strawberry.field(
        description="The personalised versions it wrote (PERSONALIZE) that are still "
        "current: personalising the item for a segment again replaces its version."
    )
    async def personalizations(self, info: Info) -> list[ContentPersonalization]:
        loader = info.context.loaders.content.personalizations_by_generation
        return [ContentPersonalization.from_row(r) for r in await loader.load(self.generation_id)]

    @strawberry.field(description="The A/B-test variants it wrote (VARIANTS).")
    async def variants(self, info: Info) -> list[ContentVariant]:
        loader = info.context.loaders.content.variants_by_generation
        return [ContentVariant.from_row(r) for r in await loader.load(self.generation_id)]

    @classmethod
    def from_rows(cls, job: JobRow, row: GenerationRow) -> GenerationJob:
        return cls(
            job=Job.from_row(job),
            operation=GenerationOperation(row.operation),
            content_type=ContentType(row.content_type),
            prompt_template=row.prompt_template,
            prompt_version=row.prompt_version,
            provider=row.provider,
            model=row.model,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            tokens_estimated=row.tokens_estimated,
            cost_usd=float(row.cost_usd) if row.cost_usd is not None else None,
            latency_to_first_token_ms=row.first_token_ms,
            total_ms=row.total_ms,
            provider_calls=row.provider_calls,
            attempts=job.attempts,
            error=row.error or job.error,
            calls=cast(JSON, row.calls),
            alternatives=[
                GeneratedAlternative(
                    title=str(a.get("title", "")),
                    body=str(a.get("body", "")),
                    metrics=cast(JSON, a.get("metrics") or {}),
                    workspace_id=row.workspace_id,
                    content_type=row.content_type,
                )
                for a in row.alternatives
            ],
            created_at=row.created_at,
            finished_at=row.finished_at,
            content_id=row.content_id,
            generation_id=row.id,
        )


@strawberry.type(
    description="One step of a generation as it happens. Deltas append to the current "
    "stage's text; a catch-up event (first for a late subscriber, or after a gap) carries "
    "the stage's whole text so far in `text`."
)
class GenerationProgress:
    job_id: relay.GlobalID = strawberry.field(description="The job.")
    status: JobStatus = strawberry.field(description="Job status.")
    attempt: int = strawberry.field(
        description="Attempt this event belongs to; a new attempt starts its text over."
    )
    sequence: int = strawberry.field(description="The job's event sequence at this event.")
    stage: str | None = strawberry.field(
        description="draft, variation, repair (a variation that broke its platform's rules, "
        "asked again: its text replaces that variation's), alternative, personalization, "
        "variant or saving; null before the job starts."
    )
    variation_index: int | None = strawberry.field(
        description="Which platform variation, alternative, segment or variant (in the "
        "requested order)."
    )
    delta: str | None = strawberry.field(
        description="The next chunk of generated text, as the model produced it."
    )
    text: str | None = strawberry.field(
        description="On catch-up events: the current stage's text so far."
    )
    catch_up: bool = strawberry.field(
        description="True when this event restates stored state instead of one change."
    )
    progress: float = strawberry.field(description="Completion from 0.0 to 1.0.")
    error: str | None = strawberry.field(description="Why the attempt failed, if it did.")
    result: strawberry.Private[dict[str, Any] | None]

    @strawberry.field(description="The saved content item, on the final event.")
    async def content(self, info: Info) -> Content | None:
        content_id = (self.result or {}).get("content_id")
        if not content_id:
            return None
        [node] = await Content.resolve_nodes(
            info=info, node_ids=[str(uuid_or_nil(str(content_id)))]
        )
        return node

    def shared_key(self) -> Hashable:
        # Results shared by the job's subscribers (schema.shared_events); equality of the
        # whole event is checked on a hit. Deltas of one sequence differ by their text.
        return (self.job_id.node_id, self.attempt, self.sequence, self.delta, self.catch_up)

    @classmethod
    def from_event(cls, event: ProgressEvent) -> GenerationProgress:
        return cls(
            job_id=to_global_id("Job", event.job_id),
            status=JobStatus(event.status),
            attempt=event.attempt,
            sequence=event.sequence,
            stage=event.stage,
            variation_index=event.variation_index,
            delta=event.delta,
            text=event.text,
            catch_up=event.catch_up,
            progress=event.progress,
            error=event.error,
            result=event.result,
        )
