"""Text metrics stored with content items and variations, and keeping their brand-voice
warnings true.

Writers measure the text inside the transaction that writes it (`measure`,
`measure_item`, `measure_variation`) and store the result in the same statement. The
warnings depend on two things besides the text: the workspace's brand voice and the
item's tags (its keywords; a variation uses its item's). Both can change after the text
was written, so:

- the stored metrics carry a `voice_key`, the digest of the terms they were checked
  against (app/ai/metrics.py VoiceTerms);
- a brand-voice change (app/services/workspaces/teams.py) or a tags change
  (items.update_content) queues a `refresh_text_metrics` job in its own transaction,
  which re-checks every row whose key differs from the current one (warnings only: the
  other metrics do not depend on the voice) and measures rows never measured or measured
  by an older ALGORITHM_VERSION (the backfill, queued by the migration).

Ordering makes this exact rather than eventual-but-lossy. Writers read the brand voice
`FOR SHARE` and the item's tags under a lock on the item; a brand-voice change locks the
workspace `FOR UPDATE` and a tags change locks the item. So a write either sees the new
voice and tags, or commits before the change does, and then the job (which starts after
the change commits) sees the write. The job's updates are guarded by the key it read, and
a row changed meanwhile is read again, so the job never stores warnings older than the
row's. Locks are always taken in one order, item, workspace, variation, and the job
holds one row lock at a time, so none of this can deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.metrics import (
    ALGORITHM_VERSION,
    analyze_async,
    voice_key,
    voice_warnings_async,
    warnings_json,
)
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.logging import get_logger
from app.models import Content, ContentVariation, Job, Workspace
from app.settings import Settings

log = get_logger(__name__)

REFRESH_KIND = "refresh_text_metrics"
SCAN_BATCH = 500  # rows whose keys are compared per statement
MEASURE_BATCH = 20  # rows (with their bodies) re-measured per transaction
RUN_BUDGET_CHARS = 5_000_000  # text one run measures before handing on to a follow-up job
MAX_TRIES = 5  # re-reads of a row that writers keep changing under the job


@dataclass(frozen=True)
class Measured:
    """Metrics ready to store: `values()` for an UPDATE, `apply(row)` for an ORM row."""

    metrics: dict[str, Any]

    def values(self) -> dict[str, Any]:
        return {"text_metrics": self.metrics, "text_metrics_version": ALGORITHM_VERSION}

    def apply(self, row: Content | ContentVariation) -> None:
        row.text_metrics = self.metrics
        row.text_metrics_version = ALGORITHM_VERSION


async def _brand_voice(session: AsyncSession, workspace_id: uuid.UUID) -> dict[str, Any]:
    """The workspace's brand voice, share-locked: a change waits for this transaction.
    Without autoflush, so the caller's pending text and these metrics go out together."""
    with session.no_autoflush:
        voice = await session.scalar(
            select(Workspace.brand_voice)
            .where(Workspace.id == workspace_id)
            .with_for_update(read=True)
        )
    return dict(voice or {})


async def measure(
    session: AsyncSession, workspace_id: uuid.UUID, text: str, keywords: Sequence[str]
) -> Measured:
    """Metrics of `text` about to be written in `workspace_id`, checked against its brand
    voice and `keywords` (the item's tags; the caller holds the item's lock or is creating
    it). Long texts are analysed in a thread."""
    voice = await _brand_voice(session, workspace_id)
    metrics = await analyze_async(text, brand_voice=voice, keywords=keywords)
    return Measured(metrics.stored(voice_key(voice, keywords)))


async def measure_content(session: AsyncSession, content: Content) -> None:
    """Measure an item's body (new or changed, not yet flushed) and set its metrics; the
    caller holds the item's lock or is creating it, so its tags are current."""
    measured = await measure(session, content.workspace_id, content.body, content.tags)
    measured.apply(content)


async def _item(
    session: AsyncSession, content_id: uuid.UUID, *, exclusive: bool
) -> tuple[uuid.UUID, list[str]] | None:
    with session.no_autoflush:
        row = (
            await session.execute(
                select(Content.workspace_id, Content.tags)
                .where(Content.id == content_id)
                .with_for_update(read=not exclusive)
            )
        ).one_or_none()
    return (row[0], list(row[1])) if row is not None else None


async def measure_item(session: AsyncSession, content_id: uuid.UUID, text: str) -> Measured:
    """`measure` for new text of item `content_id`, which the caller then writes: locks
    the item (FOR UPDATE) for its tags."""
    found = await _item(session, content_id, exclusive=True)
    if found is None:  # gone: the caller's write will find nothing either
        return Measured((await analyze_async(text)).stored(voice_key(None)))
    return await measure(session, found[0], text, found[1])


async def lock_item(session: AsyncSession, content_id: uuid.UUID) -> None:
    """Share-lock an item and its workspace before locking one of its variations (the
    lock order: item, workspace, variation)."""
    found = await _item(session, content_id, exclusive=False)
    if found is not None:
        await _brand_voice(session, found[0])


async def measure_variation(session: AsyncSession, content_id: uuid.UUID, text: str) -> Measured:
    """`measure` for new text of a variation of item `content_id`: share-locks the item for
    its tags (call it, or `lock_item`, before locking or writing the variation)."""
    found = await _item(session, content_id, exclusive=False)
    if found is None:
        return Measured((await analyze_async(text)).stored(voice_key(None)))
    return await measure(session, found[0], text, found[1])


def queue_refresh(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    max_attempts: int,
    *,
    content_id: uuid.UUID | None = None,
) -> Job:
    """Add a refresh job to the caller's transaction (enqueue it after commit)."""
    payload: dict[str, Any] = {"workspace_id": str(workspace_id)}
    if content_id is not None:
        payload["content_id"] = str(content_id)
    return jobs.new_job(session, REFRESH_KIND, payload, max_attempts, workspace_id=workspace_id)


def refresh_item(session: AsyncSession, content: Content, settings: Settings) -> Job:
    """A refresh of one item and its variations (after its tags changed)."""
    return queue_refresh(
        session, content.workspace_id, settings.job_max_attempts, content_id=content.id
    )


# The refresh job ------------------------------------------------------------------------

Model = type[Content] | type[ContentVariation]


@dataclass(frozen=True)
class _Seen:
    """A row as the job read it: what decides whether it is stale, and guards the update."""

    id: uuid.UUID
    tags: list[str]
    version: int | None
    key: str | None


@dataclass
class _Run:
    workspace_id: uuid.UUID
    content_id: uuid.UUID | None
    measured_chars: int = 0
    refreshed: int = 0

    def scope(self, model: Model) -> list[ColumnElement[bool]]:
        where = [model.workspace_id == self.workspace_id]
        if self.content_id is not None:
            column = Content.id if model is Content else ContentVariation.content_id
            where.append(column == self.content_id)
        return where


def _light(model: Model) -> Select[Any]:
    """id, keywords, version and voice key of rows (their item's tags for variations)."""
    columns = (model.id, model.text_metrics_version, model.text_metrics["voice_key"].astext)
    if model is Content:
        return select(Content.tags, *columns)
    return (
        select(Content.tags, *columns)
        .select_from(ContentVariation)
        .join(Content, Content.id == ContentVariation.content_id)
    )


def _stale(seen: _Seen, voice: dict[str, Any]) -> bool:
    return seen.version != ALGORITHM_VERSION or seen.key != voice_key(voice, seen.tags)


async def _voice_now(ctx: JobContext, workspace_id: uuid.UUID) -> dict[str, Any] | None:
    """Read after the rows it is compared with, so it is at least as new as they are."""
    async with ctx.factory() as session:
        voice = await session.scalar(
            select(Workspace.brand_voice).where(Workspace.id == workspace_id)
        )
    return None if voice is None else dict(voice)


async def _refresh_rows(ctx: JobContext, run: _Run, model: Model, ids: list[uuid.UUID]) -> bool:
    """Re-measure the rows `ids` that are still stale; False when the workspace is gone."""
    pending = ids
    for _ in range(MAX_TRIES):
        async with ctx.factory() as session:
            rows = (
                await session.execute(
                    _light(model)
                    .add_columns(model.body, model.text_metrics)
                    .where(model.id.in_(pending))
                )
            ).all()
        voice = await _voice_now(ctx, run.workspace_id)
        if voice is None:
            return False
        updates: list[tuple[_Seen, Measured]] = []
        for tags, row_id, version, key, body, metrics in rows:
            seen = _Seen(row_id, list(tags), version, key)
            if not _stale(seen, voice):
                continue
            updates.append((seen, await _remeasure(body, metrics, version, voice, seen.tags)))
            run.measured_chars += len(body)
        changed: list[uuid.UUID] = []
        for seen, measured in updates:
            # One row per transaction: the job never holds a lock while waiting for another.
            async with ctx.factory() as session, session.begin():
                done = await session.scalar(
                    update(model)
                    .where(
                        model.id == seen.id,
                        model.text_metrics_version.is_not_distinct_from(seen.version),
                        model.text_metrics["voice_key"].astext.is_not_distinct_from(seen.key),
                    )
                    # A re-check is not an edit: the row's last change stays when it was.
                    .values(**measured.values(), updated_at=model.updated_at)
                    .returning(model.id)
                )
            if done is None:
                changed.append(seen.id)  # a writer got there first: read it again
            else:
                run.refreshed += 1
        if not changed:
            return True
        pending = changed
    raise RuntimeError(f"{model.__tablename__} rows kept changing during the refresh")


async def _remeasure(
    body: str,
    metrics: dict[str, Any] | None,
    version: int | None,
    voice: dict[str, Any],
    tags: list[str],
) -> Measured:
    key = voice_key(voice, tags)
    if metrics is not None and version == ALGORITHM_VERSION and "sentiment" in metrics:
        # Only the voice or the keywords changed: the other metrics stand.
        warnings = await voice_warnings_async(
            body, brand_voice=voice, keywords=tags, sentiment=float(metrics["sentiment"])
        )
        return Measured({**metrics, "warnings": warnings_json(warnings), "voice_key": key})
    fresh = await analyze_async(body, brand_voice=voice, keywords=tags)
    return Measured(fresh.stored(key))


async def _refresh(ctx: JobContext, run: _Run, model: Model) -> bool | None:
    """Walk the scope's rows of `model` by id; None when the budget ran out first."""
    after: uuid.UUID | None = None
    while True:
        query = _light(model).where(*run.scope(model)).order_by(model.id).limit(SCAN_BATCH)
        if after is not None:
            query = query.where(model.id > after)
        async with ctx.factory() as session:
            batch = [
                _Seen(row_id, list(tags), version, key)
                for tags, row_id, version, key in (await session.execute(query)).all()
            ]
        if not batch:
            return True
        voice = await _voice_now(ctx, run.workspace_id)
        if voice is None:
            return False
        stale = [seen.id for seen in batch if _stale(seen, voice)]
        for start in range(0, len(stale), MEASURE_BATCH):
            if run.measured_chars >= RUN_BUDGET_CHARS:
                return None
            if not await _refresh_rows(ctx, run, model, stale[start : start + MEASURE_BATCH]):
                return False
        after = batch[-1].id


async def refresh_text_metrics(ctx: JobContext) -> dict[str, Any]:
    """Bring the stored metrics of a workspace (or one item and its variations) up to date
    with the brand voice, the tags and the algorithm. Idempotent: fresh rows are skipped."""
    try:
        workspace_id = uuid.UUID(str(ctx.payload["workspace_id"]))
        raw_content = ctx.payload.get("content_id")
        content_id = uuid.UUID(str(raw_content)) if raw_content else None
    except (KeyError, ValueError) as exc:
        raise PermanentJobError(f"bad payload: {exc}") from exc
    run = _Run(workspace_id, content_id)
    for model in (Content, ContentVariation):
        outcome = await _refresh(ctx, run, model)
        if outcome is False:
            return {"skipped": "workspace deleted", "refreshed": run.refreshed}
        if outcome is None:
            # Bounded work per run: a follow-up job (found by the sweeper) goes on.
            async with ctx.factory() as session, session.begin():
                follow = queue_refresh(
                    session, workspace_id, ctx.job.max_attempts, content_id=content_id
                )
            log.info("text_metrics_refresh_continues", job_id=str(ctx.job.id), next=str(follow.id))
            return {"refreshed": run.refreshed, "continued_by": str(follow.id)}
    return {"refreshed": run.refreshed}


JOB_HANDLERS: dict[str, Handler] = {REFRESH_KIND: refresh_text_metrics}
