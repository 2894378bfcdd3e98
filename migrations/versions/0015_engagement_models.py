"""engagement models: trained versions of each workspace's (and the instance's) model

Revision ID: 0015_engagement_models
Revises: 0014_metric_snapshots
Create Date: 2026-12-02 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_engagement_models"
down_revision: str | None = "0014_metric_snapshots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engagement_models",
        sa.Column("workspace_id", sa.UUID(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("n_test", sa.Integer(), nullable=False),
        sa.Column("mae", sa.Float(), nullable=False),
        sa.Column("baseline_mae", sa.Float(), nullable=False),
        sa.Column("spearman", sa.Float(), nullable=True),
        sa.Column("features", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.CheckConstraint("n_train > 0 AND n_test > 0", name=op.f("ck_engagement_models_sizes_positive")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_engagement_models_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement_models")),
        sa.UniqueConstraint(
            "workspace_id",
            "version",
            name=op.f("uq_engagement_models_workspace_id_version"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(
        "ix_engagement_models_workspace_version", "engagement_models", ["workspace_id", "version"]
    )


def downgrade() -> None:
    op.drop_index("ix_engagement_models_workspace_version", table_name="engagement_models")
    op.drop_table("engagement_models")
