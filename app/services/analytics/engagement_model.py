"""Engagement models: training them from a workspace's published posts, keeping their
versions, and answering predictions (the model itself: app/services/analytics/prediction.py).

Training data is every published target with a snapshot that reports impressions
(app/models/metrics.py): its latest snapshot's engagement rate, the stored text metrics of
what went out (the variation's when a variation was posted), media, platform, content
type, and the local weekday and hour in the post's own time zone.

A workspace is trained on demand (`trainEngagementModel`, a durable job) and weekly by the
worker's cron, which also trains the instance-wide prior (all workspaces' posts: features
and rates only) that answers for workspaces without enough history of their own. With no
model at all, a prediction says so (confidence 0) instead of inventing a number.

Fitting is CPU-bound: it runs in a worker thread, on one core. Fitted models are pickled
with an HMAC under a key derived from the app's secret, and a blob whose HMAC does not
match is never unpickled (app/models/prediction.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import pickle  # only blobs carrying our own HMAC are unpickled
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.ai.metrics import analyze_async
from app.auth import Principal
from app.errors import BadUserInput
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.jobs.store import Enqueuer
from app.logging import get_logger
from app.models import (
    Content,
    ContentMedia,
    ContentVariation,
    EngagementModel,
    Job,
    MetricSnapshot,
    PostTarget,
    ScheduledPost,
    TargetStatus,
)
from app.models.vocabulary import PredictionBasis as Basis
from app.permissions import Action
from app.security.keys import load_keys
from app.services.analytics import prediction
from app.services.audit import trail as audit
from app.services.publishing.timezones import zone
from app.settings import get_settings

log = get_logger(__name__)

TRAIN_KIND = "train_engagement_model"
ALGORITHM = "hist_gradient_boosting.v1"
MAX_HISTORY = 20_000  # newest published targets a model learns from
MAX_TEXT = 100_000  # characters predictEngagement measures
_CACHE_SIZE = 32  # fitted models kept in memory per process


def _hmac_key(secret: str) -> bytes:
    return hashlib.sha256(f"engagement-models:{secret}".encode()).digest()


def _digest(secret: str, blob: bytes) -> str:
    return hmac.new(_hmac_key(secret), blob, hashlib.sha256).hexdigest()


def _history(workspace_id: uuid.UUID | None) -> Select[Any]:
    latest = (
        select(
            MetricSnapshot.impressions,
            MetricSnapshot.likes,
            MetricSnapshot.comments,
            MetricSnapshot.shares,
        )
        .where(MetricSnapshot.target_id == PostTarget.id, MetricSnapshot.impressions > 0)
        .order_by(MetricSnapshot.collected_at.desc())
        .limit(1)
        .lateral("latest")
    )
    has_media = (
        select(ContentMedia.content_id).where(ContentMedia.content_id == Content.id).exists()
    )
    query = (
        select(
            PostTarget.platform,
            PostTarget.published_at,
            ScheduledPost.timezone,
            Content.content_type,
            func.coalesce(ContentVariation.text_metrics, Content.text_metrics).label("metrics"),
            has_media.label("has_media"),
            latest.c.impressions,
            latest.c.likes,
            latest.c.comments,
            latest.c.shares,
        )
        .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
        .join(Content, Content.id == ScheduledPost.content_id)
        .outerjoin(ContentVariation, ContentVariation.id == ScheduledPost.variation_id)
        .join(latest, true())
        .where(PostTarget.status == TargetStatus.PUBLISHED.value)
        .order_by(PostTarget.published_at.desc())
        .limit(MAX_HISTORY)
    )
    if workspace_id is not None:
        query = query.where(PostTarget.workspace_id == workspace_id)
    return query


def _post(row: Any) -> prediction.Post | None:
    metrics = row.metrics
    if not metrics or row.published_at is None or not row.impressions:
        return None
    engaged = sum(v or 0 for v in (row.likes, row.comments, row.shares))
    tz = zone(row.timezone)
    return prediction.Post(
        words=int(metrics.get("words", 0)),
        flesch_reading_ease=float(metrics.get("flesch_reading_ease", 0.0)),
        sentiment=float(metrics.get("sentiment", 0.0)),
        questions=int(metrics.get("questions", 0)),
        has_call_to_action=bool(metrics.get("has_call_to_action", False)),
        hashtag_count=int(metrics.get("hashtag_count", 0)),
        has_media=bool(row.has_media),
        platform=row.platform,
        content_type=row.content_type,
        at=row.published_at.astimezone(tz) if tz else row.published_at,
        engagement_rate=engaged / row.impressions,
    )


async def training_posts(
    session: AsyncSession, workspace_id: uuid.UUID | None
) -> list[prediction.Post]:
    rows = (await session.execute(_history(workspace_id))).all()
    return [p for p in map(_post, rows) if p is not None]


# --- Training --------------------------------------------------------------------------


async def request_training(
    factory: async_sessionmaker[AsyncSession],
    enqueuer: Enqueuer | None,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    max_attempts: int,
) -> Job:
    """Queue a training job for the workspace (editors); follow it with `jobEvents`."""
    principal.require(workspace_id, Action.CONTENT_EDIT)
    async with factory() as session, session.begin():
        job = jobs.new_job(
            session,
            TRAIN_KIND,
            {"workspace_id": str(workspace_id)},
            max_attempts,
            workspace_id=workspace_id,
        )
        audit.record(
            session,
            principal,
            "engagement_model.train",
            workspace_id=workspace_id,
            target_type="Job",
            target_id=job.id,
        )
    await jobs.enqueue(enqueuer, job.id, job.attempts)
    return job


async def _store(
    session: AsyncSession, workspace_id: uuid.UUID | None, trained: prediction.Trained, secret: str
) -> EngagementModel:
    # One version number at a time per workspace (the unique constraint backs it).
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"engagement_models:{workspace_id}"},
    )
    owner = (
        EngagementModel.workspace_id == workspace_id
        if workspace_id is not None
        else EngagementModel.workspace_id.is_(None)
    )
    current = await session.scalar(select(func.max(EngagementModel.version)).where(owner))
    blob = pickle.dumps(trained, protocol=pickle.HIGHEST_PROTOCOL)
    ev = trained.evaluation
    row = EngagementModel(
        workspace_id=workspace_id,
        version=(current or 0) + 1,
        algorithm=ALGORITHM,
        n_train=ev.n_train,
        n_test=ev.n_test,
        mae=ev.mae,
        baseline_mae=ev.baseline_mae,
        spearman=ev.spearman,
        features=list(prediction.COLUMNS),
        blob=blob,
        digest=_digest(secret, blob),
    )
    session.add(row)
    await session.flush()
    return row


async def train_and_store(
    factory: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID | None, secret: str
) -> EngagementModel:
    """Train on the history and store a new version; PermanentJobError when the history
    is too thin (nothing is stored then)."""
    async with factory() as session:
        posts = await training_posts(session, workspace_id)
    if len(posts) < prediction.MIN_TRAINING:
        raise PermanentJobError(
            f"needs at least {prediction.MIN_TRAINING} published posts with impressions "
            f"reported; has {len(posts)}"
        )
    trained = await asyncio.to_thread(prediction.train, posts)
    async with factory() as session, session.begin():
        return await _store(session, workspace_id, trained, secret)


async def run_training(ctx: JobContext) -> dict[str, Any]:
    raw = ctx.payload.get("workspace_id")
    workspace_id = uuid.UUID(raw) if raw else None
    settings = ctx.settings or get_settings()
    await ctx.progress(0.1, "reading the history")
    row = await train_and_store(ctx.factory, workspace_id, load_keys(settings).signing_secret)
    return {
        "version": row.version,
        "n_train": row.n_train,
        "n_test": row.n_test,
        "mae": row.mae,
        "baseline_mae": row.baseline_mae,
        "spearman": row.spearman,
    }


async def queue_weekly(
    factory: async_sessionmaker[AsyncSession], enqueuer: Enqueuer | None, max_attempts: int
) -> int:
    """The weekly retrain: one job per workspace with enough published history, and one
    for the instance prior. Returns the number of jobs queued."""
    async with factory() as session, session.begin():
        counted = (
            select(PostTarget.workspace_id)
            .where(PostTarget.status == TargetStatus.PUBLISHED.value)
            .group_by(PostTarget.workspace_id)
            .having(func.count() >= prediction.MIN_TRAINING)
        )
        workspaces = list((await session.scalars(counted)).all())
        created = [
            jobs.new_job(
                session, TRAIN_KIND, {"workspace_id": str(w)}, max_attempts, workspace_id=w
            )
            for w in workspaces
        ]
        created.append(jobs.new_job(session, TRAIN_KIND, {}, max_attempts, workspace_id=None))
    for job in created:
        await jobs.enqueue(enqueuer, job.id, job.attempts)
    return len(created)


# --- Versions and predictions ------------------------------------------------------------


async def versions(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    workspace_id: uuid.UUID,
    limit: int,
) -> list[EngagementModel]:
    """A workspace's model versions, newest first (readers of the workspace)."""
    principal.require(workspace_id, Action.CONTENT_READ)
    async with factory() as session:
        query = (
            select(EngagementModel)
            .where(EngagementModel.workspace_id == workspace_id)
            .order_by(EngagementModel.version.desc())
            .limit(limit)
        )
        return list((await session.scalars(query)).all())


_models: OrderedDict[uuid.UUID, prediction.Trained] = OrderedDict()


def _unpickle(row: EngagementModel, secret: str) -> prediction.Trained | None:
    cached = _models.get(row.id)
    if cached is not None:
        _models.move_to_end(row.id)
        return cached
    if not hmac.compare_digest(row.digest, _digest(secret, row.blob)):
        log.warning("engagement_model_unverified", model_id=str(row.id))
        return None
    trained = pickle.loads(row.blob)  # noqa: S301 (its HMAC is ours: checked above)
    if not isinstance(trained, prediction.Trained):
        return None
    _models[row.id] = trained
    while len(_models) > _CACHE_SIZE:
        _models.popitem(last=False)
    return trained


async def _newest(
    session: AsyncSession, workspace_id: uuid.UUID
) -> tuple[EngagementModel | None, EngagementModel | None]:
    """The workspace's newest version and the instance prior's: their ids in one
    statement, then each row (its blob is unpickled only when not cached yet)."""

    def newest(owner: Any) -> Any:
        return (
            select(EngagementModel.id)
            .where(owner)
            .order_by(EngagementModel.version.desc())
            .limit(1)
            .scalar_subquery()
        )

    own_id, prior_id = (
        await session.execute(
            select(
                newest(EngagementModel.workspace_id == workspace_id),
                newest(EngagementModel.workspace_id.is_(None)),
            )
        )
    ).one()
    own = await session.get(EngagementModel, own_id) if own_id else None
    prior = await session.get(EngagementModel, prior_id) if prior_id else None
    return own, prior


@dataclass(frozen=True)
class PredictRequest:
    workspace_id: uuid.UUID
    text: str
    platform: str
    content_type: str
    scheduled_at: datetime
    timezone: str = "UTC"
    has_media: bool = False


@dataclass(frozen=True)
class Answer:
    prediction: prediction.Prediction | None
    basis: Basis
    model: EngagementModel | None
    explanation: str


def _check(request: PredictRequest) -> None:
    """A query, so bad input is a BAD_USER_INPUT error rather than payload errors."""
    if not request.text.strip():
        raise BadUserInput("text must not be empty")
    if len(request.text) > MAX_TEXT:
        raise BadUserInput(f"text must be at most {MAX_TEXT} characters")
    if zone(request.timezone) is None:
        raise BadUserInput("timezone: unknown time zone")


async def predict_engagement(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    request: PredictRequest,
    secret: str,
) -> Answer:
    principal.require(request.workspace_id, Action.CONTENT_READ)
    _check(request)
    async with factory() as session:
        own, prior = await _newest(session, request.workspace_id)
    candidates: list[tuple[EngagementModel | None, Basis]] = [
        (own, Basis.WORKSPACE_MODEL),
        (prior, Basis.INSTANCE_MODEL),
    ]
    chosen = next(
        (
            (row, basis, trained)
            for row, basis in candidates
            if row is not None and (trained := _unpickle(row, secret)) is not None
        ),
        None,
    )
    if chosen is None:
        return Answer(
            None,
            Basis.NONE,
            None,
            "No engagement model yet: it needs at least "
            f"{prediction.MIN_TRAINING} published posts with impressions reported.",
        )
    row, basis, trained = chosen
    measured = await analyze_async(request.text)
    tz = zone(request.timezone)
    at = (
        request.scheduled_at
        if request.scheduled_at.tzinfo
        else request.scheduled_at.replace(tzinfo=tz)
    )
    post = prediction.Post(
        words=measured.words,
        flesch_reading_ease=measured.flesch_reading_ease,
        sentiment=measured.sentiment,
        questions=measured.questions,
        has_call_to_action=measured.has_call_to_action,
        hashtag_count=measured.hashtag_count,
        has_media=request.has_media,
        platform=request.platform,
        content_type=request.content_type,
        at=at.astimezone(tz) if tz else at,
    )
    answer = await asyncio.to_thread(prediction.predict, trained, post)
    explanation = (
        f"From your workspace's model, version {row.version} ({row.n_train + row.n_test} posts)."
        if basis is Basis.WORKSPACE_MODEL
        else "From the instance-wide model (your workspace has too little history of its "
        f"own yet), version {row.version}."
    )
    return Answer(answer, basis, row, explanation)


JOB_HANDLERS: dict[str, Handler] = {TRAIN_KIND: run_training}
