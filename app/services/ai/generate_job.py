"""The generate_content job: draft, platform variations (re-asked and repaired to the
rules), alternatives, saved once."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import text, update

from app.ai import prompting as prompts
from app.ai.metrics import analyze_async
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext
from app.models import (
    Content,
    ContentVariation,
    ContentVersion,
    Generation,
)
from app.models.vocabulary import (
    ContentFormat,
    ContentStatus,
    Platform,
)
from app.services.ai import drafts
from app.services.ai.attempts import (
    Accounting,
    AlreadySaved,
    Inputs,
    complete_stage,
    completion,
    done_result,
    draft_spec,
    finish,
    load_inputs,
    platform_variation,
    record_failure,
)
from app.services.ai.generation import GENERATE_KIND, MAX_TOKENS
from app.services.ai.progress import Streamer
from app.services.content import items, text_metrics
from app.settings import Settings, get_settings


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
            # The offline writer adapts the draft, as a model is asked to.
            spec = replace(
                draft_spec(inputs, platform), source=draft.body, source_title=draft.title
            )
            fixed, repairs = await platform_variation(
                ctx,
                settings,
                streamer,
                accounting,
                index=i,
                fraction=(1 + i) / steps,
                platform=platform,
                request=completion(rendered, spec, task="transform", max_tokens=max_tokens),
                prompt_values=common,
                title=draft.title,
                defaults=draft,
            )
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
        await text_metrics.measure_content(session, content)
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
            (await text_metrics.measure_variation(session, content.id, fixed.body)).apply(variation)
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
