"""dashboard: covering indexes over the engagement rollups for range reads
(app/models/dashboard_indexes.py says why)

Revision ID: 0017_dashboard
Revises: 0016_event_variants
Create Date: 2026-12-02 07:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_dashboard"
down_revision: str | None = "0016_event_variants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["content_id", "platform", "event_type", "events", "value_sum"]


def upgrade() -> None:
    for table in ("engagement_hourly", "engagement_daily"):
        op.create_index(
            f"ix_{table}_range",
            table,
            ["workspace_id", "bucket_start"],
            unique=False,
            postgresql_include=COLUMNS,
        )


def downgrade() -> None:
    for table in ("engagement_hourly", "engagement_daily"):
        op.drop_index(f"ix_{table}_range", table_name=table)
