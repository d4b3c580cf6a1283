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
    session.flush()
    from app.statistics.refresh import refresh

    refresh(session)  # the offices' and the city's statistics have figures from the start
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
    _load_catalogue(session, schools)
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
    from app.readers.demo import load_demo_readers

    load_demo_readers(session, schools)
    from app.serials.demo import load_demo_serials

    load_demo_serials(session, schools)


# Real Vietnamese books (title, authors, publisher, year, pages, size, ISBN, price, class, type).
BOOKS = [
    ("Tôi thấy hoa vàng trên cỏ xanh", "Nguyễn Nhật Ánh", "Nhà xuất bản Trẻ", 2018, "378 tr.",
     20, "9786041000124", 125000, "895.9223", "STN"),
    ("Dế Mèn phiêu lưu ký", "Tô Hoài", "Nhà xuất bản Kim Đồng", 2020, "144 tr.", 21, None,
     45000, "895.9223", "STN"),
    ("Đất rừng phương Nam", "Đoàn Giỏi", "Nhà xuất bản Kim Đồng", 2019, "300 tr.", 21, None,
     80000, "895.9223", "STN"),
    ("Lịch sử Việt Nam bằng tranh", "Trần Bạch Đằng; chủ biên", "Nhà xuất bản Trẻ", 2017,
     "120 tr.", 19, None, 30000, "959.7", "STK"),
    ("Truyện Kiều", "Nguyễn Du", "Nhà xuất bản Văn học", 2015, "250 tr.", 19, None, 60000,
     "895.9221", "STK"),
    ("Toán 6. Tập 1", "Hà Huy Khoái; chủ biên", "Nhà xuất bản Giáo dục Việt Nam", 2021,
     "128 tr.", 27, None, 22000, "510", "SGK"),
    ("Ngữ văn 6. Tập 1", "Bùi Mạnh Hùng; chủ biên", "Nhà xuất bản Giáo dục Việt Nam", 2021,
     "144 tr.", 27, None, 25000, "495.922", "SGK"),
    ("Hướng dẫn nghiệp vụ thư viện trường học", "Lê Văn Viết", "Nhà xuất bản Giáo dục",
     2016, "220 tr.", 24, None, 70000, "020", "SNV"),
]


def _load_catalogue(session, schools):
    from sqlalchemy import select

    from app.catalog.models import DocumentType, Record
    from app.catalog.services import compute_call_number
    from app.collection.models import AccessionSeries, Funding, Location
    from app.collection.services import add_copies, create_intake, ensure_library

    types = {t.code: t for t in session.execute(select(DocumentType)).scalars()}
    for school in schools.values():
        ensure_library(session, school)
    for code, books in (("79000001", BOOKS), ("79000002", BOOKS[:4])):
        school = schools[code]
        series = {s.code: s for s in session.execute(select(AccessionSeries).where(
            AccessionSeries.school_id == school.id)).scalars()}
        open_stack = session.execute(select(Location).where(
            Location.school_id == school.id, Location.code == "KM")).scalar_one()
        intake = create_intake(session, school, datetime.date(2025, 9, 15),
                               "Nhà sách Fahasa", "HĐ 0012345", Funding.state_budget)
        gift = create_intake(session, school, datetime.date(2025, 11, 20),
                             "Hội cha mẹ học sinh tặng", "BB 05/2025", Funding.donation)
        for i, (title, authors, publisher, year, pages, size, isbn, price, klass, kind) in \
                enumerate(books):
            record = Record(school=school, school_id=school.id, title=title, publisher=publisher,
                            place="Hà Nội" if "Giáo dục" in publisher else "TP. Hồ Chí Minh",
                            year=year, pages=pages, size_cm=size, isbn=isbn, price=price,
                            language="vie", class_number=klass, document_type=types[kind],
                            scheme_id=1)
            record.authors_text = authors
            compute_call_number(record)
            session.add(record)
            session.flush()
            add_copies(session, school, record, series[kind], 3 if kind != "SGK" else 10,
                       location=open_stack, intake=intake if i % 3 else gift)
