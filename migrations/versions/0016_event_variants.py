"""event variants: engagement events name the A/B arm they belong to

Revision ID: 0016_event_variants
Revises: 0015_engagement_models
Create Date: 2026-12-02 06:30:00.000000

`variant` is the arm's label ("A" is the content item itself, "B", "C"... its
ContentVariants). The raw events keep it (NULL when the event names none); the deltas and
the rollups key on it, with '' for none (a primary key column cannot be NULL), so an A/B
test counts its arms from the rollups and every other reader sums over it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_event_variants"
down_revision: str | None = "0015_engagement_models"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KEY = ["workspace_id", "bucket_start", "content_id", "target_id", "event_type"]
_ROLLUPS = ("engagement_hourly", "engagement_daily")


def upgrade() -> None:
    # On the partitioned parent: every partition gets the column and the check.
    op.execute("ALTER TABLE engagement_events ADD COLUMN variant varchar(3)")
    op.execute(
        "ALTER TABLE engagement_events ADD CONSTRAINT ck_engagement_events_variant_label "
        "CHECK (variant ~ '^[A-Z]{1,3}$')"
    )
    for table in ("engagement_rollup_deltas", *_ROLLUPS):
        op.add_column(
            table,
            sa.Column("variant", sa.String(length=3), server_default="", nullable=False),
        )
    for table in _ROLLUPS:
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, [*_OLD_KEY, "variant"])


def downgrade() -> None:
    for table in _ROLLUPS:
        # Fold the arms back into one row per old key before the narrower key returns.
        op.execute(
            f"""
            WITH folded AS (
                DELETE FROM {table} RETURNING workspace_id, bucket_start, content_id,
                    target_id, event_type, platform, events, value_sum
            )
            INSERT INTO {table} (workspace_id, bucket_start, content_id, target_id,
                                 event_type, variant, platform, events, value_sum)
            SELECT workspace_id, bucket_start, content_id, target_id, event_type, '',
                   max(platform), sum(events), sum(value_sum)
              FROM folded GROUP BY 1, 2, 3, 4, 5
            """
        )
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, _OLD_KEY)
    for table in ("engagement_rollup_deltas", *_ROLLUPS):
        op.drop_column(table, "variant")
    op.execute("ALTER TABLE engagement_events DROP CONSTRAINT ck_engagement_events_variant_label")
    op.execute("ALTER TABLE engagement_events DROP COLUMN variant")
