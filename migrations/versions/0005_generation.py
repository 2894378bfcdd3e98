"""generation records

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01 22:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# 0004 is being added in parallel on another branch; whoever merges sets this to it.
revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Jobs can be cancelled (cancelGeneration).
    op.drop_constraint(op.f('ck_jobs_status_valid'), 'jobs', type_='check')
    op.create_check_constraint(
        op.f('ck_jobs_status_valid'), 'jobs',
        "status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')",
    )
    op.create_table('generations',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('job_id', sa.UUID(), nullable=False),
    sa.Column('created_by_id', sa.UUID(), nullable=True),
    sa.Column('operation', sa.String(length=16), nullable=False),
    sa.Column('content_type', sa.String(length=16), nullable=False),
    sa.Column('request', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('prompt_template', sa.String(length=100), nullable=False),
    sa.Column('prompt_version', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('input_tokens', sa.Integer(), server_default='0', nullable=False),
    sa.Column('output_tokens', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tokens_estimated', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('cost_usd', sa.Numeric(precision=12, scale=6), nullable=True),
    sa.Column('first_token_ms', sa.Float(), nullable=True),
    sa.Column('total_ms', sa.Float(), nullable=True),
    sa.Column('provider_calls', sa.Integer(), server_default='0', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('calls', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('partial', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('alternatives', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('content_id', sa.UUID(), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("operation IN ('GENERATE', 'REFINE', 'TRANSFORM')", name=op.f('ck_generations_operation_valid')),
    sa.ForeignKeyConstraint(['content_id'], ['contents.id'], name=op.f('fk_generations_content_id_contents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_generations_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_generations_job_id_jobs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_generations_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generations'))
    )
    op.create_index('ix_generations_content_id', 'generations', ['content_id'], unique=False)
    op.create_index('ix_generations_workspace_created', 'generations', ['workspace_id', sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('ix_generations_workspace_fingerprint', 'generations', ['workspace_id', 'fingerprint'], unique=False)
    op.create_index('uq_generations_job_id', 'generations', ['job_id'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_generations_job_id', table_name='generations')
    op.drop_index('ix_generations_workspace_fingerprint', table_name='generations')
    op.drop_index('ix_generations_workspace_created', table_name='generations')
    op.drop_index('ix_generations_content_id', table_name='generations')
    op.drop_table('generations')
    op.execute("UPDATE jobs SET status = 'FAILED' WHERE status = 'CANCELLED'")
    op.drop_constraint(op.f('ck_jobs_status_valid'), 'jobs', type_='check')
    op.create_check_constraint(
        op.f('ck_jobs_status_valid'), 'jobs', "status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')"
    )
