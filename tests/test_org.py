"""The organisation tree, school years and accounts, through the admin screens."""
import datetime

import pytest
from sqlalchemy import func, select

from app.core.errors import ValidationError
from app.core.tenancy import scope_for
from app.extensions import db
from app.org import services
from app.org.models import AppUser, Hierarchy, OrgLink, OrgUnit, SchoolYear, UnitKind
from tests.helpers import post_form, text

JUNE_30 = datetime.date(2025, 6, 30)
JULY_1 = datetime.date(2025, 7, 1)


def unit(code):
    return db.session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one()


def count(model, *where):
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar()


def flashes(client):
    with client.session_transaction() as sess:
        return [m for _c, m in sess.get("_flashes", [])]


def test_demo_city_tree_is_dated(app):
    with app.app_context():
        s1 = unit("79000001")
        assert services.parent_at(db.session, s1.id, JUNE_30).code == "PGD-Q1"
        assert services.parent_at(db.session, s1.id, JULY_1).code == "VHXH-SG"
        assert services.parent_at(db.session, s1.id, JULY_1, Hierarchy.professional).code == \
            "CUM01"
        assert services.parent_at(db.session, s1.id, JUNE_30, Hierarchy.professional) is None
        # THPT: directly under the department in both periods.
        thpt = unit("79000005")
        for day in (JUNE_30, JULY_1):
            assert services.parent_at(db.session, thpt.id, day).kind == UnitKind.department
        # Both periods add up: every school has exactly one administrative parent each day.
        schools = db.session.execute(select(OrgUnit.id).where(
            OrgUnit.kind == UnitKind.school, OrgUnit.code.like("7900000%"))).scalars().all()
        q1_before = services.schools_under(db.session, unit("PGD-Q1").id, JUNE_30)
        gv_before = services.schools_under(db.session, unit("PGD-GV").id, JUNE_30)
        sg_after = services.schools_under(db.session, unit("VHXH-SG").id, JULY_1)
        gv_after = services.schools_under(db.session, unit("VHXH-GV").id, JULY_1)
        dept_direct = {s for s in schools
                       if services.parent_at(db.session, s, JUNE_30).kind == UnitKind.department}
        assert q1_before == sg_after and gv_before == gv_after
        assert len(q1_before | gv_before | dept_direct) == len(schools) == 6
        assert not services.schools_under(db.session, unit("PGD-Q1").id, JULY_1)


def test_moving_a_school_keeps_both_periods(app):
    with app.app_context():
        dept = unit("SGD79")
        office = OrgUnit(code="T-MOVE-OLD", name="Phòng thử cũ", kind=UnitKind.district_office)
        new_office = OrgUnit(code="T-MOVE-NEW", name="Phòng thử mới", kind=UnitKind.ward_office)
        school = OrgUnit(code="T-MOVE-S", name="Trường thử chuyển", kind=UnitKind.school,
                         teaches_primary=True)
        db.session.add_all([office, new_office, school])
        services.place_unit(db.session, office, dept)
        services.place_unit(db.session, new_office, dept)
        services.place_unit(db.session, school, office)
        services.move_unit(db.session, school, new_office, JULY_1)
        db.session.commit()
        assert services.parent_at(db.session, school.id, JUNE_30).code == "T-MOVE-OLD"
        assert services.parent_at(db.session, school.id, JULY_1).code == "T-MOVE-NEW"
        assert school.id in services.schools_under(db.session, office.id, JUNE_30)
        assert school.id not in services.schools_under(db.session, office.id, JULY_1)


def test_admin_creates_a_school_and_places_it(app, login):
    c = login("admin")
    resp = post_form(c, "/orgunitview/add", {
        "code": "79999001", "name": "Trường THCS Thử Nghiệm", "kind": "school",
        "teaches_lower_secondary": "y", "is_public": "y", "address": "1 Lê Lợi",
        "ward": "Phường Sài Gòn", "valid_from": "01/09/2025"})
    assert resp.status_code == 302, text(resp)[-2000:]
    with app.app_context():
        school = unit("79999001")
        assert school.valid_from == datetime.date(2025, 9, 1)
        assert school.levels == "THCS"
        office = unit("VHXH-SG")
    resp = post_form(c, "/orglinkview/add", {
        "child": str(school.id), "parent": str(office.id), "hierarchy": "administrative",
        "valid_from": "01/09/2025"})
    assert resp.status_code == 302, text(resp)[-2000:]
    with app.app_context():
        assert services.parent_at(db.session, school.id, datetime.date.today()).code == "VHXH-SG"
    # The list shows the date as dd/mm/yyyy.
    page = text(c.get("/orgunitview/list/?_flt_0_code=79999001"))
    assert "Trường THCS Thử Nghiệm" in page


def test_duplicate_school_code_is_refused_with_a_message(app, login):
    c = login("admin")
    before = None
    with app.app_context():
        before = count(OrgUnit)
    resp = post_form(c, "/orgunitview/add", {
        "code": "79000001", "name": "Trường trùng mã", "kind": "school",
        "teaches_primary": "y"})
    assert resp.status_code == 200
    assert "Đã tồn tại" in text(resp) or "đã tồn tại" in text(resp)
    with app.app_context():
        assert count(OrgUnit) == before


def test_missing_and_malformed_fields(app, login):
    c = login("admin")
    with app.app_context():
        before = count(OrgUnit)
    resp = post_form(c, "/orgunitview/add", {"code": "", "name": "", "kind": "school",
                                             "valid_from": "31/02/2025"})
    page = text(resp)
    assert resp.status_code == 200
    assert "Trường này là bắt buộc." in page
    assert "Ngày không hợp lệ (nhập theo dạng dd/mm/yyyy)." in page
    # A school must teach at least one level.
    resp = post_form(c, "/orgunitview/add", {"code": "79999002", "name": "Trường không cấp",
                                             "kind": "school"})
    assert "Hãy chọn ít nhất một cấp học của trường." in text(resp) + " ".join(flashes(c))
    with app.app_context():
        assert count(OrgUnit) == before


def test_a_unit_cannot_move_under_its_own_descendant(app, login):
    c = login("admin")
    with app.app_context():
        dept = unit("SGD79")
        cluster = OrgUnit(code="T-CYC-C", name="Cụm thử vòng", kind=UnitKind.cluster)
        office = OrgUnit(code="T-CYC-O", name="Phòng thử vòng", kind=UnitKind.ward_office)
        db.session.add_all([cluster, office])
        services.place_unit(db.session, office, dept)
        db.session.commit()
        with pytest.raises(ValidationError) as err:
            services.place_unit(db.session, dept, office)
        assert "không thể" in str(err.value) or "cannot" in str(err.value)
        db.session.rollback()
        links_before = count(OrgLink)
        dept_id, office_id = dept.id, office.id
    # Through the screen: the department under its own office.
    resp = post_form(c, "/orglinkview/add", {
        "child": str(dept_id), "parent": str(office_id), "hierarchy": "administrative",
        "valid_from": "01/01/2026"})
    messages = " ".join(flashes(c)) + text(resp)
    assert "không thể" in messages
    # A school placed under a school.
    with app.app_context():
        s1, s2 = unit("79000001").id, unit("79000002").id
    post_form(c, "/orglinkview/add", {"child": str(s1), "parent": str(s2),
                                      "hierarchy": "administrative", "valid_from": "01/01/2026"})
    assert any("không thể trực thuộc" in m for m in flashes(c))
    with app.app_context():
        assert count(OrgLink) == links_before


def test_overlapping_placements_are_refused(app):
    with app.app_context():
        s3 = unit("79000003")
        with pytest.raises(ValidationError):
            services.place_unit(db.session, s3, unit("VHXH-GV"), valid_from=JULY_1)
        db.session.rollback()


def test_school_year_dates_must_follow_each_other(app, login):
    c = login("admin")
    with app.app_context():
        before = count(SchoolYear)
    resp = post_form(c, "/schoolyearview/add", {
        "name": "2030–2031", "starts_on": "05/09/2030", "semester1_ends_on": "01/09/2030",
        "semester2_starts_on": "20/01/2031", "ends_on": "31/05/2031"})
    assert "Các mốc ngày phải theo thứ tự" in " ".join(flashes(c)) + text(resp)
    with app.app_context():
        assert count(SchoolYear) == before
    resp = post_form(c, "/schoolyearview/add", {
        "name": "2030–2031", "starts_on": "05/09/2030", "semester1_ends_on": "16/01/2031",
        "semester2_starts_on": "18/01/2031", "ends_on": "31/05/2031"})
    assert resp.status_code == 302
    with app.app_context():
        year = db.session.execute(select(SchoolYear).where(SchoolYear.name == "2030–2031")
                                  ).scalar_one()
        assert year.semester_of(datetime.date(2031, 3, 1)) == 2
    page = text(c.get("/schoolyearview/list/"))
    assert "05/09/2030" in page and "2030-09-05" not in page


def test_account_must_be_bound_to_a_fitting_unit(app, login):
    c = login("admin")
    with app.app_context():
        before = count(AppUser)
        role_id = app.appbuilder.sm.find_role("librarian").id
        dept_id = unit("SGD79").id
        school_id = unit("79000003").id
    base = {"username": "tv79000003", "first_name": "Hoa", "last_name": "Trần Thị",
            "email": "tv79000003@example.vn", "roles": str(role_id), "active": "y",
            "password": "matkhau2025", "conf_password": "matkhau2025"}
    # Bound to no unit.
    resp = post_form(c, "/users/add", base)
    assert "Tài khoản phải gắn với một đơn vị trong cây tổ chức." in text(resp)
    # A librarian bound to the department.
    resp = post_form(c, "/users/add", {**base, "unit": str(dept_id)})
    assert "Không thể giao vai trò “Cán bộ thư viện”" in text(resp)
    # A weak password.
    resp = post_form(c, "/users/add", {**base, "unit": str(school_id), "password": "abc",
                                       "conf_password": "abc"})
    assert "Mật khẩu phải có ít nhất 8 ký tự." in text(resp)
    with app.app_context():
        assert count(AppUser) == before
    resp = post_form(c, "/users/add", {**base, "unit": str(school_id)})
    assert resp.status_code == 302, text(resp)[-1500:]
    with app.app_context():
        user = db.session.execute(select(AppUser).where(AppUser.username == "tv79000003")
                                  ).scalar_one()
        assert user.password != "matkhau2025" and user.password.startswith(("scrypt", "pbkdf2"))
        assert scope_for(db.session, user).write_school_id == school_id
    # The new librarian logs in and sees their school.
    from tests.helpers import login as do_login

    new = app.test_client()
    assert do_login(new, "tv79000003", "matkhau2025").status_code == 302
    assert "Trường Tiểu học Kết Đoàn" in text(new.get("/"))


def test_wrong_login_gets_a_vietnamese_message(app, client):
    from tests.helpers import login as do_login

    resp = do_login(client, "thuvien", "sai-mat-khau")
    assert resp.status_code == 302
    page = text(client.get(resp.headers["Location"]))
    assert "Thông tin đăng nhập không hợp lệ. Vui lòng thử lại." in page
    resp = do_login(client, "khongco", "thuvien2025")
    page = text(client.get(resp.headers["Location"]))
    assert "Thông tin đăng nhập không hợp lệ. Vui lòng thử lại." in page
    assert client.get("/").status_code == 302  # still anonymous


def test_users_sort_the_vietnamese_way(app, login):
    """Given name first, then middle and family name, in Vietnamese alphabetical order."""
    c = login("admin")
    page = text(c.get("/users/list/?psize_AppUserDBModelView=100"))
    names = ["Ánh", "Bảo", "Đức", "Hà", "Huy", "Lan", "Nhung", "Tâm", "Tuấn"]
    positions = [page.find(f">{n}<") for n in names]
    assert all(p > 0 for p in positions), positions
    assert positions == sorted(positions)
