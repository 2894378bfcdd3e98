"""engagement events: raw events partitioned by month, identities, rollup deltas, rollups

Revision ID: 0013_engagement_events
Revises: 0011_event_webhooks
Create Date: 2026-12-02 03:40:00.000000

The raw table is declared in plain SQL (declarative partitioning). Its monthly partitions
are created at run time by the worker (app/services/analytics/partitions.py) in the
`engagement_partitions` schema; this migration creates the schema and the DEFAULT
partition, so an event for a month without its own partition is kept, never lost.

Idempotency lives in `engagement_event_ids` (primary key workspace_id + event_id): a
unique index on the partitioned raw table would have to include `occurred_at`, so the
same event re-sent with another time would be stored twice (app/models/engagement.py).

Event ids compare bytewise (COLLATE "C"): they are identifiers, and the identity index
and the batch's sort then compare with memcmp instead of the locale's rules.

No foreign keys on these tables: a per-row RI check (and its lock on the workspace row)
would cost ingest more than the insert itself. A statement trigger on `workspaces`
removes a deleted workspace's analytics instead.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_engagement_events"
down_revision: str | None = "0011_event_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORMS = "('X', 'LINKEDIN', 'FACEBOOK', 'INSTAGRAM', 'THREADS', 'MASTODON', 'BLUESKY', 'EMAIL', 'WEBHOOK')"
EVENT_TYPES = "('VIEW', 'CLICK', 'LIKE', 'SHARE', 'COMMENT', 'IMPRESSION', 'CONVERSION')"


def _rollup(name: str) -> None:
    op.create_table(
        name,
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("target_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=True),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("value_sum", sa.Numeric(30, 6), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "bucket_start", "content_id", "target_id", "event_type",
            name=op.f(f"pk_{name}"),
        ),
    )
    op.create_index(f"ix_{name}_content", name, ["content_id", "bucket_start"])


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE engagement_events (
            workspace_id uuid NOT NULL,
            event_id varchar(128) COLLATE "C" NOT NULL,
            content_id uuid NOT NULL,
            target_id uuid,
            platform varchar(16),
            event_type varchar(16) NOT NULL,
            occurred_at timestamptz NOT NULL,
            value numeric(20, 6),
            properties jsonb,
            received_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT ck_engagement_events_event_type_valid CHECK (event_type IN {EVENT_TYPES}),
            CONSTRAINT ck_engagement_events_platform_valid CHECK (platform IN {PLATFORMS})
        ) PARTITION BY RANGE (occurred_at)
        """
    )
    op.execute(
        "CREATE INDEX ix_engagement_events_occurred_brin ON engagement_events "
        "USING brin (occurred_at)"
    )
    op.execute("CREATE SCHEMA IF NOT EXISTS engagement_partitions")
    op.execute(
        "CREATE TABLE engagement_partitions.engagement_events_default "
        "PARTITION OF engagement_events DEFAULT"
    )
    op.create_table(
        "engagement_event_ids",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.String(length=128, collation="C"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "event_id", name=op.f("pk_engagement_event_ids")),
    )
    op.create_table(
        "engagement_rollup_deltas",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("target_id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=True),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("value_sum", sa.Numeric(30, 6), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement_rollup_deltas")),
    )
    _rollup("engagement_hourly")
    _rollup("engagement_daily")
    # A deleted workspace takes its analytics with it (no foreign keys: see above).
    op.execute(
        """
        CREATE FUNCTION engagement_forget_workspaces() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM engagement_events WHERE workspace_id IN (SELECT id FROM gone);
            DELETE FROM engagement_event_ids WHERE workspace_id IN (SELECT id FROM gone);
            DELETE FROM engagement_rollup_deltas WHERE workspace_id IN (SELECT id FROM gone);
            DELETE FROM engagement_hourly WHERE workspace_id IN (SELECT id FROM gone);
            DELETE FROM engagement_daily WHERE workspace_id IN (SELECT id FROM gone);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER engagement_forget_workspaces AFTER DELETE ON workspaces "
        "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
        "EXECUTE FUNCTION engagement_forget_workspaces()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS engagement_forget_workspaces ON workspaces")
    op.execute("DROP FUNCTION IF EXISTS engagement_forget_workspaces()")
    op.drop_table("engagement_daily")
    op.drop_table("engagement_hourly")
    op.drop_table("engagement_rollup_deltas")
    op.drop_table("engagement_event_ids")
    op.execute("DROP TABLE engagement_events")  # and every partition
    op.execute("DROP SCHEMA IF EXISTS engagement_partitions CASCADE")
