"""Reading the schedule: a workspace's posts by time (filtered), the calendar grouped by
local day, a post's summary status, and the batched reads the loaders use."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import BadUserInput
from app.models import PostTarget, ScheduledPost
from app.models import TargetStatus as S
from app.models.vocabulary import Platform
from app.pagination import Keyset, Page, fetch_page
from app.permissions import Action
from app.services.publishing.timezones import zone
from app.state import AppState

MAX_CALENDAR_DAYS = 93
MAX_CALENDAR_POSTS = 2000
SOONEST_FIRST = Keyset((ScheduledPost.scheduled_at, ScheduledPost.id), descending=False)
# A post's status is its targets' summed up: the first of these any target has.
PRECEDENCE = (S.PUBLISHING, S.PENDING, S.UNKNOWN, S.FAILED, S.PUBLISHED, S.CANCELLED)


def post_status(statuses: Sequence[str]) -> S:
    """What a post shows: PUBLISHING while any target is being sent, then PENDING while any
    waits, UNKNOWN or FAILED when any ended so, PUBLISHED when all that were not
    cancelled went out, CANCELLED when all were cancelled."""
    present = set(statuses)
    for status in PRECEDENCE:
        if status.value in present:
            return status
    return S.CANCELLED


@dataclass(frozen=True)
class PostFilter:
    starts: datetime | None = None
    ends: datetime | None = None
    status: S | None = None
    platform: Platform | None = None
    account_id: uuid.UUID | None = None


def _conditions(workspace_id: uuid.UUID, filters: PostFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [ScheduledPost.workspace_id == workspace_id]
    if filters.starts is not None:
        where.append(ScheduledPost.scheduled_at >= filters.starts)
    if filters.ends is not None:
        where.append(ScheduledPost.scheduled_at < filters.ends)
    on_target: list[ColumnElement[bool]] = []
    if filters.status is not None:
        on_target.append(PostTarget.status == filters.status.value)
    if filters.platform is not None:
        on_target.append(PostTarget.platform == filters.platform.value)
    if filters.account_id is not None:
        on_target.append(PostTarget.social_account_id == filters.account_id)
    if on_target:
        where.append(
            select(PostTarget.id).where(PostTarget.post_id == ScheduledPost.id, *on_target).exists()
        )
    return where


async def list_posts(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
    filters: PostFilter,
) -> Page[ScheduledPost]:
    """Posts soonest first; status, platform and account match any of a post's targets."""
    principal.require(workspace_id, Action.CONTENT_READ)
    if filters.starts and filters.ends and filters.ends <= filters.starts:
        raise BadUserInput("`to` must be after `from`.", extra={"field": "filter.to"})
    query = select(ScheduledPost).where(*_conditions(workspace_id, filters))
    return await fetch_page(
        state.read_session_factory, query, SOONEST_FIRST, first=first, after=after
    )


@dataclass(frozen=True)
class CalendarDay:
    day: date
    posts: list[ScheduledPost]


def _local(value: datetime, tz_name: str) -> datetime:
    tz = zone(tz_name)
    assert tz is not None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


async def calendar(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    starts: datetime,
    ends: datetime,
    timezone: str,
) -> list[CalendarDay]:
    """Every local day from `starts` to `ends` (times without offset are read in
    `timezone`), each with its posts in time order. A post is on the day its time falls on
    in `timezone`, DST included."""
    principal.require(workspace_id, Action.CONTENT_READ)
    tz = zone(timezone)
    if tz is None:
        raise BadUserInput(f"Unknown time zone {timezone!r}.", extra={"field": "timezone"})
    starts, ends = _local(starts, timezone), _local(ends, timezone)
    if ends <= starts:
        raise BadUserInput("`to` must be after `from`.", extra={"field": "to"})
    first_day = starts.astimezone(tz).date()
    last_day = (ends - timedelta(microseconds=1)).astimezone(tz).date()
    if (last_day - first_day).days + 1 > MAX_CALENDAR_DAYS:
        raise BadUserInput(f"At most {MAX_CALENDAR_DAYS} days at once.", extra={"field": "to"})
    async with state.read_session_factory() as session:
        rows = (
            await session.scalars(
                select(ScheduledPost)
                .where(
                    *_conditions(workspace_id, PostFilter(starts=starts, ends=ends)),
                )
                .order_by(ScheduledPost.scheduled_at, ScheduledPost.id)
                .limit(MAX_CALENDAR_POSTS + 1)
            )
        ).all()
    if len(rows) > MAX_CALENDAR_POSTS:
        raise BadUserInput(
            f"More than {MAX_CALENDAR_POSTS} posts in this range; ask for fewer days.",
            extra={"field": "to"},
        )
    days = {
        first_day + timedelta(days=i): CalendarDay(first_day + timedelta(days=i), [])
        for i in range((last_day - first_day).days + 1)
    }
    for post in rows:
        day = post.scheduled_at.astimezone(tz).date()
        if day in days:
            days[day].posts.append(post)
    return list(days.values())


async def targets_for(
    session: AsyncSession, post_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PostTarget]]:
    rows = await session.scalars(
        select(PostTarget)
        .where(PostTarget.post_id.in_(post_ids))
        .order_by(PostTarget.post_id, PostTarget.created_at, PostTarget.id)
    )
    out: dict[uuid.UUID, list[PostTarget]] = {i: [] for i in post_ids}
    for row in rows.all():
        out[row.post_id].append(row)
    return out


async def targets_updated_since(
    session: AsyncSession, workspace_id: uuid.UUID, since: datetime, limit: int = 200
) -> list[PostTarget]:
    """For subscribers catching up after a gap: targets changed since `since`."""
    rows = await session.scalars(
        select(PostTarget)
        .where(PostTarget.workspace_id == workspace_id, PostTarget.updated_at > since)
        .order_by(PostTarget.updated_at, PostTarget.id)
        .limit(limit)
    )
    return list(rows.all())
