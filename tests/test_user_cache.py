"""The logged-in user from the worker's cache (AppSecurityManager.get_user_by_id) and the pool's
ping of idle connections only (app.core.pool).

The cached user must never be stale: an account deactivated, given other roles or groups, or
moved to another unit, by a screen, another worker or psql, is seen by the next request. FAB's
bookkeeping at each login (last login, login count) does not invalidate the caches, and is
read from the database when asked for.
"""
import time

import pytest
from sqlalchemy import create_engine, event, select, text

from app.core import cache, pool
from app.extensions import db
from app.org.models import AppUser, OrgUnit
from app.readers.models import Reader
from tests.helpers import post_form, statements_during, text as page_text
from tests.test_circulation_cache import Desk, _other_worker


class TitlesDesk(Desk):
    def titles(self):
        resp = self.client.post("/desk/api/titles", json={"q": "a"},
                                headers={"X-CSRFToken": self.token})
        return resp.status_code

    def reader(self, reader_id):
        resp = self.client.post("/desk/api/reader", json={"reader_id": reader_id},
                                headers={"X-CSRFToken": self.token})
        return resp.status_code, resp.get_json()


@pytest.fixture
def librarian(app, db_session):
    """The demo librarian `thuvien`, put back as it was after the test."""
    db_session.rollback()
    user = db_session.scalar(select(AppUser).where(AppUser.username == "thuvien"))
    saved = {"id": user.id, "unit_id": user.unit_id,
             "roles": [r.id for r in user.roles], "phone": user.phone}
    db_session.rollback()
    yield saved
    db_session.rollback()
    _other_worker("UPDATE ab_user SET active = :t, unit_id = :u, phone = :p WHERE id = :id",
                  t=True, u=saved["unit_id"], p=saved["phone"], id=saved["id"])
    _other_worker("DELETE FROM ab_user_role WHERE user_id = :id", id=saved["id"])
    for role_id in saved["roles"]:
        _other_worker("INSERT INTO ab_user_role (user_id, role_id) VALUES (:u, :r)",
                      u=saved["id"], r=role_id)
    db_session.expire_all()


def _end_request(session):
    """Requests made by the test client share the test's session (its app context): a
    refused request does not commit, so end its transaction, as the end of every request
    does in a server (Flask-SQLAlchemy removes the session)."""
    session.rollback()


def _version():
    db.session.rollback()
    return cache.version(db.session)


def test_the_user_comes_from_the_cache(login, db_session, librarian):
    desk = TitlesDesk(login("thuvien"))
    assert desk.titles() == 200  # the cache is warm now
    hits = cache.stats["hits"]
    status, statements = statements_during(desk.titles)
    assert status == 200
    assert cache.stats["hits"] > hits
    assert not [s for s in statements if "FROM ab_user" in s], statements
    # One narrow statement says whether the cache is current, and no `SELECT 1` ping.
    assert sum("FROM config_version" in s for s in statements) == 1, statements
    assert not [s for s in statements if s.upper() == "SELECT 1"], statements


def test_an_account_deactivated_by_another_connection_is_refused_at_once(login, db_session,
                                                                           librarian):
    desk = TitlesDesk(login("thuvien"))
    assert desk.titles() == 200
    _other_worker("UPDATE ab_user SET active = :f WHERE id = :id", f=False, id=librarian["id"])
    assert desk.titles() == 401  # logged out: no user for an inactive account
    _end_request(db_session)
    _other_worker("UPDATE ab_user SET active = :t WHERE id = :id", t=True, id=librarian["id"])
    assert desk.titles() == 200


def test_an_account_deactivated_on_the_accounts_screen_is_refused_at_once(app, login,
                                                                            db_session,
                                                                            librarian):
    desk = TitlesDesk(login("thuvien"))
    assert desk.titles() == 200
    user = db_session.get(AppUser, librarian["id"])
    form = {"username": user.username, "last_name": user.last_name,
            "first_name": user.first_name, "unit": str(user.unit_id),
            "roles": [str(r) for r in librarian["roles"]], "email": user.email,
            "phone": user.phone or ""}  # "active" left out: unticked
    db_session.rollback()
    admin = login("admin")
    resp = post_form(admin, f"/users/edit/{librarian['id']}", form)
    assert resp.status_code == 302, page_text(resp)[-1500:]
    db_session.rollback()
    assert db_session.get(AppUser, librarian["id"]).active is False
    assert desk.titles() == 401
    _end_request(db_session)
    resp = post_form(admin, f"/users/edit/{librarian['id']}", {**form, "active": "y"})
    assert resp.status_code == 302, page_text(resp)[-1500:]
    assert desk.titles() == 200


def test_roles_taken_away_or_given_take_effect_at_the_next_request(app, login, db_session,
                                                                    librarian):
    desk = TitlesDesk(login("thuvien"))
    assert desk.titles() == 200
    teacher = app.appbuilder.sm.find_role("teacher").id
    db_session.rollback()
    _other_worker("DELETE FROM ab_user_role WHERE user_id = :id", id=librarian["id"])
    _other_worker("INSERT INTO ab_user_role (user_id, role_id) VALUES (:u, :r)",
                  u=librarian["id"], r=teacher)
    assert desk.titles() == 403  # a teacher has no desk
    _end_request(db_session)
    _other_worker("DELETE FROM ab_user_role WHERE user_id = :id AND role_id = :r",
                  id=librarian["id"], r=teacher)
    for role_id in librarian["roles"]:
        _other_worker("INSERT INTO ab_user_role (user_id, role_id) VALUES (:u, :r)",
                      u=librarian["id"], r=role_id)
    assert desk.titles() == 200


def test_an_account_moved_to_another_school_works_there_at_once(login, db_session, librarian):
    """The unit is cached with the user: the tenancy scope follows a move at once."""
    desk = TitlesDesk(login("thuvien"))
    own = db_session.scalar(select(Reader.id).where(Reader.school_id == librarian["unit_id"])
                            .limit(1))
    other_school = db_session.scalar(select(OrgUnit.id).where(
        OrgUnit.code == "79000003"))
    db_session.rollback()
    assert desk.reader(own)[0] == 200
    _other_worker("UPDATE ab_user SET unit_id = :u WHERE id = :id", u=other_school,
                  id=librarian["id"])
    status, out = desk.reader(own)
    assert status == 409 and out["message"] == "Không tìm thấy bạn đọc trong trường của bạn.", out
    _other_worker("UPDATE ab_user SET unit_id = :u WHERE id = :id", u=librarian["unit_id"],
                  id=librarian["id"])
    assert desk.reader(own)[0] == 200


def test_account_groups_and_their_roles_move_the_version(app, db_session, librarian):
    """The groups are empty in the demo: a group, a member and a role of the group, each
    added and removed by another connection, move the number."""
    librarian_role = app.appbuilder.sm.find_role("librarian").id
    db_session.rollback()
    steps = [
        ("INSERT INTO ab_group (id, name) VALUES (990001, 'Thư viện cụm 1')", {}),
        ("INSERT INTO ab_group_role (group_id, role_id) VALUES (990001, :r)",
         {"r": librarian_role}),
        ("INSERT INTO ab_user_group (user_id, group_id) VALUES (:u, 990001)",
         {"u": librarian["id"]}),
        ("DELETE FROM ab_user_group WHERE group_id = 990001", {}),
        ("DELETE FROM ab_group_role WHERE group_id = 990001", {}),
        ("DELETE FROM ab_group WHERE id = 990001", {}),
    ]
    for sql, params in steps:
        before = _version()
        _other_worker(sql, **params)
        assert _version() > before, sql


def test_login_bookkeeping_does_not_invalidate_the_caches_and_is_never_stale(app, login,
                                                                             db_session,
                                                                             librarian):
    login("thuvien")
    before = _version()
    login("thuvien")  # FAB writes last_login and login_count
    _other_worker("UPDATE ab_user SET login_count = login_count + 5, fail_login_count = 0, "
                  "last_login = changed_on WHERE id = :id", id=librarian["id"])
    assert _version() == before
    count = db_session.scalar(select(AppUser.login_count).where(
        AppUser.id == librarian["id"]))
    db_session.rollback()
    with app.test_request_context():
        user = app.appbuilder.sm.get_user_by_id(librarian["id"])
        assert user.login_count == count  # read from the database, not from the cache
        db.session.rollback()
    # A real change to the account does move it; an update that changes nothing does not.
    _other_worker("UPDATE ab_user SET phone = phone WHERE id = :id", id=librarian["id"])
    assert _version() == before
    _other_worker("UPDATE ab_user SET phone = :p WHERE id = :id", p="0901234567",
                  id=librarian["id"])
    assert _version() > before


def test_a_removed_account_is_logged_out(app, login, db_session):
    """An account deleted by another connection: its session finds no user."""
    c = login("admin")
    role_id = app.appbuilder.sm.find_role("librarian").id
    school_id = db_session.scalar(select(OrgUnit.id).where(OrgUnit.code == "79000003"))
    db_session.rollback()
    resp = post_form(c, "/users/add", {
        "username": "tvxoa", "first_name": "Xoá", "last_name": "Trần", "unit": str(school_id),
        "email": "tvxoa@example.vn", "roles": str(role_id), "active": "y",
        "password": "matkhau2025", "conf_password": "matkhau2025"})
    assert resp.status_code == 302, page_text(resp)[-1500:]
    from tests.helpers import login as do_login

    client = app.test_client()
    assert do_login(client, "tvxoa", "matkhau2025").status_code == 302
    desk = TitlesDesk(client)
    assert desk.titles() == 200
    user_id = db_session.scalar(select(AppUser.id).where(AppUser.username == "tvxoa"))
    db_session.rollback()
    _other_worker("DELETE FROM ab_user_role WHERE user_id = :id", id=user_id)
    _other_worker("DELETE FROM ab_user WHERE id = :id", id=user_id)
    assert desk.titles() == 401


# --- The pool's ping ------------------------------------------------------------------------


def _engine(app, idle_s):
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], pool_size=1, max_overflow=0)
    pool.install(engine, idle_s)
    return engine


def test_a_connection_used_a_moment_ago_is_not_pinged(app):
    engine = _engine(app, 3600)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 2"))
        pings, skipped = pool.stats["pings"], pool.stats["skipped"]
        statements = []
        event.listen(engine, "before_cursor_execute",
                     lambda *a: statements.append(a[2]))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 3")).scalar() == 3
        assert statements == ["SELECT 3"]
        assert pool.stats["pings"] == pings and pool.stats["skipped"] == skipped + 1
    finally:
        engine.dispose()


def test_an_idle_connection_that_died_is_replaced_without_an_error(app, db_session):
    engine = _engine(app, 0.01)
    try:
        with engine.connect() as conn:
            first = conn.connection.dbapi_connection
            pid = (first.info.backend_pid if engine.dialect.name == "postgresql" else None)
        if pid is not None:  # the server ends it (a restart, an idle timeout)
            with db.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                admin.commit()
        else:  # SQLite: the connection is gone
            first.close()
        time.sleep(0.05)
        pings = pool.stats["pings"]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 4")).scalar() == 4
            assert conn.connection.dbapi_connection is not first
        assert pool.stats["pings"] == pings + 1
    finally:
        engine.dispose()
