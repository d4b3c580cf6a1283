"""The registers' parts fed by the stocktake and the weeding: a weeding round withdrawn in
2023 and a stocktake closed today, both through their services, on copies created here
(school 79000001, a shelving location of their own, intakes of 2023: the demo data is of
2025), then read in the Excel cells of the general register (Part II, Part III, the "Hiện
còn" balance), the individual register (the stocktake year's tick column, the weeding
note) and the textbook register (M/C marks). Everything is removed at the end.
"""
import datetime

import pytest
from sqlalchemy import delete, select, update

from app.catalog.models import DocumentType, Record, RecordAuthor
from app.collection.models import AccessionSeries, Copy, Counter, Intake, Location
from app.collection.services import add_copies, create_intake
from app.core.audit import acting_as
from app.core.i18n import local_today
from app.org.models import AppUser, OrgUnit
from app.registers.layout import roman_date
from app.stocktake import services as stocktake
from app.stocktake.models import (
    MissingAction, StocktakeRegisterLine, StocktakeResult, StocktakeScan, StocktakeSession,
    StocktakeUnknown,
)
from app.weeding import services as weeding
from app.weeding.models import (
    DisposalMethod, StockWithdrawal, WeedingItem, WeedingReason, WeedingRound,
)
from tests.helpers import text
from tests.test_registers import _record, data_rows, header_row_index, values, workbook

D = datetime.date
YEAR_2023 = "from=01/01/2023&to=31/12/2023"
SINCE_2023 = "from=01/01/2023"
DECISION = "07/QĐ-THCSND"
STOCKTAKE = "Kiểm kê kho thử sổ"
RECOUNT = "Kiểm kê lại sách tham khảo"


def _user(session, username):
    return session.scalar(select(AppUser).where(AppUser.username == username))


@pytest.fixture(scope="module")
def stock(app):
    """3 STK copies, 5 copies of a textbook, a children's book and a map on a shelf of their
    own (intake of 10/03/2023); a round withdrawing one STK copy (worn out), the 5th textbook
    (outdated) and the map (not entered in the register) on 20/05/2023 by decision 07 of
    28/04/2023; a stocktake of the shelf closed today: the 1st STK copy, textbooks 01–03
    and the children's book found, the 2nd STK copy and textbook 04 missing (left for the
    next count); a second count of the shelf's STK copies closed after it: the 2nd copy
    found, the 1st missing."""
    from app.extensions import db

    with app.app_context():
        session = db.session
        school = session.scalar(select(OrgUnit).where(OrgUnit.code == "79000001"))
        counters = session.execute(select(Counter.id, Counter.last_value).where(
            Counter.school_id == school.id)).all()
        types = {t.code: t for t in session.scalars(select(DocumentType))}
        series = {s.code: s for s in session.scalars(select(AccessionSeries).where(
            AccessionSeries.school_id == school.id))}
        before = {m: session.scalar(select(m.id).order_by(m.id.desc()).limit(1)) or 0
                  for m in (Intake, Record, Copy)}
        librarian, principal = _user(session, "thuvien"), _user(session, "hieutruong")
        with acting_as(name="test-registers-stock"):
            shelf = Location(school_id=school.id, code="TSS", name="Kho thử sổ")
            session.add(shelf)
            session.flush()
            intake = create_intake(session, school, D(2023, 3, 10), "Công ty Fahasa",
                                   "HĐ 0002023")
            stk = _record(session, school, types, "Đất rừng phương Nam", "Đoàn Giỏi", "STK",
                          50000, klass="895.9223")
            sgk = _record(session, school, types, "Tin học 9 (thử sổ)", "Nguyễn Chí Công",
                          "SGK", 8000, year=2019, klass="004(075)",
                          publisher="Nhà xuất bản Giáo dục", place="Hà Nội")
            atlas = _record(session, school, types, "Atlat địa lý Việt Nam (thử sổ)",
                            "Cục Đo đạc", "BD", 30000, klass="912")
            stk_copies = add_copies(session, school, stk, series["STK"], 3, location=shelf,
                                    intake=intake)
            textbooks = add_copies(session, school, sgk, series["SGK"], 5, location=shelf,
                                   intake=intake)
            tales = _record(session, school, types, "Truyện cổ tích thử sổ", "Nhiều tác giả",
                            "STN", 20000, klass="398.2")
            children = add_copies(session, school, tales, series["STN"], 1, location=shelf,
                                  intake=intake)
            maps = add_copies(session, school, atlas, series["STK"], 1, location=shelf,
                              intake=intake)
            stk_copies[2].note = "bìa rách"
            session.flush()
            # The weeding round, every step through the service, dated 2023.
            round_ = weeding.create_round(session, librarian, school, "Thanh lọc thử sổ 2023")
            weeding.add_copies(session, librarian, round_, [stk_copies[2]],
                               WeedingReason.worn_out)
            weeding.add_copies(session, librarian, round_, [textbooks[4]],
                               WeedingReason.outdated_textbook)
            weeding.add_copies(session, librarian, round_, maps, WeedingReason.other)
            weeding.propose(session, librarian, round_, today=D(2023, 4, 3))
            weeding.record_committee(session, librarian, round_, "05/QĐ-THCSND",
                                     D(2023, 4, 5), "Võ Minh Tuấn; Chủ tịch Hội đồng",
                                     D(2023, 4, 10), "Đồng ý.")
            weeding.approve(session, principal, school.id, round_, DECISION, D(2023, 4, 28),
                            DisposalMethod.liquidate, today=D(2023, 4, 28))
            line = weeding.withdraw(session, librarian, round_, today=D(2023, 5, 20))
            session.commit()
            # The stocktake of the shelf, through the service: scanned, then closed.
            st = stocktake.create_session(session, librarian, school.id, STOCKTAKE,
                                          local_today(), location_ids=[shelf.id])
            for copy in [stk_copies[0], *textbooks[:3], *children]:
                stocktake.scan(session, librarian, school.id, st.id, copy.barcode)
            stocktake.close(session, librarian, school.id, st.id, MissingAction.leave)
            session.commit()
            # A second count of the shelf's reference books the same day: the 2nd copy found
            # this time, the 1st missing (the later stocktake of a year decides its mark).
            again = stocktake.create_session(session, librarian, school.id, RECOUNT,
                                             local_today(), location_ids=[shelf.id],
                                             series_ids=[series["STK"].id])
            stocktake.scan(session, librarian, school.id, again.id, stk_copies[1].barcode)
            stocktake.close(session, librarian, school.id, again.id, MissingAction.leave)
            session.commit()
        info = {"school": school, "intake": intake.register_number, "line": line.register_number,
                "stk": [c.accession_label for c in stk_copies],
                "stn": children[0].accession_label}
        yield info
        session.rollback()
        for model in (StocktakeResult, StocktakeScan, StocktakeUnknown, StocktakeRegisterLine):
            session.execute(delete(model).where(model.session_id.in_([st.id, again.id])))
        session.execute(delete(StocktakeSession).where(StocktakeSession.id.in_([st.id,
                                                                                 again.id])))
        session.execute(delete(WeedingItem).where(WeedingItem.round_id == round_.id))
        new_copies = (Copy.id > before[Copy], Copy.school_id == school.id)
        session.execute(delete(Copy).where(*new_copies))
        session.execute(delete(StockWithdrawal).where(StockWithdrawal.round_id == round_.id))
        session.execute(delete(WeedingRound).where(WeedingRound.id == round_.id))
        new_records = select(Record.id).where(Record.id > before[Record],
                                               Record.school_id == school.id)
        session.execute(delete(RecordAuthor).where(RecordAuthor.record_id.in_(new_records)))
        session.execute(delete(Record).where(Record.id > before[Record],
                                             Record.school_id == school.id))
        session.execute(delete(Intake).where(Intake.id > before[Intake],
                                             Intake.school_id == school.id))
        session.execute(delete(Location).where(Location.id == shelf.id))
        for counter_id, value in counters:
            session.execute(update(Counter).where(Counter.id == counter_id)
                            .values(last_value=value))
        session.execute(delete(Counter).where(
            Counter.school_id == school.id, Counter.id.not_in({c.id for c in counters} or {-1})))
        session.commit()


# --- Sổ đăng ký tổng quát -------------------------------------------------------------------

def test_part_two_lines_and_totals(login, stock):
    book = workbook(login("thuvien").get(f"/registers/download/general?{YEAR_2023}"))
    ws = book["Phần II – Xuất kho"]
    top = header_row_index(ws)
    sub = values(ws)[top - 1]
    assert sub[5:9] == ["Rách nát", "Lạc hậu", "Mất", "Lý do khác"]
    assert sub[9:14] == ["SGK", "SNV", "STK", "STN", "Khác"]
    rows = data_rows(ws, top)
    # The map is withdrawn by the same decision but not entered in this register: counted
    # neither in the copies nor in the money, named in the note.
    assert len(rows) == 1
    assert rows[0][:14] == ["20.V.2023", stock["line"], f"{DECISION}, 28/04/2023", 2,
                            50000 + 8000, 1, 1, 0, 0, 1, 0, 1, 0, 0]
    assert rows[0][14].startswith("Thanh lý; 1 bản khác không vào sổ này")
    total = values(ws)[top + 1]
    assert total[0] == "Tổng cộng" and total[3:14] == [2, 58000, 1, 1, 0, 0, 1, 0, 1, 0, 0]


def test_part_three_balance_of_the_period(login, stock):
    """2023: no stocktake (closed today); the balance at 31/12/2023: taken in by Part I less
    withdrawn by Part II, by type (the map is in neither)."""
    ws = workbook(login("thuvien").get(f"/registers/download/general?{YEAR_2023}"))[
        "Phần III – Kiểm kê"]
    top = header_row_index(ws)
    assert data_rows(ws, top) == [["31.XII.2023", 9, 2, 7,
                                   3 * 50000 + 5 * 8000 + 20000 - 58000, 4, 0, 2, 1, 0,
                                   "Hiện còn đến 31.XII.2023"]]
    assert ws.cell(top + 1, 1).font.color.rgb == "FFC00000"


def test_part_three_stocktake_line(login, stock):
    """The stocktake of the shelf: its totals fixed at the close (in: 3 STK + 5 SGK + 1 STN;
    out: the 2 withdrawn; held: 2 STK + 4 SGK + 1 STN), the map left out; the register's
    balance last."""
    ws = workbook(login("thuvien").get(f"/registers/download/general?{SINCE_2023}"))[
        "Phần III – Kiểm kê"]
    rows = data_rows(ws, header_row_index(ws))
    [line] = [r for r in rows if (r[10] or "").startswith(STOCKTAKE)]
    assert line[:10] == [roman_date(local_today()), 9, 2, 7, 2 * 50000 + 4 * 8000 + 20000,
                         4, 0, 2, 1, 0]
    assert "một phần kho" in line[10] and "Kho thử sổ" in line[10]
    assert "2 bản thiếu" in line[10]
    # The recount of the shelf's reference books, after it.
    [recount] = [r for r in rows if (r[10] or "").startswith(RECOUNT)]
    assert rows.index(recount) == rows.index(line) + 1
    assert recount[:10] == [roman_date(local_today()), 3, 1, 2, 100000, 0, 0, 2, 0, 0]
    assert "1 bản thiếu" in recount[10]
    assert rows[-1][0] == roman_date(local_today())
    assert rows[-1][10] == f"Hiện còn đến {roman_date(local_today())}"


def test_general_register_printed_with_parts_two_and_three(login, stock):
    html = text(login("hieutruong").get(f"/registers/print/general?{YEAR_2023}"))
    assert f"{DECISION}, 28/04/2023" in html and "20.V.2023" in html
    assert '<tr class="balance">' in html and "Hiện còn đến 31.XII.2023" in html
    assert "152.000" in html
    assert "Không có biên bản xuất kho nào trong kỳ này." not in html


def test_another_school_does_not_see_the_lines(login, stock):
    book = workbook(login("thuvien2").get(f"/registers/download/general?{SINCE_2023}"))
    part2 = book["Phần II – Xuất kho"]
    assert DECISION not in str(values(part2))
    part3 = book["Phần III – Kiểm kê"]
    assert STOCKTAKE not in str(values(part3))


# --- Sổ đăng ký cá biệt -------------------------------------------------------------------

def test_individual_register_tick_column_and_weeding_note(login, stock):
    ws = workbook(login("thuvien").get(
        f"/registers/download/individual?series=STK&{YEAR_2023}")).worksheets[0]
    top = header_row_index(ws)
    assert values(ws)[top - 2][9] == "Kiểm kê"
    years = values(ws)[top - 1]
    column = years.index(str(local_today().year))
    rows = data_rows(ws, top)
    # The map is not entered; one line per copy.
    assert [r[1] for r in rows] == stock["stk"]
    # Two stocktakes this year: the recount, closed last, decides.
    assert years.count(str(local_today().year)) == 1
    assert [r[column] for r in rows] == ["M", "C", None]
    # The decision of the Part II line, written once (the withdrawal also put it at the head
    # of the copy's own note), then the copy's own note.
    assert rows[2][-1] == f"đã thanh lọc, QĐ số {DECISION} ngày 28/04/2023; bìa rách"
    assert rows[0][-1] is None and rows[1][-1] is None


def test_individual_register_of_a_series_counted_once(login, stock):
    ws = workbook(login("thuvien").get(
        f"/registers/download/individual?series=STN&{YEAR_2023}")).worksheets[0]
    top = header_row_index(ws)
    column = values(ws)[top - 1].index(str(local_today().year))
    rows = data_rows(ws, top)
    assert [(r[1], r[column]) for r in rows] == [(stock["stn"], "C")]


def test_textbook_register_marks(login, stock):
    ws = workbook(login("thuvien").get(f"/registers/download/textbooks?{YEAR_2023}")
                  ).worksheets[0]
    rows = values(ws)
    start = next(i for i, r in enumerate(rows) if r[0] == "Tin học 9 (thử sổ)")
    line = rows[start + 1]
    assert line[:3] == ["10.III.2023", "01–05", 5]
    # Kept: every copy but the weeded one; the marks of today's stocktake.
    assert line[8] == 4
    assert line[9] == "C: 01, 02, 03; M: 04"
    assert line[10] == "đã thanh lọc: 05"
