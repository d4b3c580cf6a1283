"""Issue 7, "done means": the principal, the ward office officer and the department
inspector, each in their own browser context, open their dashboard and download the
registers and statistics of their scope; every file is opened with openpyxl and its cells
are checked against figures counted here from the database. The principal cannot reach
another school's register.
"""
import io

import openpyxl
from sqlalchemy import func, or_, select

from tests.browser.test_roles_in_browser import _dashboard_cards, _school_figures
from tests.browser.test_statistics_in_browser import _codes_under, _refresh
from tests.test_standard import expected as standard_figures

SCHOOL, SCHOOL_NAME = "79000001", "Trường THCS Nguyễn Du"
OTHER, OTHER_NAME = "79000002", "Trường THCS Nguyễn Văn Trỗi"
OFFICE = "VHXH-SG"


# --------------------------------------------------------------------------- database side


def _school(session, code):
    from app.org.models import OrgUnit

    return session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one()


def _general_register(session, code):
    """(register numbers of the intakes, copies, professional copies) of the whole general
    register Part I: copies of intakes, of the document types entered in the registers."""
    from app.catalog.models import DocumentType, Record
    from app.collection.models import Copy, Intake

    school = _school(session, code)
    numbers = session.execute(select(Intake.register_number).where(
        Intake.school_id == school.id).order_by(Intake.register_number)).scalars().all()
    base = (select(func.count()).select_from(Copy)
            .join(Intake, Intake.id == Copy.intake_id)
            .join(Record, Record.id == Copy.record_id)
            .join(DocumentType, DocumentType.id == Record.document_type_id)
            .where(Copy.school_id == school.id, DocumentType.in_general_register.is_(True)))
    return (numbers, session.execute(base).scalar(),
            session.execute(base.where(DocumentType.code == "SNV")).scalar())


def _accession_labels(session, code, series_code):
    """The accession numbers of the individual register of one series (every copy)."""
    from app.catalog.models import DocumentType, Record
    from app.collection.models import AccessionSeries, Copy

    school = _school(session, code)
    return session.execute(
        select(Copy.accession_label)
        .join(AccessionSeries, AccessionSeries.id == Copy.series_id)
        .join(Record, Record.id == Copy.record_id)
        .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
        .where(Copy.school_id == school.id, AccessionSeries.code == series_code,
               or_(DocumentType.id.is_(None), DocumentType.in_general_register.is_(True)))
        .order_by(Copy.accession_number)).scalars().all()


def _standard(session, codes=None):
    """(students, copies held, teachers, professional copies held) of the schools."""
    from app.catalog.models import DocumentType, Record
    from app.collection.models import Copy, CopyStatus
    from app.org.models import OrgUnit
    from app.readers.models import Reader, ReaderCategory, ReaderKind, ReaderStatus

    def in_schools(query, column):
        if codes is None:
            return query
        ids = select(OrgUnit.id).where(OrgUnit.code.in_(codes))
        return query.where(column.in_(ids))

    def readers(kind):
        return session.execute(in_schools(select(func.count(Reader.id)).join(
            ReaderCategory, ReaderCategory.id == Reader.category_id).where(
            Reader.status == ReaderStatus.active, ReaderCategory.kind == kind),
            Reader.school_id)).scalar()

    held = Copy.status.not_in([CopyStatus.withdrawn, CopyStatus.lost])
    copies = session.execute(in_schools(select(func.count(Copy.id)).where(held),
                                        Copy.school_id)).scalar()
    snv = session.execute(in_schools(
        select(func.count(Copy.id)).join(Record, Record.id == Copy.record_id)
        .join(DocumentType, DocumentType.id == Record.document_type_id)
        .where(held, DocumentType.code == "SNV"), Copy.school_id)).scalar()
    return readers(ReaderKind.student), copies, readers(ReaderKind.teacher), snv


def _below(session, codes=None):
    """How many lines the "below the standard" table of the dashboard shows (at most 20):
    the open schools below either minimum."""
    from app.org.models import OrgUnit, UnitKind

    query = select(OrgUnit).where(OrgUnit.kind == UnitKind.school, OrgUnit.valid_to.is_(None))
    if codes is not None:
        query = query.where(OrgUnit.code.in_(codes))
    below = 0
    for school in session.execute(query).scalars():
        row = standard_figures(session, school)
        below += row["copies_ok"] is False or row["teacher_ok"] is False
    return min(below, 20)


def _holdings(session, code):
    from app.collection.models import Copy, CopyStatus

    school = _school(session, code)
    return session.execute(select(func.count(Copy.id)).where(
        Copy.school_id == school.id,
        Copy.status.not_in([CopyStatus.withdrawn, CopyStatus.lost]))).scalar()


# --------------------------------------------------------------------------- page side


def _download(page, selector):
    """(suggested file name, workbook) of the download the click starts."""
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    assert download.failure() is None
    with open(download.path(), "rb") as fh:
        return download.suggested_filename, openpyxl.load_workbook(io.BytesIO(fh.read()),
                                                                   data_only=True)


def _register(page, label):
    return f"#registers-list tr:has-text('{label}') a:has-text('Excel')"


def _rows(sheet):
    return list(sheet.iter_rows(values_only=True))


def _total(sheet):
    return next(r for r in _rows(sheet) if r[0] == "Tổng cộng")


def _check_general_register(book, school_name, expected):
    numbers, copies, snv = expected
    sheet = book.worksheets[0]
    assert sheet["A2"].value == school_name.upper()
    assert sheet["A4"].value == "SỔ ĐĂNG KÝ TỔNG QUÁT"
    assert sheet["A5"].value == "Toàn bộ sổ"
    header = next(r for r in _rows(sheet) if r[0] == "Ngày vào sổ")
    assert header[1] == "Số vào sổ tổng quát" and header[4] == "Tổng số bản"
    lines = [r[1] for r in _rows(sheet) if isinstance(r[0], str) and r[0][:1].isdigit()]
    assert lines == numbers
    total = _total(sheet)
    assert total[4] == copies and total[7] == snv  # SNV: the "Sách nghiệp vụ" column


# --------------------------------------------------------------------------- the test


def test_each_role_opens_its_dashboard_and_downloads_its_scope(page_as, db_query):
    db_query(_refresh)  # the offices' and the city's figures as the nightly job leaves them

    # --- The principal: their school's dashboard, two registers, a statistics table.
    figures = db_query(lambda s: _school_figures(s, SCHOOL))
    page = page_as("hieutruong")
    assert page.inner_text("#dashboard-unit") == SCHOOL_NAME
    cards = _dashboard_cards(page)
    for icon in ("fa-barcode", "fa-user-graduate", "fa-balance-scale", "fa-chalkboard-teacher"):
        assert cards[icon] == figures[icon], icon

    page.goto("/registers/")
    page.wait_for_selector("#registers-list")
    name, book = _download(page, _register(page, "Sổ đăng ký tổng quát"))
    assert name.startswith(f"so-dang-ky-tong-quat-{SCHOOL}-")
    _check_general_register(book, SCHOOL_NAME, db_query(lambda s: _general_register(s, SCHOOL)))

    name, book = _download(page, _register(page, "Sổ đăng ký cá biệt – Sách tham khảo (STK)"))
    assert name.startswith(f"so-dang-ky-ca-biet-STK-{SCHOOL}-")
    sheet = book.worksheets[0]
    assert sheet["A2"].value == SCHOOL_NAME.upper()
    assert sheet["A4"].value == "SỔ ĐĂNG KÝ CÁ BIỆT" and sheet["A5"].value == "Sách tham khảo (STK)"
    header = next(r for r in _rows(sheet) if r[0] == "Ngày vào sổ")
    assert header[1] == "Số ĐKCB"
    labels = [r[1] for r in _rows(sheet) if isinstance(r[1], str) and r[1].startswith("STK-")]
    expected = db_query(lambda s: _accession_labels(s, SCHOOL, "STK"))
    assert labels == expected and expected

    page.goto("/statistics/?report=collection_standard")
    page.wait_for_selector("#stat-standard")
    _name, book = _download(page, "#stat-xlsx")
    sheet = book.active
    assert sheet["A1"].value == "VỐN TÀI LIỆU SO VỚI TIÊU CHUẨN"
    assert sheet["A2"].value == f"Phạm vi: {SCHOOL_NAME}"
    students, copies, teachers, snv = db_query(lambda s: _standard(s, [SCHOOL]))
    line = next(r for r in _rows(sheet) if r[0] == SCHOOL_NAME)
    assert line[1:3] == (students, copies) and line[6:8] == (teachers, snv)
    assert line[3] == round(copies / students, 2) and line[9] == round(snv / teachers, 2)

    # Another school's registers and statistics: not found.
    for url in (f"/registers/download/general?school={OTHER}", f"/registers/?school={OTHER}",
                f"/registers/download/individual?school={OTHER}&series=STK",
                f"/statistics/xlsx?report=collection_standard&unit={OTHER}"):
        assert page.goto(url).status == 404, url

    # --- The ward office officer: the office dashboard, a table with a column per school,
    # a register of one of its schools.
    codes = db_query(lambda s: _codes_under(s, OFFICE))
    assert SCHOOL in codes and OTHER not in codes
    office = page_as("phongvhxh")
    assert office.inner_text("#dashboard-unit") == "Phòng Văn hóa – Xã hội phường Sài Gòn"
    assert office.locator("#dashboard-below-standard tr.danger").count() == db_query(
        lambda s: _below(s, codes))
    office.goto("/statistics/?report=collection_doctype")
    office.wait_for_selector("#stat-table")
    _name, book = _download(office, "#stat-xlsx")
    sheet = book.active
    assert sheet["A1"].value == "VỐN TÀI LIỆU THEO LOẠI TÀI LIỆU"
    assert sheet["A2"].value == "Phạm vi: Phòng Văn hóa – Xã hội phường Sài Gòn"
    rows = _rows(sheet)
    head = next(i for i, r in enumerate(rows) if r[0] == "Loại tài liệu")
    units = [v for v in rows[head][1:] if v]
    school_names = db_query(lambda s: {_school(s, c).name for c in codes})
    assert set(units) == school_names | {"Tổng cộng"}
    column = rows[head].index(SCHOOL_NAME)
    assert rows[head + 1][column + 1] == "Bản sách"  # titles, copies, value per school
    assert _total(sheet)[column + 1] == db_query(lambda s: _holdings(s, SCHOOL))

    office.goto("/registers/")
    office.select_option("#registers-filter select[name=school]", SCHOOL)
    office.click("#registers-filter button[type=submit]")
    office.wait_for_selector("#registers-list")
    name, book = _download(office, _register(office, "Sổ đăng ký cá biệt – Sách nghiệp vụ (SNV)"))
    assert name.startswith(f"so-dang-ky-ca-biet-SNV-{SCHOOL}-")
    sheet = book.worksheets[0]
    assert sheet["A2"].value == SCHOOL_NAME.upper() and sheet["A4"].value == "SỔ ĐĂNG KÝ CÁ BIỆT"
    labels = [r[1] for r in _rows(sheet) if isinstance(r[1], str) and r[1].startswith("SNV-")]
    assert labels == db_query(lambda s: _accession_labels(s, SCHOOL, "SNV")) and labels

    # --- The department inspector: the city dashboard, a city table, a school's register.
    city = page_as("thanhtra")
    assert city.locator("#dashboard-below-standard tr.danger").count() == db_query(_below)
    city.goto("/statistics/?report=collection_standard")
    city.wait_for_selector("#stat-standard-units")  # one line per office, every school in Excel
    assert city.inner_text("#stat-scope") == "Toàn thành phố"
    _name, book = _download(city, "#stat-xlsx")
    sheet = book.active
    assert sheet["A1"].value == "VỐN TÀI LIỆU SO VỚI TIÊU CHUẨN"
    assert sheet["A2"].value == "Phạm vi: Toàn thành phố"
    students, copies, teachers, snv = db_query(_standard)
    total = _total(sheet)  # school, office, then the figures
    assert total[2:4] == (students, copies) and total[7:9] == (teachers, snv)
    line = next(r for r in _rows(sheet) if r[0] == OTHER_NAME)
    assert line[1] == "Phòng Văn hóa – Xã hội phường Gò Vấp"
    assert line[2:4] == db_query(lambda s: _standard(s, [OTHER]))[:2]

    city.goto("/registers/")
    city.fill("#registers-filter input[name=school]", OTHER)
    city.click("#registers-filter button[type=submit]")
    city.wait_for_selector("#registers-list")
    name, book = _download(city, _register(city, "Sổ đăng ký tổng quát"))
    assert name.startswith(f"so-dang-ky-tong-quat-{OTHER}-")
    _check_general_register(book, OTHER_NAME, db_query(lambda s: _general_register(s, OTHER)))
