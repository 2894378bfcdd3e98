"""Engagement models: training them from a workspace's published posts and storing their
versions (the model itself: prediction.py; answering predictions: engagement_scores.py).

Training data is the published history (app/services/analytics/history.py): each
target's latest engagement rate, the stored text metrics of what went out, media,
platform, content type, and the local weekday and hour in the post's own time zone.

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
import pickle  # written here; read back only after its HMAC checks (engagement_scores)
import uuid
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.jobs.store import Enqueuer
from app.logging import get_logger
from app.models import (
    EngagementModel,
    Job,
    PostTarget,
    TargetStatus,
)
from app.permissions import Action
from app.security.keys import load_keys
from app.services.analytics import history, prediction
from app.services.audit import trail as audit
from app.settings import get_settings

log = get_logger(__name__)

TRAIN_KIND = "train_engagement_model"
ALGORITHM = "hist_gradient_boosting.v1"


def _hmac_key(secret: str) -> bytes:
    return hashlib.sha256(f"engagement-models:{secret}".encode()).digest()


def digest(secret: str, blob: bytes) -> str:
    return hmac.new(_hmac_key(secret), blob, hashlib.sha256).hexdigest()


def _post(published: history.PublishedPost) -> prediction.Post | None:
    metrics = published.metrics
    if not metrics:
        return None
    return prediction.Post(
        words=int(metrics.get("words", 0)),
        flesch_reading_ease=float(metrics.get("flesch_reading_ease", 0.0)),
        sentiment=float(metrics.get("sentiment", 0.0)),
        questions=int(metrics.get("questions", 0)),
        has_call_to_action=bool(metrics.get("has_call_to_action", False)),
        hashtag_count=int(metrics.get("hashtag_count", 0)),
        has_media=published.has_media,
        platform=published.platform,
        content_type=published.content_type,
        at=published.at,
        engagement_rate=published.rate,
    )


async def training_posts(
    session: AsyncSession, workspace_id: uuid.UUID | None
) -> list[prediction.Post]:
    return [
        p for p in map(_post, await history.published_posts(session, workspace_id)) if p is not None
    ]


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
        digest=digest(secret, blob),
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


JOB_HANDLERS: dict[str, Handler] = {TRAIN_KIND: run_training}
