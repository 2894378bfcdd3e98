"""publishing: social accounts, scheduled posts and their targets, posting slots

Revision ID: 0008_publishing
Revises: 0007_text_metrics
Create Date: 2026-12-02 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_publishing"
down_revision: str | None = "0007_text_metrics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORMS = "('X', 'LINKEDIN', 'FACEBOOK', 'INSTAGRAM', 'THREADS', 'MASTODON', 'BLUESKY', 'EMAIL', 'WEBHOOK')"
TARGET_STATUSES = "('PENDING', 'PUBLISHING', 'PUBLISHED', 'FAILED', 'CANCELLED', 'UNKNOWN')"


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "social_accounts",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="CONNECTED", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.UUID(), nullable=True),
        sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(f"platform IN {PLATFORMS}", name=op.f("ck_social_accounts_platform_valid")),
        sa.CheckConstraint(
            "status IN ('CONNECTED', 'NEEDS_RECONNECT', 'DISCONNECTED')",
            name=op.f("ck_social_accounts_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"],
            name=op.f("fk_social_accounts_created_by_id_users"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"],
            name=op.f("fk_social_accounts_workspace_id_workspaces"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_accounts")),
    )
    op.create_index(
        "ix_social_accounts_workspace_created", "social_accounts",
        ["workspace_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )
    op.create_index(
        "uq_social_accounts_external", "social_accounts", ["workspace_id", "platform", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL AND status <> 'DISCONNECTED'"),
    )
    op.create_index(
        "ix_social_accounts_token_expiry", "social_accounts", ["token_expires_at"],
        postgresql_where=sa.text("status = 'CONNECTED' AND token_expires_at IS NOT NULL"),
    )

    op.create_table(
        "scheduled_posts",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("variation_id", sa.UUID(), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.UUID(), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["content_id"], ["contents.id"],
            name=op.f("fk_scheduled_posts_content_id_contents"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"],
            name=op.f("fk_scheduled_posts_created_by_id_users"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["variation_id"], ["content_variations.id"],
            name=op.f("fk_scheduled_posts_variation_id_content_variations"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"],
            name=op.f("fk_scheduled_posts_workspace_id_workspaces"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_posts")),
    )
    op.create_index(
        "ix_scheduled_posts_workspace_scheduled", "scheduled_posts",
        ["workspace_id", "scheduled_at", "id"],
    )
    op.create_index("ix_scheduled_posts_content_id", "scheduled_posts", ["content_id"])

    op.create_table(
        "post_targets",
        sa.Column("post_id", sa.UUID(), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("social_account_id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="PENDING", nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="5", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("in_doubt", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("enqueue_generation", sa.Integer(), server_default="0", nullable=False),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("platform_post_id", sa.String(length=255), nullable=True),
        sa.Column("platform_url", sa.Text(), nullable=True),
        sa.Column("part_ids", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.UUID(), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(f"status IN {TARGET_STATUSES}", name=op.f("ck_post_targets_status_valid")),
        sa.CheckConstraint(f"platform IN {PLATFORMS}", name=op.f("ck_post_targets_platform_valid")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_post_targets_attempts_non_negative")),
        sa.ForeignKeyConstraint(
            ["post_id"], ["scheduled_posts.id"],
            name=op.f("fk_post_targets_post_id_scheduled_posts"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["users.id"],
            name=op.f("fk_post_targets_resolved_by_id_users"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["social_account_id"], ["social_accounts.id"],
            name=op.f("fk_post_targets_social_account_id_social_accounts"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"],
            name=op.f("fk_post_targets_workspace_id_workspaces"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_targets")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_post_targets_idempotency_key")),
        sa.UniqueConstraint(
            "post_id", "social_account_id", name=op.f("uq_post_targets_post_id_social_account_id")
        ),
    )
    op.create_index(
        "ix_post_targets_pending_due", "post_targets", ["next_attempt_at"],
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index(
        "ix_post_targets_publishing_lease", "post_targets", ["locked_until"],
        postgresql_where=sa.text("status = 'PUBLISHING'"),
    )
    op.create_index(
        "ix_post_targets_workspace_scheduled", "post_targets", ["workspace_id", "scheduled_at"]
    )
    op.create_index(
        "ix_post_targets_workspace_status", "post_targets",
        ["workspace_id", "status", "scheduled_at"],
    )
    op.create_index(
        "ix_post_targets_workspace_updated", "post_targets", ["workspace_id", "updated_at"]
    )
    op.create_index(
        "ix_post_targets_account_status", "post_targets", ["social_account_id", "status"]
    )

    op.create_table(
        "posting_slots",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("social_account_id", sa.UUID(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("local_time", sa.Time(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_posting_slots_weekday_valid")),
        sa.ForeignKeyConstraint(
            ["social_account_id"], ["social_accounts.id"],
            name=op.f("fk_posting_slots_social_account_id_social_accounts"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"],
            name=op.f("fk_posting_slots_workspace_id_workspaces"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posting_slots")),
        sa.UniqueConstraint(
            "social_account_id", "weekday", "local_time",
            name=op.f("uq_posting_slots_social_account_id_weekday_local_time"),
        ),
    )
    op.create_index("ix_posting_slots_workspace_id", "posting_slots", ["workspace_id"])


def downgrade() -> None:
    op.drop_table("posting_slots")
    op.drop_table("post_targets")
    op.drop_table("scheduled_posts")
    op.drop_table("social_accounts")
