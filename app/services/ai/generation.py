"""`generateContent`: a job that drafts a content item and one variation per platform.

The request writes a `generations` row and its job in one transaction and returns the job
(an identical request by the same caller within AI_DEDUP_SECONDS returns the same job).
The worker then, streaming every delta to subscribers:
1. drafts the item from the content type's prompt template (stage `draft`);
2. repurposes it for each requested platform (stage `variation`, index 0..n-1, the
   cheaper "transform" route) and repairs each variation until it meets the platform's
   text rules;
3. writes alternative drafts when more than one was asked for (stage `alternative`);
4. saves the item (DRAFT, in the campaign if given), its first version and variations
   and the generation's accounting in one transaction, at most once per generation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai import prompting as prompts
from app.ai.llm import CompletionRequest, DraftSpec, ProviderError, Task, Usage
from app.ai.metrics import analyze_async
from app.ai.pricing import estimate_cost
from app.ai.router import complete, router_for
from app.auth import Principal
from app.errors import FieldError, NotFound, UserErrorCode, ValidationFailed
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext, PermanentJobError, publish
from app.models import (
    AudienceSegment,
    Content,
    ContentVariation,
    ContentVersion,
    Generation,
    Job,
    JobStatus,
    Workspace,
)
from app.models.vocabulary import (
    ContentFormat,
    ContentStatus,
    ContentType,
    GenerationLength,
    Platform,
)
from app.pagination import Page, fetch_page, newest_first
from app.permissions import Action
from app.platforms.rules import RULES
from app.services.ai import drafts, quotas
from app.services.ai.progress import Streamer
from app.services.audit import trail as audit
from app.services.content import items
from app.settings import Settings, get_settings
from app.state import AppState

GENERATE_KIND = "generate_content"
REFINE_KIND = "refine_content"
TRANSFORM_KIND = "transform_content"
# Every kind a generation record belongs to (generationJob, generationProgress).
GENERATION_KINDS = frozenset({GENERATE_KIND, REFINE_KIND, TRANSFORM_KIND})


LENGTHS = tuple(GenerationLength)
MAX_BRIEF = 5000
MAX_TONE = 200
MAX_KEYWORDS = 20
MAX_KEYWORD = 60
MAX_VARIATIONS = 5
# Output budget per completion by length (the model may stop earlier).
MAX_TOKENS = {"SHORT": 400, "MEDIUM": 900, "LONG": 2600}


@dataclass(frozen=True)
class GenerateRequest:
    workspace_id: uuid.UUID
    brief: str
    content_type: str = ContentType.SOCIAL_POST.value
    tone: str | None = None
    length: str = "MEDIUM"
    keywords: list[str] = field(default_factory=list)
    audience_segment_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    variations: int = 1
    platforms: list[Platform] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace_id": str(self.workspace_id),
            "brief": self.brief,
            "content_type": self.content_type,
            "tone": self.tone,
            "length": self.length,
            "keywords": self.keywords,
            "audience_segment_id": str(self.audience_segment_id)
            if self.audience_segment_id
            else None,
            "campaign_id": str(self.campaign_id) if self.campaign_id else None,
            "variations": self.variations,
            "platforms": [p.value for p in self.platforms],
        }


def _clean(request: GenerateRequest) -> GenerateRequest:
    keywords = list(dict.fromkeys(k.strip() for k in request.keywords if k.strip()))
    return GenerateRequest(
        workspace_id=request.workspace_id,
        brief=request.brief.strip(),
        content_type=request.content_type,
        tone=(request.tone or "").strip() or None,
        length=request.length,
        keywords=keywords,
        audience_segment_id=request.audience_segment_id,
        campaign_id=request.campaign_id,
        variations=request.variations,
        platforms=list(dict.fromkeys(request.platforms)),
    )


def validate(request: GenerateRequest) -> list[FieldError]:
    errors: list[FieldError] = []
    if not request.brief:
        errors.append(FieldError("brief", UserErrorCode.REQUIRED, "Describe what to write."))
    elif len(request.brief) > MAX_BRIEF:
        errors.append(
            FieldError("brief", UserErrorCode.TOO_LONG, f"At most {MAX_BRIEF} characters.")
        )
    if request.content_type not in ContentType.__members__:
        errors.append(FieldError("contentType", UserErrorCode.INVALID, "Unknown content type."))
    if request.length not in LENGTHS:
        errors.append(FieldError("length", UserErrorCode.INVALID, "SHORT, MEDIUM or LONG."))
    if request.tone and len(request.tone) > MAX_TONE:
        errors.append(FieldError("tone", UserErrorCode.TOO_LONG, f"At most {MAX_TONE} characters."))
    if len(request.keywords) > MAX_KEYWORDS:
        errors.append(
            FieldError("keywords", UserErrorCode.TOO_MANY, f"At most {MAX_KEYWORDS} keywords.")
        )
    if any(len(k) > MAX_KEYWORD for k in request.keywords):
        errors.append(
            FieldError(
                "keywords", UserErrorCode.TOO_LONG, f"Each keyword at most {MAX_KEYWORD} chars."
            )
        )
    if not 1 <= request.variations <= MAX_VARIATIONS:
        errors.append(
            FieldError("variations", UserErrorCode.OUT_OF_RANGE, f"Between 1 and {MAX_VARIATIONS}.")
        )
    return errors


def fingerprint(principal: Principal, request: GenerateRequest | dict[str, Any]) -> str:
    caller = str(principal.user_id or principal.api_key_id or "")
    body = request.to_json() if isinstance(request, GenerateRequest) else request
    canonical = json.dumps([caller, body], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def recent_duplicate(
    session: AsyncSession, workspace_id: uuid.UUID, print_: str, window_seconds: int
) -> Job | None:
    if window_seconds <= 0:
        return None
    since = datetime.now(UTC) - timedelta(seconds=window_seconds)
    return (
        await session.scalars(
            select(Job)
            .join(Generation, Generation.job_id == Job.id)
            .where(
                Generation.workspace_id == workspace_id,
                Generation.fingerprint == print_,
                Generation.created_at >= since,
                Job.status != JobStatus.FAILED,
            )
            .order_by(Generation.created_at.desc())
            .limit(1)
        )
    ).first()


async def start_generation(state: AppState, principal: Principal, request: GenerateRequest) -> Job:
    """Validate, record the generation and its job, enqueue it after commit."""
    principal.require(request.workspace_id, Action.CONTENT_EDIT)
    request = _clean(request)
    if errors := validate(request):
        raise ValidationFailed(errors)
    template = prompts.get(prompts.template_name("generate", request.content_type))
    print_ = fingerprint(principal, request)
    async with state.session_factory() as session, session.begin():
        await lock_fingerprint(session, print_)
        existing = await recent_duplicate(
            session, request.workspace_id, print_, state.settings.ai_dedup_seconds
        )
        if existing is not None:
            return existing
        await quotas.check(session, state.settings, request.workspace_id)
        if request.campaign_id is not None:
            await items.check_campaign(session, request.workspace_id, request.campaign_id)
        if request.audience_segment_id is not None:
            found = await session.scalar(
                select(AudienceSegment.id).where(
                    AudienceSegment.id == request.audience_segment_id,
                    AudienceSegment.workspace_id == request.workspace_id,
                )
            )
            if found is None:
                raise ValidationFailed(
                    [
                        FieldError(
                            "audienceSegmentId",
                            UserErrorCode.NOT_FOUND,
                            "No such audience segment in this workspace.",
                        )
                    ]
                )
        generation_id = uuid.uuid4()
        job = jobs.new_job(
            session,
            GENERATE_KIND,
            {"generation_id": str(generation_id)},
            state.settings.job_max_attempts,
            workspace_id=request.workspace_id,
        )
        await add_generation(
            session,
            principal,
            job,
            generation_id,
            workspace_id=request.workspace_id,
            operation="GENERATE",
            content_type=request.content_type,
            request=request.to_json(),
            fingerprint=print_,
            template=template,
        )
        audit.record(
            session,
            principal,
            "generateContent",
            workspace_id=request.workspace_id,
            target_type="Job",
            target_id=job.id,
            details={"contentType": request.content_type, "platforms": len(request.platforms)},
        )
    await jobs.enqueue(state.arq, job.id, job.attempts)
    return job


async def add_generation(
    session: AsyncSession,
    principal: Principal,
    job: Job,
    generation_id: uuid.UUID,
    *,
    workspace_id: uuid.UUID,
    operation: str,
    content_type: str,
    request: dict[str, Any],
    fingerprint: str,
    template: prompts.Template,
    content_id: uuid.UUID | None = None,
) -> None:
    """The generation record of a new job (its payload names `generation_id`), in the
    caller's transaction."""
    await session.flush()  # the job row first: the record refers to it
    session.add(
        Generation(
            id=generation_id,
            workspace_id=workspace_id,
            job_id=job.id,
            created_by_id=principal.user_id,
            operation=operation,
            content_type=content_type,
            request=request,
            fingerprint=fingerprint,
            prompt_template=template.name,
            prompt_version=template.version,
            content_id=content_id,
        )
    )


class _RedisPublisher:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(channel, json.dumps(message, default=str))


async def cancel_generation(state: AppState, principal: Principal, job_id: uuid.UUID) -> Job:
    """Stop a queued or running generation: the job becomes CANCELLED at once (final, for
    every subscriber); a worker running it stops its provider stream within
    AI_CANCEL_POLL_SECONDS and saves nothing."""
    job = await jobs.get_visible(state.session_factory, principal, job_id)
    if job.kind not in GENERATION_KINDS or job.workspace_id is None:
        raise NotFound("No generation job with this id.")
    principal.require(job.workspace_id, Action.CONTENT_EDIT)
    async with state.session_factory() as session, session.begin():
        row = (
            await session.scalars(
                update(Job)
                .where(Job.id == job_id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
                .values(
                    status=JobStatus.CANCELLED,
                    event_seq=Job.event_seq + 1,
                    error="Cancelled on request.",
                    locked_until=None,
                    finished_at=func.now(),
                )
                .returning(Job)
            )
        ).one_or_none()
        if row is None:
            raise ValidationFailed(
                [FieldError("jobId", UserErrorCode.INVALID_STATE, "The job has already finished.")]
            )
        audit.record(
            session,
            principal,
            "cancelGeneration",
            workspace_id=job.workspace_id,
            target_type="Job",
            target_id=job_id,
        )
    await publish(_RedisPublisher(state.redis), row)
    return row


async def lock_fingerprint(session: AsyncSession, print_: str) -> None:
    """Serialise identical requests so two concurrent ones make one job."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(print_, 0))))


@dataclass(frozen=True)
class GenerationFilter:
    operation: str | None = None
    content_id: uuid.UUID | None = None


async def list_generations(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
    filters: GenerationFilter | None = None,
) -> Page[Generation]:
    """A workspace's generation records, newest first (readers of the workspace)."""
    principal.require(workspace_id, Action.WORKSPACE_READ)
    filters = filters or GenerationFilter()
    query = select(Generation).where(Generation.workspace_id == workspace_id)
    if filters.operation is not None:
        query = query.where(Generation.operation == filters.operation)
    if filters.content_id is not None:
        query = query.where(Generation.content_id == filters.content_id)
    return await fetch_page(
        state.session_factory, query, newest_first(Generation), first=first, after=after
    )


async def get_generation(
    state: AppState, principal: Principal, job_id: uuid.UUID
) -> tuple[Job, Generation]:
    """A generation job and its record, for readers of its workspace (else NOT_FOUND)."""
    job = await jobs.get_visible(state.session_factory, principal, job_id)
    async with state.session_factory() as session:
        record = await session.scalar(select(Generation).where(Generation.job_id == job_id))
    if job.kind not in GENERATION_KINDS or record is None:
        raise NotFound("No generation job with this id.")
    return job, record


# --- the worker side ---------------------------------------------------------------


@dataclass
class Accounting:
    calls: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    first_token_ms: float | None = None

    def add(self, stage: str, index: int | None, usage: Usage, offset_ms: float) -> None:
        if self.first_token_ms is None and usage.first_token_ms is not None:
            self.first_token_ms = offset_ms + usage.first_token_ms
        entry = asdict(usage)
        entry.update(stage=stage, variation_index=index)
        self.calls.append(entry)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def totals(self, settings: Settings) -> dict[str, Any]:
        local = settings.openai_base_url is not None and settings.openai_api_key is None
        costs: list[Decimal | None] = [
            estimate_cost(
                c["provider"],
                c["model"],
                c["input_tokens"],
                c["output_tokens"],
                local=local and c["provider"] == "openai",
            )
            for c in self.calls
        ]
        known = [c for c in costs if c is not None]
        main = self.calls[0] if self.calls else {}  # the draft's call names the generation
        return {
            "provider": main.get("provider"),
            "model": main.get("model"),
            "input_tokens": sum(c["input_tokens"] for c in self.calls),
            "output_tokens": sum(c["output_tokens"] for c in self.calls),
            "tokens_estimated": any(c["estimated"] for c in self.calls),
            "cost_usd": sum(known, Decimal(0)) if len(known) == len(costs) else None,
            "first_token_ms": self.first_token_ms,
            "total_ms": self.elapsed_ms(),
            "provider_calls": sum(int(c["attempts"]) for c in self.calls),
            "calls": self.calls,
        }


@dataclass(frozen=True)
class Inputs:
    generation: Generation
    request: dict[str, Any]
    brand_voice: dict[str, Any]
    segment: dict[str, Any] | None


async def load_inputs(ctx: JobContext) -> Inputs | None:
    try:
        generation_id = uuid.UUID(str(ctx.payload["generation_id"]))
    except (KeyError, ValueError) as exc:
        raise PermanentJobError(f"bad payload: {exc}") from exc
    async with ctx.factory() as session:
        generation = await session.get(Generation, generation_id)
        if generation is None:
            return None
        workspace = await session.get(Workspace, generation.workspace_id)
        segment_id = generation.request.get("audience_segment_id")
        segment = await session.get(AudienceSegment, uuid.UUID(segment_id)) if segment_id else None
    return Inputs(
        generation=generation,
        request=generation.request,
        brand_voice=dict(workspace.brand_voice or {}) if workspace else {},
        segment={
            "name": segment.name,
            "description": segment.description,
            "attributes": segment.attributes,
            "interests": (segment.attributes or {}).get("interests", []),
        }
        if segment is not None and segment.workspace_id == generation.workspace_id
        else None,
    )


def done_result(generation: Generation) -> dict[str, Any]:
    return {
        "generation_id": str(generation.id),
        "content_id": str(generation.content_id),
        "provider": generation.provider,
        "model": generation.model,
        "alternatives": generation.alternatives,
    }


class JobCancelled(Exception):
    """The job was cancelled while it ran: its stream was stopped, nothing is saved."""


async def _watch_cancel(ctx: JobContext, interval: float) -> None:
    """Return once the job's row says CANCELLED (polled: workers hold no pub/sub)."""
    while True:
        await asyncio.sleep(interval)
        async with ctx.factory() as session:
            status = await session.scalar(select(Job.status).where(Job.id == ctx.job.id))
        if status == JobStatus.CANCELLED:
            return


async def complete_stage(
    ctx: JobContext,
    settings: Settings,
    streamer: Streamer,
    accounting: Accounting,
    *,
    stage: str,
    index: int | None,
    fraction: float,
    request: CompletionRequest,
) -> str:
    await streamer.begin(stage, index, fraction)
    offset = accounting.elapsed_ms()
    work = asyncio.create_task(
        complete(
            router_for(settings), request, streamer.delta, deadline_seconds=settings.ai_deadline
        )
    )
    watcher = asyncio.create_task(_watch_cancel(ctx, settings.ai_cancel_poll_seconds))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not work.done():
            # Cancelled (or the worker is stopping): closing the stream closes the
            # provider's HTTP response, so the model stops generating for us.
            work.cancel()
        await asyncio.gather(work, watcher, return_exceptions=True)
    if work.cancelled():
        raise JobCancelled("cancelled on request")
    try:
        text_out, usage = work.result()
    except ProviderError as exc:
        if not exc.retryable:
            raise PermanentJobError(f"the AI provider refused the request ({exc})") from exc
        raise
    await streamer.flush(force=True)
    accounting.add(stage, index, usage, offset)
    return text_out


def draft_spec(inputs: Inputs, platform: Platform | None, alternative: int = 0) -> DraftSpec:
    request = inputs.request
    rule = RULES[platform] if platform is not None else None
    return DraftSpec(
        brief=request["brief"],
        content_type=request["content_type"],
        tone=request.get("tone") or "",
        length=request.get("length") or "MEDIUM",
        keywords=tuple(request.get("keywords") or ()),
        platform=platform.value if platform is not None else None,
        brand_voice=inputs.brand_voice,
        segment=inputs.segment,
        max_chars=rule.max_chars if rule else None,
        max_hashtags=rule.max_hashtags if rule else None,
        alternative=alternative,
    )


def completion(
    rendered: prompts.RenderedPrompt,
    spec: DraftSpec,
    *,
    task: Task,
    max_tokens: int,
    temperature: float = 0.7,
) -> CompletionRequest:
    return CompletionRequest(
        system=rendered.system,
        prompt=rendered.user,
        max_tokens=max_tokens,
        temperature=temperature,
        task=task,
        draft=spec,
    )


async def run_generation(ctx: JobContext) -> dict[str, Any]:
    inputs = await load_inputs(ctx)
    if inputs is None:
        return {"skipped": "generation deleted"}
    generation = inputs.generation
    if generation.finished_at is not None:
        return done_result(generation)  # an earlier attempt saved it; do not save twice
    settings = ctx.settings or get_settings()
    request = inputs.request
    platforms = [Platform(p) for p in request.get("platforms") or []]
    alternatives = int(request.get("variations") or 1) - 1
    steps = 1 + len(platforms) + alternatives + 1
    length = request.get("length") or "MEDIUM"
    max_tokens = min(MAX_TOKENS.get(length, 900), settings.ai_max_output_tokens)
    streamer = Streamer(ctx, generation.id, flush_seconds=settings.ai_progress_flush_seconds)
    accounting = Accounting()
    common = {
        "brand_voice": inputs.brand_voice,
        "segment": inputs.segment,
        "keywords": request.get("keywords") or [],
        "tone": request.get("tone"),
        "length": request.get("length"),
        "content_type": request["content_type"],
    }
    try:
        template = prompts.get(generation.prompt_template, generation.prompt_version)
        rendered = prompts.render(template, brief=request["brief"], **common)
        answer = await complete_stage(
            ctx,
            settings,
            streamer,
            accounting,
            stage="draft",
            index=None,
            fraction=0.0,
            request=completion(
                rendered, draft_spec(inputs, None), task="generate", max_tokens=max_tokens
            ),
        )
        draft = drafts.parse(answer, fallback_title=request["brief"][:90])

        transform = prompts.get(prompts.template_name("transform"))
        variations: list[tuple[Platform, drafts.Draft, list[str]]] = []
        for i, platform in enumerate(platforms):
            rendered = prompts.render(transform, source=draft.body, platform=platform, **common)
            answer = await complete_stage(
                ctx,
                settings,
                streamer,
                accounting,
                stage="variation",
                index=i,
                fraction=(1 + i) / steps,
                request=completion(
                    rendered, draft_spec(inputs, platform), task="transform", max_tokens=max_tokens
                ),
            )
            parsed = drafts.parse(answer, fallback_title=draft.title)
            if parsed.subject is None and platform is Platform.EMAIL:
                parsed = drafts.Draft(parsed.title, parsed.body, draft.subject, draft.preheader)
            fixed, repairs = drafts.repair(platform, parsed, title=draft.title)
            variations.append((platform, fixed, repairs))

        alternative_drafts: list[dict[str, Any]] = []
        for k in range(1, alternatives + 1):
            rendered = prompts.render(template, brief=request["brief"], **common)
            answer = await complete_stage(
                ctx,
                settings,
                streamer,
                accounting,
                stage="alternative",
                index=k - 1,
                fraction=(len(platforms) + k) / steps,
                request=completion(
                    rendered,
                    draft_spec(inputs, None, alternative=k),
                    task="generate",
                    max_tokens=max_tokens,
                    temperature=0.9,
                ),
            )
            alternative = drafts.parse(answer, fallback_title=draft.title)
            metrics = await analyze_async(
                alternative.body, brand_voice=inputs.brand_voice, keywords=common["keywords"]
            )
            alternative_drafts.append(
                {"title": alternative.title, "body": alternative.body, "metrics": metrics.to_json()}
            )

        await streamer.begin("saving", None, (steps - 1) / steps)
        metrics = await analyze_async(
            draft.body,
            brand_voice=inputs.brand_voice,
            keywords=common["keywords"],
            tone=request.get("tone"),
        )
        saved = await _save(
            ctx, settings, inputs, draft, variations, alternative_drafts, accounting
        )
    except Exception as exc:
        await record_failure(ctx, generation.id, exc, accounting, settings)
        raise
    saved["metrics"] = metrics.to_json()
    return saved


async def finish(
    session: AsyncSession,
    generation_id: uuid.UUID,
    totals: dict[str, Any],
    attempts: int,
    **values: Any,
) -> bool:
    """Mark the generation saved, with its accounting; False when an earlier or concurrent
    attempt already did (the caller then saves nothing). A cancelled job saves nothing."""
    status = await session.scalar(
        select(Job.status)
        .join(Generation, Generation.job_id == Job.id)
        .where(Generation.id == generation_id)
        .with_for_update(of=Job)
    )
    if status == JobStatus.CANCELLED:
        raise JobCancelled("cancelled on request")
    claimed = await session.execute(
        update(Generation)
        .where(Generation.id == generation_id, Generation.finished_at.is_(None))
        .values(
            **{k: v for k, v in totals.items() if k != "provider_calls"},
            provider_calls=Generation.provider_calls + totals["provider_calls"],
            attempts=attempts,
            error=None,
            partial=None,
            finished_at=func.now(),
            **values,
        )
        .returning(Generation.id)
    )
    return claimed.first() is not None


async def record_failure(
    ctx: JobContext,
    generation_id: uuid.UUID,
    exc: Exception,
    accounting: Accounting,
    settings: Settings,
) -> None:
    totals = accounting.totals(settings)
    async with ctx.factory() as session, session.begin():
        await session.execute(
            update(Generation)
            .where(Generation.id == generation_id)
            .values(
                error=f"{type(exc).__name__}: {exc}"[:2000],
                attempts=ctx.job.attempts,
                provider_calls=Generation.provider_calls + totals["provider_calls"],
                partial=None,
            )
        )


async def _save(
    ctx: JobContext,
    settings: Settings,
    inputs: Inputs,
    draft: drafts.Draft,
    variations: list[tuple[Platform, drafts.Draft, list[str]]],
    alternatives: list[dict[str, Any]],
    accounting: Accounting,
) -> dict[str, Any]:
    generation = inputs.generation
    totals = accounting.totals(settings)
    content_id = uuid.uuid4()
    try:
        variation_ids = await _write(
            ctx, settings, inputs, draft, variations, alternatives, totals, content_id
        )
    except AlreadySaved:
        async with ctx.factory() as session:
            current = await session.get(Generation, generation.id)
        assert current is not None
        return done_result(current)
    return {
        "generation_id": str(generation.id),
        "content_id": str(content_id),
        "variation_ids": variation_ids,
        "repairs": {p.value: r for p, _f, r in variations if r},
        "provider": totals["provider"],
        "model": totals["model"],
        "input_tokens": totals["input_tokens"],
        "output_tokens": totals["output_tokens"],
        "alternatives": alternatives,
    }


class AlreadySaved(Exception):
    """An earlier or concurrent attempt saved this generation."""


async def _write(
    ctx: JobContext,
    settings: Settings,
    inputs: Inputs,
    draft: drafts.Draft,
    variations: list[tuple[Platform, drafts.Draft, list[str]]],
    alternatives: list[dict[str, Any]],
    totals: dict[str, Any],
    content_id: uuid.UUID,
) -> list[str]:
    generation = inputs.generation
    request = inputs.request
    async with ctx.factory() as session, session.begin():
        # Claim the generation for this content first: a concurrent or repeated attempt
        # that already saved makes this update match nothing, and we save nothing.
        if not await finish(
            session, generation.id, totals, ctx.job.attempts, alternatives=alternatives
        ):
            raise AlreadySaved
        campaign_id = request.get("campaign_id")
        if campaign_id is not None:
            exists = await session.scalar(
                text("SELECT 1 FROM campaigns WHERE id = :id AND workspace_id = :ws"),
                {"id": campaign_id, "ws": generation.workspace_id},
            )
            campaign_id = campaign_id if exists else None  # deleted meanwhile
        content = Content(
            id=content_id,
            workspace_id=generation.workspace_id,
            title=draft.title[: items.MAX_TITLE],
            body=draft.body[: items.MAX_BODY],
            content_type=request["content_type"],
            format=ContentFormat.MARKDOWN.value,
            status=ContentStatus.DRAFT.value,
            campaign_id=uuid.UUID(campaign_id) if campaign_id else None,
            tags=[k.lower() for k in (request.get("keywords") or [])][: items.MAX_TAGS],
            created_by_id=generation.created_by_id,
            updated_by_id=generation.created_by_id,
            version=1,
        )
        session.add(content)
        await session.flush()
        session.add(
            ContentVersion(
                id=uuid.uuid4(),
                content_id=content.id,
                version=1,
                title=content.title,
                body=content.body,
                format=content.format,
                created_by_id=generation.created_by_id,
            )
        )
        variation_ids: list[str] = []
        for platform, fixed, _repairs in variations:
            variation = ContentVariation(
                id=uuid.uuid4(),
                content_id=content.id,
                workspace_id=generation.workspace_id,
                platform=platform.value,
                body=fixed.body,
                subject=fixed.subject,
                preheader=fixed.preheader,
                media_ids=[],
                created_by_id=generation.created_by_id,
            )
            session.add(variation)
            variation_ids.append(str(variation.id))
        await session.execute(
            update(Generation).where(Generation.id == generation.id).values(content_id=content.id)
        )
        # Embeddings for duplicate search; the sweeper hands it to a worker.
        jobs.new_job(
            session,
            items.EMBED_KIND,
            {"content_id": str(content.id), "version": 1},
            settings.job_max_attempts,
            workspace_id=generation.workspace_id,
        )
    return variation_ids


JOB_HANDLERS: dict[str, Handler] = {GENERATE_KIND: run_generation}
