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

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai import prompting as prompts
from app.auth import Principal
from app.errors import FieldError, NotFound, UserErrorCode, ValidationFailed
from app.jobs import store as jobs
from app.jobs.runner import publish
from app.models import (
    AudienceSegment,
    Generation,
    Job,
    JobStatus,
)
from app.models.vocabulary import (
    ContentType,
    GenerationLength,
    Platform,
)
from app.pagination import Page, fetch_page, newest_first
from app.permissions import Action
from app.services.ai import quotas
from app.services.audit import trail as audit
from app.services.content import items
from app.state import AppState

GENERATE_KIND = "generate_content"
REFINE_KIND = "refine_content"
TRANSFORM_KIND = "transform_content"
PERSONALIZE_KIND = "personalize_content"
VARIANTS_KIND = "generate_variants"
# Every kind a generation record belongs to (generationJob, generationProgress).
GENERATION_KINDS = frozenset(
    {GENERATE_KIND, REFINE_KIND, TRANSFORM_KIND, PERSONALIZE_KIND, VARIANTS_KIND}
)


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
