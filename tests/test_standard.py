"""The collection against the standard: copies per student and teacher books (sách nghiệp
vụ) per teacher, per school, with the minimum of the school's highest level and the
result; live for a school, from the aggregates for an office and the city; the Excel file;
the dashboards' cards and "below the standard" table. Every figure is counted here from
the tables, independently of app.statistics."""
import io
import re

import openpyxl
import pytest
from sqlalchemy import delete, func, select

from app.catalog.models import DocumentType, Record
from app.collection.models import Copy, CopyStatus
from app.org.models import OrgUnit, UnitKind
from app.readers.models import Reader, ReaderCategory, ReaderKind, ReaderStatus
from app.statistics.refresh import refresh
from tests.helpers import text
from tests.test_i18n import english_leftovers as _leftovers


def english_leftovers(page):
    # "In" (Vietnamese: print, the Print button) is also an English msgid.
    return [m for m in _leftovers(page) if m != "In"]

# (level flag, minimum copies per student, minimum teacher books per teacher), highest first.
MINIMUMS = [("teaches_upper_secondary", 5, 1), ("teaches_lower_secondary", 4, 1),
            ("teaches_primary", 3, 1), ("teaches_preschool", 2, 3)]
HELD = (CopyStatus.withdrawn, CopyStatus.lost)


def expected(session, school):
    """The school's figures counted from its readers and copies."""
    def readers(kind):
        return session.scalar(select(func.count()).select_from(Reader).join(
            ReaderCategory, ReaderCategory.id == Reader.category_id).where(
            Reader.school_id == school.id, Reader.status == ReaderStatus.active,
            ReaderCategory.kind == kind))

    held = select(Copy).where(Copy.school_id == school.id, Copy.status.not_in(HELD))
    snv = (select(Copy.record_id).join(Record, Record.id == Copy.record_id)
           .join(DocumentType, DocumentType.id == Record.document_type_id)
           .where(Copy.school_id == school.id, Copy.status.not_in(HELD),
                  DocumentType.code == "SNV"))
    snv_ids = session.scalars(snv).all()
    minimum = next(((c, t) for flag, c, t in MINIMUMS if getattr(school, flag)), (None, None))
    row = {"students": readers(ReaderKind.student), "teachers": readers(ReaderKind.teacher),
           "copies": session.scalar(select(func.count()).select_from(held.subquery())),
           "snv_copies": len(snv_ids), "snv_titles": len(set(snv_ids)),
           "min_copies": minimum[0], "min_teacher": minimum[1]}
    row["copies_ok"] = (None if not row["students"] or minimum[0] is None
                        else row["copies"] >= minimum[0] * row["students"])
    row["teacher_ok"] = (None if not row["teachers"] or minimum[1] is None
                         else row["snv_copies"] >= minimum[1] * row["teachers"])
    return row


def _number(cell):
    """'1.234' -> 1234, '0,75' -> 0.75, '–' -> None."""
    cell = cell.strip()
    if cell in ("–", ""):
        return None
    if "," in cell:
        return float(cell.replace(".", "").replace(",", "."))
    return int(cell.replace(".", ""))


VERDICT = {"Đạt": True, "Chưa đạt": False, "–": None}


def page_rows(html):
    """{school code: parsed row} of the page's table."""
    body = html.split('id="stat-standard"', 1)[1].split("</tbody>", 1)[0]
    rows = {}
    for code, row in re.findall(r'<tr data-school="([^"]+)"[^>]*>(.*?)</tr>', body, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        cells = cells[-12:]  # after the school (and its office at the city's scope)
        rows[code] = {
            "students": _number(cells[0]), "copies": _number(cells[1]),
            "copies_per_student": _number(cells[2]), "min_copies": _number(cells[3]),
            "copies_ok": VERDICT[cells[4]], "teachers": _number(cells[5]),
            "snv_copies": _number(cells[6]), "snv_titles": _number(cells[7]),
            "teacher_books_per_teacher": _number(cells[8]), "min_teacher": _number(cells[9]),
            "teacher_ok": VERDICT[cells[10]], "snv_copies_per_title": _number(cells[11])}
    return rows


def check(row, want):
    for key in ("students", "copies", "min_copies", "copies_ok", "teachers", "snv_copies",
                "snv_titles", "min_teacher", "teacher_ok"):
        assert row[key] == want[key], (key, row, want)
    ratio = round(want["copies"] / want["students"], 2) if want["students"] else None
    assert row["copies_per_student"] == ratio
    ratio = round(want["snv_copies"] / want["teachers"], 2) if want["teachers"] else None
    assert row["teacher_books_per_teacher"] == ratio
    ratio = round(want["snv_copies"] / want["snv_titles"], 2) if want["snv_titles"] else None
    assert row["snv_copies_per_title"] == ratio


@pytest.fixture
def school(db_session):
    return db_session.scalar(select(OrgUnit).where(OrgUnit.code == "79000001"))


@pytest.fixture
def one_more_teacher(db_session, school):
    """Teacher readers added to 79000001 until it has one more teacher than professional
    copies (the demo: 3 teachers, 3 copies, exactly one per teacher), so that the school
    falls below one set per teacher; removed afterwards."""
    db_session.rollback()
    category = db_session.scalar(select(ReaderCategory).where(
        ReaderCategory.kind == ReaderKind.teacher).order_by(ReaderCategory.id))
    before = expected(db_session, school)
    assert before["snv_copies"] > 0 and before["min_teacher"] == 1
    more = max(1, before["snv_copies"] - before["teachers"] + 1)
    for i in range(more):
        db_session.add(Reader(school_id=school.id, category_id=category.id,
                              family_name="Trần Thị", given_name=f"Thử {i}",
                              card_number=f"GVTHU{i}", barcode=f"79000001GVTHU{i}",
                              status=ReaderStatus.active))
    db_session.commit()
    refresh(db_session)
    db_session.commit()
    yield school
    db_session.rollback()
    db_session.execute(delete(Reader).where(Reader.school_id == school.id,
                                            Reader.card_number.like("GVTHU%")))
    refresh(db_session)
    db_session.commit()


def test_school_is_counted_live_against_the_minimums(login, db_session, school):
    db_session.rollback()
    html = text(login("hieutruong").get("/statistics/?report=collection_standard"))
    rows = page_rows(html)
    want = expected(db_session, school)
    assert set(rows) == {"79000001"}
    check(rows["79000001"], want)
    assert want["min_copies"] == 4 and want["min_teacher"] == 1  # a lower secondary school
    note = html.split('id="stat-standard-note"', 1)[1].split("</div>", 1)[0]
    assert "ước tính" in note and "SNV" in note
    assert "Số liệu được tính ngay từ dữ liệu của thư viện." in html
    assert english_leftovers(html) == []


def test_a_teacher_more_puts_the_school_below_one_set_per_teacher(login, db_session,
                                                                  one_more_teacher):
    school = one_more_teacher
    want = expected(db_session, school)
    assert want["teacher_ok"] is False
    # The school, live.
    row = page_rows(text(login("thuvien").get("/statistics/?report=collection_standard")))
    check(row["79000001"], want)
    # Its ward office, from the aggregates: one row per school of the office.
    client = login("phongvhxh")
    html = text(client.get("/statistics/?report=collection_standard"))
    rows = page_rows(html)
    office = db_session.scalar(select(OrgUnit).where(OrgUnit.code == "VHXH-SG"))
    from app.org.services import schools_under

    under = db_session.scalars(select(OrgUnit).where(
        OrgUnit.id.in_(schools_under(db_session, office.id)))).all()
    assert set(rows) == {u.code for u in under} and "79000002" not in rows
    for unit in under:
        check(rows[unit.code], expected(db_session, unit))
    assert "Số liệu tính lúc" in html and english_leftovers(html) == []
    # The Excel file: title, the school's row with the same figures and the result.
    resp = client.get("/statistics/xlsx?report=collection_standard")
    assert resp.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(resp.data)).active
    assert sheet["A1"].value == "VỐN TÀI LIỆU SO VỚI TIÊU CHUẨN"
    assert sheet["A2"].value.startswith("Phạm vi: Phòng Văn hóa")
    line = next(r for r in sheet.iter_rows(values_only=True) if r[0] == school.name)
    assert list(line[1:6]) == [want["students"], want["copies"],
                               round(want["copies"] / want["students"], 2), 4,
                               "Đạt" if want["copies_ok"] else "Chưa đạt"]
    assert list(line[6:13]) == [want["teachers"], want["snv_copies"], want["snv_titles"],
                                round(want["snv_copies"] / want["teachers"], 2), 1,
                                "Chưa đạt", round(want["snv_copies"] / want["snv_titles"], 2)]
    texts = [r[0] for r in sheet.iter_rows(values_only=True) if isinstance(r[0], str)]
    assert any("ước tính" in t for t in texts)
    # The office's dashboard lists it below the standard, with the teacher books criterion.
    page = text(client.get("/"))
    table = page.split('id="dashboard-below-standard"', 1)[1].split("</table>", 1)[0]
    listed = dict(re.findall(r'<tr class="danger" data-school="([^"]+)">(.*?)</tr>', table,
                             re.S))
    below = {u.code for u in under if expected(db_session, u)["copies_ok"] is False
             or expected(db_session, u)["teacher_ok"] is False}
    assert set(listed) == below and "79000001" in below
    cell = re.search(r'class="text-right below-teacher-books">(.*?)</td>',
                     listed["79000001"], re.S).group(1)
    assert cell == f"<strong>{want['snv_copies'] / want['teachers']:.2f}</strong>".replace(
        ".", ",")
    # The school's dashboard: the two ratios against their minimums.
    page = text(login("thuvien").get("/"))
    cards = dict((label.strip(), value) for label, value in re.findall(
        r'</i>\s*([^<]+?)</div>\s*<div class="dashboard-figure"[^>]*>([^<]+)<', page))
    assert cards["Sách nghiệp vụ/giáo viên (tối thiểu 1)"] == (
        f"{want['snv_copies'] / want['teachers']:.2f}".replace(".", ","))
    assert cards["Bản sách/học sinh (tối thiểu 4)"] == (
        f"{want['copies'] / want['students']:.2f}".replace(".", ","))


def unit_rows(html):
    """{unit code: parsed row} of the city's table (one line per office)."""
    body = html.split('id="stat-standard-units"', 1)[1].split("</tbody>", 1)[0]
    names = ("schools", "students", "copies", "copies_per_student", "below_copies",
             "teachers", "snv_copies", "snv_titles", "teacher_books_per_teacher",
             "below_teacher", "snv_copies_per_title")
    rows = {}
    for code, row in re.findall(r'<tr data-unit="([^"]*)">(.*?)</tr>', body, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)][1:]
        rows[code] = dict(zip(names, map(_number, cells)))
    return rows


def test_city_shows_each_office_and_downloads_every_school(login, db_session):
    from app.org.services import schools_under

    db_session.rollback()
    refresh(db_session)
    db_session.commit()
    schools = db_session.scalars(select(OrgUnit).where(
        OrgUnit.kind == UnitKind.school, OrgUnit.valid_to.is_(None))).all()
    wants = {s.code: expected(db_session, s) for s in schools}
    client = login("thanhtra")
    html = text(client.get("/statistics/?report=collection_standard"))
    assert english_leftovers(html) == []
    units = unit_rows(html)
    seen = []
    for code, row in units.items():
        unit = db_session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        codes = {s.code for s in schools if s.id in schools_under(db_session, unit.id)}
        seen += codes
        want = [wants[c] for c in codes]
        assert row["schools"] == len(codes) > 0, code
        for key in ("students", "copies", "teachers", "snv_copies", "snv_titles"):
            assert row[key] == sum(w[key] for w in want), (code, key)
        assert row["below_copies"] == sum(1 for w in want if w["copies_ok"] is False)
        assert row["below_teacher"] == sum(1 for w in want if w["teacher_ok"] is False)
    assert sorted(seen) == sorted(wants)  # every school in exactly one line
    below_copies = sum(1 for w in wants.values() if w["copies_ok"] is False)
    below_teachers = sum(1 for w in wants.values() if w["teacher_ok"] is False)
    summary = html.split('id="stat-standard-summary">', 1)[1].split("</p>", 1)[0]
    assert summary.startswith(f"{len(schools)} trường: {below_copies} trường chưa đạt")
    assert f"{below_teachers} trường chưa đạt số sách nghiệp vụ" in summary
    # The Excel file: every school on its line (school, office, then the figures).
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(
        "/statistics/xlsx?report=collection_standard").data)).active
    lines = {r[0]: r for r in sheet.iter_rows(values_only=True)}
    for school in schools:
        want, line = wants[school.code], lines[school.name]
        assert (line[2], line[3], line[7], line[8], line[9]) == (
            want["students"], want["copies"], want["teachers"], want["snv_copies"],
            want["snv_titles"]), school.code
    total = lines["Tổng cộng"]
    assert total[2] == sum(w["students"] for w in wants.values())
    assert total[3] == sum(w["copies"] for w in wants.values())
    assert total[7] == sum(w["teachers"] for w in wants.values())
    assert total[8] == sum(w["snv_copies"] for w in wants.values())
    # The department's dashboard: the schools below either minimum.
    page = text(client.get("/"))
    table = page.split('id="dashboard-below-standard"', 1)[1].split("</table>", 1)[0]
    listed = set(re.findall(r'<tr class="danger" data-school="([^"]+)">', table))
    assert listed == {c for c, w in wants.items()
                      if w["copies_ok"] is False or w["teacher_ok"] is False}


@pytest.mark.parametrize("user, unit", [
    ("hieutruong", "79000002"), ("thuvien2", "79000001"), ("phongvhxh", "VHXH-GV"),
    ("phongvhxh", "79000002"),
])
def test_another_units_standard_is_not_found(login, user, unit):
    client = login(user)
    assert client.get(f"/statistics/?report=collection_standard&unit={unit}"
                      ).status_code == 404
    assert client.get(f"/statistics/xlsx?report=collection_standard&unit={unit}"
                      ).status_code == 404
