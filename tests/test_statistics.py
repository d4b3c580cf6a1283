"""Statistics: one school live, an office and the city from the aggregates; periods, the
Excel file, the refresh command, and who may see which unit."""
import datetime
import io
import re
from collections import Counter

import openpyxl
import pytest
from sqlalchemy import delete, func, select

from app.circulation.models import Loan, LoanStatus, ReadingRoomUse
from app.collection.models import Copy, CopyStatus
from app.org.models import OrgUnit
from app.readers.models import Reader, ReaderCategory
from app.statistics.models import StatMonthly, StatRefresh, StatSnapshot
from app.statistics.refresh import refresh
from tests.helpers import text

SCHOOLS = ("79000001", "79000002")


@pytest.fixture
def schools(db_session):
    return {code: db_session.scalar(select(OrgUnit).where(OrgUnit.code == code))
            for code in SCHOOLS + ("79000003",)}


@pytest.fixture
def loans(db_session, schools):
    """Loans in October and November 2025 at the two demo schools with readers, spread over
    readers (grades) and copies; removed afterwards (and the aggregates rebuilt)."""
    db_session.rollback()
    made = []
    for code, per_reader in (("79000001", 2), ("79000002", 1)):
        school = schools[code]
        readers = db_session.scalars(select(Reader).where(
            Reader.school_id == school.id).order_by(Reader.id)).all()
        copies = db_session.scalars(select(Copy).where(
            Copy.school_id == school.id, Copy.status == CopyStatus.available)
            .order_by(Copy.id)).all()
        copy_iter = iter(copies)
        for i, reader in enumerate(readers[:12]):
            for j in range(per_reader):
                copy = next(copy_iter, None)
                if copy is None:
                    break
                month = 10 if (i + j) % 3 else 11
                loaned = datetime.datetime(2025, month, 3 + i, 9, 0)
                loan = Loan(school_id=school.id, copy_id=copy.id, reader_id=reader.id,
                            class_name=reader.class_name, loaned_at=loaned,
                            due_on=loaned.date() + datetime.timedelta(days=10),
                            returned_at=loaned + datetime.timedelta(days=5),
                            status=LoanStatus.returned)
                db_session.add(loan)
                made.append((code, reader.grade, reader.category_id, month, reader.class_name))
    db_session.add(ReadingRoomUse(school_id=schools["79000001"].id,
                                  used_on=datetime.date(2025, 10, 7), class_name="6A1",
                                  visits=30))
    db_session.commit()
    yield made
    db_session.rollback()
    ids = [schools[c].id for c in SCHOOLS]
    db_session.execute(delete(Loan).where(Loan.school_id.in_(ids)))
    db_session.execute(delete(ReadingRoomUse).where(ReadingRoomUse.school_id.in_(ids)))
    refresh(db_session, since=SINCE)
    db_session.commit()


def _table(resp):
    """{row label: [cells]} of the page's statistics table, and the column headings."""
    html = text(resp)
    body = html.split('id="stat-table"', 1)[1].split("</table>", 1)[0]
    heads = [re.sub(r"<[^>]+>", "", h).strip()
             for h in re.findall(r'<th colspan="\d+" class="text-center">(.*?)</th>', body, re.S)]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1].split("</tbody>")[0],
                          re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>",
                                                                        row, re.S)]
        if len(cells) > 1:
            rows[cells[0]] = [int(c.replace(".", "")) for c in cells[1:]]
    return heads, rows


SINCE = datetime.date(2025, 9, 1)
OCT_NOV = "from=01/10/2025&to=30/11/2025"


def test_school_loans_by_grade_are_counted_live_and_match_the_data(login, loans):
    expected = Counter(grade for code, grade, _c, _m, _cls in loans if code == "79000001")
    client = login("thuvien")
    resp = client.get(f"/statistics/?report=loans_grade&{OCT_NOV}")
    assert resp.status_code == 200
    heads, rows = _table(resp)
    assert heads == ["Trường THCS Nguyễn Du"]
    got = {label: cells[0] for label, cells in rows.items()}
    want = {(f"Khối {g}" if g else "Giáo viên, nhân viên"): n for g, n in expected.items()}
    assert got == want
    assert "Số liệu được tính ngay từ dữ liệu của thư viện." in text(resp)
    # Only October: the November loans drop out.
    october = Counter(g for code, g, _c, m, _cls in loans if code == "79000001" and m == 10)
    _h, rows = _table(client.get("/statistics/?report=loans_grade&from=01/10/2025&to=31/10/2025"))
    assert sum(cells[0] for cells in rows.values()) == sum(october.values())


def test_school_lists_top_readers_and_classes_without_use(login, loans, db_session, schools):
    client = login("hieutruong")  # the principal reads the same page
    html = text(client.get(f"/statistics/?report=loans_class&{OCT_NOV}"))
    assert 'id="stat-top-titles"' in html and 'id="stat-top-readers"' in html
    classes = set(db_session.scalars(select(Reader.class_name).where(
        Reader.school_id == schools["79000001"].id, Reader.class_name.is_not(None))))
    used = {cls for code, _g, _c, _m, cls in loans if code == "79000001"} | {"6A1"}
    idle = html.split('id="stat-idle-classes"', 1)[1].split("</p>", 1)[0]
    for cls in classes - used:
        assert f">{cls}<" in idle
    for cls in used & classes:
        assert f">{cls}<" not in idle


def test_office_and_city_read_the_aggregates_with_a_column_per_unit(login, loans, db_session,
                                                                     schools):
    refresh(db_session, since=SINCE)
    db_session.commit()
    per_school = Counter(code for code, *_rest in loans)
    client = login("admin")
    heads, rows = _table(client.get(f"/statistics/?report=loans_category&{OCT_NOV}"))
    assert "Tổng cộng" in heads
    total = sum(cells[-1] for cells in rows.values())
    assert total == sum(per_school.values())
    # Drill down to the ward office of 79000001 (after the 2025 reform): one column per school.
    office = db_session.execute(select(OrgUnit).where(OrgUnit.code == "VHXH-SG")).scalar_one()
    resp = client.get(f"/statistics/?report=loans_category&unit={office.code}&{OCT_NOV}")
    heads, rows = _table(resp)
    assert "Trường THCS Nguyễn Du" in heads and "Trường THCS Nguyễn Văn Trỗi" not in heads
    column = heads.index("Trường THCS Nguyễn Du")
    assert sum(cells[column] for cells in rows.values()) == per_school["79000001"]
    assert "Số liệu tính lúc" in text(resp)
    # And to the school itself: computed live, the same figure.
    _h, rows = _table(client.get(f"/statistics/?report=loans_category&unit=79000001&{OCT_NOV}"))
    assert sum(cells[0] for cells in rows.values()) == per_school["79000001"]


def test_aggregates_follow_the_data_after_a_refresh(db_session, schools, loans, app):
    refresh(db_session, since=SINCE)
    db_session.commit()
    sid = schools["79000001"].id
    before = sum(db_session.scalars(select(StatMonthly.count).where(
        StatMonthly.school_id == sid, StatMonthly.metric == "loans.category")))
    assert before == sum(1 for code, *_r in loans if code == "79000001")
    db_session.execute(delete(Loan).where(Loan.school_id == sid))
    db_session.commit()
    result = app.test_cli_runner().invoke(args=["stats-refresh", "--school", "79000001",
                                                "--since", "01/09/2025"])
    assert result.exit_code == 0, result.output
    assert "Đã đếm lại số liệu thống kê của 1 trường" in result.output
    db_session.expire_all()
    after = db_session.scalars(select(StatMonthly.count).where(
        StatMonthly.school_id == sid, StatMonthly.metric == "loans.category")).all()
    assert after == []
    assert db_session.get(StatRefresh, sid) is not None
    bad = app.test_cli_runner().invoke(args=["stats-refresh", "--since", "31/02/2025"])
    assert bad.exit_code != 0 and "không phải ngày" in bad.output


def test_holdings_snapshot_matches_the_copies(login, db_session, schools):
    sid = schools["79000001"].id
    holding = db_session.scalar(select(func.count()).select_from(Copy)
                                .where(Copy.school_id == sid, Copy.status.not_in(
                                    [CopyStatus.withdrawn, CopyStatus.lost])))
    _h, rows = _table(login("thuvien").get("/statistics/?report=collection_doctype"))
    assert sum(cells[1] for cells in rows.values()) == holding  # titles, copies, value
    refresh(db_session, since=SINCE)
    db_session.commit()
    snap = sum(db_session.scalars(select(StatSnapshot.count).where(
        StatSnapshot.school_id == sid, StatSnapshot.metric == "copies.doctype")))
    assert snap == holding


def test_excel_has_the_table_and_total_formulas(login, loans, db_session):
    refresh(db_session, since=SINCE)
    db_session.commit()
    resp = login("phongvhxh").get(f"/statistics/xlsx?report=loans_grade&{OCT_NOV}")
    assert resp.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(resp.data)).active
    cells = {(c.row, c.column): c.value for row in sheet.iter_rows() for c in row
             if c.value is not None}
    assert cells[(1, 1)] == "LƯỢT MƯỢN THEO KHỐI"
    assert cells[(2, 1)].startswith("Phạm vi: Phòng Văn hóa")
    assert cells[(3, 1)] == "Kỳ báo cáo: 01/10/2025 – 30/11/2025"
    header_row = next(r for (r, c), v in cells.items() if v == "Khối")
    heads = [cells.get((header_row, c)) for c in range(2, sheet.max_column + 1)]
    assert "Trường THCS Nguyễn Du" in heads and heads[-1] == "Tổng cộng"
    total_row = next(r for (r, c), v in cells.items() if v == "Tổng cộng" and c == 1)
    assert str(cells[(total_row, 2)]).startswith("=SUM(")
    assert sheet.page_setup.paperSize == 9
    values = openpyxl.load_workbook(io.BytesIO(resp.data), data_only=True).active
    column = heads.index("Trường THCS Nguyễn Du") + 2
    assert values.cell(total_row, column).value == sum(
        1 for code, *_r in loans if code == "79000001")


def test_bad_periods_give_a_vietnamese_message(login):
    client = login("thuvien")
    html = text(client.get("/statistics/?from=01/10/2025&to=01/09/2025"))
    assert "Kỳ báo cáo kết thúc (01/09/2025) trước khi bắt đầu (01/10/2025)." in html
    html = text(client.get("/statistics/?from=32/10/2025&to=01/11/2025"))
    assert "không phải là ngày (dd/mm/yyyy)" in html
    html = text(client.get("/statistics/?from=01/10/2025"))
    assert "Hãy nhập cả ngày đầu và ngày cuối của kỳ." in html
    assert client.get("/statistics/xlsx?from=01/10/2025&to=01/09/2025").status_code == 400
    # An empty period is a table without figures, not an error.
    html = text(client.get("/statistics/?report=loans_grade&from=01/01/2020&to=31/01/2020"))
    assert "Không có số liệu trong kỳ này." in html


@pytest.mark.parametrize("user, unit", [
    ("thuvien", "79000002"), ("hieutruong", "79000002"), ("thuvien2", "79000001"),
    ("phongvhxh", "79000002"), ("phongvhxh", "VHXH-GV"), ("thuvien", "VHXH-SG"),
])
def test_a_user_sees_only_units_of_their_scope(login, user, unit):
    client = login(user)
    assert client.get(f"/statistics/?unit={unit}").status_code == 404
    assert client.get(f"/statistics/xlsx?unit={unit}").status_code == 404


def test_readers_and_students_have_no_statistics(login):
    for user in ("giaovien", "hocsinh"):
        resp = login(user).get("/statistics/")
        assert resp.status_code in (302, 403, 404)


# --- Dashboards ----------------------------------------------------------------------------

def _charts(page):
    import json

    return {c["id"]: c for c in json.loads(re.search(r"var charts = (\[.*?\]);\n", page,
                                                     re.S).group(1))}


@pytest.fixture
def loans_today(db_session, schools):
    """Three loans today at 79000001 (grade-6 students), removed afterwards."""
    from app.core.i18n import local_today

    db_session.rollback()
    school = schools["79000001"]
    readers = db_session.scalars(select(Reader).where(
        Reader.school_id == school.id, Reader.grade == 6).order_by(Reader.id)).all()[:3]
    copies = db_session.scalars(select(Copy).where(
        Copy.school_id == school.id, Copy.status == CopyStatus.available)
        .order_by(Copy.id)).all()[:3]
    now = datetime.datetime.combine(local_today(), datetime.time(8, 0))
    for reader, copy in zip(readers, copies):
        db_session.add(Loan(school_id=school.id, copy_id=copy.id, reader_id=reader.id,
                            class_name=reader.class_name, loaned_at=now,
                            due_on=now.date() + datetime.timedelta(days=10),
                            returned_at=now, status=LoanStatus.returned))
    db_session.commit()
    yield readers
    db_session.rollback()
    db_session.execute(delete(Loan).where(Loan.school_id == school.id))
    refresh(db_session)
    db_session.commit()


def test_school_dashboard_charts_loans_and_participation(login, loans_today, db_session,
                                                        schools):
    from app.core.i18n import local_today

    page = text(login("thuvien").get("/"))
    charts = _charts(page)
    month = charts["chart-loans-month"]
    assert dict(zip(month["labels"], month["values"]))[local_today().strftime("%m/%Y")] == 3
    grade6 = db_session.scalar(select(func.count()).select_from(Reader)
                               .where(Reader.school_id == schools["79000001"].id,
                                      Reader.grade == 6, Reader.status == "active"))
    part = charts["chart-participation-grade"]
    assert dict(zip(part["labels"], part["values"]))["Khối 6"] == round(100 * 3 / grade6, 1)


def test_office_dashboard_lists_schools_below_the_standard(login, db_session):
    from app.core.tenancy import scope_for
    from app.org.models import AppUser
    from app.statistics.dashboard import minimum_for

    refresh(db_session)
    db_session.commit()
    user = db_session.scalar(select(AppUser).where(AppUser.username == "admin"))
    ids = scope_for(db_session, user).school_ids or set(db_session.scalars(
        select(OrgUnit.id).where(OrgUnit.kind == "school")))
    students = {c.id for c in db_session.scalars(select(ReaderCategory))
                if c.kind.name == "student"}
    expected = set()
    for sid in ids:
        school = db_session.get(OrgUnit, sid)
        pupils = db_session.scalar(select(func.count()).select_from(
            Reader).where(Reader.school_id == sid, Reader.status == "active",
                          Reader.category_id.in_(students)))
        copies = db_session.scalar(select(func.count()).select_from(
            Copy).where(Copy.school_id == sid, Copy.status.not_in(["withdrawn", "lost"])))
        if pupils and minimum_for(school) and copies / pupils < minimum_for(school):
            expected.add(school.name)
        # Or below one set of teacher books per teacher (tests/test_standard.py).
        from tests.test_standard import expected as standard_figures

        if standard_figures(db_session, school)["teacher_ok"] is False:
            expected.add(school.name)
    page = text(login("admin").get("/"))
    assert "dashboard-freshness" in page
    assert expected  # the demo schools have fewer copies than the standard asks
    table = page.split('id="dashboard-below-standard"', 1)[1].split("</table>", 1)[0]
    listed = set(re.findall(r'<a href="[^"]*">([^<]+)</a>', table))
    assert listed == expected
    charts = _charts(page)
    assert {"chart-participation", "chart-loans-per-student", "chart-copies-per-student"} <= set(
        charts)


def test_drill_down_from_the_city_to_a_class(login, loans):
    client = login("thanhtra")
    html = text(client.get(f"/statistics/?report=loans_class&unit=79000001&{OCT_NOV}"))
    crumbs = html.split('id="stat-breadcrumb"', 1)[1].split("</ol>", 1)[0]
    assert "Toàn thành phố" in crumbs and "Phòng Văn hóa – Xã hội phường Sài Gòn" in crumbs
    assert 'class="stat-class-link"' in html
    per_reader = Counter()
    for code, _g, _c, _m, cls in loans:
        if code == "79000001" and cls == "6A1":
            per_reader[cls] += 1
    html = text(client.get(f"/statistics/?report=loans_class&unit=79000001&class=6A1&{OCT_NOV}"))
    table = html.split('id="stat-class"', 1)[1].split("</table>", 1)[0]
    loans_in_table = sum(int(n) for n in re.findall(
        r'<td class="text-right">(\d+)</td><td class="text-right">\d+</td>', table))
    assert loans_in_table == per_reader["6A1"] > 0


def test_withdrawals_of_a_weeding_round_are_counted(login, db_session, schools):
    """Copies withdrawn by a round (through the weeding services) appear in "withdrawals in
    the period" with their value, at the school (live) and in the city (aggregates)."""
    from app.core.i18n import local_today
    from app.weeding import services as weeding
    from tests.test_weeding import approved_round, reset, user

    s1 = schools["79000001"]
    reset([s1.id])
    try:
        today = local_today()
        round_, copies = approved_round(s1, display_from=today - datetime.timedelta(days=20))
        weeding.withdraw(db_session, user("thuvien"), round_, today=today)
        db_session.commit()
        value = sum(int(c.price or 0) for c in copies)
        period = f"from={today:%d/%m/%Y}&to={today:%d/%m/%Y}"
        _h, rows = _table(login("thuvien").get(f"/statistics/?report=withdrawn_doctype&{period}"))
        assert sum(cells[0] for cells in rows.values()) == len(copies) > 0
        assert sum(cells[1] for cells in rows.values()) == value
        refresh(db_session)
        db_session.commit()
        heads, rows = _table(login("thanhtra").get(
            f"/statistics/?report=withdrawn_doctype&{period}"))
        assert sum(cells[-2] for cells in rows.values()) == len(copies)
    finally:
        reset([s1.id])
        refresh(db_session)
        db_session.commit()


def _transposed(html):
    """(key headings, {unit: [cells]} in page order, footer figures, data-units) of a table
    shown one row per unit."""
    body = html.split('id="stat-table"', 1)[1].split("</table>", 1)[0]
    assert 'data-transposed="1"' in html
    units = re.search(r'data-units="([^"]*)"', html).group(1)
    heads = [re.sub(r"<[^>]+>", "", h).strip()
             for h in re.findall(r'<th colspan="\d+" class="text-center">(.*?)</th>', body, re.S)]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1].split("</tbody>")[0],
                          re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>",
                                                                        row, re.S)]
        rows.append((cells[0], [int(c.replace(".", "")) for c in cells[1:]]))
    foot = body.split("<tfoot>", 1)[1]
    footer = [int(v.replace(".", "")) for v in re.findall(
        r'<th class="text-right">([\d.]+)</th>', foot)]
    return heads, rows, footer, units


def test_many_units_are_shown_a_page_at_a_time_with_the_totals_of_all(login, loans, app,
                                                                       db_session):
    """A scope of many units: one row per unit, `STAT_UNITS_PER_PAGE` a page; every unit is
    on exactly one page with the same figures as on one long page, the totals row is that of
    every unit on each page (counted here from the loans), and the Excel file has them all."""
    refresh(db_session, since=SINCE)
    db_session.commit()
    categories = dict(db_session.execute(select(ReaderCategory.id, ReaderCategory.name)).all())
    by_category = Counter(categories[c] for _code, _g, c, _m, _cls in loans)
    client = login("admin")
    url = f"/statistics/?report=loans_category&{OCT_NOV}"
    saved = {k: app.config[k] for k in ("STAT_TRANSPOSE_ABOVE", "STAT_UNITS_PER_PAGE")
             if k in app.config}
    try:
        app.config.update(STAT_TRANSPOSE_ABOVE=0, STAT_UNITS_PER_PAGE=1000)
        heads, full, footer, units = _transposed(text(client.get(url)))
        count = len(full)
        assert count >= 3 and units == f"1-{count}/{count}"
        assert 'id="stat-pages"' not in text(client.get(url))
        keys = heads[:-1]
        assert heads[-1] == "Tổng cộng"
        assert dict(zip(keys, footer)) == {k: by_category.get(k, 0) for k in keys}
        assert footer[-1] == len(loans) > 0
        app.config["STAT_UNITS_PER_PAGE"] = 2
        pages = -(-count // 2)
        seen = []
        for number in range(1, pages + 1):
            html = text(client.get(f"{url}&units={number}"))
            p_heads, rows, p_footer, p_units = _transposed(html)
            assert p_heads == heads and p_footer == footer  # the totals of every unit
            assert 1 <= len(rows) <= 2
            assert p_units == f"{2 * number - 1}-{2 * number - 2 + len(rows)}/{count}"
            assert f"Tổng cộng cả {count} đơn vị" in html
            links = html.split('id="stat-pages"', 1)[1].split("</p>", 1)[0]
            assert len(re.findall(r"units=\d+", links)) == pages - 1
            seen.extend(rows)
        assert seen == full  # every unit once, in the same order, with the same figures
        # A page out of range shows the last one; a page that is not a number the first.
        assert _transposed(text(client.get(f"{url}&units=999")))[1] == full[-len(rows):]
        assert _transposed(text(client.get(f"{url}&units=abc")))[1] == full[:2]
        sheet = openpyxl.load_workbook(io.BytesIO(client.get(
            f"/statistics/xlsx?report=loans_category&{OCT_NOV}&units=2").data)).active
        values = {c.value for row in sheet.iter_rows() for c in row}
        assert {name for name, _cells in full} <= values
    finally:
        app.config.pop("STAT_TRANSPOSE_ABOVE", None)
        app.config.pop("STAT_UNITS_PER_PAGE", None)
        app.config.update(saved)


def test_every_loan_fact_counts_every_loan_once(db_session, schools, loans):
    """Each loan fact joins only the tables its key needs: every one still counts each loan
    of the fixture once, by the right key."""
    refresh(db_session, since=SINCE)
    db_session.commit()
    for code in SCHOOLS:
        sid = schools[code].id
        mine = [row for row in loans if row[0] == code]

        def counts(metric):
            return Counter({key: n for key, n in db_session.execute(
                select(StatMonthly.key, func.sum(StatMonthly.count)).where(
                    StatMonthly.school_id == sid, StatMonthly.metric == metric)
                .group_by(StatMonthly.key)).all()})

        for metric in ("loans.category", "loans.grade", "loans.class", "loans.doctype",
                       "loans.classmain"):
            assert sum(counts(metric).values()) == len(mine) > 0, metric
        assert counts("loans.class") == Counter(cls or "" for *_r, cls in mine)
        assert counts("loans.grade") == Counter("" if g is None else str(g)
                                                for _c, g, *_r in mine)
        assert counts("loans.category") == Counter(str(c) for _c, _g, c, *_r in mine)
