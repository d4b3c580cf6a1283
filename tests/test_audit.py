"""Every change to library data records who did it and when; per-record history is visible
to the school's staff and the department, and to no other school."""
import pytest
from sqlalchemy import func, select

from app.collection.models import Location
from app.core.audit import AuditLog
from app.extensions import db
from tests.helpers import post_form, text


def test_changes_are_recorded_with_their_author_and_shown_per_record(app, login):
    librarian = login("thuvien")
    with app.app_context():
        # SQLite may give this row the id of a location deleted by an earlier test, whose
        # entries stay in the log: look only at the entries written from here on.
        before = db.session.execute(select(func.coalesce(func.max(AuditLog.id), 0))).scalar()
    resp = post_form(librarian, "/locationview/add", {
        "code": "T-AUD", "name": "Tủ sách lớp 7A2", "kind": "class_shelf", "is_active": "y"})
    assert resp.status_code == 302
    with app.app_context():
        row = db.session.execute(select(Location).where(Location.code == "T-AUD")).scalar_one()
        row_id = row.id
    resp = post_form(librarian, f"/locationview/edit/{row_id}", {
        "code": "T-AUD", "name": "Tủ sách lớp 7A3", "kind": "class_shelf", "is_active": "y"})
    assert resp.status_code == 302
    with app.app_context():
        entries = db.session.execute(
            select(AuditLog).where(AuditLog.table_name == "location", AuditLog.row_id == row_id,
                                   AuditLog.id > before)
            .order_by(AuditLog.id)).scalars().all()
        assert [e.action for e in entries] == ["insert", "update"]
        assert {e.username for e in entries} == {"thuvien"}
        assert entries[0].changes["name"] == [None, "Tủ sách lớp 7A2"]
        assert entries[1].changes == {"name": ["Tủ sách lớp 7A2", "Tủ sách lớp 7A3"]}
        assert entries[1].school_id == row.school_id

    url = f"/auditlogview/record/location/{row_id}"
    # The show page links to the history.
    assert url in text(librarian.get(f"/locationview/show/{row_id}"))
    for username in ("thuvien", "hieutruong", "thanhtra", "admin", "phong"):
        page = login(username).get(url)
        assert page.status_code == 200, username
        body = text(page)
        assert "Tủ sách lớp 7A2" in body and "Tủ sách lớp 7A3" in body and "thuvien" in body
        assert "Sửa đổi" in body and "Tạo mới" in body
    # Another school's librarian: not found, and not in their change list either.
    other = login("thuvien2")
    assert other.get(url).status_code == 404
    listing = text(other.get("/auditlogview/list/?psize_AuditLogView=100"))
    assert f">{row_id}<" not in listing or "T-AUD" not in listing


def test_deletes_are_recorded(app, login):
    librarian = login("thuvien")
    post_form(librarian, "/locationview/add", {"code": "T-DEL", "name": "Kho tạm",
                                               "kind": "other", "is_active": "y"})
    with app.app_context():
        row_id = db.session.execute(select(Location.id).where(Location.code == "T-DEL")
                                    ).scalar_one()
    from tests.helpers import session_csrf

    token = session_csrf(librarian)
    resp = librarian.post(f"/locationview/delete/{row_id}", data={"csrf_token": token})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Location, row_id) is None
        last = db.session.execute(
            select(AuditLog).where(AuditLog.table_name == "location", AuditLog.row_id == row_id)
            .order_by(AuditLog.id.desc())).scalars().first()
        assert last.action == "delete" and last.changes["name"] == ["Kho tạm", None]
        assert last.username == "thuvien"


def test_organisation_changes_are_recorded_for_the_department(app, login):
    admin = login("admin")
    resp = post_form(admin, "/schoolyearview/add", {
        "name": "2040–2041", "starts_on": "05/09/2040", "semester1_ends_on": "15/01/2041",
        "semester2_starts_on": "17/01/2041", "ends_on": "31/05/2041"})
    assert resp.status_code == 302
    with app.app_context():
        from app.org.models import SchoolYear

        year_id = db.session.execute(select(SchoolYear.id).where(
            SchoolYear.name == "2040–2041")).scalar_one()
    page = admin.get(f"/auditlogview/record/school_year/{year_id}")
    assert page.status_code == 200 and "admin" in text(page)
    # City-wide records are not part of a school's history.
    assert login("thuvien").get(f"/auditlogview/record/school_year/{year_id}").status_code == 404


def test_bulk_inserts_get_the_audit_entries_and_the_tenancy_rule_of_orm_writes(app):
    """app.core.bulk writes rows without the ORM (imports of thousands of records): each row
    gets the same "insert" entry as an ORM object would, and the flush guard's rule refuses
    another school's rows."""
    from flask_login import login_user

    from app.collection.models import LocationKind
    from app.core.bulk import insert_rows
    from app.core.errors import TenancyError
    from app.org.models import AppUser, OrgUnit

    def row(school_id, code):
        return {"school_id": school_id, "code": code, "name": f"Kệ {code}",
                "kind": LocationKind.other, "is_active": True, "note": None}

    with app.app_context():
        librarian = db.session.execute(select(AppUser).where(
            AppUser.username == "thuvien")).scalar_one()
        own, other = (db.session.execute(select(OrgUnit.id).where(OrgUnit.code == code))
                      .scalar_one() for code in ("79000001", "79000002"))
        before = db.session.execute(select(func.max(AuditLog.id))).scalar()
        with app.test_request_context():
            login_user(librarian)
            ids = insert_rows(db.session, Location, [row(own, "T-BULK1"), row(own, "T-BULK2")],
                              return_ids=True)
            orm = Location(**row(own, "T-ORM"))
            db.session.add(orm)
            db.session.flush()
            assert [c for (c,) in db.session.execute(select(Location.code).where(
                Location.id.in_(ids)).order_by(Location.id))] == ["T-BULK1", "T-BULK2"]
            entries = db.session.execute(select(AuditLog).where(
                AuditLog.id > before, AuditLog.table_name == "location").order_by(
                AuditLog.row_id)).scalars().all()
            assert [(e.row_id, e.action, e.username, e.school_id) for e in entries] == [
                (pk, "insert", "thuvien", own) for pk in ids + [orm.id]]
            assert entries[0].changes == {**{k: v for k, v in entries[2].changes.items()
                                             if k not in ("id", "code", "name")},
                                          "id": [None, ids[0]], "code": [None, "T-BULK1"],
                                          "name": [None, "Kệ T-BULK1"]}
            with pytest.raises(TenancyError):
                insert_rows(db.session, Location, [row(own, "T-BULK3"), row(other, "T-BULK4")])
            db.session.rollback()
        assert db.session.execute(select(Location.id).where(
            Location.code.like("T-BULK%"))).first() is None
