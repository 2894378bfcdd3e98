"""metric snapshots: platform metrics of published targets, and their collection schedule

Revision ID: 0014_metric_snapshots
Revises: 0013_engagement_events
Create Date: 2026-12-02 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_metric_snapshots"
down_revision: str | None = "0013_engagement_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORMS = "('X', 'LINKEDIN', 'FACEBOOK', 'INSTAGRAM', 'THREADS', 'MASTODON', 'BLUESKY', 'EMAIL', 'WEBHOOK')"


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{referred}.id"], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "metric_snapshots",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("target_id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=True),
        sa.Column("reach", sa.BigInteger(), nullable=True),
        sa.Column("likes", sa.BigInteger(), nullable=True),
        sa.Column("comments", sa.BigInteger(), nullable=True),
        sa.Column("shares", sa.BigInteger(), nullable=True),
        sa.Column("clicks", sa.BigInteger(), nullable=True),
        sa.Column("saves", sa.BigInteger(), nullable=True),
        sa.Column(
            "raw", postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"), nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.CheckConstraint(f"platform IN {PLATFORMS}", name=op.f("ck_metric_snapshots_platform_valid")),
        sa.CheckConstraint("step BETWEEN 0 AND 4", name=op.f("ck_metric_snapshots_step_valid")),
        _fk("metric_snapshots", "content_id", "contents"),
        _fk("metric_snapshots", "target_id", "post_targets"),
        _fk("metric_snapshots", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_snapshots")),
    )
    op.create_index(
        "ix_metric_snapshots_target_collected", "metric_snapshots", ["target_id", "collected_at"]
    )
    op.create_index(
        "ix_metric_snapshots_content_collected", "metric_snapshots", ["content_id", "collected_at"]
    )
    op.create_index(
        "ix_metric_snapshots_workspace_collected", "metric_snapshots", ["workspace_id", "collected_at"]
    )
    op.create_table(
        "metric_schedules",
        sa.Column("target_id", sa.UUID(), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metrics_step", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("next_metrics_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("lease_id", sa.UUID(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_collected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "metrics_step BETWEEN 0 AND 5", name=op.f("ck_metric_schedules_metrics_step_valid")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_metric_schedules_attempts_non_negative")),
        _fk("metric_schedules", "target_id", "post_targets"),
        _fk("metric_schedules", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("target_id", name=op.f("pk_metric_schedules")),
    )
    op.create_index(
        "ix_metric_schedules_due", "metric_schedules", ["next_metrics_at"],
        postgresql_where=sa.text("next_metrics_at IS NOT NULL"),
    )
    op.create_index(
        "ix_post_targets_published_at", "post_targets", ["published_at"],
        postgresql_where=sa.text("status = 'PUBLISHED'"),
    )


def downgrade() -> None:
    op.drop_index("ix_post_targets_published_at", table_name="post_targets")
    op.drop_table("metric_schedules")
    op.drop_table("metric_snapshots")
