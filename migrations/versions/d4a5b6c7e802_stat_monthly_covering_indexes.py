"""stat_monthly: covering indexes for the pages of many schools, (metric, month, school_id,
key) and (metric, school_id, month, key), with count and amount INCLUDEd on PostgreSQL
(index-only scans: the city along the months, an office school by school); stat_snapshot
likewise by (metric, school_id, key)

Revision ID: d4a5b6c7e802
Revises: a1d7e8f9c007
Create Date: 2026-11-25 12:20:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd4a5b6c7e802'
down_revision = 'c3f4a5b6d701'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('stat_monthly', schema=None) as batch_op:
        batch_op.drop_index('ix_stat_monthly_metric_month')
        batch_op.create_index('ix_stat_monthly_metric_month',
                              ['metric', 'month', 'school_id', 'key'], unique=False,
                              postgresql_include=['count', 'amount'])
        batch_op.create_index('ix_stat_monthly_metric_school',
                              ['metric', 'school_id', 'month', 'key'], unique=False,
                              postgresql_include=['count', 'amount'])
    with op.batch_alter_table('stat_snapshot', schema=None) as batch_op:
        batch_op.drop_index('ix_stat_snapshot_metric')
        batch_op.create_index('ix_stat_snapshot_metric', ['metric', 'school_id', 'key'],
                              unique=False, postgresql_include=['count', 'amount'])


def downgrade():
    with op.batch_alter_table('stat_snapshot', schema=None) as batch_op:
        batch_op.drop_index('ix_stat_snapshot_metric')
        batch_op.create_index('ix_stat_snapshot_metric', ['metric'], unique=False)
    with op.batch_alter_table('stat_monthly', schema=None) as batch_op:
        batch_op.drop_index('ix_stat_monthly_metric_school')
        batch_op.drop_index('ix_stat_monthly_metric_month')
        batch_op.create_index('ix_stat_monthly_metric_month', ['metric', 'month'],
                              unique=False)
