"""Time zones, DST-correct: a time chosen as 09:00 Europe/Berlin is 09:00 there on any
day, whatever the UTC offset of that day (zoneinfo, the IANA database)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_NAME = 64


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo | None:
    """The zone called `name`, or None for a name the IANA database does not have."""
    if not name or len(name) > MAX_NAME or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def to_utc(value: datetime, tz: ZoneInfo) -> datetime | None:
    """`value` as a UTC instant. A value without offset is a wall-clock time in `tz`; one
    the clocks skip (02:30 on a spring-forward night) gives None. An ambiguous one (the
    repeated hour in autumn) is the first of the two."""
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    local = value.replace(tzinfo=tz, fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != value:
        return None
    return instant
