"""The desk's per-worker caches (app.core.cache) and its lean checkout and return.

What the desk caches (loan rules, circulation settings, closed days, school years, role
permissions) must never be stale: every change, by a screen of this worker, by another worker
(another connection) or by hand in the database, is seen by the next request. A transaction
sees its own uncommitted changes, and a change rolled back is never cached.
"""
import datetime
import re

import pytest
from sqlalchemy import delete, event, func, select, text, update

from app.catalog.models import DocumentType, Record
from app.circulation import policies, services
from app.circulation.models import (
    CirculationSettings, ClosedDay, Hold, Loan, LoanRule, LoanStatus,
)
from app.collection.models import Copy, CopyStatus
from app.core import cache
from app.core.audit import AuditLog
from app.extensions import db
from app.org.models import OrgUnit
from app.readers.models import Reader
from tests.helpers import post_form, text as page_text

_META = re.compile(r'name="csrf-token" content="([^"]+)"')
RULE_FORM = {"loan_days": "21", "max_items": "2", "renewals": "0", "renewal_days": ""}


@pytest.fixture
def school1(db_session):
    return db_session.scalar(select(OrgUnit).where(OrgUnit.code == "79000001"))


@pytest.fixture
def clean(app, db_session, school1):
    """No loan or hold in the demo school, its copies on the shelf, its own rules and closed
    days gone and its settings as they were, before and after each test."""
    db_session.rollback()
    settings = db_session.execute(select(
        CirculationSettings.closed_on_saturdays, CirculationSettings.fines_enabled,
        CirculationSettings.fine_per_day).where(
        CirculationSettings.school_id == school1.id)).one()
    last_closed = db_session.scalar(select(func.max(ClosedDay.id))) or 0

    def reset():
        db_session.rollback()
        for model in (Hold, Loan):
            db_session.execute(delete(model).where(model.school_id == school1.id))
        db_session.execute(update(Copy).where(Copy.school_id == school1.id)
                           .values(status=CopyStatus.available))
        db_session.execute(delete(LoanRule).where(LoanRule.school_id == school1.id))
        db_session.execute(delete(ClosedDay).where(ClosedDay.id > last_closed))
        db_session.execute(update(CirculationSettings).where(
            CirculationSettings.school_id == school1.id).values(
            closed_on_saturdays=settings[0], fines_enabled=settings[1],
            fine_per_day=settings[2]))
        db_session.commit()
        db_session.expire_all()
    reset()
    yield
    reset()


class Desk:
    def __init__(self, client):
        self.client = client
        self.token = _META.search(page_text(client.get("/desk/"))).group(1)

    def scan(self, barcode, reader_id=None, action="auto"):
        resp = self.client.post("/desk/api/scan", json={
            "barcode": barcode, "reader_id": reader_id, "action": action},
            headers={"X-CSRFToken": self.token})
        return resp.status_code, resp.get_json()


def _student(session, school, n=1):
    return session.scalars(select(Reader).where(
        Reader.school_id == school.id, Reader.class_name.is_not(None))
        .order_by(Reader.id).offset(n - 1).limit(1)).one()


def _copy(session, school, doc_code, n=0):
    return session.scalars(
        select(Copy).join(Record, Record.id == Copy.record_id)
        .join(DocumentType, DocumentType.id == Record.document_type_id)
        .where(Copy.school_id == school.id, DocumentType.code == doc_code)
        .order_by(Copy.id).offset(n).limit(1)).one()


def _open_day(session, school_id, day):
    return policies.next_open_day(session, school_id, day,
                                  policies.settings_for(session, school_id))


def _other_worker(sql, **params):
    """A change committed by another connection, as another worker or psql would make it."""
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_every_watched_table_moves_the_version(db_session):
    """The triggers: a change to any watched table, however it is made, changes the number
    that the workers' entries are stored under. (ab_user: an update that changes nothing, or
    only FAB's login bookkeeping, does not move it; the groups are empty in the demo and
    SQLite has row triggers only: tests/test_user_cache.py.)"""
    for table in sorted(cache.WATCHED_TABLES - {"ab_user"}):
        if db_session.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0:
            assert table in {"ab_group", "ab_user_group", "ab_group_role"}, table
            continue
        db_session.rollback()
        before = cache.version(db_session)
        _other_worker(f"UPDATE {table} SET id = id WHERE id = (SELECT min(id) FROM {table})")
        db_session.rollback()  # a new transaction reads the number again
        assert cache.version(db_session) > before, table


def test_a_rule_edited_on_its_screen_applies_at_the_next_scan(login, db_session, school1,
                                                              clean):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1)
    first, second = _copy(db_session, school1, "STN"), _copy(db_session, school1, "STN", 1)
    today = datetime.date.today()
    status, out = desk.scan(first.barcode, reader_id=student.id)  # the cache is warm now
    assert status == 200 and out["kind"] == "checkout", out
    assert db_session.get(Loan, out["loan_id"]).due_on == _open_day(
        db_session, school1.id, today + datetime.timedelta(days=10))
    hs = student.category_id
    stn = db_session.scalar(select(DocumentType.id).where(DocumentType.code == "STN"))
    resp = post_form(login("thuvien"), "/loanruleview/add", {
        **RULE_FORM, "category": str(hs), "document_type": str(stn)})
    assert resp.status_code == 302, page_text(resp)[:500]
    status, out = desk.scan(second.barcode, reader_id=student.id)
    assert status == 200 and out["kind"] == "checkout", out
    db_session.expire_all()
    assert db_session.get(Loan, out["loan_id"]).due_on == _open_day(
        db_session, school1.id, today + datetime.timedelta(days=21))
    # And its limit (2): a third item of the kind is refused.
    third = _copy(db_session, school1, "STN", 2)
    status, out = desk.scan(third.barcode, reader_id=student.id)
    assert status == 409 and "2" in out["message"], out


def test_changes_by_another_worker_are_seen_by_the_next_transaction(db_session, school1,
                                                                    clean):
    monday = datetime.date(2027, 3, 1)
    saturday = monday + datetime.timedelta(days=5)
    assert _open_day(db_session, school1.id, saturday) == saturday  # cached
    db_session.commit()
    _other_worker("UPDATE circulation_settings SET closed_on_saturdays = :yes "
                  "WHERE school_id = :school", yes=True, school=school1.id)
    assert policies.settings_for(db_session, school1.id).closed_on_saturdays
    assert _open_day(db_session, school1.id, saturday) == saturday + datetime.timedelta(days=2)
    db_session.commit()
    _other_worker("INSERT INTO closed_day (school_id, day, name) VALUES (NULL, :day, 'Test')",
                  day=monday + datetime.timedelta(days=7))
    assert _open_day(db_session, school1.id, saturday) == saturday + datetime.timedelta(days=3)
    db_session.commit()
    stn = db_session.scalar(select(DocumentType.id).where(DocumentType.code == "STN"))
    student = _student(db_session, school1)
    _other_worker("INSERT INTO loan_rule (school_id, category_id, document_type_id, loan_days, "
                  "until_year_end, max_items, renewals, reading_room_only) VALUES (:school, "
                  ":category, :type, 5, :no, 1, 0, :no)", school=school1.id,
                  category=student.category_id, type=stn, no=False)
    rule = policies.pick_rule(policies.school_rules(db_session, school1.id),
                              student.category_id, stn)
    assert rule.school_id == school1.id and rule.loan_days == 5 and rule.max_items == 1


def test_own_uncommitted_changes_are_seen_and_never_cached(db_session, school1, clean):
    day = datetime.date(2027, 4, 6)  # a Tuesday
    assert _open_day(db_session, school1.id, day) == day
    db_session.add(ClosedDay(school_id=school1.id, day=day, name="Test"))
    db_session.flush()
    assert _open_day(db_session, school1.id, day) == day + datetime.timedelta(days=1)
    # Another transaction (another worker) does not see it, and neither does the cache.
    from sqlalchemy.orm import Session

    with Session(db.engine) as other:
        assert _open_day(other, school1.id, day) == day
    db_session.rollback()
    assert _open_day(db_session, school1.id, day) == day
    # The same through a statement rather than the unit of work.
    db_session.execute(update(CirculationSettings).where(
        CirculationSettings.school_id == school1.id).values(hold_days=9))
    assert policies.settings_for(db_session, school1.id).hold_days == 9
    db_session.rollback()
    assert policies.settings_for(db_session, school1.id).hold_days != 9


def test_a_settings_copy_changed_by_its_caller_changes_nothing_else(db_session, school1,
                                                                    clean):
    settings = policies.settings_for(db_session, school1.id)
    settings.closed_on_saturdays = not settings.closed_on_saturdays
    assert policies.settings_for(db_session, school1.id).closed_on_saturdays != (
        settings.closed_on_saturdays)


def test_cached_entries_are_used_until_something_changes(db_session, school1, clean):
    db_session.commit()
    policies.school_rules(db_session, school1.id)
    db_session.commit()
    loads = cache.stats["loads"]
    for _ in range(3):
        policies.school_rules(db_session, school1.id)
        policies.settings_for(db_session, school1.id)
        db_session.commit()
    assert cache.stats["loads"] == loads
    _other_worker("UPDATE school_year SET name = name")
    policies.school_rules(db_session, school1.id)
    assert cache.stats["loads"] == loads + 1


def test_a_permission_taken_away_is_refused_at_the_next_request(app, login, db_session,
                                                                school1, clean):
    from app.core.security import sync_roles

    desk = Desk(login("thuvien"))
    student = _student(db_session, school1)
    copy = _copy(db_session, school1, "STN")
    assert desk.scan(copy.barcode, reader_id=student.id)[0] == 200  # permissions cached
    _other_worker("""
        DELETE FROM ab_permission_view_role WHERE permission_view_id IN (
          SELECT pv.id FROM ab_permission_view pv
          JOIN ab_permission p ON p.id = pv.permission_id
          JOIN ab_view_menu v ON v.id = pv.view_menu_id
          WHERE p.name = 'can_desk' AND v.name = 'DeskView')""")
    try:
        assert desk.scan(copy.barcode)[0] == 403
    finally:
        db_session.rollback()
        sync_roles(app.appbuilder)
    assert desk.scan(copy.barcode)[0] == 200  # back: the return goes through


def test_checkout_and_return_statements(login, db_session, school1, clean):
    """With the caches warm, a checkout at the desk costs three statements on PostgreSQL: the
    reader with the types of their open loans and the cache's number (the user and the
    permissions come from the cache, app.core.cache.trust), the copy, then the insert and the
    copy's update in one statement; a return two: the copy with its open loan (and the
    number), then the loan's and the copy's update in one. SQLite, without data-modifying
    CTEs, sends the insert (or the loan's update) and the copy's update apart."""
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1)
    barcodes = [_copy(db_session, school1, "STN", n).barcode for n in range(2)]
    reader_id = student.id
    desk.scan(barcodes[0], reader_id=reader_id)
    desk.scan(barcodes[0])
    statements, full, whole = [], [], []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split()[0].upper())
        full.append(" ".join(statement.split())[:150])
        whole.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        status, out = desk.scan(barcodes[1], reader_id=reader_id)
        assert status == 200 and out["kind"] == "checkout", out
        checkout, statements[:] = list(statements), []
        status, out = desk.scan(barcodes[1])
        assert status == 200 and out["kind"] == "return", out
        checkin = list(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    if db.engine.dialect.name == "postgresql":
        assert checkout == ["SELECT", "SELECT", "WITH"], full
        assert checkin == ["SELECT", "WITH"], checkin
    else:
        assert checkout == ["SELECT", "SELECT", "INSERT", "UPDATE"], full
        assert checkin == ["SELECT", "UPDATE", "UPDATE"], checkin
    # No statement of its own for the cache's number: it comes with the first one.
    assert "FROM config_version" in whole[0] and not any(
        s.startswith("SELECT config_version") for s in whole), whole


def test_loans_are_their_own_history_a_damaged_return_is_audited(login, db_session, school1,
                                                                 clean):
    desk = Desk(login("thuvien"))
    student = _student(db_session, school1)
    copy = _copy(db_session, school1, "STN")

    def audit_rows():
        db_session.rollback()
        return db_session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.table_name.in_(["copy", "loan"]), AuditLog.row_id == copy.id))

    before = audit_rows()
    status, out = desk.scan(copy.barcode, reader_id=student.id)
    loan_id = out["loan_id"]
    assert desk.scan(copy.barcode)[0] == 200
    assert audit_rows() == before  # the loan register says who lent and took back, and when
    loan = db_session.get(Loan, loan_id)
    assert loan.status == LoanStatus.returned and loan.loaned_by_id and loan.returned_by_id
    assert desk.scan(copy.barcode, reader_id=student.id)[0] == 200
    status, out = desk.scan(copy.barcode, action="damaged")
    assert status == 200 and out["kind"] == "return", out
    assert audit_rows() == before + 1
    db_session.expire_all()
    assert db_session.get(Copy, copy.id).status == CopyStatus.damaged


def test_a_copy_returned_at_another_desk_meanwhile_is_refused(db_session, school1, clean):
    """Two desks return the same copy at once: the second finds no open loan to close."""
    student = _student(db_session, school1)
    copy = _copy(db_session, school1, "STN")
    services.checkout(db_session, None, school1.id, student, copy.barcode)
    db_session.commit()
    original = services._desk_copy

    def returned_meanwhile(session, statements, school_id, barcode):
        row = original(session, statements, school_id, barcode)
        _other_worker("UPDATE loan SET status = 'returned' WHERE copy_id = :copy AND "
                      "status = 'active'", copy=copy.id)
        return row

    services._desk_copy = returned_meanwhile
    try:
        with pytest.raises(services.CirculationError) as error:
            services.checkin(db_session, None, school1.id, copy.barcode)
    finally:
        services._desk_copy = original
    assert copy.accession_label in str(error.value)
    db_session.rollback()
