"""Answering predictEngagement and listing model versions (training and storing them:
app/services/analytics/engagement_model.py; the model itself: prediction.py).

A prediction uses the workspace's newest version, else the instance prior's, else says
that no model exists (no number is invented). Fitted models are unpickled only after
their HMAC checks, and kept in a small per-process cache keyed by version id, so a
prediction reads one row and predicts in a worker thread. `predict_many` serves
predictEngagement and every generated draft's predictedEngagement (a DataLoader per
request: one look-up per workspace, all of a request's drafts in one thread).
"""

from __future__ import annotations

import asyncio
import hmac
import pickle  # only blobs carrying our own HMAC are unpickled
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from app.ai.metrics import analyze
from app.auth import Principal
from app.errors import BadUserInput
from app.logging import get_logger
from app.models import EngagementModel
from app.models.vocabulary import PredictionBasis as Basis
from app.permissions import Action
from app.services.analytics import engagement_model, prediction
from app.services.publishing.timezones import zone

log = get_logger(__name__)

MAX_TEXT = 100_000  # characters predictEngagement measures
_CACHE_SIZE = 32  # fitted models kept in memory per process


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


def _verified(row: EngagementModel, blob: bytes, secret: str) -> prediction.Trained | None:
    """Unpickle `blob` only when its HMAC is ours; cache it by version id."""
    if not hmac.compare_digest(row.digest, engagement_model.digest(secret, blob)):
        log.warning("engagement_model_unverified", model_id=str(row.id))
        return None
    trained = pickle.loads(blob)  # noqa: S301 (its HMAC is ours: checked above)
    if not isinstance(trained, prediction.Trained):
        return None
    _models[row.id] = trained
    while len(_models) > _CACHE_SIZE:
        _models.popitem(last=False)
    return trained


async def _fitted(
    session: AsyncSession, row: EngagementModel, secret: str
) -> prediction.Trained | None:
    """The version's fitted model: from the cache, else its blob read (only then) and
    verified."""
    cached = _models.get(row.id)
    if cached is not None:
        _models.move_to_end(row.id)
        return cached
    blob = await session.scalar(select(EngagementModel.blob).where(EngagementModel.id == row.id))
    return _verified(row, blob, secret) if blob is not None else None


async def _newest(
    session: AsyncSession, workspace_id: uuid.UUID
) -> tuple[EngagementModel | None, EngagementModel | None]:
    """The workspace's newest version and the instance prior's, in one statement, without
    their blobs (read by `_fitted` only for a model not cached yet)."""

    def newest(owner: Any) -> Any:
        return (
            select(EngagementModel.id)
            .where(owner)
            .order_by(EngagementModel.version.desc())
            .limit(1)
            .scalar_subquery()
        )

    own_id, prior_id = (
        newest(EngagementModel.workspace_id == workspace_id),
        newest(EngagementModel.workspace_id.is_(None)),
    )
    rows = await session.scalars(
        select(EngagementModel)
        .options(defer(EngagementModel.blob))
        .where(EngagementModel.id.in_([own_id, prior_id]))
    )
    found = {row.workspace_id: row for row in rows.all()}
    return found.get(workspace_id), found.get(None)


@dataclass(frozen=True)
class PredictRequest:
    """What a prediction is asked for (hashable: the drafts' DataLoader keys by it).
    `platform` None: not for one platform; `scheduled_at` None: no time yet (both then
    take the model's neutral value, prediction.predict's `unknown`)."""

    workspace_id: uuid.UUID
    text: str
    platform: str | None
    content_type: str
    scheduled_at: datetime | None = None
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


# A placeholder for what is unknown: `predict` replaces those columns.
_ANY_TIME = datetime(2000, 1, 3, 12, tzinfo=UTC)


def _post(request: PredictRequest) -> tuple[prediction.Post, list[str]]:
    """The model's view of the request (measuring its text: CPU-bound) and what is unknown."""
    measured = analyze(request.text)
    unknown = []
    at = _ANY_TIME
    if request.scheduled_at is None:
        unknown.append(prediction.POSTING_TIME)
    else:
        tz = zone(request.timezone)
        at = (
            request.scheduled_at
            if request.scheduled_at.tzinfo
            else request.scheduled_at.replace(tzinfo=tz)
        )
        at = at.astimezone(tz) if tz else at
    if request.platform is None:
        unknown.append(prediction.PLATFORM)
    post = prediction.Post(
        words=measured.words,
        flesch_reading_ease=measured.flesch_reading_ease,
        sentiment=measured.sentiment,
        questions=measured.questions,
        has_call_to_action=measured.has_call_to_action,
        hashtag_count=measured.hashtag_count,
        has_media=request.has_media,
        platform=request.platform or "",
        content_type=request.content_type,
        at=at,
    )
    return post, unknown


def _predict_all(
    work: Sequence[tuple[prediction.Trained, PredictRequest]],
) -> list[prediction.Prediction]:
    """Measure and predict every request (synchronous: run in a worker thread)."""
    out = []
    for trained, request in work:
        post, unknown = _post(request)
        out.append(prediction.predict(trained, post, unknown=unknown))
    return out


def _explanation(row: EngagementModel, basis: Basis, request: PredictRequest) -> str:
    text = (
        f"From your workspace's model, version {row.version} ({row.n_train + row.n_test} posts)."
        if basis is Basis.WORKSPACE_MODEL
        else "From the instance-wide model (your workspace has too little history of its "
        f"own yet), version {row.version}."
    )
    if request.scheduled_at is None:
        text += " No posting time given: averaged over past posts' times."
    if request.platform is None:
        text += " No platform given: averaged over past posts' platforms."
    return text


NO_MODEL = (
    "No engagement model yet: it needs at least "
    f"{prediction.MIN_TRAINING} published posts with impressions reported."
)


async def predict_many(
    factory: async_sessionmaker[AsyncSession],
    requests: Sequence[PredictRequest],
    secret: str,
) -> list[Answer]:
    """Answers in the requests' order: one model look-up per workspace (one statement,
    and a blob only for a model not cached yet), then every prediction in one worker
    thread. No permission check: callers pass only workspaces the caller may read."""
    chosen: dict[uuid.UUID, tuple[EngagementModel, Basis, prediction.Trained] | None] = {}
    async with factory() as session:
        for workspace_id in dict.fromkeys(r.workspace_id for r in requests):
            chosen[workspace_id] = None
            own, prior = await _newest(session, workspace_id)
            for row, basis in ((own, Basis.WORKSPACE_MODEL), (prior, Basis.INSTANCE_MODEL)):
                if row is not None and (trained := await _fitted(session, row, secret)) is not None:
                    chosen[workspace_id] = (row, basis, trained)
                    break
    work = [(found[2], r) for r in requests if (found := chosen[r.workspace_id])]
    predictions = iter(await asyncio.to_thread(_predict_all, work) if work else [])
    answers = []
    for request in requests:
        found = chosen[request.workspace_id]
        if found is None:
            answers.append(Answer(None, Basis.NONE, None, NO_MODEL))
            continue
        row, basis, _ = found
        answers.append(Answer(next(predictions), basis, row, _explanation(row, basis, request)))
    return answers


async def predict_engagement(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    request: PredictRequest,
    secret: str,
) -> Answer:
    principal.require(request.workspace_id, Action.CONTENT_READ)
    _check(request)
    [answer] = await predict_many(factory, [request], secret)
    return answer
