"""dashboard rollup: per (workspace, UTC day, content, platform), event types as columns

Revision ID: 0021_dashboard_rollup
Revises: 0020_ingest_speed
Create Date: 2026-12-02 07:20:00.000000

analyticsDashboard aggregated ~140,000 rows of engagement_daily per 30-day request (keyed
by target, type and variant too); `engagement_dashboard_daily` holds the same counts ~7x
denser (app/models/engagement.py EngagementDashboardDaily). The rollup applier keeps it in
the transaction that updates the other rollups (app/services/analytics/rollups.py); this
revision fills it once from engagement_daily (whose counts it must equal), in key order so
a range of days reads adjacent pages. Platform NULL is keyed as '' (a primary key column
cannot be NULL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_dashboard_rollup"
down_revision: str | None = "0020_ingest_speed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "engagement_dashboard_daily"
COUNTERS = {
    "views": "VIEW",
    "impressions": "IMPRESSION",
    "clicks": "CLICK",
    "likes": "LIKE",
    "shares": "SHARE",
    "comments": "COMMENT",
    "conversions": "CONVERSION",
}
PLATFORMS = (
    "X",
    "LINKEDIN",
    "FACEBOOK",
    "INSTAGRAM",
    "THREADS",
    "MASTODON",
    "BLUESKY",
    "EMAIL",
    "WEBHOOK",
)
_FORGOTTEN = (
    "engagement_events",
    "engagement_event_ids",
    "engagement_rollup_deltas",
    "engagement_hourly",
    "engagement_daily",
    "engagement_batches",
)


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


def upgrade() -> None:
    counter = {"server_default": sa.text("0"), "nullable": False}
    op.create_table(
        TABLE,
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        *(sa.Column(name, sa.BigInteger(), **counter) for name in COUNTERS),
        sa.Column("conversion_value", sa.Numeric(precision=30, scale=6), **counter),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "platform = '' OR platform IN (" + ", ".join(repr(p) for p in PLATFORMS) + ")",
            name=op.f(f"ck_{TABLE}_platform_valid"),
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "bucket_start", "content_id", "platform", name=op.f(f"pk_{TABLE}")
        ),
    )
    sums = ",\n".join(
        f"coalesce(sum(events) FILTER (WHERE event_type = '{kind}'), 0)"
        for kind in COUNTERS.values()
    )
    op.execute(
        f"""
        INSERT INTO {TABLE} (workspace_id, bucket_start, content_id, platform,
                             {", ".join(COUNTERS)}, conversion_value)
        SELECT workspace_id, bucket_start, content_id, coalesce(platform, ''),
               {sums},
               coalesce(sum(value_sum) FILTER (WHERE event_type = 'CONVERSION'), 0)
          FROM engagement_daily
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2, 3, 4
        """
    )
    op.execute(f"ANALYZE {TABLE}")
    _forget((*_FORGOTTEN, TABLE))


def downgrade() -> None:
    _forget(_FORGOTTEN)
    op.drop_table(TABLE)
