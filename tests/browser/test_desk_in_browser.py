"""A morning at the circulation desk, in a real browser, with the keyboard as the scanner.

The librarian of the demo school lends books to a student, is refused a fourth book over the
limit, renews one, takes one back, reserves a title for a second student, and sees the returned
copy set aside for her. Every result is checked in the database as well as on the screen.
"""
import datetime

from sqlalchemy import delete, select, update

SCHOOL_CODE = "79000001"


def _setup(session):
    from app.catalog.models import DocumentType, Record
    from app.circulation.models import ClassLoan, Hold, Loan
    from app.collection.models import Copy, CopyStatus
    from app.org.models import OrgUnit
    from app.readers.models import Reader

    school = session.scalar(select(OrgUnit).where(OrgUnit.code == SCHOOL_CODE))
    for model in (Hold, Loan, ClassLoan):
        session.execute(delete(model).where(model.school_id == school.id))
    session.execute(update(Copy).where(Copy.school_id == school.id)
                    .values(status=CopyStatus.available))
    session.commit()
    students = session.scalars(select(Reader).where(
        Reader.school_id == school.id, Reader.class_name == "7A1").order_by(Reader.id)
        .limit(2)).all()
    books = session.execute(
        select(Copy.barcode, Copy.accession_label, Record.title, Record.id)
        .join(Record, Record.id == Copy.record_id)
        .join(DocumentType, DocumentType.id == Record.document_type_id)
        .where(Copy.school_id == school.id, DocumentType.code.in_(["STN", "STK"]))
        .order_by(Record.id, Copy.id)).all()
    # Four copies of four different titles.
    seen, picked = set(), []
    for row in books:
        if row.id not in seen:
            seen.add(row.id)
            picked.append(row)
    # The other copies of the second title are out of the shelf (damaged), so a hold on it
    # waits for copy 2 to come back.
    session.execute(update(Copy).where(Copy.record_id == picked[1].id,
                                       Copy.barcode != picked[1].barcode)
                    .values(status=CopyStatus.damaged))
    session.commit()
    return {"students": [(s.id, s.barcode, s.full_name) for s in students],
            "copies": picked[:4]}


def _restore(session):
    from app.circulation.models import ClassLoan, Hold, Loan
    from app.collection.models import Copy, CopyStatus
    from app.org.models import OrgUnit

    school = session.scalar(select(OrgUnit).where(OrgUnit.code == SCHOOL_CODE))
    for model in (Hold, Loan, ClassLoan):
        session.execute(delete(model).where(model.school_id == school.id))
    session.execute(update(Copy).where(Copy.school_id == school.id)
                    .values(status=CopyStatus.available))
    session.commit()


def _last_loan(barcode):
    def run(session):
        from app.circulation.models import Loan
        from app.collection.models import Copy

        return session.execute(select(Loan.renewals, Loan.status)
                               .join(Copy, Copy.id == Loan.copy_id)
                               .where(Copy.barcode == barcode)
                               .order_by(Loan.id.desc()).limit(1)).first()
    return run


def _scan(page, code):
    box = page.locator("#desk-input")
    box.fill(code)
    with page.expect_response(lambda r: "/desk/api/" in r.url):
        box.press("Enter")


def test_a_morning_at_the_desk(page_as, db_query):
    from app.circulation.models import Hold, HoldStatus, Loan, LoanStatus

    data = db_query(_setup)
    try:
        _morning(page_as, db_query, data)
    finally:
        db_query(_restore)


def _morning(page_as, db_query, data):
    from app.circulation.models import Hold, HoldStatus, Loan, LoanStatus

    (first_id, first_card, first_name), (second_id, second_card, second_name) = data["students"]
    copies = data["copies"]
    page = page_as("thuvien")
    page.goto("/desk/")
    page.wait_for_selector("#desk-input:focus")

    # The reader's card opens her panel.
    _scan(page, first_card)
    page.wait_for_selector("#desk-reader-name:has-text('%s')" % first_name)
    # Three books: the student limit.
    for copy in copies[:3]:
        _scan(page, copy.barcode)
        page.wait_for_selector(f"#desk-loans td:has-text('{copy.accession_label}')")
    assert page.locator("#desk-flash").get_attribute("class") == "ok"
    # The fourth is refused with a red message naming the limit; nothing changes.
    _scan(page, copies[3].barcode)
    page.wait_for_selector("#desk-flash.err")
    assert "giới hạn" in page.locator("#desk-flash").inner_text()
    assert page.locator("#desk-loans tbody tr").count() == 3

    assert db_query(lambda s: len(s.scalars(select(Loan.id).where(
        Loan.reader_id == first_id, Loan.status == LoanStatus.active)).all())) == 3

    # Renewal mode (F3), then back to lending (F2).
    page.keyboard.press("F3")
    _scan(page, copies[0].barcode)
    page.wait_for_selector("#desk-flash.ok")
    assert "gia hạn" in page.locator("#desk-flash").inner_text().lower()
    page.keyboard.press("F2")
    assert db_query(_last_loan(copies[0].barcode)).renewals == 1

    # Esc ends with this reader; the second student reserves the title of copy 2.
    page.keyboard.press("Escape")
    _scan(page, second_card)
    page.wait_for_selector("#desk-reader-name:has-text('%s')" % second_name)
    page.fill("#desk-title-q", copies[1].title)
    with page.expect_response(lambda r: "/desk/api/titles" in r.url):
        page.click("#desk-title-search")
    with page.expect_response(lambda r: "/desk/api/hold" in r.url):
        page.locator("#desk-titles li", has_text=copies[1].title).first \
            .locator("button.desk-reserve").click()
    page.wait_for_selector("#desk-holds li")
    page.keyboard.press("Escape")

    # Copy 2 comes back with no reader selected: returned, and set aside for the hold.
    _scan(page, copies[1].barcode)
    page.wait_for_selector("#desk-flash.warn")
    assert second_name in page.locator("#desk-flash").inner_text()
    assert db_query(lambda s: s.scalar(select(Hold.status).where(
        Hold.reader_id == second_id))) == HoldStatus.ready
    # A wrong return is undone from the session log.
    _scan(page, copies[2].barcode)
    page.wait_for_selector(f"#desk-log li:has-text('{copies[2].accession_label}')")
    with page.expect_response(lambda r: "/desk/api/undo" in r.url):
        page.locator("#desk-log li", has_text=copies[2].accession_label).first \
            .locator("button.desk-undo").click()
    page.wait_for_selector("#desk-flash.ok")
    assert db_query(_last_loan(copies[2].barcode)).status == LoanStatus.active


def test_class_loan_and_year_end_wizard(page_as, db_query):
    """Later that morning: textbooks for class 6A1 in one go, then the year-end wizard is
    applied and undone (the demo school is left as it was)."""
    from app.circulation.models import Loan, LoanStatus
    from app.org.models import SchoolYear
    from app.readers.models import Reader, YearRollover

    db_query(_restore)

    def next_year(session):
        # Today's school year is the demo's last one: the wizard needs the next one.
        last = session.scalars(select(SchoolYear).order_by(SchoolYear.starts_on.desc())).first()
        start = last.starts_on.year + 1
        session.add(SchoolYear(
            name=f"{start}–{start + 1} (thử)", starts_on=datetime.date(start, 9, 5),
            semester1_ends_on=datetime.date(start + 1, 1, 16),
            semester2_starts_on=datetime.date(start + 1, 1, 18),
            ends_on=datetime.date(start + 1, 5, 31)))
        session.commit()
    db_query(next_year)
    try:
        page = page_as("thuvien")
        # Class loan: one "Toán 6. Tập 1" for each of the 8 students of 6A1.
        page.goto("/classlend/")
        page.select_option("#class_name", "6A1")
        page.locator("#class-lend-records tr", has_text="Toán 6. Tập 1") \
            .locator("input[name=record_ids]").check()
        with page.expect_navigation():
            page.click("#class-lend-submit")
        page.wait_for_selector("#class-lend-rows")
        students = db_query(lambda s: sorted(s.scalars(select(Reader.id).where(
            Reader.class_name == "6A1", Reader.barcode.like(f"{SCHOOL_CODE}%"))).all()))
        lent_to = db_query(lambda s: sorted(s.scalars(select(Loan.reader_id).where(
            Loan.class_name == "6A1", Loan.status == LoanStatus.active)).all()))
        assert lent_to == students and len(students) == 8
        assert page.locator("#class-lend-rows tbody tr").count() == 8

        # Year-end wizard: preview, apply, check, undo.
        before = db_query(lambda s: dict(s.execute(select(Reader.id, Reader.class_name).where(
            Reader.barcode.like(f"{SCHOOL_CODE}%"))).all()))
        page.goto("/rollover/")
        with page.expect_navigation():
            page.locator("#rollover-years [type=submit]").click()
        page.wait_for_selector("#rollover-classes")
        target_6a1 = page.locator("#rollover-classes tr", has_text="6A1") \
            .locator("input[name=target]").input_value()
        assert target_6a1 == "7A1"
        # The graduating 9A1 holds no book; the 6A1 textbooks stay with their readers.
        page.once("dialog", lambda dialog: dialog.accept())
        with page.expect_navigation():
            page.click("#rollover-apply-button")
        page.wait_for_selector("#rollover-status")
        after = db_query(lambda s: dict(s.execute(select(Reader.id, Reader.class_name).where(
            Reader.barcode.like(f"{SCHOOL_CODE}%"))).all()))
        moved = [rid for rid in students if after[rid] == "7A1"]
        assert moved == students
        promoted = int(page.locator("#rollover-promoted").inner_text())
        assert promoted == sum(1 for rid, cls in before.items()
                               if cls and cls[0] in "678" and after[rid] != cls)
        # The loans keep the class they were made in.
        assert db_query(lambda s: set(s.scalars(select(Loan.class_name).where(
            Loan.reader_id.in_(students))).all())) == {"6A1"}
        page.once("dialog", lambda dialog: dialog.accept())
        with page.expect_navigation():
            page.locator("#rollover-undo button").click()
        restored = db_query(lambda s: dict(s.execute(select(Reader.id, Reader.class_name).where(
            Reader.barcode.like(f"{SCHOOL_CODE}%"))).all()))
        assert restored == before
    finally:
        db_query(_restore)
        db_query(lambda s: (s.execute(delete(YearRollover)),
                            s.execute(delete(SchoolYear).where(SchoolYear.name.like("%(thử)"))),
                            s.commit()))
