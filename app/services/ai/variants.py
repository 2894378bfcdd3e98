"""`generateVariants(contentId, count)`: A/B-test alternatives of an item.

The item is variant "A"; each run adds `count` (1 to 5) variants labelled B, C, ... (after
Z: AA, AB, ...), so an A/B test can reference them by id; old variants are never rewritten.
Each variant takes a different hook (prompting.VARIANT_ANGLES, the first one tried rotating
with the variants already there) and states the angle it took. A variant is never saved
empty or as a copy of the original or another variant (such an answer is asked for again,
then the attempt fails). For each platform the item has a variation for, the variant also
carries its text for that platform, repaired to the platform's rules like a variation
(short pieces are asked to fit the strictest limit to begin with). The job streams stage
`variant` with `variationIndex` 0..count-1 and saves the variants in one transaction, at
most once per generation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai import prompting as prompts
from app.ai.llm import DraftSpec
from app.ai.metrics import analyze_async
from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext
from app.models import Content, ContentVariant, ContentVariation, Job
from app.models.vocabulary import ContentType, Platform
from app.permissions import Action
from app.platforms.rules import RULES
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
from app.services.ai.generation import VARIANTS_KIND
from app.services.ai.progress import Streamer
from app.services.content import items
from app.settings import get_settings
from app.state import AppState

MAX_COUNT = 5
MAX_PER_CONTENT = 50
# Pieces short enough that one text is posted as it is: written to fit their platforms.
SHORT_FORM = frozenset({ContentType.SOCIAL_POST.value, ContentType.AD_COPY.value})


def label_for(index: int) -> str:
    """The label of the index-th variant: 0 -> "B" ... 24 -> "Z", 25 -> "AA" ("A" is the
    item itself)."""
    number, label = index + 2, ""
    while number:
        number, rest = divmod(number - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


async def start_variants(
    state: AppState, principal: Principal, content_id: uuid.UUID, count: int
) -> Job:
    """Queue `count` A/B-test variants of the item."""
    if not 1 <= count <= MAX_COUNT:
        raise ValidationFailed(
            [FieldError("count", UserErrorCode.OUT_OF_RANGE, f"Between 1 and {MAX_COUNT}.")]
        )
    async with state.read_session_factory() as session:
        await lookup.scoped_row(session, Content, content_id, principal, Action.CONTENT_EDIT)
        existing = await session.scalar(
            select(func.count())
            .select_from(ContentVariant)
            .where(ContentVariant.content_id == content_id)
        )
    if (existing or 0) + count > MAX_PER_CONTENT:
        raise ValidationFailed(
            [
                FieldError(
                    "count",
                    UserErrorCode.TOO_MANY,
                    f"An item keeps at most {MAX_PER_CONTENT} variants; it has {existing}.",
                )
            ]
        )
    return await start_edit(
        state,
        principal,
        content_id,
        create_job=lambda session, generation_id, workspace_id: jobs.new_job(
            session,
            VARIANTS_KIND,
            {"generation_id": str(generation_id)},
            state.settings.job_max_attempts,
            workspace_id=workspace_id,
        ),
        operation="VARIANTS",
        action_name="generateVariants",
        template_name=prompts.template_name("variants"),
        request={"count": count},
    )


def _problem(content: Content, seen: set[str]) -> Callable[[str], str | None]:
    def problem(answer: str) -> str | None:
        text, _angle = derived.split_angle(answer)
        body = drafts.parse(text, fallback_title=content.title).body
        if not body.strip():
            return "it had no text"
        if derived.normalised(body) in seen:
            return "it repeated the original or another variant word for word"
        return None

    return problem


def _platform_texts(platforms: list[Platform], draft: drafts.Draft) -> list[dict[str, Any]]:
    """The variant's text for each platform, within the platform's text rules."""
    out = []
    for platform in platforms:
        subject = draft.subject or (draft.title if platform is Platform.EMAIL else None)
        fixed, repairs = drafts.repair(
            platform,
            drafts.Draft(draft.title, draft.body, subject, draft.preheader),
            title=draft.title,
        )
        out.append(
            {
                "platform": platform.value,
                "body": fixed.body,
                "subject": fixed.subject,
                "preheader": fixed.preheader,
                "repairs": repairs,
            }
        )
    return out


def _title(content: Content, title: str) -> str:
    """An email's title is its subject line: within the subject limit."""
    limit = RULES[Platform.EMAIL].subject_max or items.MAX_TITLE
    if content.content_type != ContentType.EMAIL.value or len(title) <= limit:
        return title[: items.MAX_TITLE]
    return title[: limit - 1].rsplit(" ", 1)[0] + drafts.ELLIPSIS


async def run_variants(ctx: JobContext) -> dict[str, Any]:
    inputs = await load_inputs(ctx)
    if inputs is None:
        return {"skipped": "generation deleted"}
    if inputs.generation.finished_at is not None:
        return done_result(inputs.generation)  # an earlier attempt saved; never twice
    settings = ctx.settings or get_settings()
    content = await derived.load_item(ctx, inputs)
    async with ctx.factory() as session:
        platforms = sorted(
            Platform(p)
            for p in (
                await session.scalars(
                    select(ContentVariation.platform).where(
                        ContentVariation.content_id == content.id
                    )
                )
            ).all()
        )
        earlier = (
            await session.scalars(
                select(ContentVariant.body).where(ContentVariant.content_id == content.id)
            )
        ).all()
    count = int(inputs.request["count"])
    keys = list(prompts.VARIANT_ANGLES)
    angles = [keys[(len(earlier) + i) % len(keys)] for i in range(count)]
    targets = platforms if content.content_type in SHORT_FORM else []
    limits = [m for p in targets if (m := RULES[p].max_chars)]
    hashtags = [h for p in targets if (h := RULES[p].max_hashtags) is not None]
    seen = {derived.normalised(content.body), *(derived.normalised(b) for b in earlier)}
    streamer = Streamer(ctx, inputs.generation.id, flush_seconds=settings.ai_progress_flush_seconds)
    accounting = Accounting()
    written: list[dict[str, Any]] = []
    try:
        template = prompts.get(inputs.generation.prompt_template, inputs.generation.prompt_version)
        for i, angle in enumerate(angles):
            rendered = prompts.render(
                template,
                source=derived.item_source(content),
                content_type=content.content_type,
                brand_voice=inputs.brand_voice,
                keywords=content.tags,
                angle=prompts.VARIANT_ANGLES[angle],
                label=label_for(len(earlier) + i),
                platforms=targets,
            )
            answer = await derived.ask(
                ctx,
                settings,
                streamer,
                accounting,
                stage="variant",
                index=i,
                fraction=i / (count + 1),
                rendered=rendered,
                spec=DraftSpec(
                    brief=content.title,
                    content_type=content.content_type,
                    keywords=tuple(content.tags),
                    brand_voice=inputs.brand_voice,
                    max_chars=min(limits) if limits else None,
                    max_hashtags=min(hashtags) if hashtags else None,
                    source=content.body,
                    source_title=content.title,
                    angle=angle,
                ),
                task="generate",
                max_tokens=min(MAX_SOURCE_TOKENS, settings.ai_max_output_tokens * 2),
                temperature=0.9,
                problem=_problem(content, seen),
            )
            text, stated = derived.split_angle(answer)
            draft = drafts.parse(text, fallback_title=content.title)
            seen.add(derived.normalised(draft.body))
            metrics = await analyze_async(
                draft.body, brand_voice=inputs.brand_voice, keywords=content.tags
            )
            written.append(
                {
                    "title": _title(content, draft.title),
                    "body": draft.body[: items.MAX_BODY],
                    # What the writer says it did; else what it was asked to do.
                    "angle": stated or f"Asked for: {prompts.VARIANT_ANGLES[angle]}",
                    "platform_texts": _platform_texts(platforms, draft),
                    "metrics": metrics.to_json(),
                    "based_on_version": content.version,
                }
            )
        await streamer.begin("saving", None, count / (count + 1))
        totals = accounting.totals(settings)
        async with ctx.factory() as session, session.begin():
            if not await finish(session, inputs.generation.id, totals, ctx.job.attempts):
                raise AlreadySaved
            saved = await _add(session, content, inputs.generation.id, written)
    except AlreadySaved:
        return done_result(inputs.generation)
    except Exception as exc:
        await record_failure(ctx, inputs.generation.id, exc, accounting, settings)
        raise
    return {
        "generation_id": str(inputs.generation.id),
        "content_id": str(content.id),
        "variant_ids": [str(v.id) for v in saved],
        "labels": [v.label for v in saved],
        "provider": totals["provider"],
        "model": totals["model"],
    }


async def _add(
    session: AsyncSession,
    content: Content,
    generation_id: uuid.UUID,
    written: list[dict[str, Any]],
) -> list[ContentVariant]:
    """Store the variants under the next free labels (the item's row lock serialises
    concurrent runs for one item)."""
    await session.execute(select(Content.id).where(Content.id == content.id).with_for_update())
    used = set(
        (
            await session.scalars(
                select(ContentVariant.label).where(ContentVariant.content_id == content.id)
            )
        ).all()
    )
    labels = (label_for(n) for n in range(len(used) + len(written) + 1))
    free = [label for label in labels if label not in used]
    rows = [
        ContentVariant(
            id=uuid.uuid4(),
            workspace_id=content.workspace_id,
            content_id=content.id,
            generation_id=generation_id,
            label=label,
            **values,
        )
        for label, values in zip(free, written, strict=False)
    ]
    session.add_all(rows)
    await session.flush()
    return rows


# --- reading (the Content type's and generationJob's loaders) ------------------------


def _ordered(column: Any, keys: Sequence[uuid.UUID]) -> Any:
    return (
        select(ContentVariant)
        .where(column.in_(keys))
        .order_by(func.length(ContentVariant.label), ContentVariant.label)
    )


async def variants_for(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ContentVariant]]:
    """Each item's variants, by label (B, C, ..., Z, AA, ...)."""
    out: dict[uuid.UUID, list[ContentVariant]] = {k: [] for k in content_ids}
    for row in (await session.scalars(_ordered(ContentVariant.content_id, content_ids))).all():
        out[row.content_id].append(row)
    return out


async def variants_by_generation(
    session: AsyncSession, generation_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ContentVariant]]:
    """The variants each generation wrote."""
    out: dict[uuid.UUID, list[ContentVariant]] = {k: [] for k in generation_ids}
    rows = (await session.scalars(_ordered(ContentVariant.generation_id, generation_ids))).all()
    for row in rows:
        if row.generation_id is not None:
            out[row.generation_id].append(row)
    return out


JOB_HANDLERS: dict[str, Handler] = {VARIANTS_KIND: run_variants}
