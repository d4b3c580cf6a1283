"""weeding rounds, weeded copies, general register part II; copy.withdrawal_id

Revision ID: b7d2f3a4e502
Revises: a6c1e2f3d401
Create Date: 2026-11-25 09:32:00.647561

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d2f3a4e502'
down_revision = 'a6c1e2f3d401'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('weeding_round',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('plan_note', sa.String(length=1000), nullable=True),
    sa.Column('status', sa.Enum('draft', 'proposed', 'committee', 'approved', 'withdrawn', 'cancelled', name='ck_roundstatus', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('proposed_on', sa.Date(), nullable=True),
    sa.Column('committee_decision_number', sa.String(length=60), nullable=True),
    sa.Column('committee_decision_date', sa.Date(), nullable=True),
    sa.Column('committee_members', sa.Text(), nullable=True),
    sa.Column('appraisal_date', sa.Date(), nullable=True),
    sa.Column('appraisal_conclusion', sa.String(length=1000), nullable=True),
    sa.Column('decision_number', sa.String(length=60), nullable=True),
    sa.Column('decision_date', sa.Date(), nullable=True),
    sa.Column('disposal_method', sa.Enum('liquidate', 'repurpose', name='ck_disposalmethod', native_enum=False, create_constraint=True, length=30), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('display_from', sa.Date(), nullable=True),
    sa.Column('withdrawn_on', sa.Date(), nullable=True),
    sa.Column('withdrawn_by_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_on', sa.Date(), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['approved_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['withdrawn_by_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', 'id', name='uq_weeding_round_school_id'),
    sa.UniqueConstraint('school_id', 'number', name='uq_weeding_round_number')
    )
    with op.batch_alter_table('weeding_round', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_weeding_round_school_id'), ['school_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_weeding_round_status'), ['status'], unique=False)

    op.create_table('stock_withdrawal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('register_number', sa.Integer(), nullable=False),
    sa.Column('withdrawn_on', sa.Date(), nullable=False),
    sa.Column('document_number', sa.String(length=60), nullable=False),
    sa.Column('document_date', sa.Date(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('copies_count', sa.Integer(), nullable=False),
    sa.Column('total_value', sa.Numeric(precision=14, scale=0), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id', 'round_id'], ['weeding_round.school_id', 'weeding_round.id'], name='fk_stock_withdrawal_round'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', 'id', name='uq_stock_withdrawal_school_id'),
    sa.UniqueConstraint('school_id', 'register_number', name='uq_stock_withdrawal_number')
    )
    with op.batch_alter_table('stock_withdrawal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stock_withdrawal_school_id'), ['school_id'], unique=False)

    op.create_table('weeding_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('copy_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Enum('outdated_textbook', 'worn_out', 'lost', 'old_periodical', 'outdated_content', 'other', name='ck_weedingreason', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id', 'copy_id'], ['copy.school_id', 'copy.id'], name='fk_weeding_item_copy'),
    sa.ForeignKeyConstraint(['school_id', 'round_id'], ['weeding_round.school_id', 'weeding_round.id'], name='fk_weeding_item_round'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('round_id', 'copy_id', name='uq_weeding_item_copy')
    )
    with op.batch_alter_table('weeding_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_weeding_item_copy_id'), ['copy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_weeding_item_round_id'), ['round_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_weeding_item_school_id'), ['school_id'], unique=False)

    with op.batch_alter_table('copy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawal_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_copy_withdrawal', 'stock_withdrawal', ['school_id', 'withdrawal_id'], ['school_id', 'id'])



def downgrade():
    with op.batch_alter_table('copy', schema=None) as batch_op:
        batch_op.drop_constraint('fk_copy_withdrawal', type_='foreignkey')
        batch_op.drop_column('withdrawal_id')

    with op.batch_alter_table('weeding_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_weeding_item_school_id'))
        batch_op.drop_index(batch_op.f('ix_weeding_item_round_id'))
        batch_op.drop_index(batch_op.f('ix_weeding_item_copy_id'))

    op.drop_table('weeding_item')
    with op.batch_alter_table('stock_withdrawal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stock_withdrawal_school_id'))

    op.drop_table('stock_withdrawal')
    with op.batch_alter_table('weeding_round', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_weeding_round_status'))
        batch_op.drop_index(batch_op.f('ix_weeding_round_school_id'))

    op.drop_table('weeding_round')
