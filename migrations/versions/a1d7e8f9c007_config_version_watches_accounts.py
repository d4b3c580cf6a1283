"""config_version also watches the accounts, their roles and groups, and the units, so that each
worker may cache the logged-in user (app.core.security.get_user_by_id); FAB's bookkeeping at
login (last_login, login_count, fail_login_count, changed_on) does not move it

Revision ID: a1d7e8f9c007
Revises: c8e3a4b5f603
Create Date: 2026-11-25 11:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a1d7e8f9c007'
down_revision = 'c8e3a4b5f603'
branch_labels = None
depends_on = None

# Any change to these moves the number (frozen here, as migrations are).
WATCHED_TABLES = ("ab_user_role", "ab_group", "ab_user_group", "ab_group_role", "org_unit")
# ab_user: inserts and deletes always; an update unless it only touches these columns.
BOOKKEEPING = ("last_login", "login_count", "fail_login_count", "changed_on")
# The other columns of ab_user at this revision (SQLite lists them; PostgreSQL compares the
# whole row minus the bookkeeping, so a column added later is watched too).
USER_COLUMNS = ("id", "first_name", "last_name", "username", "password", "active", "email",
                "created_on", "created_by_fk", "changed_by_fk", "unit_id", "phone")
BUMP = "UPDATE config_version SET version = version + 1 WHERE id = 1"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # bump_config_version() comes from c8e3a4b5f603.
        for table in WATCHED_TABLES:
            op.execute(f"CREATE TRIGGER trg_{table}_config_version AFTER INSERT OR UPDATE OR "
                       f"DELETE OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION "
                       f"bump_config_version()")
        op.execute("CREATE TRIGGER trg_ab_user_config_version AFTER INSERT OR DELETE OR "
                   "TRUNCATE ON ab_user FOR EACH STATEMENT EXECUTE FUNCTION "
                   "bump_config_version()")
        minus = "".join(f" - '{column}'" for column in BOOKKEEPING)
        op.execute(f"CREATE TRIGGER trg_ab_user_config_version_update AFTER UPDATE ON ab_user "
                   f"FOR EACH ROW WHEN ((to_jsonb(OLD){minus}) IS DISTINCT FROM "
                   f"(to_jsonb(NEW){minus})) EXECUTE FUNCTION bump_config_version()")
    else:  # SQLite: row triggers only
        for table in WATCHED_TABLES + ("ab_user",):
            for event in ("INSERT", "DELETE") + (("UPDATE",) if table != "ab_user" else ()):
                op.execute(f"CREATE TRIGGER trg_{table}_config_version_{event.lower()} AFTER "
                           f"{event} ON {table} BEGIN {BUMP}; END")
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in USER_COLUMNS)
        op.execute(f"CREATE TRIGGER trg_ab_user_config_version_update AFTER UPDATE ON ab_user "
                   f"WHEN {changed} BEGIN {BUMP}; END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED_TABLES + ("ab_user",):
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_config_version ON {table}")
        op.execute("DROP TRIGGER IF EXISTS trg_ab_user_config_version_update ON ab_user")
    else:
        for table in WATCHED_TABLES + ("ab_user",):
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_config_version_{event}")
