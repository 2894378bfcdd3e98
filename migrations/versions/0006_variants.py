"""personalised versions and A/B-test variants of content items

Revision ID: 0006_variants
Revises: 0005
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0006_variants'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_OPERATIONS = "operation IN ('GENERATE', 'REFINE', 'TRANSFORM')"
NEW_OPERATIONS = "operation IN ('GENERATE', 'REFINE', 'TRANSFORM', 'PERSONALIZE', 'VARIANTS')"


def upgrade() -> None:
    op.drop_constraint(op.f('ck_generations_operation_valid'), 'generations', type_='check')
    op.create_check_constraint(
        op.f('ck_generations_operation_valid'), 'generations', NEW_OPERATIONS
    )
    op.create_table('content_personalizations',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('content_id', sa.UUID(), nullable=False),
    sa.Column('segment_id', sa.UUID(), nullable=False),
    sa.Column('generation_id', sa.UUID(), nullable=True),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('changes', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('metrics', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('based_on_version', sa.Integer(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('length(btrim(body)) > 0', name=op.f('ck_content_personalizations_body_not_empty')),
    sa.ForeignKeyConstraint(['content_id'], ['contents.id'], name=op.f('fk_content_personalizations_content_id_contents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['generation_id'], ['generations.id'], name=op.f('fk_content_personalizations_generation_id_generations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['segment_id'], ['audience_segments.id'], name=op.f('fk_content_personalizations_segment_id_audience_segments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_content_personalizations_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_personalizations')),
    sa.UniqueConstraint('content_id', 'segment_id', name=op.f('uq_content_personalizations_content_id_segment_id'))
    )
    op.create_index('ix_content_personalizations_generation_id', 'content_personalizations', ['generation_id'], unique=False)
    op.create_index('ix_content_personalizations_segment_id', 'content_personalizations', ['segment_id'], unique=False)
    op.create_table('content_variants',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('content_id', sa.UUID(), nullable=False),
    sa.Column('generation_id', sa.UUID(), nullable=True),
    sa.Column('label', sa.String(length=3), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('angle', sa.Text(), nullable=False),
    sa.Column('platform_texts', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('metrics', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('based_on_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.CheckConstraint("label ~ '^[A-Z]{1,3}$'", name=op.f('ck_content_variants_label_letters')),
    sa.CheckConstraint('length(btrim(body)) > 0', name=op.f('ck_content_variants_body_not_empty')),
    sa.ForeignKeyConstraint(['content_id'], ['contents.id'], name=op.f('fk_content_variants_content_id_contents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['generation_id'], ['generations.id'], name=op.f('fk_content_variants_generation_id_generations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_content_variants_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_variants')),
    sa.UniqueConstraint('content_id', 'label', name=op.f('uq_content_variants_content_id_label'))
    )
    op.create_index('ix_content_variants_generation_id', 'content_variants', ['generation_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_content_variants_generation_id', table_name='content_variants')
    op.drop_table('content_variants')
    op.drop_index('ix_content_personalizations_segment_id', table_name='content_personalizations')
    op.drop_index('ix_content_personalizations_generation_id', table_name='content_personalizations')
    op.drop_table('content_personalizations')
    # Their generation records cannot exist under the old constraint.
    op.execute("DELETE FROM generations WHERE operation IN ('PERSONALIZE', 'VARIANTS')")
    op.drop_constraint(op.f('ck_generations_operation_valid'), 'generations', type_='check')
    op.create_check_constraint(
        op.f('ck_generations_operation_valid'), 'generations', OLD_OPERATIONS
    )
