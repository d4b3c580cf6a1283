"""The schema comes from the migrations only, and the models agree with them."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from sqlalchemy import inspect

from app.extensions import db


def test_models_and_migrations_agree(app):
    with app.app_context():
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Model.metadata)
        assert diff == [], diff


def test_schema_was_built_by_alembic(app):
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
        assert "alembic_version" in tables
        assert {"org_unit", "org_link", "school_year", "ab_user", "location",
                "audit_log"} <= tables
        with db.engine.connect() as conn:
            head = conn.exec_driver_sql("select version_num from alembic_version").scalar()
        from alembic.script import ScriptDirectory
        from flask_migrate import Config

        config = Config()
        config.set_main_option("script_location", app.extensions["migrate"].directory)
        assert head == ScriptDirectory.from_config(config).get_current_head()
