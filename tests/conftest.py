"""Test fixtures: the real application on a real database (SQLite or PostgreSQL).

TEST_DATABASE_URL selects the database (default: a fresh SQLite file). For PostgreSQL a
fresh database is created for the run and dropped at the end. The schema is built by the
migrations and the demo city is loaded, as `python run.py` does.
"""
import os
import tempfile
import uuid

import pytest
from sqlalchemy.engine import make_url

from tests import helpers


def _database_url(tmpdir):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return "sqlite:///" + os.path.join(tmpdir, "test.db"), None
    url = url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith(
        "postgresql://") else url
    parsed = make_url(url)
    name = f"thuvien_test_{uuid.uuid4().hex[:8]}"
    import psycopg

    admin = psycopg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
        user=parsed.username or "postgres", password=parsed.password,
        dbname=parsed.database or "postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False), (admin, name)


@pytest.fixture(scope="session")
def app():
    tmpdir = tempfile.mkdtemp(prefix="thuvien-test-")
    url, pg = _database_url(tmpdir)
    os.environ.setdefault("INSTANCE_PATH", tmpdir)
    try:
        application = _make_app(url)
    except BaseException:
        _drop(pg)
        raise
    yield application
    if pg:
        from app.extensions import db

        with application.app_context():
            db.session.remove()
            db.engine.dispose()
    _drop(pg)


def _drop(pg):
    if pg:
        admin, name = pg
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _make_app(url):
    from app import create_app
    from app.core.setup import prepare_database

    application = create_app({
        "SQLALCHEMY_DATABASE_URI": url,
        "TESTING": True,
        "AUTH_RATE_LIMITED": False,
        "RATELIMIT_ENABLED": False,
        "SYNC_ROLES_ON_START": False,
        "SERVER_NAME": None,
    })
    with application.app_context():
        prepare_database(load_demo=True)

    def forget_previous_user():
        # A test holding an app context (db_session) makes every request share its `g`:
        # forget the user, scope and CSRF token a previous request of another client left.
        from flask import g

        for name in ("_login_user", "user", "_tenancy_scope", "csrf_token", "_permissions"):
            g.pop(name, None)
    application.before_request_funcs.setdefault(None, []).insert(0, forget_previous_user)
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db_session(app):
    from app.extensions import db

    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def login(app):
    """login('thuvien') -> a test client logged in as that demo account."""
    def _login(username, password=helpers.DEMO_PASSWORD):
        c = app.test_client()
        resp = helpers.login(c, username, password)
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
        return c
    return _login
