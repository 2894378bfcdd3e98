"""Platform metrics collection: the schedule and its state in Postgres.

Each PUBLISHED target (with a platform post id, on a platform that reports metrics) gets a
`metric_schedules` row, found by `discover`. Its metrics are collected at five steps after
`published_at` (STEPS: 1 h, 6 h, 24 h, 72 h, 7 d); each collection inserts one
`metric_snapshots` row and moves the schedule to the next step. Every write here is guarded:

- `claim` takes due rows with `FOR UPDATE SKIP LOCKED` and, in the same statement, pushes
  their due time to the end of a lease and stamps a fresh `lease_id`; a second collector
  skips them while the first holds them, and finds them due again only if the first died;
- `collected`, `failed` and `paused` write only while the row still carries the claim's
  `lease_id` (a collector whose lease ran out writes nothing, not even its snapshot).

A failure never touches earlier snapshots (they are only ever inserted). It is retried
within the step after a back-off (at least the platform's retry-after); after
METRICS_MAX_ATTEMPTS failures the step is skipped. An account that cannot be used
(NEEDS_RECONNECT, disconnected) pauses its schedules: they are looked at again after
METRICS_BACKOFF_MAX_SECONDS and resume once it is reconnected, until GRACE after the last
step. Steps that passed while nothing could be collected (a late discovery, an outage, a
pause) are folded into the next collection rather than fetched one after another.

Times come from the caller (`now`), so tests drive the schedule with a clock of their own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import MetricSchedule, MetricSnapshot, PostTarget, ScheduledPost, SocialAccount
from app.models import TargetStatus as S
from app.models.metrics import STEP_COUNT
from app.models.vocabulary import Platform
from app.platforms.publishing import Metrics, Published
from app.settings import Settings

STEPS: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=24),
    timedelta(hours=72),
    timedelta(days=7),
)
assert len(STEPS) == STEP_COUNT
# A paused schedule (its account needs reconnecting) is closed this long after its last step.
GRACE = timedelta(days=1)
# Adapters that report nothing back (SMTP, a webhook): no schedule, no empty snapshots.
NO_METRICS = frozenset({Platform.EMAIL, Platform.WEBHOOK})
MAX_ERROR = 1000
# Keys of the platforms' raw counters that mean "saved" (Instagram, X bookmarks).
SAVE_KEYS = ("saved", "saves", "bookmark_count")


def due_at(published_at: datetime, step: int) -> datetime | None:
    """When `step` is due; None past the last step (finished)."""
    return published_at + STEPS[step] if step < len(STEPS) else None


def step_after(published_at: datetime, step: int, now: datetime) -> int:
    """The step to collect after `step` at `now`: later steps already due are folded in."""
    following = step + 1
    while following < len(STEPS) and published_at + STEPS[following] <= now:
        following += 1
    return following


def backoff_seconds(settings: Settings, attempts: int, retry_after: float | None) -> float:
    """Exponential from METRICS_BACKOFF_SECONDS, capped; never sooner than retry-after."""
    delay = min(
        settings.metrics_backoff_seconds * 2 ** max(0, attempts - 1),
        settings.metrics_backoff_max_seconds,
    )
    return float(max(delay, retry_after or 0.0))


@dataclass(frozen=True)
class Claimed:
    """One claimed target: what its collection needs and the lease that guards its writes."""

    target_id: uuid.UUID
    lease_id: uuid.UUID
    step: int
    attempts: int
    published_at: datetime
    workspace_id: uuid.UUID
    content_id: uuid.UUID
    platform: Platform
    published: Published
    account_id: uuid.UUID
    account_status: str
    sealed_credentials: str | None


def _unscheduled(now: datetime) -> list[ColumnElement[bool]]:
    """Published targets with metrics to collect and no schedule yet. Those published
    before the last step's time plus GRACE are left alone: nothing is left to collect."""
    known = select(MetricSchedule.target_id).where(MetricSchedule.target_id == PostTarget.id)
    return [
        PostTarget.status == S.PUBLISHED.value,
        PostTarget.published_at > now - STEPS[-1] - GRACE,
        PostTarget.platform_post_id.is_not(None),
        PostTarget.platform.not_in([p.value for p in NO_METRICS]),
        ~known.exists(),
    ]


async def discover(session: AsyncSession, now: datetime, limit: int) -> int:
    """Schedule recently published targets that have none yet (idempotent)."""
    found = (
        select(
            PostTarget.id,
            PostTarget.workspace_id,
            PostTarget.published_at,
            PostTarget.published_at + literal(STEPS[0]),
        )
        .where(*_unscheduled(now))
        .order_by(PostTarget.published_at)
        .limit(limit)
    )
    # ON CONFLICT: two collectors may discover the same target at once.
    stmt = (
        pg_insert(MetricSchedule)
        .from_select(["target_id", "workspace_id", "published_at", "next_metrics_at"], found)
        .on_conflict_do_nothing(index_elements=["target_id"])
        .returning(MetricSchedule.target_id)
    )
    result = await session.execute(stmt)
    return len(result.all())


async def due_or_new(session: AsyncSession, now: datetime) -> bool:
    """Whether a pass has anything to do: a due schedule, or a target to schedule (two
    index probes; the collector task skips idle passes with it)."""
    due = select(MetricSchedule.target_id).where(
        MetricSchedule.next_metrics_at.is_not(None), MetricSchedule.next_metrics_at <= now
    )
    new = select(PostTarget.id).where(*_unscheduled(now))
    return bool(await session.scalar(select(due.exists() | new.exists())))


async def claim(
    session: AsyncSession,
    now: datetime,
    lease_seconds: float,
    limit: int,
    *,
    skip: list[uuid.UUID] | None = None,
) -> list[Claimed]:
    """Up to `limit` due schedules, soonest first, held for `lease_seconds` (in the caller's
    transaction; commit it before fetching). `skip`: targets this pass already tried."""
    due = (
        select(MetricSchedule.target_id)
        .where(MetricSchedule.next_metrics_at.is_not(None), MetricSchedule.next_metrics_at <= now)
        .order_by(MetricSchedule.next_metrics_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if skip:
        due = due.where(MetricSchedule.target_id.not_in(skip))
    lease_id = uuid.uuid4()
    rows = (
        await session.execute(
            update(MetricSchedule)
            .where(MetricSchedule.target_id.in_(due.scalar_subquery()))
            .values(next_metrics_at=now + timedelta(seconds=lease_seconds), lease_id=lease_id)
            .returning(
                MetricSchedule.target_id,
                MetricSchedule.metrics_step,
                MetricSchedule.attempts,
                MetricSchedule.published_at,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not rows:
        return []
    schedules = {row.target_id: row for row in rows}
    details = await session.execute(
        select(
            PostTarget.id,
            PostTarget.workspace_id,
            PostTarget.platform,
            PostTarget.platform_post_id,
            PostTarget.platform_url,
            PostTarget.part_ids,
            PostTarget.social_account_id,
            ScheduledPost.content_id,
            SocialAccount.status,
            SocialAccount.credentials,
        )
        .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
        .join(SocialAccount, SocialAccount.id == PostTarget.social_account_id)
        .where(PostTarget.id.in_(list(schedules)))
    )
    claimed = []
    for row in details.all():
        schedule = schedules[row.id]
        claimed.append(
            Claimed(
                target_id=row.id,
                lease_id=lease_id,
                step=schedule.metrics_step,
                attempts=schedule.attempts,
                published_at=schedule.published_at,
                workspace_id=row.workspace_id,
                content_id=row.content_id,
                platform=Platform(row.platform),
                published=Published(
                    platform_post_id=row.platform_post_id or "",
                    url=row.platform_url,
                    part_ids=tuple(row.part_ids or ()),
                ),
                account_id=row.social_account_id,
                account_status=row.status,
                sealed_credentials=row.credentials,
            )
        )
    return claimed


async def _move(session: AsyncSession, claimed: Claimed, values: dict[str, Any]) -> bool:
    """Write the outcome if the claim still holds the row (and release it)."""
    result = await session.execute(
        update(MetricSchedule)
        .where(
            MetricSchedule.target_id == claimed.target_id,
            MetricSchedule.lease_id == claimed.lease_id,
        )
        .values(lease_id=None, **values)
        .returning(MetricSchedule.target_id)
        .execution_options(synchronize_session=False)
    )
    return result.first() is not None


def _count(value: object) -> int | None:
    """A counter as stored: a non-negative int, else unknown."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _saves(raw: dict[str, Any]) -> int | None:
    for key in SAVE_KEYS:
        value = _count(raw.get(key))
        if value is not None:
            return value
    return None


def _raw(metrics: Metrics) -> dict[str, Any]:
    """The platform's counters, kept as JSON: scalars only (bounded, no nested bodies)."""
    return {
        str(k): v
        for k, v in list(metrics.raw.items())[:50]
        if isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) <= 200)
    }


async def collected(
    session: AsyncSession, claimed: Claimed, metrics: Metrics, now: datetime
) -> MetricSnapshot | None:
    """Store the snapshot and move to the next step; None if the lease was lost."""
    served = step_after(claimed.published_at, claimed.step, now) - 1
    following = served + 1
    moved = await _move(
        session,
        claimed,
        {
            "metrics_step": following,
            "next_metrics_at": due_at(claimed.published_at, following),
            "attempts": 0,
            "last_error": None,
            "last_collected_at": now,
        },
    )
    if not moved:
        return None
    raw = _raw(metrics)
    snapshot = MetricSnapshot(
        id=uuid.uuid4(),
        workspace_id=claimed.workspace_id,
        content_id=claimed.content_id,
        target_id=claimed.target_id,
        platform=claimed.platform.value,
        step=served,
        collected_at=now,
        impressions=_count(metrics.impressions),
        reach=_count(metrics.reach),
        likes=_count(metrics.likes),
        comments=_count(metrics.comments),
        shares=_count(metrics.shares),
        clicks=_count(metrics.clicks),
        saves=_saves(dict(metrics.raw)),
        raw=raw,
    )
    session.add(snapshot)
    await session.flush()
    return snapshot


async def failed(
    session: AsyncSession,
    settings: Settings,
    claimed: Claimed,
    now: datetime,
    error: str,
    *,
    retry_after: float | None = None,
) -> str:
    """A fetch failed: retry within the step after a back-off, or skip the step once out of
    attempts. Returns "retrying", "skipped" or "lost-lease"."""
    attempts = claimed.attempts + 1
    values: dict[str, Any] = {"last_error": error[:MAX_ERROR]}
    if attempts >= settings.metrics_max_attempts:
        following = step_after(claimed.published_at, claimed.step, now)
        values.update(
            metrics_step=following,
            next_metrics_at=due_at(claimed.published_at, following),
            attempts=0,
        )
        outcome = "skipped"
    else:
        delay = backoff_seconds(settings, attempts, retry_after)
        values.update(next_metrics_at=now + timedelta(seconds=delay), attempts=attempts)
        outcome = "retrying"
    return outcome if await _move(session, claimed, values) else "lost-lease"


async def paused(
    session: AsyncSession, settings: Settings, claimed: Claimed, now: datetime, reason: str
) -> str:
    """The account cannot be used: look again later (no attempt counted), or close the
    schedule once GRACE after its last step passed. Returns "paused", "closed" or
    "lost-lease"."""
    if now > claimed.published_at + STEPS[-1] + GRACE:
        values: dict[str, Any] = {"metrics_step": STEP_COUNT, "next_metrics_at": None}
        outcome = "closed"
    else:
        pause = timedelta(seconds=max(settings.metrics_backoff_max_seconds, 1.0))
        values = {"next_metrics_at": now + pause}
        outcome = "paused"
    values["last_error"] = reason[:MAX_ERROR]
    return outcome if await _move(session, claimed, values) else "lost-lease"
