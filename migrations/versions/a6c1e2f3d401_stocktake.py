"""stocktake sessions, scans, results, register lines and campaigns

Revision ID: a6c1e2f3d401
Revises: 7b2e4c9d1f03
Create Date: 2026-11-25 09:33:04.747052

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a6c1e2f3d401'
down_revision = '7b2e4c9d1f03'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stocktake_campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stocktake_campaign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stocktake_campaign_unit_id'), ['unit_id'], unique=False)

    op.create_table('stocktake_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('open', 'closed', name='ck_sessionstatus', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('location_ids', sa.JSON(), nullable=False),
    sa.Column('series_ids', sa.JSON(), nullable=False),
    sa.Column('document_type_ids', sa.JSON(), nullable=False),
    sa.Column('class_from', sa.String(length=30), nullable=True),
    sa.Column('class_to', sa.String(length=30), nullable=True),
    sa.Column('committee', sa.Text(), nullable=True),
    sa.Column('proposals', sa.Text(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('missing_action', sa.Enum('mark_lost', 'leave', name='ck_missingaction', native_enum=False, create_constraint=True, length=30), nullable=True),
    sa.Column('expected_count', sa.Integer(), nullable=False),
    sa.Column('found_count', sa.Integer(), nullable=True),
    sa.Column('missing_count', sa.Integer(), nullable=True),
    sa.Column('on_loan_count', sa.Integer(), nullable=True),
    sa.Column('misplaced_count', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['stocktake_campaign.id'], ),
    sa.ForeignKeyConstraint(['closed_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', 'id', name='uq_stocktake_session_school_id')
    )
    with op.batch_alter_table('stocktake_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stocktake_session_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stocktake_session_school_id'), ['school_id'], unique=False)
        batch_op.create_index('ix_stocktake_session_school_status', ['school_id', 'status'], unique=False)

    op.create_table('stocktake_register_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('is_total', sa.Boolean(), nullable=False),
    sa.Column('document_type_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('copies_in', sa.Integer(), nullable=False),
    sa.Column('value_in', sa.Numeric(precision=16, scale=0), nullable=False),
    sa.Column('copies_out', sa.Integer(), nullable=False),
    sa.Column('value_out', sa.Numeric(precision=16, scale=0), nullable=False),
    sa.Column('copies_remaining', sa.Integer(), nullable=False),
    sa.Column('value_remaining', sa.Numeric(precision=16, scale=0), nullable=False),
    sa.Column('copies_found', sa.Integer(), nullable=False),
    sa.Column('value_found', sa.Numeric(precision=16, scale=0), nullable=False),
    sa.Column('copies_on_loan', sa.Integer(), nullable=False),
    sa.Column('copies_missing', sa.Integer(), nullable=False),
    sa.Column('value_missing', sa.Numeric(precision=16, scale=0), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['document_type_id'], ['document_type.id'], ),
    sa.ForeignKeyConstraint(['school_id', 'session_id'], ['stocktake_session.school_id', 'stocktake_session.id'], name='fk_stocktake_register_line_session'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'position', name='uq_stocktake_register_line')
    )
    with op.batch_alter_table('stocktake_register_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stocktake_register_line_school_id'), ['school_id'], unique=False)

    op.create_table('stocktake_result',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('copy_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('found', 'missing', 'on_loan', 'misplaced', 'withdrawn', name='ck_outcome', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('mark', sa.String(length=1), nullable=False),
    sa.Column('marked_lost', sa.Boolean(), nullable=False),
    sa.Column('document_type_id', sa.Integer(), nullable=True),
    sa.Column('location_id', sa.Integer(), nullable=True),
    sa.Column('price', sa.Numeric(precision=14, scale=0), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id', 'copy_id'], ['copy.school_id', 'copy.id'], name='fk_stocktake_result_copy'),
    sa.ForeignKeyConstraint(['school_id', 'session_id'], ['stocktake_session.school_id', 'stocktake_session.id'], name='fk_stocktake_result_session'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'copy_id', name='uq_stocktake_result_copy')
    )
    with op.batch_alter_table('stocktake_result', schema=None) as batch_op:
        batch_op.create_index('ix_stocktake_result_copy', ['copy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stocktake_result_school_id'), ['school_id'], unique=False)

    op.create_table('stocktake_scan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('copy_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=True),
    sa.Column('scanned_at', sa.DateTime(), nullable=False),
    sa.Column('scanned_by_id', sa.Integer(), nullable=True),
    sa.Column('via', sa.Enum('scanner', 'camera', 'file', name='ck_scanvia', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['scanned_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['school_id', 'copy_id'], ['copy.school_id', 'copy.id'], name='fk_stocktake_scan_copy'),
    sa.ForeignKeyConstraint(['school_id', 'session_id'], ['stocktake_session.school_id', 'stocktake_session.id'], name='fk_stocktake_scan_session'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'copy_id', name='uq_stocktake_scan_copy')
    )
    with op.batch_alter_table('stocktake_scan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stocktake_scan_school_id'), ['school_id'], unique=False)

    op.create_table('stocktake_unknown',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('barcode', sa.String(length=40), nullable=False),
    sa.Column('times', sa.Integer(), nullable=False),
    sa.Column('first_scanned_at', sa.DateTime(), nullable=False),
    sa.Column('scanned_by_id', sa.Integer(), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['scanned_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['school_id', 'session_id'], ['stocktake_session.school_id', 'stocktake_session.id'], name='fk_stocktake_unknown_session'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'barcode', name='uq_stocktake_unknown_barcode')
    )
    with op.batch_alter_table('stocktake_unknown', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stocktake_unknown_school_id'), ['school_id'], unique=False)



def downgrade():
    with op.batch_alter_table('stocktake_unknown', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stocktake_unknown_school_id'))

    op.drop_table('stocktake_unknown')
    with op.batch_alter_table('stocktake_scan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stocktake_scan_school_id'))

    op.drop_table('stocktake_scan')
    with op.batch_alter_table('stocktake_result', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stocktake_result_school_id'))
        batch_op.drop_index('ix_stocktake_result_copy')

    op.drop_table('stocktake_result')
    with op.batch_alter_table('stocktake_register_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stocktake_register_line_school_id'))

    op.drop_table('stocktake_register_line')
    with op.batch_alter_table('stocktake_session', schema=None) as batch_op:
        batch_op.drop_index('ix_stocktake_session_school_status')
        batch_op.drop_index(batch_op.f('ix_stocktake_session_school_id'))
        batch_op.drop_index(batch_op.f('ix_stocktake_session_campaign_id'))

    op.drop_table('stocktake_session')
    with op.batch_alter_table('stocktake_campaign', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stocktake_campaign_unit_id'))

    op.drop_table('stocktake_campaign')
