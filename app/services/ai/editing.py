"""`refineContent` and `transformContent`: AI edits of an existing item, as jobs.

A refinement is stored as a new version of the item (the version history), so it can be
undone with `restoreContentVersion`. A transform writes (or rewrites) one variation per
platform, repaired to the platform's rules like a generation's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai import prompting as prompts
from app.ai.llm import DraftSpec
from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.models import Content, ContentVariation, ContentVersion, Job
from app.models.vocabulary import Platform
from app.permissions import Action
from app.platforms.rules import RULES
from app.services import lookup
from app.services.ai import drafts, quotas
from app.services.ai.attempts import (
    Accounting,
    AlreadySaved,
    Inputs,
    complete_stage,
    completion,
    done_result,
    finish,
    load_inputs,
    platform_variation,
    record_failure,
)
from app.services.ai.generation import (
    REFINE_KIND,
    TRANSFORM_KIND,
    add_generation,
    fingerprint,
    lock_fingerprint,
    recent_duplicate,
)
from app.services.ai.progress import Streamer
from app.services.audit import trail as audit
from app.services.content import items, text_metrics
from app.settings import get_settings
from app.state import AppState

MAX_INSTRUCTION = 500
# Adds a job of one kind (named at the call, so the registry test can see it).
JobFactory = Callable[[AsyncSession, uuid.UUID, uuid.UUID], Job]
MAX_SOURCE_TOKENS = 4000


async def start_edit(
    state: AppState,
    principal: Principal,
    content_id: uuid.UUID,
    *,
    create_job: JobFactory,
    operation: str,
    action_name: str,
    template_name: str,
    request: dict[str, Any],
) -> Job:
    template = prompts.get(template_name)
    async with state.session_factory() as session, session.begin():
        content = await lookup.scoped_row(
            session, Content, content_id, principal, Action.CONTENT_EDIT
        )
        items.require_edit(principal, content)
        body = {**request, "content_id": str(content.id), "base_version": content.version}
        print_ = fingerprint(principal, {"operation": operation, **body})
        await lock_fingerprint(session, print_)
        existing = await recent_duplicate(
            session, content.workspace_id, print_, state.settings.ai_dedup_seconds
        )
        if existing is not None:
            return existing
        await quotas.check(session, state.settings, content.workspace_id)
        generation_id = uuid.uuid4()
        job = create_job(session, generation_id, content.workspace_id)
        await add_generation(
            session,
            principal,
            job,
            generation_id,
            workspace_id=content.workspace_id,
            operation=operation,
            content_type=content.content_type,
            request=body,
            fingerprint=print_,
            template=template,
            content_id=content.id,
        )
        audit.record(
            session,
            principal,
            action_name,
            workspace_id=content.workspace_id,
            target_type="Content",
            target_id=content.id,
            details={k: v for k, v in request.items() if k != "instruction"},
        )
    await jobs.enqueue(state.arq, job.id, job.attempts)
    return job


async def start_refinement(
    state: AppState, principal: Principal, content_id: uuid.UUID, instruction: str
) -> Job:
    """Queue a rewrite of the item following `instruction` ("shorter", "more formal")."""
    instruction = instruction.strip()
    if not instruction:
        raise ValidationFailed(
            [FieldError("instruction", UserErrorCode.REQUIRED, "Say what to change.")]
        )
    if len(instruction) > MAX_INSTRUCTION:
        raise ValidationFailed(
            [
                FieldError(
                    "instruction",
                    UserErrorCode.TOO_LONG,
                    f"At most {MAX_INSTRUCTION} characters.",
                )
            ]
        )
    return await start_edit(
        state,
        principal,
        content_id,
        create_job=lambda session, generation_id, workspace_id: jobs.new_job(
            session,
            REFINE_KIND,
            {"generation_id": str(generation_id)},
            state.settings.job_max_attempts,
            workspace_id=workspace_id,
        ),
        operation="REFINE",
        action_name="refineContent",
        template_name=prompts.template_name("refine"),
        request={"instruction": instruction},
    )


async def start_transform(
    state: AppState, principal: Principal, content_id: uuid.UUID, platforms: list[Platform]
) -> Job:
    """Queue one variation per platform, written from the item and repaired to the rules."""
    platforms = list(dict.fromkeys(platforms))
    if not platforms:
        raise ValidationFailed(
            [FieldError("platforms", UserErrorCode.REQUIRED, "Name at least one platform.")]
        )
    return await start_edit(
        state,
        principal,
        content_id,
        create_job=lambda session, generation_id, workspace_id: jobs.new_job(
            session,
            TRANSFORM_KIND,
            {"generation_id": str(generation_id)},
            state.settings.job_max_attempts,
            workspace_id=workspace_id,
        ),
        operation="TRANSFORM",
        action_name="transformContent",
        template_name=prompts.template_name("transform"),
        request={"platforms": [p.value for p in platforms]},
    )


async def _content(ctx: JobContext, inputs: Inputs) -> Content:
    assert inputs.generation.content_id is not None
    async with ctx.factory() as session:
        content = await session.get(Content, inputs.generation.content_id)
    if content is None or content.deleted_at is not None:
        raise PermanentJobError("the content was deleted")
    return content


def _source_spec(
    inputs: Inputs, content: Content, platform: Platform | None, instruction: str | None = None
) -> DraftSpec:
    rule = RULES[platform] if platform is not None else None
    return DraftSpec(
        brief=content.title,
        content_type=content.content_type,
        keywords=tuple(content.tags),
        platform=platform.value if platform is not None else None,
        brand_voice=inputs.brand_voice,
        segment=inputs.segment,
        max_chars=rule.max_chars if rule else None,
        max_hashtags=rule.max_hashtags if rule else None,
        source=content.body,
        source_title=content.title,
        instruction=instruction,
    )


async def run_refinement(ctx: JobContext) -> dict[str, Any]:
    inputs = await load_inputs(ctx)
    if inputs is None:
        return {"skipped": "generation deleted"}
    if inputs.generation.finished_at is not None:
        return done_result(inputs.generation)
    settings = ctx.settings or get_settings()
    content = await _content(ctx, inputs)
    instruction = str(inputs.request["instruction"])
    streamer = Streamer(ctx, inputs.generation.id, flush_seconds=settings.ai_progress_flush_seconds)
    accounting = Accounting()
    try:
        template = prompts.get(inputs.generation.prompt_template, inputs.generation.prompt_version)
        rendered = prompts.render(
            template,
            source=f"Title: {content.title}\n\n{content.body}",
            instruction=instruction,
            content_type=content.content_type,
            brand_voice=inputs.brand_voice,
            segment=inputs.segment,
            keywords=content.tags,
        )
        answer = await complete_stage(
            ctx,
            settings,
            streamer,
            accounting,
            stage="draft",
            index=None,
            fraction=0.0,
            request=completion(
                rendered,
                _source_spec(inputs, content, None, instruction=instruction),
                task="refine",
                max_tokens=min(MAX_SOURCE_TOKENS, settings.ai_max_output_tokens * 2),
            ),
        )
        revised = drafts.parse(answer, fallback_title=content.title)
        await streamer.begin("saving", None, 0.9)
        totals = accounting.totals(settings)
        async with ctx.factory() as session, session.begin():
            if not await finish(session, inputs.generation.id, totals, ctx.job.attempts):
                raise AlreadySaved
            body = revised.body[: items.MAX_BODY]
            measured = await text_metrics.measure_item(session, content.id, body)
            version = await session.scalar(
                update(Content)
                .where(Content.id == content.id, Content.deleted_at.is_(None))
                .values(
                    title=revised.title[: items.MAX_TITLE],
                    body=revised.body[: items.MAX_BODY],
                    version=Content.version + 1,
                    updated_by_id=inputs.generation.created_by_id,
                    **measured.values(),
                )
                .returning(Content.version)
            )
            if version is None:
                raise PermanentJobError("the content was deleted")
            session.add(
                ContentVersion(
                    id=uuid.uuid4(),
                    content_id=content.id,
                    version=version,
                    title=revised.title[: items.MAX_TITLE],
                    body=revised.body[: items.MAX_BODY],
                    format=content.format,
                    created_by_id=inputs.generation.created_by_id,
                )
            )
            jobs.new_job(
                session,
                items.EMBED_KIND,
                {"content_id": str(content.id), "version": version},
                settings.job_max_attempts,
                workspace_id=content.workspace_id,
            )
    except AlreadySaved:
        return done_result(inputs.generation)
    except Exception as exc:
        await record_failure(ctx, inputs.generation.id, exc, accounting, settings)
        raise
    return {
        "generation_id": str(inputs.generation.id),
        "content_id": str(content.id),
        "version": version,
        "provider": totals["provider"],
        "model": totals["model"],
    }


async def run_transform(ctx: JobContext) -> dict[str, Any]:
    inputs = await load_inputs(ctx)
    if inputs is None:
        return {"skipped": "generation deleted"}
    if inputs.generation.finished_at is not None:
        return done_result(inputs.generation)
    settings = ctx.settings or get_settings()
    content = await _content(ctx, inputs)
    platforms = [Platform(p) for p in inputs.request["platforms"]]
    streamer = Streamer(ctx, inputs.generation.id, flush_seconds=settings.ai_progress_flush_seconds)
    accounting = Accounting()
    results: list[tuple[Platform, drafts.Draft, list[str]]] = []
    try:
        template = prompts.get(inputs.generation.prompt_template, inputs.generation.prompt_version)
        values = {
            "content_type": content.content_type,
            "brand_voice": inputs.brand_voice,
            "segment": inputs.segment,
            "keywords": content.tags,
        }
        for i, platform in enumerate(platforms):
            rendered = prompts.render(template, source=content.body, platform=platform, **values)
            fixed, repairs = await platform_variation(
                ctx,
                settings,
                streamer,
                accounting,
                index=i,
                fraction=i / (len(platforms) + 1),
                platform=platform,
                request=completion(
                    rendered,
                    _source_spec(inputs, content, platform),
                    task="transform",
                    max_tokens=settings.ai_max_output_tokens,
                ),
                prompt_values=values,
                title=content.title,
            )
            results.append((platform, fixed, repairs))
        await streamer.begin("saving", None, len(platforms) / (len(platforms) + 1))
        totals = accounting.totals(settings)
        async with ctx.factory() as session, session.begin():
            if not await finish(session, inputs.generation.id, totals, ctx.job.attempts):
                raise AlreadySaved
            existing = {
                v.platform: v
                for v in (
                    await session.scalars(
                        select(ContentVariation).where(ContentVariation.content_id == content.id)
                    )
                ).all()
            }
            ids: list[str] = []
            for platform, fixed, _repairs in results:
                measured = await text_metrics.measure_variation(session, content.id, fixed.body)
                variation = existing.get(platform.value)
                if variation is None:
                    variation = ContentVariation(
                        id=uuid.uuid4(),
                        content_id=content.id,
                        workspace_id=content.workspace_id,
                        platform=platform.value,
                        media_ids=[],
                        created_by_id=inputs.generation.created_by_id,
                    )
                    session.add(variation)
                variation.body = fixed.body
                variation.subject = fixed.subject
                variation.preheader = fixed.preheader
                measured.apply(variation)
                ids.append(str(variation.id))
    except AlreadySaved:
        return done_result(inputs.generation)
    except Exception as exc:
        await record_failure(ctx, inputs.generation.id, exc, accounting, settings)
        raise
    return {
        "generation_id": str(inputs.generation.id),
        "content_id": str(content.id),
        "variation_ids": ids,
        "repairs": {p.value: r for p, _f, r in results if r},
        "provider": totals["provider"],
        "model": totals["model"],
    }


JOB_HANDLERS: dict[str, Handler] = {REFINE_KIND: run_refinement, TRANSFORM_KIND: run_transform}
