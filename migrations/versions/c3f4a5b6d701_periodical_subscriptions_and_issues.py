"""periodical subscriptions (per title and year) and the issues received (sổ đăng ký báo, tạp chí)

Revision ID: c3f4a5b6d701
Revises: a1d7e8f9c007
Create Date: 2026-11-25 12:03:27.045776

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3f4a5b6d701'
down_revision = 'a1d7e8f9c007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('periodical_subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('frequency', sa.Enum('daily', 'weekly', 'twice_monthly', 'monthly', 'bimonthly', 'quarterly', 'irregular', name='ck_frequency', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('issuing_body', sa.String(length=255), nullable=True),
    sa.Column('copies_per_issue', sa.Integer(), nullable=False),
    sa.Column('price', sa.Numeric(precision=14, scale=0), nullable=True),
    sa.Column('issue_price', sa.Numeric(precision=14, scale=0), nullable=True),
    sa.Column('funding', sa.Enum('state_budget', 'socialization', 'donation', 'other', name='ck_funding', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id', 'record_id'], ['record.school_id', 'record.id'], name='fk_periodical_subscription_record'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', 'id', name='uq_periodical_subscription_school_id'),
    sa.UniqueConstraint('school_id', 'record_id', 'year', name='uq_periodical_subscription')
    )
    with op.batch_alter_table('periodical_subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_periodical_subscription_record_id'), ['record_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_periodical_subscription_school_id'), ['school_id'], unique=False)

    op.create_table('periodical_issue',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('copies', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id', 'subscription_id'], ['periodical_subscription.school_id', 'periodical_subscription.id'], name='fk_periodical_issue_subscription'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', 'subscription_id', 'number', name='uq_periodical_issue_number')
    )
    with op.batch_alter_table('periodical_issue', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_periodical_issue_received_on'), ['received_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_periodical_issue_school_id'), ['school_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_periodical_issue_subscription_id'), ['subscription_id'], unique=False)



def downgrade():
    with op.batch_alter_table('periodical_issue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_periodical_issue_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_periodical_issue_school_id'))
        batch_op.drop_index(batch_op.f('ix_periodical_issue_received_on'))

    op.drop_table('periodical_issue')
    with op.batch_alter_table('periodical_subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_periodical_subscription_school_id'))
        batch_op.drop_index(batch_op.f('ix_periodical_subscription_record_id'))

    op.drop_table('periodical_subscription')
