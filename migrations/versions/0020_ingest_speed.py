"""ingest speed: raw events name their ingest batch; the rollup worker aggregates batches

Revision ID: 0020_ingest_speed
Revises: 0019_ab_tests
Create Date: 2026-12-02 06:40:00.000000

Ingest no longer writes rollup deltas (app/services/analytics/rollups.py says why): each
ingest writes one `engagement_batches` row in the transaction that stores its raw events,
and every raw row carries that batch's id. The rollup worker deletes batch rows and adds
their raw rows' aggregates to the rollups in one transaction: exactly once, as before.

The raw rows of a batch are found by a BRIN index on `batch_id`: ids grow with time and
rows are appended, so each block range holds a narrow range of ids; inserts cost next to
nothing (a page past the last summarised range is not touched), and autosummarize keeps
the ranges summarised as they fill. Rows from before this revision have no batch
(their deltas were written at ingest and are drained as before).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_ingest_speed"
down_revision: str | None = "0019_ab_tests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _forget(tables: Sequence[str]) -> None:
    deletes = "\n".join(
        f"    DELETE FROM {t} WHERE workspace_id IN (SELECT id FROM gone);" for t in tables
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION engagement_forget_workspaces() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
        {deletes}
            RETURN NULL;
        END $$
        """
    )


_TABLES = (
    "engagement_events",
    "engagement_event_ids",
    "engagement_rollup_deltas",
    "engagement_hourly",
    "engagement_daily",
)


def upgrade() -> None:
    op.execute("ALTER TABLE engagement_events ADD COLUMN batch_id bigint")
    # On the partitioned parent: every partition, and every partition attached later.
    op.execute(
        "CREATE INDEX ix_engagement_events_batch_brin ON engagement_events "
        "USING brin (batch_id) WITH (autosummarize = on)"
    )
    op.create_table(
        "engagement_batches",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement_batches")),
    )
    _forget((*_TABLES, "engagement_batches"))


def downgrade() -> None:
    # Batches not rolled up yet become deltas (what ingest wrote before), so no count is lost.
    op.execute(
        """
        INSERT INTO engagement_rollup_deltas (workspace_id, bucket_start, content_id,
                                              target_id, platform, event_type, variant,
                                              events, value_sum)
        SELECT e.workspace_id, date_trunc('hour', e.occurred_at, 'UTC'), e.content_id,
               coalesce(e.target_id, '00000000-0000-0000-0000-000000000000'::uuid),
               max(e.platform), e.event_type, coalesce(e.variant, ''), count(*),
               coalesce(sum(e.value), 0)
          FROM engagement_events e JOIN engagement_batches b ON b.id = e.batch_id
         GROUP BY 1, 2, 3, 4, 6, 7
        """
    )
    _forget(_TABLES)
    op.drop_table("engagement_batches")
    op.execute("DROP INDEX ix_engagement_events_batch_brin")
    op.execute("ALTER TABLE engagement_events DROP COLUMN batch_id")
