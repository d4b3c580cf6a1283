"""The school's library report (báo cáo công tác thư viện): figures from the data of the
period, words from the librarian; show, print, Excel; bad dates; other schools' reports."""
import datetime
import io
import re

import openpyxl
import pytest
from sqlalchemy import delete, func, select, update

from app.catalog.models import DocumentType, Record
from app.circulation.models import Loan, LoanStatus, ReadingRoomUse
from app.collection.models import AccessionSeries, Copy, Counter, Funding, Intake
from app.collection.services import add_copies, create_intake
from app.core.audit import acting_as
from app.org.models import OrgUnit
from app.readers.models import Reader, ReaderCategory, ReaderKind
from app.statistics.models import LibraryReport
from tests.helpers import post_form, text

D = datetime.date
SCHOOL = "79000002"


@pytest.fixture
def october(db_session):
    """October 2024 at 79000002: two intakes (budget / donation) of reference and children's
    books, a teacher's and two students' loans, a class visit; all removed afterwards."""
    session = db_session
    session.rollback()
    school = session.scalar(select(OrgUnit).where(OrgUnit.code == SCHOOL))
    counters = dict(session.execute(select(Counter.id, Counter.last_value).where(
        Counter.school_id == school.id)).all())
    before = {m: session.scalar(select(m.id).order_by(m.id.desc()).limit(1)) or 0
              for m in (Intake, Copy, Loan, ReadingRoomUse, LibraryReport)}
    types = {t.code: t.id for t in session.scalars(select(DocumentType))}
    series = {s.code: s for s in session.scalars(select(AccessionSeries).where(
        AccessionSeries.school_id == school.id))}
    records = {}
    for code in ("STK", "STN"):
        records[code] = session.scalars(select(Record).where(
            Record.school_id == school.id, Record.document_type_id == types[code])).first()
    assert all(records.values()), "the demo school has reference and children's books"
    with acting_as(name="test-library-report"):
        bought = create_intake(session, school, D(2024, 10, 3), "Nhà sách Fahasa", "HĐ 12",
                               funding=Funding.state_budget)
        given = create_intake(session, school, D(2024, 10, 20), "Hội cha mẹ học sinh",
                              "BB 3", funding=Funding.donation)
        series_of = {code: series.get(code) or series["STK"] for code in records}
        stk = add_copies(session, school, records["STK"], series_of["STK"], 3, intake=bought,
                         price=50000)
        stn = add_copies(session, school, records["STN"], series_of["STN"], 2, intake=given,
                         price=30000)
        kinds = {c.id: c.kind for c in session.scalars(select(ReaderCategory))}
        readers = session.scalars(select(Reader).where(Reader.school_id == school.id)
                                  .order_by(Reader.id)).all()
        teacher = next(r for r in readers if kinds[r.category_id] != ReaderKind.student)
        students = [r for r in readers if kinds[r.category_id] == ReaderKind.student][:2]
        when = datetime.datetime(2024, 10, 10, 9)
        for reader, copy in zip([teacher] + students, stk + stn):
            session.add(Loan(school_id=school.id, copy_id=copy.id, reader_id=reader.id,
                             class_name=reader.class_name, loaned_at=when,
                             due_on=when.date() + datetime.timedelta(days=10),
                             returned_at=when, status=LoanStatus.returned))
        student_category = students[0].category_id
        session.add(ReadingRoomUse(school_id=school.id, used_on=D(2024, 10, 15),
                                   class_name=students[0].class_name,
                                   category_id=student_category, visits=28))
    session.commit()
    yield {"school": school, "budget": 3 * 50000, "donation": 2 * 30000}
    session.rollback()
    for model in (LibraryReport, ReadingRoomUse, Loan, Copy, Intake):
        session.execute(delete(model).where(model.school_id == school.id,
                                            model.id > before[model]))
    for counter_id, value in counters.items():
        session.execute(update(Counter).where(Counter.id == counter_id).values(last_value=value))
    session.execute(delete(Counter).where(Counter.school_id == school.id,
                                          Counter.id.not_in(list(counters) or [-1])))
    session.commit()


def _add_report(client, **changes):
    data = {"kind": "month", "starts_on": "01/10/2024", "ends_on": "31/10/2024",
            "activities": "Tuần lễ đọc sách 20/10", "coordination": "Cùng Tổng phụ trách Đội",
            "teacher_requests": "Sách nghiệp vụ chương trình mới",
            "student_requests": "Truyện tranh lịch sử", "school_proposals": "Thêm kệ sách",
            "office_proposals": ""}
    data.update(changes)
    return post_form(client, "/libraryreportview/add", data)


def test_report_figures_come_from_the_period(login, october, db_session):
    client = login("thuvien2")
    resp = _add_report(client)
    assert resp.status_code == 302
    report = db_session.scalars(select(LibraryReport).where(
        LibraryReport.school_id == october["school"].id).order_by(LibraryReport.id.desc())
    ).first()
    html = text(client.get(f"/libraryreportview/show/{report.id}"))
    assert "BÁO CÁO CÔNG TÁC THƯ VIỆN TRƯỜNG HỌC THÁNG 10/2024" in html
    acquisitions = html.split('id="report-acquisitions"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", acquisitions, re.S)[1:]:
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>",
                                                                        row, re.S)]
        rows[cells[0]] = cells[1:4]
    assert rows["Sách tham khảo"] == ["3", "150.000", "0"]
    assert rows["Sách thiếu nhi"] == ["2", "0", "60.000"]
    assert rows["Tổng cộng"] == ["5", "150.000", "60.000"]
    readers = html.split('id="report-readers"', 1)[1].split("</ul>", 1)[0]
    assert "Số sách giáo viên mượn về nhà: <strong>1</strong>" in readers
    assert "Số sách học sinh mượn về nhà: <strong>2</strong>" in readers
    assert "Số lượt học sinh đến thư viện trong kỳ: <strong>28</strong>" in readers
    assert "Tuần lễ đọc sách 20/10" in html and "CÁN BỘ THƯ VIỆN" in html

    # The Excel file: the same figures, totals as formulas, the typed parts.
    resp = client.get(f"/libraryreportview/xlsx/{report.id}")
    assert resp.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(resp.data), data_only=True)
    cells = [[c.value for c in row] for row in book.active.iter_rows()]
    flat = [v for row in cells for v in row if v is not None]
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in flat
    assert "BÁO CÁO CÔNG TÁC THƯ VIỆN TRƯỜNG HỌC THÁNG 10/2024" in flat
    total = next(row for row in cells if row[0] == "Tổng cộng")
    assert total[1:4] == [5, 150000, 60000]
    formulas = openpyxl.load_workbook(io.BytesIO(resp.data)).active
    assert any(str(c.value).startswith("=SUM(") for row in formulas.iter_rows() for c in row)
    assert "Truyện tranh lịch sử" in flat and "HIỆU TRƯỞNG" in flat
    assert formulas.page_setup.paperSize == 9

    printed = client.get(f"/libraryreportview/print/{report.id}")
    assert printed.status_code == 200 and "Độc lập - Tự do - Hạnh phúc" in text(printed)
    # The principal reads and prints it, but cannot write one.
    principal = login("hieutruong")  # of 79000001: another school
    assert principal.get(f"/libraryreportview/show/{report.id}").status_code == 404


def test_report_dates_are_checked_and_nothing_is_saved(login, october, db_session):
    count = db_session.scalar(select(func.count()).select_from(
        LibraryReport))
    client = login("thuvien2")
    _add_report(client, starts_on="31/10/2024", ends_on="01/10/2024")
    with client.session_transaction() as sess:
        messages = [message for _cat, message in sess.pop("_flashes", [])]
    assert "Báo cáo kết thúc (01/10/2024) trước khi bắt đầu (31/10/2024)." in messages
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(
        LibraryReport)) == count


def test_other_schools_reports_are_not_found(login, october, db_session):
    client = login("thuvien2")
    assert _add_report(client).status_code == 302
    report = db_session.scalars(select(LibraryReport).order_by(LibraryReport.id.desc())).first()
    for user in ("thuvien", "hieutruong"):
        other = login(user)
        for url in (f"/libraryreportview/show/{report.id}",
                    f"/libraryreportview/print/{report.id}",
                    f"/libraryreportview/xlsx/{report.id}"):
            assert other.get(url).status_code == 404, (user, url)
        assert f"/libraryreportview/show/{report.id}" not in text(
            other.get("/libraryreportview/list/"))
    # The ward office of another ward does not see it; the department does.
    assert login("phongvhxh").get(f"/libraryreportview/show/{report.id}").status_code == 404
    assert login("thanhtra").get(f"/libraryreportview/show/{report.id}").status_code == 200
    # A principal cannot write a report.
    resp = login("hieutruong").get("/libraryreportview/add")
    assert resp.status_code in (302, 403)
