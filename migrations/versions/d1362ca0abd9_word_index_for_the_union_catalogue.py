"""word index for the union catalogue

Revision ID: d1362ca0abd9
Revises: d0254c5b342d
Create Date: 2026-11-25 06:30:00.000000

The union catalogue matches whole words of the folded title and authors. PostgreSQL only: a
GIN index on their 'simple' text-search vector (the expression must stay identical to
app.catalog.models.SEARCH_VECTOR_SQL). SQLite has no such index and scans with LIKE.

At city scale (10 million records) the build takes a few minutes and blocks writes to
`record` meanwhile.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd1362ca0abd9'
down_revision = 'd0254c5b342d'
branch_labels = None
depends_on = None

SEARCH_VECTOR_SQL = ("to_tsvector('simple'::regconfig, "
                     "(title_folded::text || ' '::text) || authors_folded::text)")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # A GIN build sorts its entries in maintenance_work_mem (default 64 MB): more memory,
    # fewer merge passes over millions of records. This transaction only.
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.create_index('ix_record_search_fts', 'record', [sa.text(SEARCH_VECTOR_SQL)],
                    unique=False, postgresql_using='gin')


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index('ix_record_search_fts', table_name='record', postgresql_using='gin')
