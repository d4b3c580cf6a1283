"""index on hold (copy_id, status): the desk asks on every checkout whether the copy is set
aside for a hold

Revision ID: 7b2e4c9d1f03
Revises: d1362ca0abd9
Create Date: 2026-11-25 07:50:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '7b2e4c9d1f03'
down_revision = 'd1362ca0abd9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.create_index('ix_hold_copy_status', ['copy_id', 'status'], unique=False)


def downgrade():
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.drop_index('ix_hold_copy_status')
