"""One attempt of a generation-type job (generate, refine, transform): its inputs, the
model call streamed stage by stage, a platform variation re-asked and repaired to the
rules, accounting, cancellation and failure."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai import prompting as prompts
from app.ai.llm import CompletionRequest, DraftSpec, ProviderError, Task, Usage
from app.ai.pricing import estimate_cost
from app.ai.router import complete, router_for
from app.jobs.runner import JobContext, PermanentJobError
from app.logging import get_logger
from app.models import (
    AudienceSegment,
    Generation,
    Job,
    JobStatus,
    Workspace,
)
from app.models.vocabulary import (
    Platform,
)
from app.platforms.rules import RULES
from app.services.ai import drafts
from app.services.ai.progress import Streamer
from app.settings import Settings

log = get_logger(__name__)


@dataclass
class Accounting:
    calls: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    first_token_ms: float | None = None

    def add(
        self,
        stage: str,
        index: int | None,
        usage: Usage,
        offset_ms: float,
        prompt: str | None = None,
    ) -> None:
        if self.first_token_ms is None and usage.first_token_ms is not None:
            self.first_token_ms = offset_ms + usage.first_token_ms
        entry = asdict(usage)
        entry.update(stage=stage, variation_index=index)
        if prompt is not None:  # a call on another template than the generation's
            entry["prompt"] = prompt
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
    prompt: str | None = None,
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
    accounting.add(stage, index, usage, offset, prompt)
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


async def platform_variation(
    ctx: JobContext,
    settings: Settings,
    streamer: Streamer,
    accounting: Accounting,
    *,
    index: int,
    fraction: float,
    platform: Platform,
    request: CompletionRequest,
    prompt_values: Mapping[str, Any],
    title: str,
    defaults: drafts.Draft | None = None,
) -> tuple[drafts.Draft, list[str]]:
    """One platform variation, never broken: the model's answer (stage `variation`); while
    it breaks the platform's rules in a way a cut would lose meaning, the model asked again
    with the violations named (stage `repair`, the same index, at most AI_REPAIR_REASKS
    times); then the deterministic repair as the final guarantee. Returns the variation and
    what was done to it. `defaults` gives an email the draft's subject and preheader when
    its answer has none."""

    def read(answer: str) -> drafts.Draft:
        parsed = drafts.parse(answer, fallback_title=title)
        if defaults is not None and platform is Platform.EMAIL and parsed.subject is None:
            parsed = replace(parsed, subject=defaults.subject, preheader=defaults.preheader)
        return parsed

    answer = await complete_stage(
        ctx,
        settings,
        streamer,
        accounting,
        stage="variation",
        index=index,
        fraction=fraction,
        request=request,
    )
    current = read(answer)
    reasons = drafts.reask_reasons(platform, current)
    done: list[str] = []
    template = prompts.get(prompts.template_name("repair"))
    for _ in range(settings.ai_repair_reasks):
        if not reasons:
            break
        done.append("RE-ASKED: " + "; ".join(f"{v.code} ({v.message})" for v in reasons))
        rendered = prompts.render(
            template,
            **{**prompt_values, "platform": platform},
            answer=drafts.as_answer(current),
            violations=drafts.describe_violations(reasons),
        )
        spec = request.draft
        try:
            answer = await complete_stage(
                ctx,
                settings,
                streamer,
                accounting,
                stage="repair",
                index=index,
                fraction=fraction,
                request=replace(
                    request,
                    system=rendered.system,
                    prompt=rendered.user,
                    # The offline writer adapts the broken text to the limits again.
                    draft=replace(
                        spec, source=current.body, source_title=current.title, instruction=None
                    )
                    if spec is not None
                    else None,
                ),
                prompt=template.key,
            )
        except (ProviderError, PermanentJobError) as exc:
            # The first answer is still there to repair: one failed re-ask is not worth
            # failing (and retrying) the whole job for.
            log.warning("ai_reask_failed", job_id=str(ctx.job.id), error=str(exc)[:300])
            done.append(f"RE-ASK FAILED: {str(exc)[:200]}")
            break
        candidate = read(answer)
        candidate_reasons = drafts.reask_reasons(platform, candidate)
        if len(candidate_reasons) <= len(reasons):  # keep the newer answer unless it is worse
            current, reasons = candidate, candidate_reasons
        else:
            done.append("RE-ASK WORSE: kept the earlier answer")
    fixed, repairs = drafts.repair(platform, current, title=title)
    return fixed, done + repairs


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


class AlreadySaved(Exception):
    """An earlier or concurrent attempt saved this generation."""
