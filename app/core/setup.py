"""Database set-up: schema by migrations only, then permissions and roles from code."""
import logging

from flask import current_app
from sqlalchemy import inspect

from app.extensions import db

log = logging.getLogger(__name__)


def schema_ready():
    return inspect(db.engine).has_table("alembic_version") and inspect(db.engine).has_table(
        "ab_permission_view_role")


def sync_if_ready(app):
    """Roles are synchronised at start-up once the schema exists."""
    with app.app_context():
        if schema_ready():
            from app.core.security import sync_roles

            sync_roles(current_app.appbuilder)


def upgrade_schema():
    from flask_migrate import upgrade

    upgrade()


def prepare_database(load_demo=False):
    """Upgrade the schema, synchronise roles and, on an empty database, load the demo city."""
    from app.core.security import sync_roles
    from app.org.models import OrgUnit

    upgrade_schema()
    sync_roles(current_app.appbuilder)
    if load_demo and db.session.query(OrgUnit.id).first() is None:
        from app.org.demo import load_demo_city

        load_demo_city(db.session)
        return True
    return False
