"""Monthly partitions of `engagement_events`, created ahead by the worker.

The migration made the DEFAULT partition: an event for a month without a partition lands
there and is kept. `ensure_partitions` (at worker start-up and every hour; idempotent)
creates this month's partition and the next ENGAGEMENT_PARTITION_MONTHS_AHEAD, plus one for
every month that has rows in the default partition (late or back-filled events), moving
those rows into it. Postgres refuses to attach a partition while the default holds rows
of its range, hence the move: in one transaction, under a lock on the default partition
(ingest into other months goes on), so no event is lost or doubled.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.logging import get_logger
from app.models.engagement import PARTITION_SCHEMA

log = get_logger(__name__)

PARENT = "engagement_events"
DEFAULT = f"{PARTITION_SCHEMA}.{PARENT}_default"
# Bound the months moved out of the default partition per pass (each is a copy).
MAX_BACKFILL_MONTHS = 24
_LOCK_KEY = 0x70617274  # "part": one creator at a time across workers


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{PARENT}_y{start.year:04d}m{start.month:02d}"


async def existing(session: AsyncSession) -> set[str]:
    rows = await session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = :parent AND p.relnamespace = 'public'::regnamespace"
        ),
        {"parent": PARENT},
    )
    return {row[0] for row in rows}


async def _create(session: AsyncSession, start: datetime) -> None:
    """Create and attach the partition of the month starting at `start`, moving its rows
    out of the default partition (inside the caller's transaction)."""
    end = add_months(start, 1)
    name = f"{PARTITION_SCHEMA}.{partition_name(start)}"
    bounds = {"lo": start, "hi": end}
    # Blocks inserts routed to the default partition (not those to other partitions) until
    # commit; ATTACH needs this lock anyway to check the default holds nothing of the range.
    await session.execute(text(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE"))
    await session.execute(
        text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    moved = await session.execute(
        text(
            # Names made here from a date and constants, never from input.
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE occurred_at >= :lo "  # noqa: S608
            f"AND occurred_at < :hi RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    )
    lo, hi = start.isoformat(), end.isoformat()
    await session.execute(
        text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ('{lo}') TO ('{hi}')")
    )
    log.info("engagement_partition_created", partition=name, moved=moved.rowcount)  # type: ignore[attr-defined]


async def ensure_partitions(
    factory: async_sessionmaker[AsyncSession], months_ahead: int, now: datetime | None = None
) -> list[str]:
    """Create the missing partitions; returns the names created (empty when none were)."""
    current = month_start(now or datetime.now(UTC))
    wanted = {add_months(current, i) for i in range(months_ahead + 1)}
    created: list[str] = []
    async with factory() as session, session.begin():
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        have = await existing(session)
        stray = await session.execute(
            text(
                f"SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') "  # noqa: S608
                f"FROM {DEFAULT} LIMIT {MAX_BACKFILL_MONTHS}"
            )
        )
        wanted |= {month_start(row[0]) for row in stray}
        missing = sorted(start for start in wanted if partition_name(start) not in have)
        if missing:
            # Ingest routes each row with the partitions it saw when its statement started:
            # one that started before the ATTACH would put rows of the new month into the
            # default partition, and fail its new constraint. Waiting here for running
            # inserts to end, and holding new ones until commit (they then see the new
            # partition), prevents that. ONLY: inserts lock the parent first; the default
            # partition is locked next, in the same order as inserts, so no deadlock.
            await session.execute(text(f"LOCK TABLE ONLY {PARENT} IN SHARE ROW EXCLUSIVE MODE"))
        for start in missing:
            await _create(session, start)
            created.append(partition_name(start))
    return created


async def run_forever(
    factory: async_sessionmaker[AsyncSession], months_ahead: int, interval_seconds: float = 3600
) -> None:
    """The worker's timer: at start-up, then every `interval_seconds`."""
    while True:
        try:
            await ensure_partitions(factory, months_ahead)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # retried at the next pass; the default partition keeps events
            log.warning("engagement_partitions_failed", error=repr(exc))
        await asyncio.sleep(interval_seconds)
