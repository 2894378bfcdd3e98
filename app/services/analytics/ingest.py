"""Recording a batch of engagement events: one function for `POST /ingest/events` and the
`recordEngagementEvents` mutation.

1. Every event is checked on its own (app/services/analytics/events.py), in a thread for
   large batches; refused events come back with their reasons, the others go on.
2. The contents and post targets the batch names are looked up in one statement, in the
   caller's workspace only: another workspace's id is refused like an unknown one.
3. The good events (the first of each id in the batch; a repeat counts as a duplicate)
   are COPYed into a per-connection temporary staging table, then, under a savepoint, one
   statement with plain inserts: the batch's `engagement_batches` row, the identities
   into `engagement_event_ids` and the raw rows, each carrying the batch id. When an id is
   stored already (a retry; or another batch's, uncommitted, once that commits) the
   identity insert fails with a unique violation: back to the savepoint, and the careful
   statement stores only the new ones (identities ON CONFLICT DO NOTHING, the raw rows of
   those inserted). Duplicates are counted exactly: they are the events not inserted.
4. After commit a rollup job is requested (coalesced per window, app/services/analytics/
   rollups.py), which counts the batch into the rollups within seconds.

Why this shape (bench/README.md has the figures; Postgres CPU per event of a 10,000-event
batch): the single statement it replaces (identities ON CONFLICT, raw rows joined to the
identities returned, rollup deltas grouped from the raw rows returned) cost ~12 us per
event: the arbiter's speculative insertion ~3 us more than a plain insert, the deltas
~4 us (in the bench almost every event is its own hour x content x type bucket). Plain
inserts without deltas cost ~4.5 us, of which the identity's unique B-tree ~3 us: exact
idempotency by id whatever the time needs it (the raw table's unique index would have to
include the time; a 128-bit hash key measured no quicker). A batch row per ingest moves
the grouping to the rollup worker, which does it for many batches at once, off the
ingest path.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.logging import get_logger
from app.permissions import Action
from app.services.analytics import rollups
from app.services.analytics.events import CheckedEvent, IdDecoder, Refusal, check_events, uuid_of
from app.services.audit import trail as audit
from app.state import AppState

log = get_logger(__name__)

# Below this many events checking is quicker than a hop to a thread and back.
THREAD_THRESHOLD = 200

_STAGE = "engagement_stage"
# A temporary table lives with its connection (pooled, so created once per connection)
# and writes no WAL; its rows go at each commit.
_CREATE_STAGE = text(
    f"""
    CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (
        event_id text COLLATE "C" NOT NULL,
        content_id uuid NOT NULL,
        target_id uuid,
        platform text,
        event_type text NOT NULL,
        occurred_at timestamptz NOT NULL,
        value numeric,
        properties jsonb,
        variant text NOT NULL,
        ord integer NOT NULL
    ) ON COMMIT DELETE ROWS
    """
)
_STAGE_COLUMNS = (
    "event_id",
    "content_id",
    "target_id",
    "platform",
    "event_type",
    "occurred_at",
    "value",
    "properties",
    "variant",
    "ord",
)
# The staging rows are CheckedEvents as tuples: their fields are these columns, in this
# order (tests/engagement/test_ingest_paths.py checks), so a plain batch needs no rebuild.
# What the batch names, in the caller's workspace: contents, and targets with their post's
# content and their platform. One statement, whatever the batch size.
_LOOKUP = """
    SELECT c.id, c.id AS content_id, NULL::text AS platform, false AS is_target
      FROM contents c WHERE c.workspace_id = $1 AND c.id = ANY($2::text[]::uuid[])
    UNION ALL
    SELECT t.id, p.content_id, t.platform, true
      FROM post_targets t JOIN scheduled_posts p ON p.id = t.post_id
     WHERE t.workspace_id = $1 AND t.id = ANY($3::text[]::uuid[])
"""
# The common case, a batch of new events: plain inserts (no ON CONFLICT arbiter, no join,
# nothing returned), about half the cost of _INSERT_SOME (bench/README.md). A stored id (a
# retry; or a concurrent batch's uncommitted one, once that commits) fails the identity
# insert with a unique violation, and _INSERT_SOME runs instead: exactly once either way.
# Identities go in in event-id order (in both statements), so concurrent batches take
# their keys in the same order and cannot deadlock. The batch row is what the rollup
# worker counts (rollups.py).
_INSERT_NEW = """
    WITH batch AS (
        INSERT INTO engagement_batches (workspace_id, events, first_at, last_at)
        VALUES ($1, $2, $3, $4)
        RETURNING id
    ), ids AS (
        INSERT INTO engagement_event_ids (workspace_id, event_id, occurred_at)
        SELECT $1, event_id, occurred_at FROM engagement_stage ORDER BY event_id
    )
    INSERT INTO engagement_events (workspace_id, event_id, content_id, target_id, platform,
                                   event_type, occurred_at, value, properties, variant,
                                   batch_id)
    SELECT $1, s.event_id, s.content_id, s.target_id, s.platform, s.event_type,
           s.occurred_at, s.value, s.properties, nullif(s.variant, ''),
           (SELECT id FROM batch)
      FROM engagement_stage s
"""
# With duplicates: identities ON CONFLICT DO NOTHING (in event-id order), the raw rows of
# the identities inserted, and the batch row when any was. Duplicates are exactly the
# staged events it does not insert.
_INSERT_SOME = """
    WITH batch AS MATERIALIZED (
        SELECT nextval(pg_get_serial_sequence('engagement_batches', 'id')) AS id
    ), ids AS (
        INSERT INTO engagement_event_ids (workspace_id, event_id, occurred_at)
        SELECT $1, event_id, occurred_at FROM engagement_stage ORDER BY event_id
        ON CONFLICT DO NOTHING
        RETURNING event_id
    ), raw AS (
        INSERT INTO engagement_events (workspace_id, event_id, content_id, target_id,
                                       platform, event_type, occurred_at, value,
                                       properties, variant, batch_id)
        SELECT $1, s.event_id, s.content_id, s.target_id, s.platform, s.event_type,
               s.occurred_at, s.value, s.properties, nullif(s.variant, ''),
               (SELECT id FROM batch)
          FROM engagement_stage s JOIN ids USING (event_id)
        RETURNING occurred_at
    ), b AS (
        INSERT INTO engagement_batches (id, workspace_id, events, first_at, last_at)
        OVERRIDING SYSTEM VALUE
        SELECT (SELECT id FROM batch), $1, count(*), min(occurred_at), max(occurred_at)
          FROM raw HAVING count(*) > 0
    )
    SELECT count(*) FROM raw
"""


@dataclass
class IngestReport:
    accepted: int = 0
    duplicate: int = 0
    refused: int = 0
    errors: list[Refusal] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "refused": self.refused,
            "errors": [e.as_json() for e in self.errors],
        }


@dataclass(frozen=True)
class Ingest:
    """What recording needs from the process (the API's AppState provides it)."""

    factory: async_sessionmaker[AsyncSession]
    enqueuer: rollups.Enqueuer | None
    max_future: timedelta
    coalesce_seconds: float
    max_events: int

    @classmethod
    def of(cls, state: AppState) -> Ingest:
        settings = state.settings
        return cls(
            factory=state.session_factory,
            enqueuer=state.arq,
            max_future=timedelta(seconds=settings.ingest_max_future_seconds),
            coalesce_seconds=settings.engagement_rollup_coalesce_seconds,
            max_events=settings.ingest_max_events,
        )


async def check(
    items: list[Any], max_future: timedelta, decode: IdDecoder = uuid_of
) -> tuple[list[CheckedEvent], list[Refusal]]:
    """`check_events`, in a thread when the batch is large."""
    if len(items) < THREAD_THRESHOLD:
        return check_events(items, max_future=max_future, decode=decode)
    return await asyncio.to_thread(check_events, items, max_future=max_future, decode=decode)


async def record(
    ingest: Ingest,
    principal: Principal,
    workspace_id: uuid.UUID,
    items: list[Any],
    *,
    decode: IdDecoder = uuid_of,
    checked: tuple[list[CheckedEvent], list[Refusal]] | None = None,
) -> IngestReport:
    """Record `items` (decoded JSON objects, or checked already) in `workspace_id`."""
    principal.require(workspace_id, Action.ENGAGEMENT_RECORD)
    if len(items) > ingest.max_events:
        raise ValidationFailed(
            [
                FieldError(
                    "events",
                    UserErrorCode.TOO_MANY,
                    f"A batch holds at most {ingest.max_events} events.",
                )
            ]
        )
    good, refused = checked or await check(items, ingest.max_future, decode)
    report = IngestReport()
    if good:
        async with ingest.factory() as session, session.begin():
            await session.execute(_CREATE_STAGE)  # also begins the transaction
            connection = await session.connection()
            driver: Any = (await connection.get_raw_connection()).driver_connection
            records, repeated = await _owned(driver, workspace_id, good, refused)
            if records:
                await driver.copy_records_to_table(_STAGE, records=records, columns=_STAGE_COLUMNS)
                report.accepted = await _store(driver, workspace_id, records)
            report.duplicate = repeated + len(records) - report.accepted
            if report.accepted:
                audit.record(
                    session,
                    principal,
                    "recordEngagementEvents",
                    workspace_id=workspace_id,
                    target_type="EngagementEvents",
                    details={"accepted": report.accepted, "duplicate": report.duplicate},
                )
    refused.sort(key=lambda r: r.index)
    report.refused = len(refused)
    report.errors = refused
    if report.accepted:
        await rollups.request(ingest.enqueuer, ingest.coalesce_seconds)
    return report


async def _store(driver: Any, workspace_id: uuid.UUID, records: list[tuple[Any, ...]]) -> int:
    """Store the staged events not stored yet; returns how many were."""
    times = [r[_TIME] for r in records]
    await driver.execute("SAVEPOINT engagement_new")
    try:
        await driver.execute(_INSERT_NEW, workspace_id, len(records), min(times), max(times))
    except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
        # A stored id: back to before the plain inserts (the staged rows stay).
        await driver.execute("ROLLBACK TO SAVEPOINT engagement_new")
        return await _store_some(driver, workspace_id)
    await driver.execute("RELEASE SAVEPOINT engagement_new")
    return len(records)


async def _store_some(driver: Any, workspace_id: uuid.UUID) -> int:
    """The staged events whose ids are not stored yet (some are)."""
    return int(await driver.fetchval(_INSERT_SOME, workspace_id))


async def _owned(
    driver: Any, workspace_id: uuid.UUID, good: list[CheckedEvent], refused: list[Refusal]
) -> tuple[list[tuple[Any, ...]], int]:
    """The staging rows of the events whose content / target is the workspace's, the
    first of each id only, and how many repeated an earlier event of
    the batch; the others join `refused`. Plain tuples: asyncpg's COPY encodes them ~1 us
    quicker per row than named tuples."""
    content_ids = {e.content_id for e in good if e.content_id is not None}
    target_ids = {e.target_id for e in good if e.target_id is not None}
    contents: set[str] = set()
    targets: dict[str, tuple[str, str]] = {}
    for row in await driver.fetch(_LOOKUP, workspace_id, list(content_ids), list(target_ids)):
        if row["is_target"]:
            targets[str(row["id"])] = (str(row["content_id"]), row["platform"])
        else:
            contents.add(str(row["id"]))
    distinct = len({e.event_id for e in good}) == len(good)
    if distinct and not target_ids and content_ids <= contents:
        # The common batch: every event is a staging row as it is.
        return [tuple(e) for e in good], 0
    records: list[tuple[Any, ...]] = []
    ids: set[str] = set()
    repeated = 0
    for event in good:
        if event.target_id is not None:
            found = targets.get(event.target_id)
            if found is None:
                refused.append(Refusal(event.position, event.event_id, "targetId: no such post"))
                continue
            if event.content_id is not None and event.content_id != found[0]:
                refused.append(
                    Refusal(event.position, event.event_id, "targetId is a post of other content")
                )
                continue
            event = event._replace(content_id=found[0], platform=found[1])
        elif event.content_id not in contents:
            refused.append(Refusal(event.position, event.event_id, "contentId: no such content"))
            continue
        if event.event_id in ids:
            repeated += 1  # `good` is in batch order: the first of an id wins
            continue
        ids.add(event.event_id)
        records.append(tuple(event))
    return records, repeated


_TIME = CheckedEvent._fields.index("occurred_at")
