"""The circulation desk and its rules, through the desk's JSON API and the services."""
import datetime
import re
import threading

import pytest
from sqlalchemy import delete, func, select, update

from app.catalog.models import DocumentType, Record
from app.circulation import policies, services
from app.circulation.models import (
    CirculationSettings, ClassLoan, Hold, HoldStatus, Loan, LoanRule, LoanStatus, ReadingRoomUse,
)
from app.collection.models import Copy, CopyStatus
from app.extensions import db
from app.org.models import OrgUnit
from app.readers.models import Reader, ReaderStatus
from tests.helpers import text

_META = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture
def school1(db_session):
    return db_session.scalar(select(OrgUnit).where(OrgUnit.code == "79000001"))


@pytest.fixture
def clean_circulation(app, db_session, school1):
    """Every test starts and ends with no loan, hold or class loan in the demo school, and
    its copies on the shelf (the demo database is shared by the whole session)."""
    def reset():
        db_session.rollback()
        for model in (Hold, Loan, ClassLoan, ReadingRoomUse):
            db_session.execute(delete(model).where(model.school_id == school1.id))
        db_session.execute(update(Copy).where(Copy.school_id == school1.id)
                           .values(status=CopyStatus.available))
        db_session.execute(delete(LoanRule).where(LoanRule.school_id == school1.id))
        db_session.commit()
    reset()
    yield
    reset()


class Desk:
    def __init__(self, client):
        self.client = client
        page = client.get("/desk/")
        assert page.status_code == 200, page.status_code
        self.token = _META.search(text(page)).group(1)

    def post(self, path, **body):
        resp = self.client.post(f"/desk/api/{path}", json=body,
                                headers={"X-CSRFToken": self.token})
        return resp.status_code, resp.get_json()

    def reader(self, card):
        return self.post("reader", card=card)

    def scan(self, barcode, reader_id=None, action="auto"):
        return self.post("scan", barcode=barcode, reader_id=reader_id, action=action)


def _student(session, school, n=1):
    return session.scalars(select(Reader).where(
        Reader.school_id == school.id, Reader.class_name.is_not(None))
        .order_by(Reader.id).offset(n - 1).limit(1)).one()


def _copies(session, school, doc_code, count, title=None):
    query = (select(Copy).join(Record, Record.id == Copy.record_id)
             .join(DocumentType, DocumentType.id == Record.document_type_id)
             .where(Copy.school_id == school.id, DocumentType.code == doc_code))
    if title:
        query = query.where(Record.title == title)
    return session.scalars(query.order_by(Copy.id).limit(count)).all()


def test_checkout_return_and_panel(login, db_session, school1, clean_circulation):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1)
    status, panel = desk.reader(student.barcode)
    assert status == 200 and panel["reader"]["name"] == student.full_name
    assert panel["loans"] == []
    copy = _copies(db_session, school1, "STN", 1)[0]
    status, out = desk.scan(copy.barcode, reader_id=student.id)
    assert status == 200 and out["kind"] == "checkout", out
    loan = db_session.get(Loan, out["loan_id"])
    assert loan.status == LoanStatus.active and loan.reader_id == student.id
    assert loan.class_name == student.class_name
    db_session.refresh(copy)
    assert copy.status == CopyStatus.on_loan
    # Students borrow for 10 days (city default), moved to the next open day.
    settings = policies.settings_for(db_session, school1.id)
    expected = policies.next_open_day(db_session, school1.id,
                                      datetime.date.today() + datetime.timedelta(days=10),
                                      settings)
    assert loan.due_on == expected
    status, panel = desk.reader(student.card_number)
    assert [row["accession"] for row in panel["loans"]] == [copy.accession_label]
    # Scanning the copy with no reader selected returns it.
    status, out = desk.scan(copy.barcode)
    assert status == 200 and out["kind"] == "return"
    db_session.expire_all()
    assert db_session.get(Loan, loan.id).status == LoanStatus.returned
    assert db_session.get(Copy, copy.id).status == CopyStatus.available


def test_panel_finds_the_reader_by_card_code_or_id(login, db_session, school1,
                                                    clean_circulation):
    """The panel's reader: by card number, barcode, student code or id, with the columns the
    database holds; a reader card scanned into the copy box switches the reader; another
    school's student code is not found."""
    desk = Desk(login("thuvien"))
    student = db_session.scalars(select(Reader).where(
        Reader.school_id == school1.id, Reader.code.is_not(None),
        Reader.class_name.is_not(None)).order_by(Reader.id).limit(1)).one()
    expected = {"id": student.id, "name": student.full_name, "class": student.class_name,
                "category": student.category.name, "card": student.card_number,
                "code": student.code, "status": str(student.status.label),
                "valid_until": student.valid_until.strftime("%d/%m/%Y")
                if student.valid_until else ""}
    for how in ({"card": student.card_number}, {"card": student.barcode},
                {"card": f"  {student.code} "}, {"reader_id": student.id},
                {"reader_id": str(student.id)}):
        status, panel = desk.post("reader", **how)
        assert status == 200 and panel["reader"] == expected, (how, panel)
    other = _student(db_session, school1, 3)
    status, out = desk.scan(other.barcode, reader_id=student.id)
    assert status == 200 and out["kind"] == "reader" and out["reader"]["id"] == other.id, out
    status, out = desk.scan(other.card_number)  # no reader selected: opens the reader
    assert status == 200 and out["kind"] == "reader" and out["reader"]["id"] == other.id, out
    foreign = db_session.scalar(select(Reader.code).where(
        Reader.school_id != school1.id, Reader.code.is_not(None),
        Reader.code.not_in(select(Reader.code).where(Reader.school_id == school1.id,
                                                     Reader.code.is_not(None)))).limit(1))
    assert foreign is not None  # the demo's second school has coded students
    status, out = desk.reader(foreign)
    assert status == 409 and foreign in out["message"], out
    assert desk.post("reader", reader_id="abc") == (409, {
        "ok": False, "message": "Không tìm thấy bạn đọc trong trường của bạn."})
    assert desk.post("reader", card="  ") == (409, {
        "ok": False, "message": "Hãy quét hoặc nhập thẻ bạn đọc."})


def test_hold_for_a_reader_not_of_the_school_changes_nothing(login, db_session, school1,
                                                             clean_circulation):
    desk = Desk(login("thuvien"))
    record_id = _copies(db_session, school1, "STN", 1)[0].record_id
    foreign = db_session.scalar(select(Reader.id).where(Reader.school_id != school1.id)
                                .limit(1))
    before = db_session.scalar(select(func.count()).select_from(Hold))
    for reader_id in (foreign, None, "abc"):
        assert desk.post("hold", reader_id=reader_id, record_id=record_id) == (409, {
            "ok": False, "message": "Không tìm thấy bạn đọc trong trường của bạn."}), reader_id
    assert db_session.scalar(select(func.count()).select_from(Hold)) == before


def test_limit_reached_changes_nothing(login, db_session, school1, clean_circulation):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1, 2)
    copies = _copies(db_session, school1, "STK", 4)
    for copy in copies[:3]:
        assert desk.scan(copy.barcode, reader_id=student.id)[0] == 200
    status, out = desk.scan(copies[3].barcode, reader_id=student.id)
    assert status == 409 and "3" in out["message"] and "giới hạn" in out["message"]
    db_session.expire_all()
    assert db_session.get(Copy, copies[3].id).status == CopyStatus.available
    assert db_session.scalar(select(func.count()).select_from(Loan).where(
        Loan.reader_id == student.id)) == 3


def test_textbooks_have_their_own_rule(login, db_session, school1, clean_circulation):
    """A textbook does not count against the 3-book limit and is due at the end of the year."""
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1, 3)
    for copy in _copies(db_session, school1, "STK", 3):
        assert desk.scan(copy.barcode, reader_id=student.id)[0] == 200
    textbook = _copies(db_session, school1, "SGK", 1)[0]
    status, out = desk.scan(textbook.barcode, reader_id=student.id)
    assert status == 200, out
    loan = db_session.get(Loan, out["loan_id"])
    from app.org.services import current_school_year

    year = current_school_year(db_session, datetime.date.today())
    if year is not None:
        assert loan.due_on >= year.ends_on
        assert (loan.due_on - year.ends_on).days < 7


def test_refusals_name_the_problem(login, db_session, school1, clean_circulation):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1, 4)
    assert desk.scan("KHONG-CO-MA", reader_id=student.id) == (409, {
        "ok": False, "message": "Không có bản sách nào của trường mang mã vạch “KHONG-CO-MA”."})
    status, out = desk.reader("THE-LA")
    assert status == 409 and "THE-LA" in out["message"]
    copy = _copies(db_session, school1, "STN", 1)[0]
    copy.status = CopyStatus.withdrawn
    db_session.commit()
    status, out = desk.scan(copy.barcode, reader_id=student.id)
    assert status == 409 and copy.accession_label in out["message"]
    assert "thanh lý" in out["message"] or "thanh lọc" in out["message"]
    copy.status = CopyStatus.available
    # An expired card: nothing lent.
    student.valid_until = datetime.date.today() - datetime.timedelta(days=1)
    db_session.commit()
    try:
        status, out = desk.scan(copy.barcode, reader_id=student.id)
        assert status == 409 and "hết hạn" in out["message"]
        db_session.expire_all()
        assert db_session.get(Copy, copy.id).status == CopyStatus.available
    finally:
        student = db_session.get(Reader, student.id)
        student.valid_until = datetime.date(2027, 5, 31)
        db_session.commit()


def test_renewal_and_its_limit(login, db_session, school1, clean_circulation):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1, 5)
    copy = _copies(db_session, school1, "STN", 1)[0]
    status, out = desk.scan(copy.barcode, reader_id=student.id)
    first_due = db_session.get(Loan, out["loan_id"]).due_on
    status, out = desk.scan(copy.barcode, action="renew")
    assert status == 200 and out["kind"] == "renew"
    db_session.expire_all()
    loan = db_session.get(Loan, out["loan_id"])
    assert loan.renewals == 1 and loan.due_on >= first_due
    status, out = desk.scan(copy.barcode, action="renew")  # students: 1 renewal
    assert status == 409 and "gia hạn" in out["message"]


def test_hold_sets_returned_copy_aside(login, db_session, school1, clean_circulation):
    desk = Desk(login("thuvien"))
    first, second, third = (_student(db_session, school1, n) for n in (6, 7, 8))
    copies = _copies(db_session, school1, "STN", 3, title="Dế Mèn phiêu lưu ký")
    assert len(copies) == 3
    for copy, reader in zip(copies, (first, first, third)):
        assert desk.scan(copy.barcode, reader_id=reader.id)[0] == 200
    record_id = copies[0].record_id
    status, out = desk.post("hold", reader_id=second.id, record_id=record_id)
    assert status == 200, out
    hold = db_session.get(Hold, out["hold_id"])
    assert hold.status == HoldStatus.waiting
    # A renewal is refused while someone waits for the title.
    assert desk.scan(copies[0].barcode, action="renew")[0] == 409
    status, out = desk.scan(copies[0].barcode)
    assert status == 200 and second.full_name in out["hold"]
    db_session.expire_all()
    hold = db_session.get(Hold, hold.id)
    assert hold.status == HoldStatus.ready and hold.copy_id == copies[0].id
    # Another reader cannot take the copy set aside; the reader who waited can.
    status, out = desk.scan(copies[0].barcode, reader_id=third.id)
    assert status == 409 and second.full_name in out["message"]
    status, out = desk.scan(copies[0].barcode, reader_id=second.id)
    assert status == 200
    db_session.expire_all()
    assert db_session.get(Hold, hold.id).status == HoldStatus.fulfilled


def test_undo_checkout_and_return(login, db_session, school1, clean_circulation):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1, 9)
    copy = _copies(db_session, school1, "STN", 1)[0]
    _, out = desk.scan(copy.barcode, reader_id=student.id)
    loan_id = out["loan_id"]
    status, out = desk.post("undo", loan_id=loan_id, kind="checkout")
    assert status == 200
    db_session.expire_all()
    assert db_session.get(Loan, loan_id).status == LoanStatus.cancelled
    assert db_session.get(Copy, copy.id).status == CopyStatus.available
    _, out = desk.scan(copy.barcode, reader_id=student.id)
    desk.scan(copy.barcode)
    status, out = desk.post("undo", loan_id=out["loan_id"], kind="return")
    assert status == 200
    db_session.expire_all()
    assert db_session.get(Copy, copy.id).status == CopyStatus.on_loan
    # Too late to cancel a checkout.
    loan = db_session.get(Loan, out["loan_id"])
    with pytest.raises(services.CirculationError):
        services.cancel_checkout(db_session, None, school1.id, loan.id,
                                 now=loan.loaned_at + datetime.timedelta(hours=1))


def test_due_date_skips_sundays_and_city_holidays(db_session, school1):
    settings = policies.settings_for(db_session, school1.id)
    rule = LoanRule(loan_days=10, until_year_end=False, max_items=3, renewals=1)
    # Thursday 05/02/2026 + 10 days = Sunday 15/02, inside Tết (14–22/02): Monday 23/02.
    assert policies.due_date(db_session, school1.id, rule, settings,
                             datetime.date(2026, 2, 5)) == datetime.date(2026, 2, 23)
    # + 10 days from Wednesday 04/03/2026 = Saturday 14/03: open unless the school closes.
    assert policies.due_date(db_session, school1.id, rule, settings,
                             datetime.date(2026, 3, 4)) == datetime.date(2026, 3, 14)
    settings.closed_on_saturdays = True
    assert policies.due_date(db_session, school1.id, rule, settings,
                             datetime.date(2026, 3, 4)) == datetime.date(2026, 3, 16)
    db_session.rollback()


def test_school_rule_overrides_city_rule(db_session, school1, clean_circulation):
    stk = db_session.scalar(select(DocumentType).where(DocumentType.code == "STK"))
    rules = policies.school_rules(db_session, school1.id)
    student = _student(db_session, school1)
    assert policies.pick_rule(rules, student.category_id, stk.id).loan_days == 10
    db_session.add(LoanRule(school_id=school1.id, category_id=student.category_id,
                            loan_days=7, max_items=2, renewals=0))
    db_session.flush()
    rules = policies.school_rules(db_session, school1.id)
    assert policies.pick_rule(rules, student.category_id, stk.id).loan_days == 7
    sgk = db_session.scalar(select(DocumentType).where(DocumentType.code == "SGK"))
    # The city's textbook rule is more specific (document type) than the school's rule.
    assert policies.pick_rule(rules, student.category_id, sgk.id).until_year_end
    other = db_session.scalar(select(OrgUnit).where(OrgUnit.code == "79000002"))
    assert policies.pick_rule(policies.school_rules(db_session, other.id),
                              student.category_id, stk.id).loan_days == 10
    db_session.rollback()


def test_class_loan_all_or_nothing(db_session, school1, clean_circulation):
    record = db_session.scalar(select(Record).where(Record.school_id == school1.id,
                                                    Record.title == "Toán 6. Tập 1"))
    # 8 students in 6A1 and 10 textbooks: one each.
    class_loan = services.lend_to_class(db_session, None, school1.id, "6A1", [record.id])
    db_session.commit()
    assert len(class_loan.loans) == 8
    assert {loan.reader.class_name for loan in class_loan.loans} == {"6A1"}
    # 6A2 also has 8 students but only 2 copies are left: refused, nothing lent.
    with pytest.raises(services.CirculationError) as error:
        services.lend_to_class(db_session, None, school1.id, "6A2", [record.id])
    db_session.rollback()
    assert "2" in str(error.value) and "8" in str(error.value)
    assert db_session.scalar(select(func.count()).select_from(Loan).where(
        Loan.class_name == "6A2", Loan.school_id == school1.id)) == 0
    assert services.return_class_loan(db_session, None, school1.id, class_loan.id) == 8
    db_session.commit()
    assert db_session.scalar(select(func.count()).select_from(Copy).where(
        Copy.record_id == record.id, Copy.status == CopyStatus.on_loan)) == 0


def test_reading_room_tally(db_session, school1, clean_circulation):
    copy = _copies(db_session, school1, "STN", 1)[0]
    services.record_reading(db_session, None, school1.id, barcode=copy.barcode)
    services.record_reading(db_session, None, school1.id, class_name="7A1", visits=35)
    with pytest.raises(services.CirculationError):
        services.record_reading(db_session, None, school1.id, class_name="7A1", visits=0)
    db_session.commit()
    assert db_session.scalar(select(func.sum(ReadingRoomUse.visits)).where(
        ReadingRoomUse.school_id == school1.id)) == 36


def test_desk_is_for_the_school_librarian_only(login, db_session, school1, clean_circulation):
    student = _student(db_session, school1)
    for username in ("hieutruong", "thanhtra", "hocsinh"):
        resp = login(username).get("/desk/")
        assert resp.status_code in (302, 403), (username, resp.status_code)
    other = Desk(login("thuvien2"))
    # Another school's reader and copy do not exist for this desk.
    status, out = other.reader(student.barcode)
    assert status == 409
    status, out = other.post("reader", reader_id=student.id)
    assert status == 409
    copy = _copies(db_session, school1, "STN", 1)[0]
    other_reader = db_session.scalar(select(Reader).where(
        Reader.school_id != school1.id).limit(1))
    status, out = other.scan(copy.barcode, reader_id=other_reader.id)
    assert status == 409
    db_session.expire_all()
    assert db_session.get(Copy, copy.id).status == CopyStatus.available
    # And the service refuses a reader of another school outright.
    with pytest.raises(services.CirculationError):
        services.checkout(db_session, None, school1.id, other_reader, copy.barcode)
    db_session.rollback()


def test_two_desks_same_copy_one_wins(app, db_session, school1, clean_circulation):
    """Two desks scan the same copy at the same moment: one loan, one clear refusal."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrency is proved on PostgreSQL")
    from sqlalchemy.orm import Session

    readers = [_student(db_session, school1, n) for n in (10, 11)]
    copy = _copies(db_session, school1, "STN", 1)[0]
    barrier = threading.Barrier(2)
    results = []

    def desk(reader_id):
        with app.app_context(), Session(db.engine) as session:
            reader = session.get(Reader, reader_id)
            barrier.wait()
            try:
                services.checkout(session, None, school1.id, reader, copy.barcode)
                session.commit()
                results.append("ok")
            except services.CirculationError as error:
                session.rollback()
                results.append(str(error))

    threads = [threading.Thread(target=desk, args=(r.id,)) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=lambda r: r != "ok")[0] == "ok"
    assert results.count("ok") == 1, results
    refusal = [r for r in results if r != "ok"][0]
    assert copy.accession_label in refusal
    assert db_session.scalar(select(func.count()).select_from(Loan).where(
        Loan.copy_id == copy.id, Loan.status == LoanStatus.active)) == 1


def test_database_refuses_two_open_loans(db_session, school1, clean_circulation):
    from sqlalchemy.exc import IntegrityError

    readers = [_student(db_session, school1, n) for n in (12, 13)]
    copy = _copies(db_session, school1, "STN", 1)[0]
    now = datetime.datetime(2026, 1, 5, 8, 0)
    for reader in readers:
        db_session.add(Loan(school_id=school1.id, copy_id=copy.id, reader_id=reader.id,
                            loaned_at=now, due_on=datetime.date(2026, 1, 15)))
    with pytest.raises(IntegrityError):
        db_session.flush()
    db_session.rollback()
