"""statistics: monthly and snapshot aggregates of every school, their refresh times; the
day a reader was registered; the school's library reports

Revision ID: e1a5c6d7b805
Revises: b7d2f3a4e502
Create Date: 2026-11-25 10:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e1a5c6d7b805'
down_revision = 'b7d2f3a4e502'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'stat_monthly',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('metric', sa.String(length=40), nullable=False),
        sa.Column('key', sa.String(length=60), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Numeric(precision=16, scale=0), nullable=True),
        sa.ForeignKeyConstraint(['school_id'], ['org_unit.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('stat_monthly', schema=None) as batch_op:
        batch_op.create_index('ix_stat_monthly_metric_month', ['metric', 'month'], unique=False)
        batch_op.create_index('ix_stat_monthly_school_month', ['school_id', 'month'],
                              unique=False)
    op.create_table(
        'stat_snapshot',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('metric', sa.String(length=40), nullable=False),
        sa.Column('key', sa.String(length=60), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Numeric(precision=16, scale=0), nullable=True),
        sa.ForeignKeyConstraint(['school_id'], ['org_unit.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('stat_snapshot', schema=None) as batch_op:
        batch_op.create_index('ix_stat_snapshot_metric', ['metric'], unique=False)
        batch_op.create_index('ix_stat_snapshot_school', ['school_id'], unique=False)
    op.create_table(
        'stat_refresh',
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('refreshed_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['school_id'], ['org_unit.id']),
        sa.PrimaryKeyConstraint('school_id'),
    )
    op.create_table(
        'library_report',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('month', 'semester', 'year', name='ck_reportkind',
                                  native_enum=False, create_constraint=True, length=30),
                  nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=False),
        sa.Column('activities', sa.Text(), nullable=True),
        sa.Column('coordination', sa.Text(), nullable=True),
        sa.Column('teacher_requests', sa.Text(), nullable=True),
        sa.Column('student_requests', sa.Text(), nullable=True),
        sa.Column('school_proposals', sa.Text(), nullable=True),
        sa.Column('office_proposals', sa.Text(), nullable=True),
        sa.Column('written_on', sa.Date(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.CheckConstraint('ends_on >= starts_on', name='ck_library_report_dates'),
        sa.ForeignKeyConstraint(['school_id'], ['org_unit.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('library_report', schema=None) as batch_op:
        batch_op.create_index('ix_library_report_school_id', ['school_id'], unique=False)
    with op.batch_alter_table('reader', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registered_on', sa.Date(), nullable=True))
        batch_op.create_index('ix_reader_registered_on', ['registered_on'], unique=False)


def downgrade():
    with op.batch_alter_table('reader', schema=None) as batch_op:
        batch_op.drop_index('ix_reader_registered_on')
        batch_op.drop_column('registered_on')
    op.drop_table('library_report')
    op.drop_table('stat_refresh')
    op.drop_table('stat_snapshot')
    op.drop_table('stat_monthly')
