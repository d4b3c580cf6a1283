"""The desk's lean JSON API (app.core.security.cached_access_api): the user and their
permissions on trust from the worker's cache, the cache's number read with the first statement, the
session cookie and CSRF token verified once per worker (app.core.signing).

Every check stays as strict as FAB's has_access_api and Flask-WTF's CSRFProtect: only the
librarian of the school gets in, the other roles are refused, another school's reader does
not exist, a change to the account seen meanwhile makes the request run again the ordinary
way, and every POST needs the session's CSRF token.
"""
import pytest
from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy import select

from app.core import cache, signing
from app.core.signing import VerifyingSerializer
from app.extensions import db
from app.org.models import AppUser, OrgUnit
from app.readers.models import Reader
from tests import test_circulation_cache as circulation
from tests.helpers import statements_during
from tests.test_circulation_cache import Desk, _copy, _other_worker, _student

school1, clean = circulation.school1, circulation.clean  # the fixtures


@pytest.fixture
def librarian(app, db_session):
    db_session.rollback()
    user = db_session.scalar(select(AppUser).where(AppUser.username == "thuvien"))
    saved = {"id": user.id, "unit_id": user.unit_id, "roles": [r.id for r in user.roles]}
    db_session.rollback()
    yield saved
    db_session.rollback()
    _other_worker("UPDATE ab_user SET active = :t, unit_id = :u WHERE id = :id", t=True,
                  u=saved["unit_id"], id=saved["id"])
    _other_worker("DELETE FROM ab_user_role WHERE user_id = :id", id=saved["id"])
    for role_id in saved["roles"]:
        _other_worker("INSERT INTO ab_user_role (user_id, role_id) VALUES (:u, :r)",
                      u=saved["id"], r=role_id)
    db_session.expire_all()


def test_a_warm_checkout_takes_the_user_on_trust(login, db_session, school1, clean):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1)
    barcodes = [_copy(db_session, school1, "STN", n).barcode for n in range(2)]
    reader_id = student.id
    db_session.rollback()
    assert desk.scan(barcodes[0], reader_id=reader_id)[1]["kind"] == "checkout"
    assert desk.scan(barcodes[0])[1]["kind"] == "return"
    trusted = cache.stats["trusted"]
    (status, out), statements = statements_during(
        lambda: desk.scan(barcodes[1], reader_id=reader_id))
    assert status == 200 and out["kind"] == "checkout", out
    assert cache.stats["trusted"] > trusted
    # No statement for the user, the permissions or the cache's number alone.
    assert not [s for s in statements if "ab_user" in s or "ab_permission" in s], statements
    assert not [s for s in statements if s.startswith("SELECT config_version")], statements
    assert "FROM config_version" in statements[0], statements
    assert desk.scan(barcodes[1])[1]["kind"] == "return"


@pytest.mark.parametrize("username", ["hieutruong", "thanhtra", "giaovien", "hocsinh",
                                      "phong"])
def test_only_the_librarian_gets_in(app, login, db_session, school1, clean, username):
    """Another role is refused (403) by the API, warm cache or not, and changes nothing."""
    librarian = Desk(login("thuvien"))
    student = _student(db_session, school1)
    copy = _copy(db_session, school1, "STN")
    db_session.rollback()
    client = login(username)
    client.get("/")  # a page: the session has its CSRF token, the user is cached
    with client.session_transaction() as sess:
        token = sess.get("csrf_token")
    from flask_wtf.csrf import generate_csrf

    with app.test_request_context():
        from flask import session

        session["csrf_token"] = token
        signed = generate_csrf()
    for _ in range(2):  # cold, then warm
        for path, body in (("scan", {"barcode": copy.barcode, "reader_id": student.id}),
                           ("reader", {"card": student.barcode}), ("titles", {"q": "a"})):
            resp = client.post(f"/desk/api/{path}", json=body,
                               headers={"X-CSRFToken": signed})
            assert resp.status_code == 403, (username, path, resp.status_code)
            db.session.rollback()
    assert librarian.scan(copy.barcode)[0] == 409  # still on the shelf: nothing was lent


def test_another_schools_reader_and_copy_do_not_exist(login, db_session, school1, clean):
    other = Desk(login("thuvien2"))
    student = _student(db_session, school1)
    copy = _copy(db_session, school1, "STN")
    own_reader = db_session.scalar(select(Reader).where(Reader.school_id != school1.id)
                                   .limit(1))
    db_session.rollback()
    for _ in range(2):  # cold, then warm (on trust)
        status, out = other.scan(copy.barcode, reader_id=student.id)
        assert status == 409, out
        status, out = other.scan(copy.barcode, reader_id=own_reader.id)
        assert status == 409, out
        resp = other.client.post("/desk/api/reader", json={"card": student.barcode},
                                 headers={"X-CSRFToken": other.token})
        assert resp.status_code == 409, resp.get_json()


def test_csrf_is_enforced_on_the_lean_path(app, login, db_session, school1, clean):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1)
    copy = _copy(db_session, school1, "STN")
    db_session.rollback()
    body = {"barcode": copy.barcode, "reader_id": student.id}
    assert desk.scan(copy.barcode)[0] == 409  # warm: the token has been verified once
    for headers in ({}, {"X-CSRFToken": "x"}, {"X-CSRFToken": desk.token + "x"},
                    {"X-CSRFToken": desk.token[:-2]}):
        resp = desk.client.post("/desk/api/scan", json=body, headers=headers)
        assert resp.status_code == 400, (headers, resp.status_code)
    # The same valid token in another user's session: not theirs.
    other = Desk(login("thuvien2"))
    resp = other.client.post("/desk/api/scan", json=body,
                             headers={"X-CSRFToken": desk.token})
    assert resp.status_code == 400
    # A token signed with another key.
    from itsdangerous import URLSafeTimedSerializer

    with desk.client.session_transaction() as sess:
        raw = sess["csrf_token"]
    forged = URLSafeTimedSerializer("not the key", salt="wtf-csrf-token").dumps(raw)
    resp = desk.client.post("/desk/api/scan", json=body, headers={"X-CSRFToken": forged})
    assert resp.status_code == 400
    db_session.rollback()
    assert db_session.scalar(select(Reader.id).where(Reader.id == student.id))
    status, out = desk.scan(copy.barcode, reader_id=student.id)  # the right token: lent
    assert status == 200 and out["kind"] == "checkout", out


def test_a_tampered_session_cookie_is_refused_after_the_genuine_one(app, login, db_session,
                                                                     school1, clean):
    desk = Desk(login("thuvien"))
    copy = _copy(db_session, school1, "STN")
    db_session.rollback()
    assert desk.scan(copy.barcode)[0] == 409  # the cookie verified and kept
    cookie = desk.client.get_cookie("session")
    value = cookie.value
    tampered = value[:5] + ("A" if value[5] != "A" else "B") + value[6:]  # the payload
    client = app.test_client()
    client.set_cookie("session", tampered)
    resp = client.post("/desk/api/scan", json={"barcode": copy.barcode},
                       headers={"X-CSRFToken": desk.token})
    assert resp.status_code == 400  # no session: no CSRF token to match
    client.set_cookie("session", value)
    resp = client.post("/desk/api/scan", json={"barcode": copy.barcode},
                       headers={"X-CSRFToken": desk.token})
    assert resp.status_code == 409  # the genuine cookie: the librarian, not on loan


def test_verified_values_keep_their_age_limit():
    serializer = VerifyingSerializer("key", salt="s")
    token = serializer.dumps("value")
    reused = signing.stats["reused"]
    assert serializer.loads(token) == "value"
    assert serializer.loads(token, max_age=60) == "value"
    assert signing.stats["reused"] > reused
    with pytest.raises(SignatureExpired):
        serializer.loads(token, max_age=-1)  # too old, even though verified before
    with pytest.raises(BadSignature):  # the payload changed (its first character: 6 bits)
        serializer.loads(("A" if token[0] != "A" else "B") + token[1:])
    other = VerifyingSerializer("another key", salt="s")
    with pytest.raises(BadSignature):
        other.loads(token)
    # Each caller gets its own copy of a mutable value.
    token = serializer.dumps({"a": [1]})
    first = serializer.loads(token)
    first["a"].append(2)
    assert serializer.loads(token) == {"a": [1]}
    # A flat session (strings and flags) too: a key set by one request is not in the next.
    token = serializer.dumps({"_user_id": "7", "_fresh": False})
    first = serializer.loads(token)
    first["csrf_token"] = "x"
    first["_fresh"] = True
    assert serializer.loads(token) == {"_user_id": "7", "_fresh": False}


def test_a_move_seen_by_the_first_statement_runs_the_request_again(login, db_session, school1,
                                                                   clean, librarian):
    """The librarian moved to another school by another connection: the checkout's first
    statement reads the new number, the request runs again the ordinary way, and the reader
    of the old school is not found."""
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1)
    copy = _copy(db_session, school1, "STN")
    other_school = db_session.scalar(select(OrgUnit.id).where(OrgUnit.code == "79000003"))
    db_session.rollback()
    assert desk.scan(copy.barcode)[0] == 409  # warm
    _other_worker("UPDATE ab_user SET unit_id = :u WHERE id = :id", u=other_school,
                  id=librarian["id"])
    status, out = desk.scan(copy.barcode, reader_id=student.id)
    assert status == 409 and out["message"] == "Không tìm thấy bạn đọc trong trường của bạn.", out
    _other_worker("UPDATE ab_user SET unit_id = :u WHERE id = :id", u=librarian["unit_id"],
                  id=librarian["id"])
    status, out = desk.scan(copy.barcode, reader_id=student.id)
    assert status == 200 and out["kind"] == "checkout", out


def test_a_permission_taken_away_meanwhile_is_refused(app, login, db_session, school1, clean,
                                                      librarian):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1)
    copy = _copy(db_session, school1, "STN")
    db_session.rollback()
    assert desk.scan(copy.barcode)[0] == 409  # warm
    teacher = app.appbuilder.sm.find_role("teacher").id
    db_session.rollback()
    _other_worker("DELETE FROM ab_user_role WHERE user_id = :id", id=librarian["id"])
    _other_worker("INSERT INTO ab_user_role (user_id, role_id) VALUES (:u, :r)",
                  u=librarian["id"], r=teacher)
    assert desk.scan(copy.barcode, reader_id=student.id)[0] == 403
    db_session.rollback()
    _other_worker("UPDATE ab_user SET active = :f WHERE id = :id", f=False, id=librarian["id"])
    assert desk.scan(copy.barcode, reader_id=student.id)[0] == 401
    db_session.rollback()
    db_session.expire_all()
    from app.collection.models import Copy, CopyStatus

    assert db_session.get(Copy, copy.id).status == CopyStatus.available
