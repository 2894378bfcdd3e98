"""`personalizeContent(contentId, segmentIds)`: one version of an item per audience segment.

Each version is the item rewritten for the segment (its description and attributes) in the
workspace's brand voice, with a list of what changed and why: the model writes it in a
`Changes:` section, the offline writer lists the rule-based edits it made. The item itself
is not changed. There is one version per (item, segment): personalising again replaces it.
The job streams stage `personalization` with `variationIndex` = the segment's position in
the request, and saves every version in one transaction, at most once per generation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai import prompting as prompts
from app.ai.llm import DraftSpec
from app.ai.metrics import analyze_async
from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.models import AudienceSegment, Content, ContentPersonalization, Job
from app.permissions import Action
from app.services import lookup
from app.services.ai import derived, drafts
from app.services.ai.attempts import (
    Accounting,
    AlreadySaved,
    done_result,
    finish,
    load_inputs,
    record_failure,
)
from app.services.ai.editing import MAX_SOURCE_TOKENS, start_edit
from app.services.ai.generation import PERSONALIZE_KIND
from app.services.ai.progress import Streamer
from app.services.content import items
from app.settings import get_settings
from app.state import AppState

MAX_SEGMENTS = 10


async def start_personalization(
    state: AppState, principal: Principal, content_id: uuid.UUID, segment_ids: list[uuid.UUID]
) -> Job:
    """Queue one personalised version of the item per segment (1 to 10 distinct segments
    of the item's workspace)."""
    segment_ids = list(dict.fromkeys(segment_ids))
    if not 1 <= len(segment_ids) <= MAX_SEGMENTS:
        raise ValidationFailed(
            [
                FieldError(
                    "segmentIds",
                    UserErrorCode.OUT_OF_RANGE,
                    f"Name 1 to {MAX_SEGMENTS} distinct audience segments.",
                )
            ]
        )
    async with state.read_session_factory() as session:
        content = await lookup.scoped_row(
            session, Content, content_id, principal, Action.CONTENT_EDIT
        )
        found = set(
            (
                await session.scalars(
                    select(AudienceSegment.id).where(
                        AudienceSegment.id.in_(segment_ids),
                        AudienceSegment.workspace_id == content.workspace_id,
                    )
                )
            ).all()
        )
    if missing := [i for i, s in enumerate(segment_ids) if s not in found]:
        raise ValidationFailed(
            [
                FieldError(
                    f"segmentIds.{i}",
                    UserErrorCode.NOT_FOUND,
                    "No such audience segment in the item's workspace.",
                )
                for i in missing
            ]
        )
    return await start_edit(
        state,
        principal,
        content_id,
        create_job=lambda session, generation_id, workspace_id: jobs.new_job(
            session,
            PERSONALIZE_KIND,
            {"generation_id": str(generation_id)},
            state.settings.job_max_attempts,
            workspace_id=workspace_id,
        ),
        operation="PERSONALIZE",
        action_name="personalizeContent",
        template_name=prompts.template_name("personalize"),
        request={"segment_ids": [str(s) for s in segment_ids]},
    )


def _segment(row: AudienceSegment) -> dict[str, Any]:
    attributes = dict(row.attributes or {})
    return {
        "name": row.name,
        "description": row.description,
        "attributes": attributes,
        "interests": attributes.get("interests", []),
    }


async def _segments(
    ctx: JobContext, workspace_id: uuid.UUID, ids: list[str]
) -> list[tuple[int, AudienceSegment]]:
    """The requested segments still in the workspace, with their position in the request
    (the stage's `variationIndex`)."""
    async with ctx.factory() as session:
        rows = (
            await session.scalars(
                select(AudienceSegment).where(
                    AudienceSegment.id.in_([uuid.UUID(i) for i in ids]),
                    AudienceSegment.workspace_id == workspace_id,
                )
            )
        ).all()
    by_id = {str(r.id): r for r in rows}
    return [(n, by_id[i]) for n, i in enumerate(ids) if i in by_id]


def _problem(content: Content) -> Callable[[str], str | None]:
    original = derived.normalised(content.body)

    def problem(answer: str) -> str | None:
        text, _changes = derived.split_changes(answer)
        body = drafts.parse(text, fallback_title=content.title).body
        if not body.strip():
            return "it had no text"
        if derived.normalised(body) == original:
            return "it was the original text, unchanged"
        return None

    return problem


async def run_personalization(ctx: JobContext) -> dict[str, Any]:
    inputs = await load_inputs(ctx)
    if inputs is None:
        return {"skipped": "generation deleted"}
    if inputs.generation.finished_at is not None:
        return done_result(inputs.generation)  # an earlier attempt saved; never twice
    settings = ctx.settings or get_settings()
    content = await derived.load_item(ctx, inputs)
    segments = await _segments(ctx, content.workspace_id, list(inputs.request["segment_ids"]))
    if not segments:
        raise PermanentJobError("the audience segments were deleted")
    streamer = Streamer(ctx, inputs.generation.id, flush_seconds=settings.ai_progress_flush_seconds)
    accounting = Accounting()
    written: list[tuple[AudienceSegment, drafts.Draft, list[dict[str, Any]], dict[str, Any]]] = []
    try:
        template = prompts.get(inputs.generation.prompt_template, inputs.generation.prompt_version)
        for step, (i, segment) in enumerate(segments):
            audience = _segment(segment)
            rendered = prompts.render(
                template,
                source=derived.item_source(content),
                content_type=content.content_type,
                brand_voice=inputs.brand_voice,
                segment=audience,
                keywords=content.tags,
            )
            answer = await derived.ask(
                ctx,
                settings,
                streamer,
                accounting,
                stage="personalization",
                index=i,
                fraction=step / (len(segments) + 1),
                rendered=rendered,
                spec=DraftSpec(
                    brief=content.title,
                    content_type=content.content_type,
                    keywords=tuple(content.tags),
                    brand_voice=inputs.brand_voice,
                    segment=audience,
                    source=content.body,
                    source_title=content.title,
                    personalize=True,
                ),
                task="refine",
                max_tokens=min(MAX_SOURCE_TOKENS, settings.ai_max_output_tokens * 2),
                problem=_problem(content),
            )
            text, changes = derived.split_changes(answer)
            draft = drafts.parse(text, fallback_title=content.title)
            metrics = await analyze_async(
                draft.body, brand_voice=inputs.brand_voice, keywords=content.tags
            )
            written.append((segment, draft, changes, metrics.to_json()))
        await streamer.begin("saving", None, len(segments) / (len(segments) + 1))
        totals = accounting.totals(settings)
        async with ctx.factory() as session, session.begin():
            if not await finish(session, inputs.generation.id, totals, ctx.job.attempts):
                raise AlreadySaved
            ids = [
                await _upsert(session, content, inputs.generation.id, *entry) for entry in written
            ]
    except AlreadySaved:
        return done_result(inputs.generation)
    except Exception as exc:
        await record_failure(ctx, inputs.generation.id, exc, accounting, settings)
        raise
    return {
        "generation_id": str(inputs.generation.id),
        "content_id": str(content.id),
        "personalization_ids": ids,
        "skipped_segments": len(inputs.request["segment_ids"]) - len(segments),
        "provider": totals["provider"],
        "model": totals["model"],
    }


async def _upsert(
    session: AsyncSession,
    content: Content,
    generation_id: uuid.UUID,
    segment: AudienceSegment,
    draft: drafts.Draft,
    changes: list[dict[str, Any]],
    metrics: dict[str, Any],
) -> str:
    """Write (or replace) the item's version for the segment; its id stays the same."""
    values = {
        "generation_id": generation_id,
        "title": draft.title[: items.MAX_TITLE],
        "body": draft.body[: items.MAX_BODY],
        "changes": changes,
        "metrics": metrics,
        "based_on_version": content.version,
    }
    statement = insert(ContentPersonalization).values(
        id=uuid.uuid4(),
        workspace_id=content.workspace_id,
        content_id=content.id,
        segment_id=segment.id,
        **values,
    )
    row_id = await session.scalar(
        statement.on_conflict_do_update(
            index_elements=[ContentPersonalization.content_id, ContentPersonalization.segment_id],
            set_={**values, "updated_at": func.now()},
        ).returning(ContentPersonalization.id)
    )
    return str(row_id)


# --- reading (the Content type's and generationJob's loaders) ------------------------


async def personalizations_for(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ContentPersonalization]]:
    """Each item's personalised versions, oldest first."""
    return await _grouped(session, ContentPersonalization.content_id, content_ids)


async def personalizations_by_generation(
    session: AsyncSession, generation_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ContentPersonalization]]:
    """The versions each generation wrote that it still holds (a later run replaces)."""
    return await _grouped(session, ContentPersonalization.generation_id, generation_ids)


async def _grouped(
    session: AsyncSession, column: Any, keys: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ContentPersonalization]]:
    rows = (
        await session.scalars(
            select(ContentPersonalization)
            .where(column.in_(keys))
            .order_by(ContentPersonalization.created_at, ContentPersonalization.id)
        )
    ).all()
    out: dict[uuid.UUID, list[ContentPersonalization]] = {k: [] for k in keys}
    for row in rows:
        out[getattr(row, column.key)].append(row)
    return out


JOB_HANDLERS: dict[str, Handler] = {PERSONALIZE_KIND: run_personalization}
