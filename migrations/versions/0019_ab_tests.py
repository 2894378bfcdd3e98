"""A/B tests: a content item against its variants, and each test's arms

Revision ID: 0019_ab_tests
Revises: 0017_dashboard
Create Date: 2026-12-02 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_ab_tests"
down_revision: str | None = "0017_dashboard"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ab_tests",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "metric IN ('CTR', 'CONVERSION_RATE', 'ENGAGEMENT_RATE')",
            name=op.f("ck_ab_tests_metric_valid"),
        ),
        sa.CheckConstraint("status IN ('RUNNING', 'STOPPED')", name=op.f("ck_ab_tests_status_valid")),
        sa.CheckConstraint(
            "(status = 'STOPPED') = (stopped_at IS NOT NULL)",
            name=op.f("ck_ab_tests_stopped_at_when_stopped"),
        ),
        sa.CheckConstraint("stopped_at >= started_at", name=op.f("ck_ab_tests_stops_after_start")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_ab_tests_workspace_id_workspaces"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["content_id"], ["contents.id"], name=op.f("fk_ab_tests_content_id_contents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_ab_tests_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_tests")),
    )
    op.create_index(
        "ix_ab_tests_one_running",
        "ab_tests",
        ["content_id"],
        unique=True,
        postgresql_where=sa.text("status = 'RUNNING'"),
    )
    op.create_index("ix_ab_tests_workspace_created", "ab_tests", ["workspace_id", "created_at", "id"])
    op.create_index("ix_ab_tests_content_created", "ab_tests", ["content_id", "created_at", "id"])
    op.create_table(
        "ab_test_arms",
        sa.Column("test_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("label", sa.String(length=3), nullable=False),
        sa.Column("variant_id", sa.UUID(), nullable=True),
        sa.Column("share", sa.Float(), nullable=False),
        sa.CheckConstraint("(position = 0) = (variant_id IS NULL)", name=op.f("ck_ab_test_arms_control_first")),
        sa.CheckConstraint("label ~ '^[A-Z]{1,3}$'", name=op.f("ck_ab_test_arms_label_letters")),
        sa.CheckConstraint("share > 0 AND share <= 1", name=op.f("ck_ab_test_arms_share_range")),
        sa.ForeignKeyConstraint(
            ["test_id"], ["ab_tests.id"], name=op.f("fk_ab_test_arms_test_id_ab_tests"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["content_variants.id"], name=op.f("fk_ab_test_arms_variant_id_content_variants")
        ),
        sa.PrimaryKeyConstraint("test_id", "position", name=op.f("pk_ab_test_arms")),
        sa.UniqueConstraint("test_id", "label", name=op.f("uq_ab_test_arms_test_id_label")),
        sa.UniqueConstraint("test_id", "variant_id", name=op.f("uq_ab_test_arms_test_id_variant_id")),
    )
    op.create_index("ix_ab_test_arms_variant_id", "ab_test_arms", ["variant_id"])


def downgrade() -> None:
    op.drop_index("ix_ab_test_arms_variant_id", table_name="ab_test_arms")
    op.drop_table("ab_test_arms")
    op.drop_index("ix_ab_tests_content_created", table_name="ab_tests")
    op.drop_index("ix_ab_tests_workspace_created", table_name="ab_tests")
    op.drop_index("ix_ab_tests_one_running", table_name="ab_tests")
    op.drop_table("ab_tests")
