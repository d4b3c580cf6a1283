"""config_version: one number that changes whenever loan rules, closed days, circulation
settings, school years, document types, reader categories or role permissions change (database
triggers), so that each worker may cache them (app.core.cache)

Revision ID: c8e3a4b5f603
Revises: e1a5c6d7b805
Create Date: 2026-11-25 09:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c8e3a4b5f603'
down_revision = 'e1a5c6d7b805'
branch_labels = None
depends_on = None

# The same list as app.core.cache.WATCHED_TABLES, frozen here as migrations are.
WATCHED_TABLES = (
    "loan_rule", "closed_day", "circulation_settings", "school_year", "document_type",
    "reader_category", "ab_role", "ab_permission", "ab_view_menu", "ab_permission_view",
    "ab_permission_view_role",
)
BUMP = "UPDATE config_version SET version = version + 1 WHERE id = 1"


def upgrade():
    op.create_table(
        'config_version',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute("INSERT INTO config_version (id, version) VALUES (1, 1)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION bump_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                {BUMP};
                RETURN NULL;
            END $$""")
        for table in WATCHED_TABLES:
            op.execute(f"CREATE TRIGGER trg_{table}_config_version AFTER INSERT OR UPDATE OR "
                       f"DELETE OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION "
                       f"bump_config_version()")
    else:  # SQLite: row triggers only
        for table in WATCHED_TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER trg_{table}_config_version_{event.lower()} AFTER "
                           f"{event} ON {table} BEGIN {BUMP}; END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_config_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_config_version()")
    else:
        for table in WATCHED_TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_config_version_{event}")
    op.drop_table('config_version')
