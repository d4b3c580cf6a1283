"""A weeding round in real browsers: the librarian proposes the copies of a worn-out title and
records the committee, the principal approves it in another browser context, the 15 days of
public display pass (the display start is moved into the past in the data), the librarian
withdraws the copies: they show "đã thanh lọc" with the decision number, the general register's
Part II has its line, and the catalogue search no longer finds the title.
"""
import datetime

from sqlalchemy import delete, select, update

SCHOOL_CODE = "79000001"
TITLE = "Truyện Kiều"


def _reset(session):
    from app.catalog.models import Record
    from app.circulation.models import Loan
    from app.collection.models import Copy, CopyStatus
    from app.org.models import OrgUnit
    from app.weeding.models import StockWithdrawal, WeedingItem, WeedingRound

    school = session.scalar(select(OrgUnit).where(OrgUnit.code == SCHOOL_CODE))
    session.execute(update(Copy).where(Copy.school_id == school.id)
                    .values(status=CopyStatus.available, note=None, withdrawal_id=None))
    for model in (StockWithdrawal, WeedingItem, WeedingRound, Loan):
        session.execute(delete(model).where(model.school_id == school.id))
    session.execute(update(Record).where(Record.school_id == school.id).values(is_hidden=False))
    session.commit()
    return [(c.id, c.barcode, c.accession_label) for c in session.scalars(
        select(Copy).join(Record, Record.id == Copy.record_id)
        .where(Copy.school_id == school.id, Record.title == TITLE).order_by(Copy.id))]


def _round_state(session):
    from app.weeding.models import WeedingRound

    return session.execute(select(WeedingRound.id, WeedingRound.status,
                                  WeedingRound.decision_number)
                           .order_by(WeedingRound.id.desc()).limit(1)).one()


def _fill_date(page, selector, day):
    """Type a date as the librarian does (dd/mm/yyyy) and leave the field."""
    from app.core.i18n import format_date

    field = page.locator(selector)
    field.click()
    field.press_sequentially(format_date(day))
    field.press("Escape")  # the date picker closes, the typed date stays
    assert field.input_value() == format_date(day)


def _submit(page, form):
    with page.expect_navigation():
        page.locator(f"{form} button[type=submit]").click()


def test_weeding_round_from_proposal_to_withdrawal(page_as, db_query):
    from app.collection.models import Copy, CopyStatus
    from app.core.i18n import format_date, local_today
    from app.weeding.models import RoundStatus, WeedingRound

    copies = db_query(_reset)
    assert len(copies) == 3
    today = local_today()
    try:
        lib = page_as("thuvien")
        lib.goto("/weeding/")
        lib.fill("#weeding-create #name", "Thanh lọc năm 2026")
        _submit(lib, "#weeding-create")
        assert "Đã tạo đợt" in lib.locator(".alert").first.inner_text()
        lib.fill("#codes", "\n".join(barcode for _id, barcode, _label in copies))
        lib.select_option("#weeding-add-codes #reason", "worn_out")
        _submit(lib, "#weeding-add-codes")
        assert lib.locator("#weeding-items tr.weeding-item").count() == 3
        _submit(lib, "#weeding-propose")
        assert "Đã lập danh mục" in lib.locator("#weeding-status").inner_text()
        lib.fill("#committee_decision_number", "12/QĐ-THCSND")
        _fill_date(lib, "#committee_decision_date", today - datetime.timedelta(days=2))
        _fill_date(lib, "#appraisal_date", today - datetime.timedelta(days=1))
        lib.fill("#committee_members", "Võ Minh Tuấn; Chủ tịch Hội đồng\nNguyễn Thị Lan; Thư ký")
        _submit(lib, "#weeding-committee")
        # The librarian cannot approve: the page says it awaits the principal.
        assert lib.locator("#weeding-awaiting").count() == 1, \
            lib.locator(".alert").all_inner_texts()
        round_url = lib.url
        pk, status, _number = db_query(_round_state)
        assert status == RoundStatus.committee

        # The principal, in another browser context, approves the list.
        boss = page_as("hieutruong")
        boss.goto(round_url)
        assert boss.locator("#weeding-create, #weeding-withdraw, #weeding-committee").count() == 0
        boss.fill("#decision_number", "15/QĐ-THCSND")
        boss.select_option("#disposal_method", "liquidate")
        _submit(boss, "#weeding-approve")
        assert "15/QĐ-THCSND" in boss.locator(".alert-success").inner_text()
        assert "15/QĐ-THCSND" in boss.locator("#weeding-decision").inner_text()
        assert db_query(_round_state)[1:] == (RoundStatus.approved, "15/QĐ-THCSND")

        # Too early: the list is on public display for 15 days.
        lib.goto(round_url)
        assert "niêm yết công khai" in lib.locator("#weeding-display-note").inner_text()
        _submit(lib, "#weeding-withdraw")
        assert format_date(today + datetime.timedelta(days=15)) in \
            lib.locator(".alert-danger").inner_text()
        assert db_query(_round_state)[1] == RoundStatus.approved

        # Fifteen days later (moved in the data), the librarian withdraws the copies.
        def move_display(session):
            session.execute(update(WeedingRound).where(WeedingRound.id == pk).values(
                display_from=today - datetime.timedelta(days=15)))
            session.commit()
        db_query(move_display)
        lib.goto(round_url)
        _submit(lib, "#weeding-withdraw")
        assert "3" in lib.locator(".alert-success").inner_text()
        notes = lib.locator("#weeding-items .weeding-copy-note").all_inner_texts()
        assert notes == [f"đã thanh lọc, QĐ số 15/QĐ-THCSND ngày {format_date(today)}"] * 3
        statuses = db_query(lambda s: {c.status for c in s.scalars(
            select(Copy).where(Copy.id.in_([i for i, _b, _l in copies])))})
        assert statuses == {CopyStatus.withdrawn}

        # The general register, Part II, has its line.
        lib.goto(f"/weeding/register?school={SCHOOL_CODE}")
        line = lib.locator("#register-part2 tr.register-line").first.inner_text()
        assert "15/QĐ-THCSND" in line and "Thanh lý" in line

        # The copies list shows the copies with their note; the catalogue search hides the
        # title (no copy of it is left in the school).
        lib.goto(f"/copyview/show/{copies[0][0]}")
        assert "đã thanh lọc, QĐ số 15/QĐ-THCSND" in lib.content()
        lib.goto("/union/?q=Truy%E1%BB%87n+Ki%E1%BB%81u")
        assert lib.locator("#union-results tbody tr", has_text="Trường THCS Nguyễn Du").count() \
            == 0
        lib.goto("/union/?q=D%E1%BA%BF+M%C3%A8n")
        assert lib.locator("#union-results tbody tr", has_text="Trường THCS Nguyễn Du").count() \
            == 1
    finally:
        db_query(_reset)
