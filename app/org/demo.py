"""The demo city: a department, offices before and after 01/07/2025, a cluster, six schools.

Loaded by `python run.py` on an empty database and by `flask --app run demo-data`.
Demo accounts exist only here (never in production), all with password DEMO_PASSWORD.
"""
import datetime

from app.collection.models import Location, LocationKind
from app.core.audit import acting_as
from app.core.security import (
    ROLE_DEPT_ADMIN,
    ROLE_INSPECTOR,
    ROLE_LIBRARIAN,
    ROLE_OFFICER,
    ROLE_PRINCIPAL,
    ROLE_STUDENT,
    ROLE_TEACHER,
)
from app.org.models import AppUser, Hierarchy, OrgUnit, SchoolYear, UnitKind
from app.org.services import place_unit

DEMO_PASSWORD = "thuvien2025"
REFORM_DAY = datetime.date(2025, 7, 1)  # district offices abolished, ward offices start
LAST_DISTRICT_DAY = REFORM_DAY - datetime.timedelta(days=1)

DEMO_LOGINS = [
    ("admin", "Quản trị Sở GD&ĐT"),
    ("thanhtra", "Cán bộ Sở (chỉ xem mọi trường)"),
    ("phong", "Cán bộ Phòng GD&ĐT Quận 1 (chỉ xem các trường của Phòng)"),
    ("phongvhxh", "Cán bộ Phòng VH-XH phường Sài Gòn (chỉ xem)"),
    ("thuvien", "Cán bộ thư viện Trường THCS Nguyễn Du (79000001)"),
    ("hieutruong", "Hiệu trưởng Trường THCS Nguyễn Du (chỉ xem)"),
    ("thuvien2", "Cán bộ thư viện Trường THCS Nguyễn Văn Trỗi (79000002)"),
    ("giaovien", "Giáo viên (bạn đọc) Trường THCS Nguyễn Du"),
    ("hocsinh", "Học sinh (bạn đọc) Trường THCS Nguyễn Du"),
]

SCHOOLS = [
    # code, name, levels, public, address, ward, district
    ("79000001", "Trường THCS Nguyễn Du", ("lower_secondary",), True,
     "139 Cống Quỳnh", "Phường Nguyễn Cư Trinh", "Q1"),
    ("79000002", "Trường THCS Nguyễn Văn Trỗi", ("lower_secondary",), True,
     "1 Lê Lợi", "Phường 4", "GV"),
    ("79000003", "Trường Tiểu học Kết Đoàn", ("primary",), True,
     "19 Nguyễn Thị Minh Khai", "Phường Bến Nghé", "Q1"),
    ("79000004", "Trường Mầm non Hoa Sen", ("preschool",), True,
     "55 Nguyễn Văn Nghi", "Phường 7", "GV"),
    ("79000005", "Trường THPT Trưng Vương", ("upper_secondary",), True,
     "3A Nguyễn Bỉnh Khiêm", "Phường Bến Nghé", None),
    ("79000006", "Trường Tiểu học, THCS và THPT Việt Úc",
     ("primary", "lower_secondary", "upper_secondary"), False,
     "10 Đường số 9", "Phường Tân Phong", None),
]

LOCATIONS = [
    ("KM", "Kho mở", LocationKind.open_stack),
    ("KD", "Kho đóng", LocationKind.closed_stack),
    ("PD", "Phòng đọc", LocationKind.reading_room),
]


def _unit(session, code, name, kind, **kw):
    unit = OrgUnit(code=code, name=name, kind=kind, **kw)
    session.add(unit)
    return unit


def _user(session, sm, username, family_middle, given, unit, role_name):
    user = AppUser(
        username=username, first_name=given, last_name=family_middle,
        email=f"{username}@demo.thuvien.edu.vn", active=True, unit=unit,
        roles=[sm.find_role(role_name)],
    )
    from werkzeug.security import generate_password_hash

    user.password = generate_password_hash(DEMO_PASSWORD)
    session.add(user)
    return user


def load_demo_city(session):
    from flask import current_app

    sm = current_app.appbuilder.sm
    with acting_as(name="demo-data"):
        _load(session, sm)
    session.commit()


def _load(session, sm):
    dept = _unit(session, "SGD79", "Sở Giáo dục và Đào tạo Thành phố Hồ Chí Minh",
                 UnitKind.department, address="66-68 Lê Thánh Tôn, Phường Sài Gòn")
    q1 = _unit(session, "PGD-Q1", "Phòng Giáo dục và Đào tạo Quận 1", UnitKind.district_office,
               valid_to=LAST_DISTRICT_DAY)
    gv = _unit(session, "PGD-GV", "Phòng Giáo dục và Đào tạo Quận Gò Vấp",
               UnitKind.district_office, valid_to=LAST_DISTRICT_DAY)
    ward_sg = _unit(session, "VHXH-SG", "Phòng Văn hóa – Xã hội phường Sài Gòn",
                    UnitKind.ward_office, valid_from=REFORM_DAY)
    ward_gv = _unit(session, "VHXH-GV", "Phòng Văn hóa – Xã hội phường Gò Vấp",
                    UnitKind.ward_office, valid_from=REFORM_DAY)
    cluster = _unit(session, "CUM01", "Cụm trường số 1", UnitKind.cluster,
                    valid_from=REFORM_DAY)
    for office in (q1, gv, ward_sg, ward_gv):
        place_unit(session, office, dept, valid_from=office.valid_from or datetime.date(1900, 1, 1),
                   valid_to=office.valid_to)
    place_unit(session, cluster, dept, Hierarchy.professional, valid_from=REFORM_DAY)

    schools = {}
    for code, name, levels, public, address, ward, district in SCHOOLS:
        school = _unit(
            session, code, name, UnitKind.school, is_public=public, address=address,
            ward=ward, **{f"teaches_{lvl}": True for lvl in levels})
        schools[code] = school
        if district is None:
            # THPT and multi-level schools with THPT: directly under the Sở in both periods.
            place_unit(session, school, dept)
            continue
        before, after = (q1, ward_sg) if district == "Q1" else (gv, ward_gv)
        place_unit(session, school, before, valid_to=LAST_DISTRICT_DAY)
        place_unit(session, school, after, valid_from=REFORM_DAY)
        place_unit(session, school, cluster, Hierarchy.professional, valid_from=REFORM_DAY)

    for name, start, s1_end, s2_start, end in [
        ("2024–2025", (2024, 9, 5), (2025, 1, 18), (2025, 1, 20), (2025, 5, 31)),
        ("2025–2026", (2025, 9, 5), (2026, 1, 17), (2026, 1, 19), (2026, 5, 31)),
        ("2026–2027", (2026, 9, 5), (2027, 1, 16), (2027, 1, 18), (2027, 5, 31)),
    ]:
        session.add(SchoolYear(
            name=name, starts_on=datetime.date(*start), semester1_ends_on=datetime.date(*s1_end),
            semester2_starts_on=datetime.date(*s2_start), ends_on=datetime.date(*end)))

    for school in schools.values():
        for code, label, kind in LOCATIONS:
            session.add(Location(school=school, code=code, name=label, kind=kind))
    session.add(Location(school=schools["79000001"], code="TS6A1", name="Tủ sách lớp 6A1",
                         kind=LocationKind.class_shelf))

    s1, s2 = schools["79000001"], schools["79000002"]
    _user(session, sm, "admin", "Trần Quốc", "Bảo", dept, ROLE_DEPT_ADMIN)
    _user(session, sm, "thanhtra", "Lê Thị Hồng", "Nhung", dept, ROLE_INSPECTOR)
    _user(session, sm, "phong", "Phạm Văn", "Đức", q1, ROLE_OFFICER)
    _user(session, sm, "phongvhxh", "Huỳnh Ngọc", "Ánh", ward_sg, ROLE_OFFICER)
    _user(session, sm, "thuvien", "Nguyễn Thị", "Lan", s1, ROLE_LIBRARIAN)
    _user(session, sm, "hieutruong", "Võ Minh", "Tuấn", s1, ROLE_PRINCIPAL)
    _user(session, sm, "thuvien2", "Đặng Thu", "Hà", s2, ROLE_LIBRARIAN)
    _user(session, sm, "giaovien", "Bùi Thanh", "Tâm", s1, ROLE_TEACHER)
    _user(session, sm, "hocsinh", "Lý Gia", "Huy", s1, ROLE_STUDENT)
    session.flush()
