"""The rule of a recurring post, without the database: checking it at schedule time, and
the time of each slot (slot k is the anchor's wall-clock time k * N local days later, so
09:00 Europe/Berlin stays 09:00 across DST changes; missed slots are skipped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.errors import FieldError, UserErrorCode
from app.models import PostSeries, ScheduledPost
from app.services.publishing.timezones import zone

MAX_EVERY_DAYS = 366
MAX_COUNT = 1000
MAX_SPAN = timedelta(days=2 * 366)


@dataclass(frozen=True)
class Recurrence:
    every_days: int
    until: datetime | None = None
    count: int | None = None


def problems(rule: Recurrence, first: datetime) -> list[FieldError]:
    """Why `rule` cannot start at `first` (UTC), for the user: N >= 1, an end, bounded."""
    field = "recurrence"
    errors: list[FieldError] = []
    if not 1 <= rule.every_days <= MAX_EVERY_DAYS:
        errors.append(
            FieldError(
                f"{field}.everyDays",
                UserErrorCode.INVALID,
                f"Every 1 to {MAX_EVERY_DAYS} days.",
            )
        )
    if rule.until is None and rule.count is None:
        errors.append(
            FieldError(field, UserErrorCode.REQUIRED, "Give an end: until, or a count of posts.")
        )
    if rule.count is not None and not 1 <= rule.count <= MAX_COUNT:
        errors.append(
            FieldError(f"{field}.count", UserErrorCode.INVALID, f"1 to {MAX_COUNT} posts.")
        )
    if rule.until is not None:
        until = rule.until if rule.until.tzinfo else rule.until.replace(tzinfo=UTC)
        if until < first:
            errors.append(
                FieldError(
                    f"{field}.until", UserErrorCode.INVALID, "The end lies before the first post."
                )
            )
        elif until > first + MAX_SPAN:
            errors.append(
                FieldError(
                    f"{field}.until",
                    UserErrorCode.TOO_FAR,
                    "A series ends at most two years after its first post.",
                )
            )
    return errors


def local_wall_time(instant: datetime, timezone: str) -> datetime:
    tz = zone(timezone)
    assert tz is not None  # checked when scheduling
    return instant.astimezone(tz).replace(tzinfo=None)


def slot_time(anchor_local: datetime, every_days: int, slot: int, timezone: str) -> datetime:
    """Slot `slot`'s UTC instant: the anchor's wall-clock time `slot * every_days` local
    days later. A wall time the clocks skip goes out at the same instant an hour on; the
    repeated autumn hour takes its first pass."""
    tz = zone(timezone)
    assert tz is not None
    local = anchor_local + timedelta(days=slot * every_days)
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def next_slot(series: PostSeries, after_slot: int, now: datetime) -> tuple[int, datetime] | None:
    """The first slot after `after_slot` that is later than `now` (missed ones skipped),
    or None when it would pass the series' `until`."""
    every = series.every_days
    elapsed = (local_wall_time(now, series.timezone) - series.anchor_local).days
    slot = max(after_slot + 1, elapsed // every)
    when = slot_time(series.anchor_local, every, slot, series.timezone)
    while when <= now:
        slot += 1
        when = slot_time(series.anchor_local, every, slot, series.timezone)
    if series.until is not None and when > series.until:
        return None
    return slot, when


def upcoming(series: PostSeries, post: ScheduledPost, now: datetime) -> datetime | None:
    """When the occurrence after `post` will be due if it is not made yet (None: the
    series stops before it)."""
    if series.cancelled_at is not None or series.ended_at is not None:
        return None
    if post.occurrence_index is None or post.occurrence_slot is None:
        return None
    if series.count is not None and post.occurrence_index + 1 >= series.count:
        return None
    found = next_slot(series, post.occurrence_slot, max(now, post.scheduled_at))
    return found[1] if found else None
