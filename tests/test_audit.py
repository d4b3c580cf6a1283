"""Every change to library data records who did it and when; per-record history is visible
to the school's staff and the department, and to no other school."""
from sqlalchemy import select

from app.collection.models import Location
from app.core.audit import AuditLog
from app.extensions import db
from tests.helpers import post_form, text


def test_changes_are_recorded_with_their_author_and_shown_per_record(app, login):
    librarian = login("thuvien")
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
            select(AuditLog).where(AuditLog.table_name == "location", AuditLog.row_id == row_id)
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
