"""A morning at the circulation desk, in a real browser, with the keyboard as the scanner.

The librarian of the demo school lends books to a student, is refused a fourth book over the
limit, renews one, takes one back, reserves a title for a second student, and sees the returned
copy set aside for her. Every result is checked in the database as well as on the screen.
"""
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
