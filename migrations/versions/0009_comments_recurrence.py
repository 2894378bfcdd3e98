"""first comments on post targets; recurring posts (post_series, occurrences)

Revision ID: 0009_comments_recurrence
Revises: 0008_publishing
Create Date: 2026-12-02 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_comments_recurrence"
down_revision: str | None = "0008_publishing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMENT_STATUSES = "('NONE', 'PENDING', 'PUBLISHING', 'PUBLISHED', 'FAILED', 'UNKNOWN')"


def upgrade() -> None:
    op.create_table(
        "post_series",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("variation_id", sa.UUID(), nullable=True),
        sa.Column("account_ids", sa.ARRAY(sa.UUID()), nullable=False),
        sa.Column("every_days", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("anchor_local", sa.DateTime(timezone=False), nullable=False),
        sa.Column("first_comment", sa.Text(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.UUID(), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "every_days BETWEEN 1 AND 366", name=op.f("ck_post_series_every_days_valid")
        ),
        sa.CheckConstraint(
            "count IS NULL OR count BETWEEN 1 AND 1000", name=op.f("ck_post_series_count_valid")
        ),
        sa.CheckConstraint(
            "until IS NOT NULL OR count IS NOT NULL", name=op.f("ck_post_series_has_end")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_post_series_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["contents.id"],
            name=op.f("fk_post_series_content_id_contents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variation_id"],
            ["content_variations.id"],
            name=op.f("fk_post_series_variation_id_content_variations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_post_series_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_series")),
    )
    op.create_index("ix_post_series_workspace_id", "post_series", ["workspace_id"])

    op.add_column("scheduled_posts", sa.Column("series_id", sa.UUID(), nullable=True))
    op.add_column("scheduled_posts", sa.Column("occurrence_index", sa.Integer(), nullable=True))
    op.add_column("scheduled_posts", sa.Column("occurrence_slot", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_scheduled_posts_series_id_post_series"),
        "scheduled_posts",
        "post_series",
        ["series_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_unique_constraint(
        op.f("uq_scheduled_posts_series_id_occurrence_index"),
        "scheduled_posts",
        ["series_id", "occurrence_index"],
    )

    op.add_column("post_targets", sa.Column("first_comment", sa.Text(), nullable=True))
    op.add_column(
        "post_targets",
        sa.Column("comment_status", sa.String(length=16), server_default="NONE", nullable=False),
    )
    op.add_column(
        "post_targets",
        sa.Column("comment_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "post_targets", sa.Column("comment_platform_id", sa.String(length=255), nullable=True)
    )
    op.add_column("post_targets", sa.Column("comment_error", sa.Text(), nullable=True))
    op.add_column("post_targets", sa.Column("series_id", sa.UUID(), nullable=True))
    op.create_check_constraint(
        op.f("ck_post_targets_comment_status_valid"),
        "post_targets",
        f"comment_status IN {COMMENT_STATUSES}",
    )
    op.create_index(
        "ix_post_targets_comment_waiting",
        "post_targets",
        ["published_at"],
        postgresql_where=sa.text(
            "status = 'PUBLISHED' AND comment_status IN ('PENDING', 'PUBLISHING')"
        ),
    )


def downgrade() -> None:
    op.drop_index("ix_post_targets_comment_waiting", table_name="post_targets")
    op.drop_constraint(op.f("ck_post_targets_comment_status_valid"), "post_targets", type_="check")
    for column in (
        "series_id",
        "comment_error",
        "comment_platform_id",
        "comment_attempts",
        "comment_status",
        "first_comment",
    ):
        op.drop_column("post_targets", column)
    op.drop_constraint(
        op.f("uq_scheduled_posts_series_id_occurrence_index"), "scheduled_posts", type_="unique"
    )
    op.drop_constraint(
        op.f("fk_scheduled_posts_series_id_post_series"), "scheduled_posts", type_="foreignkey"
    )
    for column in ("occurrence_slot", "occurrence_index", "series_id"):
        op.drop_column("scheduled_posts", column)
    op.drop_index("ix_post_series_workspace_id", table_name="post_series")
    op.drop_table("post_series")
