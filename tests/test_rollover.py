"""Year-end wizard (chuyển năm học): the rules (app.readers.rollover) and the screens.

Service tests only flush: the db_session fixture rolls everything back. Screen tests commit,
so the `restore_demo` fixture puts the demo school's readers back and removes what the test
created (the demo database is shared by the whole test session).
"""
import datetime
import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import delete, select

from app.circulation.models import Loan, LoanKind, LoanStatus
from app.collection.models import Copy, CopyStatus
from app.core.errors import DomainError, ValidationError
from app.core.i18n import format_date
from app.extensions import db
from app.org.models import OrgUnit, SchoolYear, UnitKind
from app.readers import rollover
from app.readers.models import (
    Reader, ReaderCategory, ReaderStatus, RolloverStatus, YearRollover,
)
from flask_babel import gettext

from tests.helpers import session_csrf, text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_MAPPING = {"6A1": "7A1", "6A2": "7A2", "7A1": "8A1", "8A1": "9A1", "9A1": ""}


def refused(call, msgid, error=DomainError, **params):
    """`call` is refused with the message `msgid` (in the catalogue's language) and changes
    nothing it reports; returns the error."""
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == gettext(msgid, **params)
    return info.value


def school(code):
    return db.session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one()


def year(name):
    return db.session.execute(select(SchoolYear).where(SchoolYear.name == name)).scalar_one()


def states(school_id):
    """Every reader of the school as the rollover may change it."""
    return {r.id: (r.class_name, r.grade, r.status, r.valid_until)
            for r in db.session.execute(select(Reader).where(Reader.school_id == school_id))
            .scalars()}


def students(school_id, class_name):
    return db.session.execute(select(Reader).where(
        Reader.school_id == school_id, Reader.class_name == class_name,
        Reader.status == ReaderStatus.active).order_by(Reader.id)).scalars().all()


def lend(reader, copy=None):
    """An open loan of an available copy of the reader's school (as the desk makes it)."""
    copy = copy or db.session.execute(select(Copy).where(
        Copy.school_id == reader.school_id, Copy.status == CopyStatus.available)
        .order_by(Copy.id)).scalars().first()
    loan = Loan(school_id=reader.school_id, copy_id=copy.id, reader_id=reader.id,
                kind=LoanKind.home, status=LoanStatus.active, class_name=reader.class_name,
                loaned_at=datetime.datetime(2026, 5, 4, 8, 0), due_on=datetime.date(2026, 5, 18))
    copy.status = CopyStatus.on_loan
    db.session.add(loan)
    db.session.flush()
    return loan, copy


def new_school(code, **levels):
    unit = OrgUnit(code=code, name=f"Trường thử {code}", kind=UnitKind.school, **levels)
    db.session.add(unit)
    db.session.flush()
    return unit


def add_student(unit, class_name, n=1, status=ReaderStatus.active, category="HS"):
    cat = db.session.execute(select(ReaderCategory).where(ReaderCategory.code == category)
                             ).scalar_one()
    out = []
    for _i in range(n):
        card = f"T{uuid.uuid4().hex[:10]}"
        reader = Reader(school=unit, school_id=unit.id, category=cat, family_name="Nguyễn Văn",
                        given_name="Thử", class_name=class_name, status=status,
                        card_number=card, barcode=card)
        db.session.add(reader)
        db.session.flush()
        out.append(reader)
    return out


# --- Class names and the proposal ------------------------------------------------------------

def test_next_class_reads_the_grade_and_keeps_the_suffix():
    assert rollover.next_class("6A1", 9) == "7A1"
    assert rollover.next_class("10A2", 12) == "11A2"
    assert rollover.next_class("Lớp 6/1", 9) == "Lớp 7/1"
    assert rollover.next_class(" 8A10 ", 9) == "9A10"
    assert rollover.next_class("9A1", 9) == ""  # final grade: graduates
    assert rollover.next_class("5B", 5) == ""
    assert rollover.next_class("5B", 9) == "6B"  # a multi-level school keeps its pupils
    for unreadable in ("Chuyên Toán", "A1", "", None, "13A1", "0A1", "10A1"):
        assert rollover.next_class(unreadable, 9) is None, unreadable
    assert sorted(["6A10", "10A1", "6A2", "9A1"], key=rollover.class_sort_key) == [
        "6A2", "6A10", "9A1", "10A1"]


def test_final_grade_is_the_last_grade_of_the_highest_level():
    levels = dict(teaches_primary=True, teaches_lower_secondary=True)
    assert rollover.final_grade(OrgUnit(**levels)) == 9
    assert rollover.final_grade(OrgUnit(teaches_primary=True)) == 5
    assert rollover.final_grade(OrgUnit(teaches_upper_secondary=True, **levels)) == 12
    assert rollover.final_grade(OrgUnit(teaches_preschool=True)) is None


def test_proposed_mapping_of_the_demo_school(db_session):
    assert rollover.propose_mapping(db_session, school("79000001")) == DEMO_MAPPING
    assert list(rollover.propose_mapping(db_session, school("79000001"))) == list(DEMO_MAPPING)
    assert rollover.propose_mapping(db_session, school("79000002")) == {"6A1": "7A1",
                                                                       "9A1": ""}


def test_proposal_flags_unreadable_classes_and_skips_non_students(db_session):
    unit = new_school("T-ROLL-1", teaches_upper_secondary=True)
    add_student(unit, "10A2", 2)
    add_student(unit, "Lớp 11/1")
    add_student(unit, "12C")
    add_student(unit, "Chuyên Toán")
    add_student(unit, "12C", status=ReaderStatus.suspended)  # still in school: moves too
    add_student(unit, "11Z", status=ReaderStatus.graduated)  # gone: no class of this year
    add_student(unit, "10GV", category="GV")  # a teacher with a homeroom class
    mapping = rollover.propose_mapping(db_session, unit)
    assert mapping == {"10A2": "11A2", "12C": "", "Chuyên Toán": None, "Lớp 11/1": "Lớp 12/1"}
    assert rollover.class_counts(db_session, unit)["12C"] == 2


# --- Preview ---------------------------------------------------------------------------------

def test_preview_counts_classes_lists_leavers_with_books_and_warns(db_session):
    s1 = school("79000001")
    graduate = students(s1.id, "9A1")[0]
    loan, copy = lend(graduate)
    left = students(s1.id, "7A1")[0]
    left.status = ReaderStatus.left
    lend(left)
    lend(students(s1.id, "6A1")[0])  # stays in the school: not a leaver
    result = rollover.preview(db_session, s1, DEMO_MAPPING)
    assert [(c.source, c.readers, c.target, c.graduates) for c in result.classes] == [
        ("6A1", 8, "7A1", 0), ("6A2", 8, "7A2", 0), ("7A1", 7, "8A1", 0),
        ("8A1", 8, "9A1", 0), ("9A1", 8, "", 8)]
    assert (result.promoted, result.graduating) == (31, 8)
    assert result.problems == [] and result.warnings == []
    leavers = {x.reader.id: x for x in result.leavers}
    assert set(leavers) == {graduate.id, left.id}
    assert leavers[graduate.id].graduating and not leavers[left.id].graduating
    assert [(c.accession_label, r.title) for _l, c, r in leavers[graduate.id].loans] == [
        (copy.accession_label, copy.record.title)]

    # 6A1 and 6A2 both into 7A1, whose own students are missing from the mapping.
    edited = {**DEMO_MAPPING, "6A2": "7A1"}
    del edited["7A1"]
    result = rollover.preview(db_session, s1, edited)
    assert [(p.field, p.params) for p in result.problems] == [("7A1", {"cls": "7A1"})]
    assert len(result.warnings) == 2 and all("7A1" in w for w in result.warnings)
    assert any("6A1, 6A2" in w for w in result.warnings)
    # Nothing was changed by the preview.
    assert db_session.execute(select(YearRollover).where(YearRollover.school_id == s1.id)
                              ).first() is None
    assert graduate.status == ReaderStatus.active


# --- Apply, undo, confirm --------------------------------------------------------------------

def test_apply_promotes_graduates_keeps_loans_and_undo_restores_exactly(db_session):
    s1 = school("79000001")
    y1, y2 = year("2025–2026"), year("2026–2027")
    six = students(s1.id, "6A1")
    six[0].valid_until = datetime.date(2026, 5, 31)  # extended to the end of 2026–2027
    six[1].valid_until = None
    six[2].status = ReaderStatus.suspended  # suspended readers move up with their class
    six[3].valid_until = datetime.date(2028, 5, 31)  # a longer card is never shortened
    left = students(s1.id, "7A1")[0]
    left.status = ReaderStatus.left
    graduate = students(s1.id, "9A1")[0]
    loan_six, _c = lend(six[0])
    loan_grad, _c = lend(graduate)
    db_session.flush()
    before = states(s1.id)
    other_before = states(school("79000002").id)

    done = rollover.apply(db_session, None, s1, y1, y2, DEMO_MAPPING)
    assert done.status == RolloverStatus.applied and done.applied_at is not None
    assert (done.readers_promoted, done.readers_graduated) == (31, 8)
    assert done.class_mapping == DEMO_MAPPING
    after = states(s1.id)
    assert after[six[0].id] == ("7A1", 7, ReaderStatus.active, y2.ends_on)
    assert after[six[1].id] == ("7A1", 7, ReaderStatus.active, y2.ends_on)
    assert after[six[2].id][:3] == ("7A1", 7, ReaderStatus.suspended)
    assert after[six[3].id][3] == datetime.date(2028, 5, 31)
    assert after[graduate.id] == ("9A1", 9, ReaderStatus.graduated, before[graduate.id][3])
    assert after[left.id] == before[left.id]  # gone already: untouched
    moved = {rid for rid in before if after[rid] != before[rid]}
    assert {int(k) for k in done.snapshot} == moved and len(moved) == 39
    assert sum(1 for rid in moved if after[rid][0] == "9A1" and after[rid][1] == 9
               and after[rid][2] == ReaderStatus.active) == 8  # 8A1 is now 9A1
    teachers = [rid for rid, state in before.items() if state[0] is None]
    assert len(teachers) == 3 and all(after[rid] == before[rid] for rid in teachers)
    assert states(school("79000002").id) == other_before
    # Loans keep the class they were made in and stay with their reader.
    db_session.expire_all()
    for loan, class_name, reader in ((loan_six, "6A1", six[0]), (loan_grad, "9A1", graduate)):
        loan = db_session.get(Loan, loan.id)
        assert (loan.class_name, loan.status, loan.reader_id) == (
            class_name, LoanStatus.active, reader.id)
    # After the rollover the graduate is a leaver holding a book.
    leavers = rollover.leavers_with_loans(db_session, s1)
    assert [(x.reader.id, x.graduating, len(x.loans)) for x in leavers] == [
        (graduate.id, False, 1)]

    rollover.undo(db_session, None, s1, done)
    assert done.status == RolloverStatus.undone
    db_session.expire_all()
    assert states(s1.id) == before
    years = {"from_year": "2025–2026", "to_year": "2026–2027"}
    refused(lambda: rollover.undo(db_session, None, s1, done),
            "The rollover from %(from_year)s to %(to_year)s has already been undone.", **years)
    refused(lambda: rollover.confirm(db_session, None, s1, done),
            "The rollover from %(from_year)s to %(to_year)s has been undone: it can no longer "
            "be confirmed.", **years)
    assert states(s1.id) == before
    # Undone: the year can be rolled over again.
    again = rollover.apply(db_session, None, s1, y1, y2, DEMO_MAPPING)
    assert again.readers_graduated == 8


def test_confirm_blocks_undo_and_a_second_apply_is_refused(db_session):
    s1 = school("79000001")
    y0, y1, y2 = year("2024–2025"), year("2025–2026"), year("2026–2027")
    first = rollover.apply(db_session, None, s1, y0, y1, DEMO_MAPPING)
    today = datetime.date.today()
    already = ("The readers of school year %(from_year)s were already moved up to %(to_year)s "
               "on %(date)s.")
    refused(lambda: rollover.apply(db_session, None, s1, y0, y1, DEMO_MAPPING), already,
            from_year=y0.name, to_year=y1.name, date=format_date(today))
    # Not confirmed yet: no other rollover of the school until it is confirmed or undone
    # (undo restores a snapshot: exact only while nothing was rolled over after it).
    refused(lambda: rollover.apply(db_session, None, s1, y1, y2, {
        "7A1": "8A1", "7A2": "8A2", "8A1": "9A1", "9A1": ""}),
        "The rollover from %(from_year)s to %(to_year)s is not confirmed yet: confirm it or "
        "undo it first.", from_year=y0.name, to_year=y1.name)
    rollover.confirm(db_session, None, s1, first)
    assert first.status == RolloverStatus.confirmed and first.confirmed_at is not None
    before = states(s1.id)
    refused(lambda: rollover.undo(db_session, None, s1, first),
            "The rollover from %(from_year)s to %(to_year)s was confirmed on %(date)s: it can "
            "no longer be undone.", from_year=y0.name, to_year=y1.name, date=format_date(today))
    refused(lambda: rollover.confirm(db_session, None, s1, first),
            "The rollover from %(from_year)s to %(to_year)s was already confirmed on %(date)s.",
            from_year=y0.name, to_year=y1.name, date=format_date(today))
    refused(lambda: rollover.apply(db_session, None, s1, y0, y1, DEMO_MAPPING), already,
            from_year=y0.name, to_year=y1.name, date=format_date(today))
    assert states(s1.id) == before and first.status == RolloverStatus.confirmed
    # The next year goes ahead; an earlier one can no longer be rolled over after it.
    second = rollover.apply(db_session, None, s1, y1, y2,
                            rollover.propose_mapping(db_session, s1))
    assert second.readers_graduated == 8  # the former 8A1
    rollover.confirm(db_session, None, s1, second)
    first.status = RolloverStatus.undone  # as if the first had been undone instead
    db_session.flush()
    refused(lambda: rollover.apply(db_session, None, s1, y0, y1, DEMO_MAPPING),
            "School year %(year)s has already been rolled over: an earlier school year cannot "
            "be rolled over after it.", year=y1.name)
    # Another school's rollover is not this school's to change.
    refused(lambda: rollover.undo(db_session, None, school("79000002"), second),
            "This rollover belongs to another school.")


def test_bad_years_and_mappings_are_refused_and_nothing_is_changed(db_session):
    s1 = school("79000001")
    y0, y1, y2 = year("2024–2025"), year("2025–2026"), year("2026–2027")
    before = states(s1.id)
    after = "The new school year %(to_year)s must begin after %(from_year)s ends."
    missing = "Class %(cls)s: give its class in the new school year, or tick “graduates”."
    cases = [
        ((y1, y1, DEMO_MAPPING), after, dict(from_year=y1.name, to_year=y1.name)),
        ((y2, y1, DEMO_MAPPING), after, dict(from_year=y2.name, to_year=y1.name)),
        ((y0, y2, DEMO_MAPPING),
         "School year %(year)s lies between %(from_year)s and %(to_year)s: move up one year "
         "at a time.", dict(year=y1.name, from_year=y0.name, to_year=y2.name)),
        ((y1, None, DEMO_MAPPING), "Choose the new school year.", {}),
        ((None, y2, DEMO_MAPPING), "Choose the school year that is ending.", {}),
        ((y1, y2, {k: v for k, v in DEMO_MAPPING.items() if k != "8A1"}), missing,
         dict(cls="8A1")),
        ((y1, y2, {**DEMO_MAPPING, "8A1": None}), missing, dict(cls="8A1")),
        ((y1, y2, {**DEMO_MAPPING, "6A2": "7A2" * 11}),
         "Class %(cls)s: the new class name “%(target)s” is longer than %(n)d characters.",
         dict(cls="6A2", target="7A2" * 11, n=30)),
    ]
    for (from_year, to_year, mapping), msgid, params in cases:
        error = refused(lambda: rollover.apply(db_session, None, s1, from_year, to_year,
                                               mapping), msgid, ValidationError, **params)
        assert error.field in ("from_year", "to_year", "8A1", "6A2")
    assert states(s1.id) == before
    assert db_session.execute(select(YearRollover).where(YearRollover.school_id == s1.id)
                              ).first() is None
    # A school without students has nobody to move up.
    empty = new_school("T-ROLL-2", teaches_primary=True)
    refused(lambda: rollover.apply(db_session, None, empty, y1, y2, {}),
            "The school has no student in a class: there is nobody to move up.")


def test_default_years_are_the_current_or_last_ended_year_and_the_next(db_session):
    y0, y1, y2 = year("2024–2025"), year("2025–2026"), year("2026–2027")
    assert rollover.default_years(db_session, datetime.date(2025, 11, 1)) == (y1, y2)
    assert rollover.default_years(db_session, datetime.date(2025, 7, 1)) == (y0, y1)
    assert rollover.default_years(db_session, datetime.date(2026, 6, 15)) == (y1, y2)
    # (other tests of the session may add later school years: only the current one is sure)
    assert rollover.default_years(db_session, datetime.date(2026, 10, 1))[0] == y2


# --- Screens ---------------------------------------------------------------------------------

@pytest.fixture
def restore_demo(app):
    """Put 79000001's readers back and remove the rollovers and loans a screen test made."""
    with app.app_context():
        s1 = school("79000001").id
        before = states(s1)
        loans = set(db.session.execute(select(Loan.id)).scalars())
        copies = dict(db.session.execute(select(Copy.id, Copy.status)).all())
        db.session.rollback()
    yield
    with app.app_context():
        db.session.rollback()
        for reader in db.session.execute(select(Reader).where(Reader.school_id == s1)).scalars():
            reader.class_name, reader.grade, reader.status, reader.valid_until = before[reader.id]
        db.session.execute(delete(Loan).where(Loan.id.not_in(loans or {-1})))
        for copy in db.session.execute(select(Copy)).scalars():
            copy.status = copies[copy.id]
        db.session.execute(delete(YearRollover))
        db.session.commit()
        assert states(s1) == before


def years_query():
    return f"from_year={year('2025–2026').id}&to_year={year('2026–2027').id}"


def apply_form(mapping, **extra):
    data = {"from_year": str(year("2025–2026").id), "to_year": str(year("2026–2027").id),
            "source": list(mapping), "target": [t or "" for t in mapping.values()],
            "graduate": [s for s, t in mapping.items() if t == ""]}
    return {**data, **extra}


def rollover_of(code):
    return db.session.execute(select(YearRollover).where(
        YearRollover.school_id == school(code).id).order_by(YearRollover.id.desc())
    ).scalars().first()


def test_wizard_preview_apply_and_undo_on_screen(app, login, restore_demo):
    c = login("thuvien")
    with app.app_context():
        s1 = school("79000001").id
        graduate = students(s1, "9A1")[0]
        _loan, copy = lend(graduate)
        db.session.commit()
        before = states(s1)
        page = text(c.get("/rollover/"))
        assert 'id="rollover-years"' in page and 'id="rollover-no-history"' in page
        # Step 2: the proposed mapping, prefilled, and the leaver who still holds a book.
        page = text(c.get(f"/rollover/preview?{years_query()}"))
        assert re.search(r'name="source" value="6A1">6A1.*?name="target" value="7A1"', page,
                         re.S)
        assert re.search(r'name="graduate" value="9A1" checked', page)
        leavers = page.split('id="rollover-leavers"')[1].split("</table>")[0]
        assert graduate.full_name in leavers and copy.accession_label in leavers
        assert 'id="rollover-apply"' in page
        # An edited mapping: 6A2 into 7A1 as well, 7A1 left empty.
        edited = {**DEMO_MAPPING, "6A2": "7A1", "7A1": None}
        page = text(c.get("/rollover/preview", query_string={**apply_form(edited),
                                                              "edited": "1"}))
        assert 'value="7A1"' in page and "rollover-warning" in page
        assert "rollover-problem" in page and 'id="rollover-apply"' not in page
        # Applying it anyway is refused, naming the class; nothing changes.
        token = session_csrf(c)
        resp = c.post("/rollover/apply", data={**apply_form(edited), "csrf_token": token})
        assert resp.status_code == 400
        error = text(resp).split('id="rollover-error">')[1].split("</div>")[0]
        assert error == gettext(
            "Class %(cls)s: give its class in the new school year, or tick “graduates”.",
            cls="7A1")
        db.session.rollback()
        assert states(s1) == before and rollover_of("79000001") is None
        # Step 3: apply the proposal.
        resp = c.post("/rollover/apply", data={**apply_form(DEMO_MAPPING),
                                               "csrf_token": token})
        assert resp.status_code == 302, text(resp)[:2000]
        db.session.rollback()
        done = rollover_of("79000001")
        assert resp.headers["Location"].endswith(f"/rollover/show/{done.id}")
        assert (done.status, done.readers_promoted, done.readers_graduated) == (
            RolloverStatus.applied, 32, 8)
        assert states(s1)[graduate.id][2] == ReaderStatus.graduated
        page = text(c.get(f"/rollover/show/{done.id}"))
        assert 'id="rollover-undo"' in page and 'id="rollover-confirm"' in page
        assert copy.accession_label in page  # the graduate still holds the book
        assert f"/rollover/show/{done.id}" in text(c.get("/rollover/"))
        # A second apply of the same year is refused.
        resp = c.post("/rollover/apply", data={**apply_form(DEMO_MAPPING),
                                               "csrf_token": token})
        assert resp.status_code == 409 and "2025–2026" in text(resp)
        # Undo: every reader exactly as before.
        resp = c.post(f"/rollover/undo/{done.id}", data={"csrf_token": token})
        assert resp.status_code == 302
        db.session.rollback()
        assert rollover_of("79000001").status == RolloverStatus.undone
        assert states(s1) == before
        page = text(c.get(f"/rollover/show/{done.id}"))
        assert 'id="rollover-undo"' not in page


def test_confirm_on_screen_then_undo_is_refused(app, login, restore_demo):
    c = login("thuvien")
    with app.app_context():
        token = session_csrf(c)
        c.post("/rollover/apply", data={**apply_form(DEMO_MAPPING), "csrf_token": token})
        db.session.rollback()
        done = rollover_of("79000001")
        resp = c.post(f"/rollover/confirm/{done.id}", data={"csrf_token": token})
        assert resp.status_code == 302
        db.session.rollback()
        assert rollover_of("79000001").status == RolloverStatus.confirmed
        after = states(school("79000001").id)
        with c.session_transaction() as sess:
            sess.pop("_flashes", None)
        resp = c.post(f"/rollover/undo/{done.id}", data={"csrf_token": token})
        assert resp.status_code == 302
        with c.session_transaction() as sess:
            flashes = [m for _cat, m in sess.pop("_flashes", [])]
        assert flashes == [gettext(
            "The rollover from %(from_year)s to %(to_year)s was confirmed on %(date)s: it can "
            "no longer be undone.", from_year="2025–2026", to_year="2026–2027",
            date=format_date(datetime.date.today()))]
        db.session.rollback()
        assert rollover_of("79000001").status == RolloverStatus.confirmed
        assert states(school("79000001").id) == after


def test_rollovers_are_isolated_by_school_and_role(app, login, restore_demo):
    librarian = login("thuvien")
    with app.app_context():
        token = session_csrf(librarian)
        librarian.post("/rollover/apply", data={**apply_form(DEMO_MAPPING),
                                                "csrf_token": token})
        db.session.rollback()
        done = rollover_of("79000001")
        assert done is not None
        show = f"/rollover/show/{done.id}"

        # The other school's librarian: not found, for reading and for writing.
        other = login("thuvien2")
        other_token = session_csrf(other)
        assert other.get(show).status_code == 404
        for action in ("undo", "confirm"):
            resp = other.post(f"/rollover/{action}/{done.id}", data={"csrf_token": other_token})
            assert resp.status_code == 404, action
        assert show not in text(other.get("/rollover/"))
        assert other.get("/rollover/?school=79000001").status_code == 404
        assert other.get(f"/rollover/preview?school=79000001&{years_query()}"
                         ).status_code == 404

        # The principal reads the preview and the rollover, changes nothing.
        principal = login("hieutruong")
        p_token = session_csrf(principal)
        resp = principal.get(show)
        assert resp.status_code == 200 and 'id="rollover-summary"' in text(resp)
        assert 'id="rollover-undo"' not in text(resp)
        page = text(principal.get(f"/rollover/preview?{years_query()}"))
        assert 'id="rollover-classes"' in page and 'id="rollover-apply"' not in page
        for url in (f"/rollover/undo/{done.id}", f"/rollover/confirm/{done.id}",
                    "/rollover/apply"):
            resp = principal.post(url, data={**apply_form(DEMO_MAPPING), "csrf_token": p_token})
            assert resp.status_code == 403, url

        # A student has no access at all.
        student = login("hocsinh")
        for url in ("/rollover/", show, f"/rollover/preview?{years_query()}"):
            resp = student.get(url)
            assert resp.status_code in (302, 403), url
            assert "rollover-summary" not in text(resp) and "rollover-classes" not in text(resp)
        db.session.rollback()
        assert rollover_of("79000001").status == RolloverStatus.applied

        # Without a CSRF token nothing changes either.
        resp = librarian.post(f"/rollover/undo/{done.id}")
        assert resp.status_code == 400
        db.session.rollback()
        assert rollover_of("79000001").status == RolloverStatus.applied


# --- Translations ----------------------------------------------------------------------------

def test_every_new_message_has_a_vietnamese_translation(tmp_path):
    from babel.messages.pofile import read_po

    pot = tmp_path / "rollover.pot"
    files = ["app/readers/rollover.py", "app/readers/rollover_views.py",
             "app/templates/readers/rollover_index.html",
             "app/templates/readers/rollover_preview.html",
             "app/templates/readers/rollover_show.html",
             "app/templates/readers/rollover_leavers.html"]
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel.cfg", "-k", "N_", "-k", "_l", "-k", "lazy_gettext", "-o", str(pot),
                    *files], cwd=ROOT, check=True, capture_output=True)
    with open(pot, "rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    # New messages wait in translations/pending_rollover.json until they are merged into the
    # catalogue (the file is then removed).
    path = os.path.join(ROOT, "translations", "pending_rollover.json")
    pending = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            pending = json.load(fh)
    with open(os.path.join(ROOT, "translations", "vi", "LC_MESSAGES", "messages.po"),
              "rb") as fh:
        known = {m.id for m in read_po(fh) if m.id and m.string}
    assert sorted(m for m in extracted if m not in pending and m not in known) == []
    for msgid, translation in pending.items():
        assert translation.strip(), msgid
        assert set(re.findall(r"%\(\w+\)[sd]", msgid)) == set(
            re.findall(r"%\(\w+\)[sd]", translation)), msgid
