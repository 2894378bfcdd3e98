"""Hourly and daily engagement rollups, kept by adding counts of ingest batches.

Why batches, and why exactly once: each ingest writes, in the transaction that stores its
raw events, one `engagement_batches` row, and each raw row it inserts carries that
batch's id (duplicates insert nothing, so they add nothing; a late or out-of-order event
adds to its own old bucket). `apply_pending` deletes a chunk of batch rows and adds the
counts and value sums of their raw rows, per (hour, content, target, type, variant), to
`engagement_hourly` and `engagement_daily` in ONE transaction: a batch is counted
exactly when its row is deleted, so a crash, a re-run or a second worker can neither
lose nor double it (its raw rows committed with its row, so they are all visible). A
transaction-level advisory lock makes appliers take turns: without it two of them would
upsert the same rollup rows in different orders and could deadlock; with it, the one
that waited starts after the other's commit and sees only the batches left.

The same statement keeps `engagement_dashboard_daily` (per UTC day, content and platform,
the event types as columns: what analyticsDashboard reads for whole days) from the same
grouped rows, for batches and legacy deltas alike: it moves with the other rollups.

Why not deltas written by ingest (what it did before revision 0020, still drained here):
grouping every batch's rows into one delta row per bucket cost ingest ~4 us per event of
Postgres CPU (bench/README.md), a third of the ingest statement; the worker groups the
rows of up to BATCH_CHUNK batches in one pass instead, found through a BRIN index on
`batch_id` (ids grow as rows are appended: next to free for ingest) and pruned to the
batches' partitions by their time bounds. Its cost per event is the same grouping and
rollup upserts the deltas needed, moved off the ingest path.

Triggers: `request` after each ingest commit asks arq for one job per window
(ENGAGEMENT_ROLLUP_COALESCE_SECONDS), deferred to the window's end, so all ingests of a
window share one run that starts after them; the worker also sweeps every
ENGAGEMENT_ROLLUP_SWEEP_SECONDS, so a lost trigger (Redis away) only delays the rollups.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.logging import get_logger
from app.models.engagement import DASHBOARD_COUNTERS

log = get_logger(__name__)

ROLLUP_FUNCTION = "rollup_engagement"
# Any constant shared by every applier (pg_advisory_xact_lock's key space is global).
_LOCK_KEY = 0x656E6761  # "enga"
CHUNK = 50_000
# Batches per transaction (up to INGEST_MAX_EVENTS raw rows each): the more rows one pass
# groups, the fewer rollup upserts per event (1,000,000 bench events: 21 us/event with 20,
# 13 us with 50; bench/README.md).
BATCH_CHUNK = 50

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# Deltas: what ingest wrote before batches (revision 0020); nothing writes them now.
_DELTAS = """
    WITH taken AS (
        DELETE FROM engagement_rollup_deltas
         WHERE id IN (SELECT id FROM engagement_rollup_deltas ORDER BY id LIMIT :chunk)
        RETURNING workspace_id, bucket_start, content_id, target_id, platform, event_type,
                  variant, events, value_sum
"""
# The raw rows of the batches taken: the range of ids for the BRIN index, the times for
# partition pruning, the ids themselves for the exact set.
_BATCH_ROWS = """
    WITH taken AS (
        SELECT workspace_id, date_trunc('hour', occurred_at, 'UTC') AS bucket_start,
               content_id,
               coalesce(target_id, '00000000-0000-0000-0000-000000000000'::uuid) AS target_id,
               max(platform) AS platform, event_type, coalesce(variant, '') AS variant,
               count(*) AS events, coalesce(sum(value), 0) AS value_sum
          FROM engagement_events
         WHERE batch_id BETWEEN :low AND :high AND batch_id = ANY(CAST(:ids AS bigint[]))
           AND occurred_at BETWEEN :first AND :last
         GROUP BY 1, 2, 3, 4, 6, 7
"""
_TAKE_BATCHES = text(
    """
    DELETE FROM engagement_batches
     WHERE id IN (SELECT id FROM engagement_batches ORDER BY id LIMIT :chunk)
    RETURNING id, first_at, last_at
    """
)
# Adds `taken` (counts per hour bucket, content, target, type and variant) to the rollups:
# hourly, daily, and the dashboard's daily one per (content, platform) with the types as
# columns (`dd`), all in the statement that takes the batches or deltas, so each is counted
# once in every rollup.
_ADD = """
    ), hourly AS (
        SELECT workspace_id, bucket_start, content_id, target_id, event_type, variant,
               max(platform) AS platform, sum(events) AS events, sum(value_sum) AS value_sum
          FROM taken
         GROUP BY workspace_id, bucket_start, content_id, target_id, event_type, variant
    ), h AS (
        INSERT INTO engagement_hourly AS r (workspace_id, bucket_start, content_id, target_id,
                                            event_type, variant, platform, events,
                                            value_sum)
        SELECT * FROM hourly
         ORDER BY workspace_id, bucket_start, content_id, target_id, event_type, variant
        ON CONFLICT (workspace_id, bucket_start, content_id, target_id, event_type, variant)
        DO UPDATE SET events = r.events + EXCLUDED.events,
                      value_sum = r.value_sum + EXCLUDED.value_sum,
                      platform = coalesce(EXCLUDED.platform, r.platform),
                      updated_at = now()
    ), d AS (
        INSERT INTO engagement_daily AS r (workspace_id, bucket_start, content_id, target_id,
                                           event_type, variant, platform, events,
                                           value_sum)
        SELECT workspace_id, date_trunc('day', bucket_start, 'UTC'), content_id, target_id,
               event_type, variant, max(platform), sum(events), sum(value_sum)
          FROM hourly
         GROUP BY 1, 2, 3, 4, 5, 6
         ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (workspace_id, bucket_start, content_id, target_id, event_type, variant)
        DO UPDATE SET events = r.events + EXCLUDED.events,
                      value_sum = r.value_sum + EXCLUDED.value_sum,
                      platform = coalesce(EXCLUDED.platform, r.platform),
                      updated_at = now()
    ), dd AS (
        INSERT INTO engagement_dashboard_daily AS r (workspace_id, bucket_start, content_id,
                                                     platform, {columns}, conversion_value)
        SELECT workspace_id, date_trunc('day', bucket_start, 'UTC'), content_id,
               coalesce(platform, ''), {sums},
               coalesce(sum(value_sum) FILTER (WHERE event_type = 'CONVERSION'), 0)
          FROM hourly
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2, 3, 4
        ON CONFLICT (workspace_id, bucket_start, content_id, platform)
        DO UPDATE SET {adds},
                      conversion_value = r.conversion_value + EXCLUDED.conversion_value,
                      updated_at = now()
    )
    SELECT count(*) FROM taken
""".format(  # noqa: S608 (column names and event types are constants of this code)
    columns=", ".join(DASHBOARD_COUNTERS),
    sums=", ".join(
        f"coalesce(sum(events) FILTER (WHERE event_type = '{kind}'), 0)"
        for kind in DASHBOARD_COUNTERS.values()
    ),
    adds=", ".join(f"{c} = r.{c} + EXCLUDED.{c}" for c in DASHBOARD_COUNTERS),
)
_APPLY_DELTAS = text(_DELTAS + _ADD)
_APPLY_BATCHES = text(_BATCH_ROWS + _ADD)


class Enqueuer(Protocol):
    async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> Any: ...


def window_job(now: float, coalesce_seconds: float) -> tuple[str, datetime]:
    """The arq job id and start time of the window `now` falls in: every request of a
    window names the same job (arq keeps one), which starts at the window's end."""
    window = math.floor(now / coalesce_seconds) + 1
    due = datetime.fromtimestamp(window * coalesce_seconds, UTC)
    return f"engagement-rollup:{coalesce_seconds:g}:{window}", due


async def request(enqueuer: Enqueuer | None, coalesce_seconds: float) -> None:
    """Ask for a rollup run soon after a committed ingest. A failure is logged, not
    raised: the events are stored, and the worker's sweep adds them a little later."""
    if enqueuer is None:
        return
    job_id, due = window_job(time.time(), coalesce_seconds)
    try:
        await enqueuer.enqueue_job(ROLLUP_FUNCTION, _job_id=job_id, _defer_until=due)
    except Exception as exc:
        log.warning("engagement_rollup_request_failed", error=repr(exc))


async def apply_pending(
    factory: async_sessionmaker[AsyncSession], chunk: int = CHUNK, batches: int = BATCH_CHUNK
) -> int:
    """Add every pending delta and batch to the rollups, `chunk` deltas or `batches`
    batches per transaction; returns how many deltas and batches were applied."""
    applied = 0
    while True:
        async with factory() as session, session.begin():
            await session.execute(_LOCK, {"key": _LOCK_KEY})
            taken = int((await session.execute(_APPLY_DELTAS, {"chunk": chunk})).scalar_one())
        applied += taken
        if taken < chunk:
            break
    while True:
        async with factory() as session, session.begin():
            await session.execute(_LOCK, {"key": _LOCK_KEY})
            rows = (await session.execute(_TAKE_BATCHES, {"chunk": batches})).all()
            if rows:
                ids = [row.id for row in rows]
                bounds = {
                    "ids": ids,
                    "low": min(ids),
                    "high": max(ids),
                    "first": min(row.first_at for row in rows),
                    "last": max(row.last_at for row in rows),
                }
                await session.execute(_APPLY_BATCHES, bounds)
        applied += len(rows)
        if len(rows) < batches:
            return applied


async def run_forever(factory: async_sessionmaker[AsyncSession], interval_seconds: float) -> None:
    """The worker's sweep: apply pending batches (and deltas) every `interval_seconds`."""
    while True:
        try:
            await apply_pending(factory)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away: the next pass catches up
            log.warning("engagement_rollup_sweep_failed", error=repr(exc))
        await asyncio.sleep(interval_seconds)
