"""text metrics: each content item's and variation's metrics and brand-voice warnings

Revision ID: 0007_text_metrics
Revises: 0006_variants
Create Date: 2026-12-02 10:00:00

Existing rows are measured lazily: one `refresh_text_metrics` job per workspace that has
content, queued here (the sweeper hands queued jobs that were never enqueued to a worker),
so the migration itself stays fast whatever the size of the library. Until its job has
run, a row's metrics are null (the API shows no metrics and no warnings).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Chained after the other 0006/0007 migrations by whoever merges them.
revision: str = "0007_text_metrics"
down_revision: str | None = "0006_variants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# app/services/content/text_metrics.py REFRESH_KIND (not imported: a migration is frozen).
REFRESH_KIND = "refresh_text_metrics"


def upgrade() -> None:
    for table in ("contents", "content_variations"):
        op.add_column(table, sa.Column("text_metrics", postgresql.JSONB(), nullable=True))
        op.add_column(table, sa.Column("text_metrics_version", sa.Integer(), nullable=True))
    op.execute(
        sa.text(
            "INSERT INTO jobs (id, workspace_id, kind, status, payload, max_attempts) "
            "SELECT gen_random_uuid(), w.id, :kind, 'QUEUED', "
            "jsonb_build_object('workspace_id', w.id::text), 5 "
            "FROM workspaces w WHERE EXISTS (SELECT 1 FROM contents c WHERE c.workspace_id = w.id)"
        ).bindparams(kind=REFRESH_KIND)
    )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM jobs WHERE kind = :kind AND status = 'QUEUED'").bindparams(
            kind=REFRESH_KIND
        )
    )
    for table in ("content_variations", "contents"):
        op.drop_column(table, "text_metrics_version")
        op.drop_column(table, "text_metrics")
