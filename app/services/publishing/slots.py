"""Posting queues: weekly local times per account (setPostingSlots), and addToQueue, which
schedules content at the account's next free slot.

Slots are wall-clock times in the account's zone, so a 09:00 slot stays 09:00 local across
DST; a slot the clocks skip that day is skipped. A slot is free when the account has no
post there that is waiting, going out, out, or unknown.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import FieldError, NotFound, UserErrorCode, ValidationFailed
from app.models import PostingSlot, PostTarget, ScheduledPost, SocialAccount
from app.permissions import Action
from app.services import lookup
from app.services.audit import trail as audit
from app.services.publishing import scheduling
from app.services.publishing.scheduling import ScheduleRequest, refuse
from app.services.publishing.timezones import to_utc, zone
from app.services.publishing.transitions import LIVE
from app.state import AppState

MAX_SLOTS = 50
HORIZON_WEEKS = 8
# A slot this close is not offered: the post must be saved and enqueued before it is due.
MIN_LEAD = timedelta(minutes=1)


@dataclass(frozen=True)
class Slot:
    weekday: int  # 0 Monday .. 6 Sunday
    at: time


async def _account(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> SocialAccount:
    try:
        return await lookup.scoped_row(
            session, SocialAccount, account_id, principal, Action.CONTENT_PUBLISH, for_update=True
        )
    except NotFound:
        raise NotFound("No such social account.") from None


async def set_slots(
    state: AppState,
    principal: Principal,
    account_id: uuid.UUID,
    slots: Sequence[Slot],
    timezone: str,
) -> list[PostingSlot]:
    """Replace the account's weekly slots (an empty list clears them)."""
    errors: list[FieldError] = []
    if zone(timezone) is None:
        errors.append(FieldError("timezone", UserErrorCode.INVALID, f"Unknown zone {timezone!r}."))
    if len(slots) > MAX_SLOTS:
        errors.append(FieldError("slots", UserErrorCode.TOO_MANY, f"At most {MAX_SLOTS}."))
    if any(not 0 <= s.weekday <= 6 for s in slots):
        errors.append(
            FieldError("slots", UserErrorCode.OUT_OF_RANGE, "weekday is 0 (Monday) to 6 (Sunday).")
        )
    unique = {(s.weekday, s.at.replace(second=0, microsecond=0)) for s in slots}
    if len(unique) != len(slots):
        errors.append(FieldError("slots", UserErrorCode.DUPLICATE, "A slot is listed twice."))
    async with state.session_factory() as session, session.begin():
        account = await _account(session, principal, account_id)
        if errors:
            raise ValidationFailed(errors)
        await session.execute(
            delete(PostingSlot).where(PostingSlot.social_account_id == account.id)
        )
        rows = [
            PostingSlot(
                id=uuid.uuid4(),
                workspace_id=account.workspace_id,
                social_account_id=account.id,
                weekday=weekday,
                local_time=at,
                timezone=timezone,
            )
            for weekday, at in sorted(unique)
        ]
        session.add_all(rows)
        audit.record_row(
            session,
            principal,
            "setPostingSlots",
            account,
            {"slots": len(rows), "timezone": timezone},
        )
    return rows


async def slots_for(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PostingSlot]]:
    rows = await session.scalars(
        select(PostingSlot)
        .where(PostingSlot.social_account_id.in_(account_ids))
        .order_by(PostingSlot.social_account_id, PostingSlot.weekday, PostingSlot.local_time)
    )
    out: dict[uuid.UUID, list[PostingSlot]] = {i: [] for i in account_ids}
    for row in rows.all():
        out[row.social_account_id].append(row)
    return out


def occurrences(slots: Sequence[PostingSlot], start: datetime, weeks: int) -> list[datetime]:
    """Every slot's UTC instants from `start` on, for `weeks` weeks, in order."""
    out: list[datetime] = []
    for slot in slots:
        tz = zone(slot.timezone)
        if tz is None:
            continue
        first_day = start.astimezone(tz).date()
        for offset in range(weeks * 7 + 1):
            day = first_day + timedelta(days=offset)
            if day.weekday() != slot.weekday:
                continue
            instant = to_utc(datetime.combine(day, slot.local_time), tz)
            if instant is not None and instant >= start:
                out.append(instant)
    return sorted(out)


async def next_free_slot(
    session: AsyncSession, account_id: uuid.UUID, slots: Sequence[PostingSlot], now: datetime
) -> datetime | None:
    candidates = occurrences(slots, now + MIN_LEAD, HORIZON_WEEKS)
    if not candidates:
        return None
    taken = set(
        (
            await session.scalars(
                select(PostTarget.scheduled_at).where(
                    PostTarget.social_account_id == account_id,
                    PostTarget.status.in_(LIVE),
                    PostTarget.scheduled_at >= candidates[0],
                    PostTarget.scheduled_at <= candidates[-1],
                )
            )
        ).all()
    )
    return next((c for c in candidates if c not in taken), None)


def _queue_lock_key(account_id: uuid.UUID) -> int:
    """The account's addToQueue lock: a signed 64-bit key from its id (a collision only
    serialises two accounts' queues, it never lets two calls share a slot)."""
    return int.from_bytes(account_id.bytes[:8], "big", signed=True)


async def add_to_queue(
    state: AppState, principal: Principal, content_id: uuid.UUID, account_id: uuid.UUID
) -> ScheduledPost:
    """Schedule content on the account's next free slot (same checks as schedulePost).

    Finding the slot and saving the post are one transaction holding the account's
    advisory lock, so two calls for one account at once take two slots, not the same one
    (the second waits until the first commits, then sees its target)."""
    async with state.session_factory() as session, session.begin():
        try:
            account = await lookup.scoped_row(
                session, SocialAccount, account_id, principal, Action.CONTENT_PUBLISH
            )
        except NotFound:
            raise NotFound("No such social account.") from None
        await session.execute(select(func.pg_advisory_xact_lock(_queue_lock_key(account.id))))
        slots = (await slots_for(session, [account.id]))[account.id]
        if not slots:
            raise refuse(
                "socialAccountId",
                UserErrorCode.REQUIRED,
                "The account has no posting slots; set them with setPostingSlots.",
            )
        when = await next_free_slot(session, account.id, slots, datetime.now(UTC))
        if when is None:
            raise refuse(
                "socialAccountId",
                UserErrorCode.TOO_FAR,
                f"No free slot in the next {HORIZON_WEEKS} weeks.",
            )
        request = ScheduleRequest(
            content_id=content_id,
            variation_id=None,
            account_ids=[account.id],
            scheduled_at=when,
            timezone=slots[0].timezone,
        )
        post, targets = await scheduling.schedule_in(state, session, principal, request, when)
    await scheduling.announce(state, targets)
    return post
