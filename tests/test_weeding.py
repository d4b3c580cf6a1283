"""Weeding and disposal (thanh lọc → thanh lý): the rules (app.weeding.services), the screens,
the principal's approval, the forms and the general register's Part II.

Service tests only flush (db_session rolls back). Screen tests commit: the `clean_weeding`
fixture puts the demo schools' copies and records back and removes the rounds, before and
after each test (the demo database is shared by the whole test session).
"""
import datetime
import io
import re

import openpyxl
import pytest
from flask_babel import gettext
from flask_login import login_user
from sqlalchemy import delete, func, select, update

from app.catalog.models import DocumentType, Record
from app.catalog.services import search_records
from app.circulation import services as circulation
from app.circulation.models import Loan, LoanKind, LoanStatus
from app.collection import services as collection
from app.collection.models import AccessionSeries, Copy, CopyStatus, Counter
from app.core.audit import AuditLog
from app.core.errors import TenancyError
from app.core.i18n import format_date, local_today
from app.extensions import db
from app.org.models import AppUser, OrgUnit
from app.readers.models import Reader
from app.weeding import documents, services
from app.weeding.models import (
    DisposalMethod, RoundStatus, StockWithdrawal, WeedingItem, WeedingReason, WeedingRound,
)
from app.weeding.services import WeedingError
from tests.helpers import DEMO_PASSWORD, session_csrf, text

TODAY = local_today()
DAY = datetime.timedelta(days=1)


def refused(call, msgid, **params):
    """`call` is refused with exactly this message (in the catalogue's language)."""
    with pytest.raises(WeedingError) as info:
        call()
    assert str(info.value) == gettext(msgid, **params)
    return info.value


def school(code):
    return db.session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one()


def user(username):
    return db.session.execute(select(AppUser).where(AppUser.username == username)).scalar_one()


def copies_of(school_id, title):
    return db.session.scalars(select(Copy).join(Record, Record.id == Copy.record_id).where(
        Copy.school_id == school_id, Record.title == title).order_by(Copy.id)).all()


def reset(school_ids):
    """The demo schools as the demo loader left them (no round, every copy on the shelf)."""
    db.session.rollback()
    db.session.execute(update(Copy).where(Copy.school_id.in_(school_ids))
                       .values(status=CopyStatus.available, note=None, withdrawal_id=None))
    for model in (StockWithdrawal, WeedingItem, WeedingRound, Loan):
        db.session.execute(delete(model).where(model.school_id.in_(school_ids)))
    # The numbering of rounds and of Part II lines starts again (numbers are never reused in
    # a real school: only the tests delete lines).
    db.session.execute(delete(Counter).where(Counter.school_id.in_(school_ids),
                                             Counter.key.in_(["weeding_round",
                                                              "stock_withdrawal"])))
    db.session.execute(update(Record).where(Record.school_id.in_(school_ids))
                       .values(is_hidden=False))
    db.session.commit()


@pytest.fixture
def s1(db_session):
    return school("79000001")


@pytest.fixture
def s2(db_session):
    return school("79000002")


@pytest.fixture
def clean_weeding(app, db_session, s1, s2):
    ids = [s1.id, s2.id]
    reset(ids)
    yield
    reset(ids)


def approved_round(s1, titles=("Truyện Kiều",), reason=WeedingReason.worn_out,
                   display_from=None):
    """A round of `s1` with every copy of `titles`, taken to the approval (flush only)."""
    librarian, principal = user("thuvien"), user("hieutruong")
    round_ = services.create_round(db.session, librarian, s1, "Thanh lọc thử")
    copies = [c for t in titles for c in copies_of(s1.id, t)]
    services.add_copies(db.session, librarian, round_, copies, reason)
    services.propose(db.session, librarian, round_)
    services.record_committee(db.session, librarian, round_, "12/QĐ-THCSND", TODAY - 3 * DAY,
                              "Võ Minh Tuấn; Chủ tịch Hội đồng\nNguyễn Thị Lan; Thư ký",
                              TODAY - 2 * DAY, "Đồng ý thanh lọc toàn bộ danh mục.")
    services.approve(db.session, principal, s1.id, round_, "15/QĐ-THCSND", TODAY - DAY,
                     DisposalMethod.liquidate)
    if display_from is not None:
        round_.display_from = display_from
        db.session.flush()
    return round_, copies


# --- Proposing ------------------------------------------------------------------------------

def test_criteria_propose_the_right_copies(db_session, s1, s2):
    librarian = user("thuvien")
    round_ = services.create_round(db_session, librarian, s1, "Đợt 1")
    assert round_.status == RoundStatus.draft and round_.number >= 1
    # Textbooks of the old curriculum: the demo textbooks are from 2021.
    assert services.add_by_criterion(db_session, librarian, round_,
                                     WeedingReason.outdated_textbook, before_year=2021) == 0
    added = services.add_by_criterion(db_session, librarian, round_,
                                      WeedingReason.outdated_textbook, before_year=2022)
    textbooks = copies_of(s1.id, "Toán 6. Tập 1") + copies_of(s1.id, "Ngữ văn 6. Tập 1")
    assert added == len(textbooks) == 20
    # Worn out = damaged copies; lost in circulation = lost copies; nothing of school 2.
    worn, lost = copies_of(s1.id, "Truyện Kiều")[:2], copies_of(s1.id, "Dế Mèn phiêu lưu ký")[0]
    for copy in worn:
        copy.status = CopyStatus.damaged
    lost.status = CopyStatus.lost
    for copy in copies_of(s2.id, "Dế Mèn phiêu lưu ký"):
        copy.status = CopyStatus.lost
    db_session.flush()
    assert services.add_by_criterion(db_session, librarian, round_, WeedingReason.worn_out) == 2
    assert services.add_by_criterion(db_session, librarian, round_, WeedingReason.lost) == 1
    # Periodicals two years after publication.
    bc = db_session.scalar(select(DocumentType).where(DocumentType.code == "BC"))
    series = db_session.scalar(select(AccessionSeries).where(
        AccessionSeries.school_id == s1.id, AccessionSeries.code == "STK"))
    old = Record(school=s1, school_id=s1.id, title="Tạp chí Toán học và Tuổi trẻ",
                 year=TODAY.year - 2, document_type=bc)
    new = Record(school=s1, school_id=s1.id, title="Báo Nhi Đồng", year=TODAY.year,
                 document_type=bc)
    db_session.add_all([old, new])
    db_session.flush()
    collection.add_copies(db_session, s1, old, series, 2)
    collection.add_copies(db_session, s1, new, series, 2)
    assert services.add_by_criterion(db_session, librarian, round_,
                                     WeedingReason.old_periodical) == 2
    # Again: nothing twice.
    assert services.add_by_criterion(db_session, librarian, round_, WeedingReason.lost) == 0
    reasons = dict(db_session.execute(select(WeedingItem.copy_id, WeedingItem.reason).where(
        WeedingItem.round_id == round_.id)).all())
    assert reasons[lost.id] == WeedingReason.lost and len(reasons) == 25
    assert {c.school_id for c in db_session.scalars(select(Copy).where(
        Copy.id.in_(reasons)))} == {s1.id}
    refused(lambda: services.add_by_criterion(db_session, librarian, round_,
                                              WeedingReason.outdated_textbook),
            "Give the year of the new curriculum: textbooks published before it are proposed.")


def test_a_copy_of_another_school_is_refused_by_name(db_session, s1, s2):
    librarian = user("thuvien")
    round_ = services.create_round(db_session, librarian, s1, "Đợt 1")
    own = copies_of(s1.id, "Truyện Kiều")[0]
    foreign = copies_of(s2.id, "Dế Mèn phiêu lưu ký")[0]
    refused(lambda: services.add_copy_ids(db_session, librarian, round_, [own.id, foreign.id]),
            "Copy %(copy)s belongs to another school: it cannot be proposed.",
            copy=foreign.accession_label)
    # By barcode: another school's barcode is simply not one of this school.
    refused(lambda: services.find_copies(db_session, s1.id, [own.barcode, foreign.barcode]),
            "No copy of this school has the barcode or accession number “%(code)s”.",
            code=foreign.barcode)
    assert db_session.scalar(select(func.count()).select_from(WeedingItem).where(
        WeedingItem.round_id == round_.id)) == 0
    # The same copy in two open rounds: refused, naming the other round.
    services.add_copies(db_session, librarian, round_, [own])
    other = services.create_round(db_session, librarian, s1, "Đợt 2")
    refused(lambda: services.add_copies(db_session, librarian, other, [own]),
            "Copy %(copy)s is already proposed in round “%(round)s”.",
            copy=own.accession_label, round="Đợt 1")


def test_warnings_ten_percent_and_three_years(db_session, s1):
    librarian = user("thuvien")
    held = services.holdings(db_session, s1.id)
    round_ = services.create_round(db_session, librarian, s1, "Đợt lớn")
    kieu = copies_of(s1.id, "Truyện Kiều")
    services.add_copies(db_session, librarian, round_, kieu[:1])
    assert held >= 38 and services.warnings(db_session, round_) == []  # one copy: under 10%
    # Up to 10 % (rounded down): no warning; one copy more: the warning.
    others = db_session.scalars(select(Copy).where(
        Copy.school_id == s1.id, Copy.status != CopyStatus.withdrawn, Copy.id != kieu[0].id)
        .order_by(Copy.id)).all()
    limit = held // 10
    services.add_copies(db_session, librarian, round_, others[:limit - 1])
    assert services.warnings(db_session, round_) == []
    services.add_copies(db_session, librarian, round_, others[limit - 1:limit])
    count = limit + 1
    share = f"{100 * count / held:.1f}".replace(".", ",")
    assert services.warnings(db_session, round_) == [gettext(
        "The round proposes %(count)d copies, %(share)s%% of the %(held)d copies held: "
        "TT 02/2020 allows at most %(max)d%% per round.", count=count, share=share, held=held,
        max=10)]
    # A round withdrawn two years ago: the next one warns about the 3 years.
    past = services.create_round(db_session, librarian, s1, "Đợt cũ")
    past.status, past.withdrawn_on = RoundStatus.withdrawn, TODAY.replace(year=TODAY.year - 2)
    db_session.flush()
    assert any("3" in w and format_date(past.withdrawn_on) in w
               for w in services.warnings(db_session, round_))
    past.withdrawn_on = TODAY.replace(year=TODAY.year - 4)
    db_session.flush()
    assert not any(format_date(past.withdrawn_on) in w
                   for w in services.warnings(db_session, round_))


# --- The steps and their refusals -----------------------------------------------------------

def test_steps_in_order_and_bad_input(db_session, s1):
    librarian, principal = user("thuvien"), user("hieutruong")
    round_ = services.create_round(db_session, librarian, s1, "Đợt 1")
    refused(lambda: services.propose(db_session, librarian, round_),
            "The round has no copy: add the copies to weed first.")
    refused(lambda: services.approve(db_session, principal, s1.id, round_, "1/QĐ", TODAY,
                                     DisposalMethod.liquidate),
            "The round can be approved only after the committee's appraisal (this round is "
            "“%(status)s”).", status=RoundStatus.draft.label)
    services.add_copies(db_session, librarian, round_, copies_of(s1.id, "Truyện Kiều"))
    services.propose(db_session, librarian, round_)
    refused(lambda: services.add_copies(db_session, librarian, round_,
                                        copies_of(s1.id, "Dế Mèn phiêu lưu ký")),
            "Copies can be added only to a draft round (this round is “%(status)s”).",
            status=RoundStatus.proposed.label)
    refused(lambda: services.record_committee(db_session, librarian, round_, "5/QĐ", TODAY,
                                              "", TODAY, None),
            "List the committee members, one a line: “Name; position”.")
    refused(lambda: services.record_committee(db_session, librarian, round_, "5/QĐ", TODAY,
                                              "A; Chủ tịch", TODAY - DAY, None),
            "The appraisal (%(appraisal)s) cannot come before the decision forming the "
            "committee (%(decision)s).", appraisal=format_date(TODAY - DAY),
            decision=format_date(TODAY))
    assert round_.status == RoundStatus.proposed and round_.committee_decision_number is None
    services.record_committee(db_session, librarian, round_, "5/QĐ", TODAY - DAY,
                              "Võ Minh Tuấn; Chủ tịch", TODAY, None)
    # Another school's principal: not found.
    refused(lambda: services.approve(db_session, principal, s1.id + 1, round_, "7/QĐ", TODAY,
                                     DisposalMethod.liquidate), "Weeding round not found.")
    refused(lambda: services.approve(db_session, principal, s1.id, round_, " ", TODAY,
                                     DisposalMethod.liquidate),
            "Give the number of the approval decision.")
    refused(lambda: services.approve(db_session, principal, s1.id, round_, "7/QĐ", TODAY + DAY,
                                     DisposalMethod.liquidate),
            "The decision date %(date)s is in the future.", date=format_date(TODAY + DAY))
    services.approve(db_session, principal, s1.id, round_, "7/QĐ", TODAY,
                     DisposalMethod.repurpose)
    assert round_.status == RoundStatus.approved and round_.display_from == TODAY
    assert services.display_ends(round_) == TODAY + 14 * DAY
    # Approving twice.
    refused(lambda: services.approve(db_session, principal, s1.id, round_, "8/QĐ", TODAY,
                                     DisposalMethod.liquidate),
            "This round was already approved by decision %(number)s of %(date)s.",
            number="7/QĐ", date=format_date(TODAY))
    assert round_.decision_number == "7/QĐ"
    # Withdrawing before the 15 days: on the 15th day still refused, the 16th allowed.
    for day in (TODAY, TODAY + 14 * DAY):
        refused(lambda: services.withdraw(db_session, librarian, round_, today=day),
                "The list is on public display until %(end)s (15 days from %(start)s): the "
                "copies can be withdrawn from %(from)s.", end=format_date(TODAY + 14 * DAY),
                start=format_date(TODAY), **{"from": format_date(TODAY + 15 * DAY)})
    assert round_.status == RoundStatus.approved
    line = services.withdraw(db_session, librarian, round_, today=TODAY + 15 * DAY)
    assert line.withdrawn_on == TODAY + 15 * DAY
    refused(lambda: services.withdraw(db_session, librarian, round_, today=TODAY + 16 * DAY),
            "The copies of this round were already withdrawn on %(date)s.",
            date=format_date(TODAY + 15 * DAY))
    refused(lambda: services.cancel(db_session, librarian, round_),
            "The copies of this round were withdrawn on %(date)s: the round can no longer be "
            "cancelled.", date=format_date(TODAY + 15 * DAY))


def test_withdrawal_annotates_copies_writes_part_two_and_hides_records(db_session, s1):
    librarian = user("thuvien")
    before = db_session.scalar(select(Counter.last_value).where(
        Counter.school_id == s1.id, Counter.key == "stock_withdrawal")) or 0
    kieu = copies_of(s1.id, "Truyện Kiều")
    de_men = copies_of(s1.id, "Dế Mèn phiêu lưu ký")
    round_ = services.create_round(db_session, librarian, s1, "Đợt 1")
    services.add_copies(db_session, librarian, round_, kieu, WeedingReason.worn_out)
    services.add_copies(db_session, librarian, round_, de_men[:1], WeedingReason.lost)
    services.propose(db_session, librarian, round_)
    services.record_committee(db_session, librarian, round_, "5/QĐ", TODAY - 20 * DAY,
                              "Võ Minh Tuấn; Chủ tịch", TODAY - 20 * DAY, None)
    services.approve(db_session, user("hieutruong"), s1.id, round_, "9/QĐ-THCS",
                     TODAY - 20 * DAY, DisposalMethod.liquidate)
    round_.display_from = TODAY - 15 * DAY  # the display started 15 days ago
    db_session.flush()
    assert search_records(db_session, "Truyện Kiều", [s1.id])[0] == 1
    line = services.withdraw(db_session, librarian, round_)
    note = f"đã thanh lọc, QĐ số 9/QĐ-THCS ngày {format_date(TODAY - 20 * DAY)}"
    for copy in kieu + de_men[:1]:
        assert copy.status == CopyStatus.withdrawn and copy.note == note
        assert copy.withdrawal_id == line.id
        assert db_session.get(Copy, copy.id) is copy  # the row stays, with its number
    assert de_men[1].status == CopyStatus.available and de_men[1].note is None
    assert line.register_number == before + 1
    assert (line.document_number, line.document_date) == ("9/QĐ-THCS", TODAY - 20 * DAY)
    assert line.copies_count == 4
    assert line.total_value == sum(c.price for c in kieu) + de_men[0].price
    assert line.note == "Thanh lý"
    # Part II by reason and document type.
    [(row, by_reason, by_type)] = [r for r in services.register_part_two(db_session, s1.id)
                                   if r[0].id == line.id]
    assert by_reason == {WeedingReason.worn_out: 3, WeedingReason.lost: 1}
    assert by_type == {"STK": 3, "STN": 1}
    # The record with no copy left is hidden from the catalogue searches; the other stays.
    kieu_record = db_session.get(Record, kieu[0].record_id)
    assert kieu_record.is_hidden and not db_session.get(Record, de_men[0].record_id).is_hidden
    assert search_records(db_session, "Truyện Kiều", [s1.id]) == (0, [])
    assert search_records(db_session, "Truyện Kiều", None)[1] == [
        r for r in search_records(db_session, "Truyện Kiều", None)[1] if r.school_id != s1.id]
    assert search_records(db_session, "Dế Mèn", [s1.id])[0] == 1
    assert round_.status == RoundStatus.withdrawn and round_.withdrawn_by_id == librarian.id
    # Part II numbering is the school's own: the next withdrawal gets the next number.
    second = services.create_round(db_session, librarian, s1, "Đợt 2")
    services.add_copies(db_session, librarian, second, de_men[1:2])
    services.propose(db_session, librarian, second)
    services.record_committee(db_session, librarian, second, "6/QĐ", TODAY - 20 * DAY,
                              "A; Chủ tịch", TODAY - 20 * DAY, None)
    services.approve(db_session, user("hieutruong"), s1.id, second, "10/QĐ", TODAY - DAY,
                     DisposalMethod.liquidate)
    second.display_from = TODAY - 20 * DAY
    assert services.withdraw(db_session, librarian, second).register_number == \
        line.register_number + 1
    # A copy added later to a hidden record shows it again (collection.add_copies).
    series = db_session.get(AccessionSeries, kieu[0].series_id)
    collection.add_copies(db_session, s1, kieu_record, series, 1)
    assert not kieu_record.is_hidden


def test_a_copy_on_loan_refuses_the_withdrawal_and_nothing_changes(db_session, s1):
    round_, copies = approved_round(s1, display_from=TODAY - 30 * DAY)
    reader = db_session.scalars(select(Reader).where(Reader.school_id == s1.id,
                                                     Reader.class_name.is_not(None))
                                .order_by(Reader.id)).first()
    on_loan = copies[1]
    db_session.add(Loan(school_id=s1.id, copy_id=on_loan.id, reader_id=reader.id,
                        kind=LoanKind.home, status=LoanStatus.active,
                        loaned_at=datetime.datetime(2026, 1, 5), due_on=TODAY))
    on_loan.status = CopyStatus.on_loan
    db_session.flush()
    lines = db_session.scalar(select(func.count()).select_from(StockWithdrawal))
    refused(lambda: services.withdraw(db_session, user("thuvien"), round_),
            "Copy %(copy)s is on loan to %(reader)s: it must be returned (or recorded as lost) "
            "before the withdrawal. Nothing was withdrawn.", copy=on_loan.accession_label,
            reader=reader.full_name)
    assert [c.status for c in copies] == [CopyStatus.available, CopyStatus.on_loan,
                                          CopyStatus.available]
    assert all(c.note is None and c.withdrawal_id is None for c in copies)
    assert round_.status == RoundStatus.approved
    assert db_session.scalar(select(func.count()).select_from(StockWithdrawal)) == lines
    assert any(on_loan.accession_label in w for w in services.warnings(db_session, round_))


def test_lost_copies_from_circulation_flow_into_the_same_withdrawal(db_session, s1):
    reader = db_session.scalars(select(Reader).where(Reader.school_id == s1.id,
                                                     Reader.class_name.is_not(None))
                                .order_by(Reader.id)).first()
    copy = copies_of(s1.id, "Đất rừng phương Nam")[0]
    loan = circulation.checkout(db_session, None, s1.id, reader, copy.barcode)
    circulation.mark_lost(db_session, None, s1.id, loan.id)
    damaged = copies_of(s1.id, "Đất rừng phương Nam")[1]
    other = circulation.checkout(db_session, None, s1.id, reader, damaged.barcode)
    circulation.checkin(db_session, None, s1.id, damaged.barcode, damaged=True)
    assert (copy.status, damaged.status) == (CopyStatus.lost, CopyStatus.damaged)
    librarian = user("thuvien")
    round_ = services.create_round(db_session, librarian, s1, "Mất và hỏng")
    assert services.add_by_criterion(db_session, librarian, round_, WeedingReason.lost) == 1
    assert services.add_by_criterion(db_session, librarian, round_, WeedingReason.worn_out) == 1
    services.propose(db_session, librarian, round_)
    services.record_committee(db_session, librarian, round_, "5/QĐ", TODAY - 20 * DAY,
                              "A; Chủ tịch", TODAY - 20 * DAY, None)
    services.approve(db_session, user("hieutruong"), s1.id, round_, "11/QĐ", TODAY - 20 * DAY,
                     DisposalMethod.liquidate)
    round_.display_from = TODAY - 16 * DAY
    lost_note = copy.note
    assert lost_note
    services.withdraw(db_session, librarian, round_)
    assert copy.status == damaged.status == CopyStatus.withdrawn
    # The circulation note is kept after the weeding annotation.
    assert copy.note == (f"đã thanh lọc, QĐ số 11/QĐ ngày {format_date(TODAY - 20 * DAY)}; "
                         f"{lost_note}")
    assert other.status == LoanStatus.returned


def test_cancel_before_withdrawal_frees_the_copies(db_session, s1):
    round_, copies = approved_round(s1)
    librarian = user("thuvien")
    services.cancel(db_session, librarian, round_, "Chưa đủ hồ sơ")
    assert round_.status == RoundStatus.cancelled and round_.cancel_reason == "Chưa đủ hồ sơ"
    assert all(c.status == CopyStatus.available for c in copies)
    refused(lambda: services.withdraw(db_session, librarian, round_),
            "The copies can be withdrawn only after the principal's approval (this round is "
            "“%(status)s”).", status=RoundStatus.cancelled.label)
    refused(lambda: services.cancel(db_session, librarian, round_),
            "This round is already cancelled.")
    # Its copies may be proposed again in a new round.
    again = services.create_round(db_session, librarian, s1, "Lại")
    assert services.add_copies(db_session, librarian, again, copies) == 3


def test_principal_writes_only_the_approval_columns_of_their_school(app, db_session, s1, s2):
    """tenancy.guard_flush: the principal's one write, whatever code path tries more."""
    principal = user("hieutruong")
    round_, _copies = approved_round(s1)
    round_.status = RoundStatus.committee
    other_round = services.create_round(db.session, user("thuvien2"), s2, "Khác")
    db.session.commit()
    ids = (round_.id, other_round.id)
    try:
        attempts = [
            lambda: setattr(db.session.get(WeedingRound, ids[0]), "decision_number", "X"),
            lambda: setattr(db.session.get(WeedingRound, ids[0]), "name", "Đổi tên"),
            lambda: setattr(db.session.get(WeedingRound, ids[1]), "status",
                            RoundStatus.approved),
            lambda: setattr(copies_of(s1.id, "Truyện Kiều")[0], "status",
                            CopyStatus.withdrawn),
            lambda: db.session.add(WeedingRound(
                school_id=s1.id, number=999, name="x", status=RoundStatus.draft,
                created_at=datetime.datetime(2026, 1, 1))),
        ]
        for i, attempt in enumerate(attempts):
            with app.test_request_context():
                login_user(principal)
                attempt()
                if i == 0:
                    db.session.flush()  # allowed: an approval column of their school
                else:
                    with pytest.raises(TenancyError):
                        db.session.flush()
                db.session.rollback()
    finally:
        reset([s1.id, s2.id])


# --- The screens ----------------------------------------------------------------------------

def denied(client, resp):
    """FAB's refusal of a permission: 403, or back with "Access is denied"."""
    return resp.status_code == 403 or (
        resp.status_code == 302 and "Truy cập bị từ chối" in _flashes(client))


def _flashes(client):
    with client.session_transaction() as sess:
        return [m for _cat, m in sess.pop("_flashes", [])]


def _post(client, url, pk, **data):
    return client.post(url, data={"csrf_token": session_csrf(client), **data})


@pytest.fixture
def principal2(app):
    """A principal of the second demo school (the demo city has none)."""
    with app.app_context():
        existing = db.session.scalar(select(AppUser).where(AppUser.username == "hieutruong2"))
        if existing is None:
            from werkzeug.security import generate_password_hash

            sm = app.appbuilder.sm
            account = AppUser(username="hieutruong2", first_name="Hòa", last_name="Trần Văn",
                              email="hieutruong2@demo.thuvien.edu.vn", active=True,
                              unit=school("79000002"), roles=[sm.find_role("principal")],
                              password=generate_password_hash(DEMO_PASSWORD))
            db.session.add(account)
            db.session.commit()
    return "hieutruong2"


def test_round_from_proposal_to_withdrawal_on_the_screens(app, login, clean_weeding, s1,
                                                          principal2):
    lib = login("thuvien")
    page = text(lib.get("/weeding/"))
    assert "Thanh lọc" in page and 'id="weeding-create"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = lib.post("/weeding/create", data={"csrf_token": token, "name": "Thanh lọc 2026"})
    pk = int(resp.headers["Location"].rstrip("/").split("/")[-1])
    kieu = [(c.id, c.barcode, c.accession_label) for c in copies_of(s1.id, "Truyện Kiều")]
    codes = "\n".join([kieu[0][1], kieu[1][2], kieu[2][1]])
    _post(lib, f"/weeding/add/{pk}", pk, mode="codes", codes=codes, reason="worn_out")
    assert _flashes(lib) == ["Đã thêm 3 bản sách vào đợt."]
    _post(lib, f"/weeding/propose/{pk}", pk)
    _post(lib, f"/weeding/committee/{pk}", pk, committee_decision_number="12/QĐ",
          committee_decision_date=format_date(TODAY - 2 * DAY),
          committee_members="Võ Minh Tuấn; Chủ tịch Hội đồng\nNguyễn Thị Lan; Thư ký",
          appraisal_date=format_date(TODAY - DAY), appraisal_conclusion="Đồng ý")
    _flashes(lib)
    db.session.expire_all()
    assert db.session.get(WeedingRound, pk).status == RoundStatus.committee
    approval = {"decision_number": "15/QĐ-THCSND", "decision_date": format_date(TODAY),
                "disposal_method": "liquidate"}
    # The librarian, the inspector, the office and another school's principal cannot approve.
    for username in ("thuvien", "thanhtra", "phong", principal2):
        c = lib if username == "thuvien" else login(username)
        page = c.get(f"/weeding/show/{pk}")
        if username == principal2:
            assert page.status_code == 404
        else:
            assert page.status_code == 200 and 'id="weeding-approve"' not in text(page)
        token = session_csrf(c)
        resp = c.post(f"/weeding-approval/approve/{pk}", data={"csrf_token": token,
                                                                 **approval})
        if username == principal2:
            assert resp.status_code == 404
        else:
            assert denied(c, resp), (username, resp.status_code)
        db.session.expire_all()
        assert db.session.get(WeedingRound, pk).status == RoundStatus.committee
    # The principal of the school approves, once.
    last_entry = db.session.scalar(select(func.max(AuditLog.id))) or 0
    boss = login("hieutruong")
    assert 'id="weeding-approve"' in text(boss.get(f"/weeding/show/{pk}"))
    resp = _post(boss, f"/weeding-approval/approve/{pk}", pk, **approval)
    assert resp.status_code == 302
    assert any("15/QĐ-THCSND" in m for m in _flashes(boss))
    db.session.expire_all()
    round_ = db.session.get(WeedingRound, pk)
    assert round_.status == RoundStatus.approved and round_.display_from == TODAY
    assert round_.approved_by_id == user("hieutruong").id
    audit = db.session.scalars(select(AuditLog).where(
        AuditLog.table_name == "weeding_round", AuditLog.row_id == pk,
        AuditLog.id > last_entry)).all()
    assert [entry.username for entry in audit] == ["hieutruong"]
    assert audit[0].changes["decision_number"] == [None, "15/QĐ-THCSND"]
    assert audit[0].school_id == s1.id
    _post(boss, f"/weeding-approval/approve/{pk}", pk, **{**approval, "decision_number": "X"})
    assert _flashes(boss) == [gettext(
        "This round was already approved by decision %(number)s of %(date)s.",
        number="15/QĐ-THCSND", date=format_date(TODAY))]
    # The principal still writes nothing else.
    assert denied(boss, _post(boss, f"/weeding/withdraw/{pk}", pk))
    # Withdrawing before the 15 days: a clear message, nothing changed.
    _post(lib, f"/weeding/withdraw/{pk}", pk)
    [message] = _flashes(lib)
    assert "niêm yết công khai" in message and format_date(TODAY + 15 * DAY) in message
    db.session.expire_all()
    assert db.session.get(WeedingRound, pk).status == RoundStatus.approved
    assert db.session.scalar(select(func.count()).select_from(StockWithdrawal).where(
        StockWithdrawal.round_id == pk)) == 0
    # 15 days later (the display moved into the past in the data).
    db.session.execute(update(WeedingRound).where(WeedingRound.id == pk)
                       .values(display_from=TODAY - 15 * DAY))
    db.session.commit()
    _post(lib, f"/weeding/withdraw/{pk}", pk)
    assert _flashes(lib) == [gettext(
        "%(n)d copies withdrawn; line %(number)d of the general register, Part II.", n=3,
        number=1)]
    db.session.expire_all()
    for copy_id, _b, _l in kieu:
        copy = db.session.get(Copy, copy_id)
        assert copy.status == CopyStatus.withdrawn
        assert copy.note == f"đã thanh lọc, QĐ số 15/QĐ-THCSND ngày {format_date(TODAY)}"
    page = text(lib.get(f"/weeding/show/{pk}"))
    assert page.count("đã thanh lọc, QĐ số 15/QĐ-THCSND") == 3
    register = text(lib.get("/weeding/register"))
    assert "15/QĐ-THCSND" in register and "register-line" in register
    # The union catalogue no longer finds the record in this school.
    union = text(lib.get("/union/?q=Truyện+Kiều"))
    assert "Trường THCS Nguyễn Du" not in union.split('id="union-results"')[-1]
    assert search_records(db.session, "Truyện Kiều", [s1.id]) == (0, [])


def test_screens_refuse_bad_input_with_a_message(app, login, clean_weeding, s1, s2):
    lib = login("thuvien")
    round_ = services.create_round(db.session, user("thuvien"), s1, "Đợt 1")
    db.session.commit()
    pk = round_.id
    foreign = copies_of(s2.id, "Dế Mèn phiêu lưu ký")[0]
    _post(lib, f"/weeding/add/{pk}", pk, mode="codes", copy_id=str(foreign.id),
          reason="worn_out")
    assert _flashes(lib) == [gettext(
        "Copy %(copy)s belongs to another school: it cannot be proposed.",
        copy=foreign.accession_label)]
    _post(lib, f"/weeding/add/{pk}", pk, mode="codes", codes=foreign.barcode,
          reason="worn_out")
    assert foreign.barcode in _flashes(lib)[0]
    _post(lib, f"/weeding/propose/{pk}", pk)
    assert _flashes(lib) == [gettext("The round has no copy: add the copies to weed first.")]
    _post(lib, f"/weeding/committee/{pk}", pk, committee_decision_number="1",
          committee_decision_date="31/02/2026", committee_members="A", appraisal_date="")
    [message] = _flashes(lib)
    assert "31/02/2026" in message
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(WeedingItem).where(
        WeedingItem.round_id == pk)) == 0
    assert db.session.get(WeedingRound, pk).status == RoundStatus.draft


def test_other_schools_rounds_are_not_found(app, login, clean_weeding, s1, s2, principal2):
    round_, _copies = approved_round(s1)
    db.session.commit()
    pk = round_.id
    for username in ("thuvien2", principal2):
        c = login(username)
        assert c.get(f"/weeding/show/{pk}").status_code == 404
        assert c.get(f"/weeding/form/{pk}/04.xlsx").status_code == 404
        assert c.get(f"/weeding/print/{pk}/07a").status_code == 404
        assert f"/weeding/show/{pk}" not in text(c.get("/weeding/"))
        assert c.get("/weeding/register?school=79000001").status_code == 404
        assert c.get("/weeding/?school=79000001").status_code == 404
    c = login("thuvien2")
    token = session_csrf(c)
    for action in ("add", "propose", "committee", "withdraw", "cancel"):
        resp = c.post(f"/weeding/{action}/{pk}", data={"csrf_token": token, "mode": "codes",
                                                       "codes": "x", "reason": "other"})
        assert resp.status_code == 404, action
    # Staff who see the school read the round and its forms, and change nothing.
    for username in ("hieutruong", "thanhtra", "phong"):
        c = login(username)
        assert c.get(f"/weeding/show/{pk}").status_code == 200
        assert c.get(f"/weeding/form/{pk}/07a.xlsx").status_code == 200
        assert denied(c, _post(c, f"/weeding/cancel/{pk}", pk))
    for username in ("giaovien", "hocsinh"):
        assert login(username).get(f"/weeding/show/{pk}").status_code in (302, 403)
    db.session.expire_all()
    assert db.session.get(WeedingRound, pk).status == RoundStatus.approved


# --- The forms ------------------------------------------------------------------------------

def _sheet(resp):
    assert resp.status_code == 200, resp.status_code
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(resp.get_data()))
    sheet = book.worksheets[0]
    cells = {}
    for row in sheet.iter_rows():
        for cell in row:
            if cell.value not in (None, ""):
                cells[cell.coordinate] = cell.value
    return sheet, cells


def _find(cells, value):
    return [k for k, v in cells.items() if v == value]


def test_forms_as_excel_and_printable_pages(app, login, clean_weeding, s1):
    round_, copies = approved_round(s1, titles=("Truyện Kiều", "Dế Mèn phiêu lưu ký"))
    db.session.commit()
    pk = round_.id
    labels = [c.accession_label for c in copies]
    total = int(sum(c.price for c in copies))
    c = login("hieutruong")
    # Form 04: the list, landscape A4, official header, one line per copy and the total.
    sheet, cells = _sheet(c.get(f"/weeding/form/{pk}/04.xlsx"))
    assert sheet.page_setup.paperSize == 9 and sheet.page_setup.orientation == "landscape"
    values = set(cells.values())
    assert "SỞ GIÁO DỤC VÀ ĐÀO TẠO THÀNH PHỐ HỒ CHÍ MINH" in values
    assert "TRƯỜNG THCS NGUYỄN DU" in values
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in values
    assert "Độc lập - Tự do - Hạnh phúc" in values
    assert "DANH MỤC TÀI NGUYÊN THÔNG TIN ĐỀ NGHỊ THANH LỌC" in values
    [header] = _find(cells, "Số ĐKCB")
    column, header_row = re.match(r"([A-Z]+)(\d+)", header).groups()
    listed = [sheet[f"{column}{int(header_row) + i}"].value for i in range(1, len(labels) + 1)]
    assert sorted(listed) == sorted(labels)
    total_row = int(header_row) + len(labels) + 1
    assert sheet[f"{column}{total_row}"].value == f"Tổng cộng: {len(labels)} bản"
    assert total in [sheet.cell(total_row, i).value for i in range(1, 12)]
    assert "HIỆU TRƯỞNG" in values and "Lý do" in values
    assert "Rách nát, hư hỏng không thể phục hồi" in values
    # Form 05: the committee decision with its members; 06a and 06b; 07a/07b the approval.
    _sheet_, cells = _sheet(c.get(f"/weeding/form/{pk}/05.xlsx"))
    values = set(cells.values())
    assert "QUYẾT ĐỊNH" in values and "Số: 12/QĐ-THCSND" in values
    assert "Võ Minh Tuấn" in values and "Chủ tịch Hội đồng" in values
    _sheet_, cells = _sheet(c.get(f"/weeding/form/{pk}/06a.xlsx"))
    values = set(cells.values())
    assert "BIÊN BẢN" in values and "Võ Minh Tuấn" in values  # the chair signs
    assert any("Đồng ý thanh lọc toàn bộ danh mục." in str(v) for v in values)
    _sheet_, cells = _sheet(c.get(f"/weeding/form/{pk}/06b.xlsx"))
    assert set(labels) <= set(cells.values())
    _sheet_, cells = _sheet(c.get(f"/weeding/form/{pk}/07a.xlsx"))
    values = set(cells.values())
    assert "Số: 15/QĐ-THCSND" in values and set(labels) <= values
    assert any("15 ngày" in str(v) and format_date(TODAY) in str(v)
               and format_date(TODAY + 14 * DAY) in str(v) for v in values)
    _sheet_, cells = _sheet(c.get(f"/weeding/form/{pk}/07b.xlsx"))
    assert any("thanh lý" in str(v) for v in cells.values())
    # The printable page: the same document.
    page = text(c.get(f"/weeding/print/{pk}/07a"))
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in page and "size: A4 landscape" in page
    assert "Số: 15/QĐ-THCSND" in page and all(label in page for label in labels)
    # Forms of later steps are not issued yet; an unknown form is not found.
    draft = services.create_round(db.session, user("thuvien"), s1, "Nháp")
    db.session.commit()
    draft_pk = draft.id
    assert c.get(f"/weeding/form/{draft_pk}/04.xlsx").status_code == 404
    assert c.get(f"/weeding/form/{pk}/99.xlsx").status_code == 404


def test_register_part_two_as_excel(app, login, clean_weeding, s1):
    round_, copies = approved_round(s1, display_from=TODAY - 20 * DAY)
    line = services.withdraw(db.session, user("thuvien"), round_)
    db.session.commit()
    number = line.register_number
    c = login("thanhtra")
    assert c.get("/weeding/register").status_code == 200  # asks for the school
    sheet, cells = _sheet(c.get("/weeding/register.xlsx?school=79000001"))
    values = set(cells.values())
    assert "SỔ ĐĂNG KÝ TỔNG QUÁT – PHẦN II: XUẤT KHO" in values
    assert documents.roman_date(TODAY) in values
    assert f"15/QĐ-THCSND, {format_date(TODAY - DAY)}" in values
    [cell] = _find(cells, documents.roman_date(TODAY))
    row = int(re.match(r"[A-Z]+(\d+)", cell).group(1))
    assert [sheet.cell(row, i).value for i in (2, 4, 5)] == [
        number, 3, int(sum(c.price for c in copies))]
    assert documents.roman_date(datetime.date(2007, 11, 26)) == "26.XI.2007"


def test_holds_on_withdrawn_copies(db_session, s1):
    """A copy set aside for a hold is withdrawn: the reader waits for another copy; when no
    copy of the title is left, the waiting holds are cancelled."""
    from app.circulation.models import HoldStatus

    readers = db_session.scalars(select(Reader).where(
        Reader.school_id == s1.id, Reader.class_name.is_not(None)).order_by(Reader.id)
        .limit(2)).all()
    kieu, de_men = copies_of(s1.id, "Truyện Kiều"), copies_of(s1.id, "Dế Mèn phiêu lưu ký")
    ready = circulation.place_hold(db_session, None, s1.id, readers[0], de_men[0].record_id)
    assert ready.status == HoldStatus.ready and ready.copy_id == de_men[0].id
    waiting = circulation.place_hold(db_session, None, s1.id, readers[1], kieu[0].record_id)
    waiting.status, waiting.copy_id = HoldStatus.waiting, None
    db_session.flush()
    round_, _copies = approved_round(s1, display_from=TODAY - 20 * DAY)
    librarian = user("thuvien")
    second = services.create_round(db_session, librarian, s1, "Dế Mèn")
    services.add_copies(db_session, librarian, second, de_men[:1])
    services.propose(db_session, librarian, second)
    services.record_committee(db_session, librarian, second, "5/QĐ", TODAY - 20 * DAY,
                              "A; Chủ tịch", TODAY - 20 * DAY, None)
    services.approve(db_session, user("hieutruong"), s1.id, second, "16/QĐ", TODAY,
                     DisposalMethod.liquidate)
    second.display_from = TODAY - 20 * DAY
    services.withdraw(db_session, librarian, second)
    assert (ready.status, ready.copy_id, ready.expires_on) == (HoldStatus.waiting, None, None)
    services.withdraw(db_session, librarian, round_)
    assert waiting.status == HoldStatus.cancelled
    assert ready.status == HoldStatus.waiting  # Dế Mèn still has copies


def test_copies_leave_the_stock_only_through_a_round(app, login, clean_weeding, s1):
    """The copy edit form cannot withdraw a copy, nor bring a withdrawn one back."""
    from tests.helpers import post_form

    lib = login("thuvien")
    copy = copies_of(s1.id, "Truyện Kiều")[0]
    post_form(lib, f"/copyview/edit/{copy.id}", {"status": "withdrawn", "price": "60000",
                                                "note": "bỏ"})
    assert gettext("A copy is withdrawn only through a weeding round approved by the "
                   "principal (Library → Weeding and disposal).") in _flashes(lib)
    db.session.expire_all()
    assert db.session.get(Copy, copy.id).status == CopyStatus.available
    round_, copies = approved_round(s1, display_from=TODAY - 20 * DAY)
    services.withdraw(db.session, user("thuvien"), round_)
    db.session.commit()
    post_form(lib, f"/copyview/edit/{copy.id}", {"status": "available", "price": "60000"})
    assert gettext("Copy %(copy)s was withdrawn by a weeding decision: its status cannot be "
                   "changed.", copy=copy.accession_label) in _flashes(lib)
    db.session.expire_all()
    assert db.session.get(Copy, copy.id).status == CopyStatus.withdrawn


def test_weeding_screens_are_vietnamese(app, login, clean_weeding, s1):
    from tests.test_i18n import english_leftovers

    round_, _copies = approved_round(s1)
    round_.status = RoundStatus.committee  # the principal's approval form is shown
    draft = services.create_round(db.session, user("thuvien"), s1, "Nháp")
    db.session.commit()
    pages = {"thuvien": ["/weeding/", f"/weeding/show/{round_.id}", f"/weeding/show/{draft.id}",
                         "/weeding/register", f"/weeding/print/{round_.id}/04"],
             "hieutruong": [f"/weeding/show/{round_.id}", f"/weeding/print/{round_.id}/06a"],
             "thanhtra": ["/weeding/", "/weeding/register", "/weeding/?school=79000001"]}
    for username, urls in pages.items():
        c = login(username)
        for url in urls:
            resp = c.get(url)
            assert resp.status_code == 200, (username, url)
            assert english_leftovers(text(resp)) == [], (username, url)
    assert 'id="weeding-approve"' in text(login("hieutruong").get(f"/weeding/show/{round_.id}"))


def test_the_catalogue_list_leaves_out_withdrawn_titles(app, login, clean_weeding, s1):
    round_, copies = approved_round(s1, display_from=TODAY - 20 * DAY)
    services.withdraw(db.session, user("thuvien"), round_)
    db.session.commit()
    record_id = copies[0].record_id
    c = login("thuvien")
    listed = text(c.get("/recordview/list/?psize_RecordView=100"))
    assert "Truyện Kiều" not in listed and "Dế Mèn phiêu lưu ký" in listed
    # Asked for, they are there; their page and history stay reachable.
    hidden = text(c.get("/recordview/list/?_flt_0_is_hidden=y&psize_RecordView=100"))
    assert "Truyện Kiều" in hidden and "Dế Mèn phiêu lưu ký" not in hidden
    assert c.get(f"/recordview/show/{record_id}").status_code == 200


def test_two_librarians_withdraw_at_once_one_line(app, db_session, clean_weeding, s1):
    """Two withdrawals of the same round at the same moment (two librarians, a double click):
    one Part II line, the other told it is done."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrency is proved on PostgreSQL")
    import threading

    from sqlalchemy.orm import Session

    round_, copies = approved_round(s1, display_from=TODAY - 20 * DAY)
    db_session.commit()
    pk = round_.id
    barrier = threading.Barrier(2)
    results = []

    def librarian():
        with app.app_context(), Session(db.engine) as session:
            mine = session.get(WeedingRound, pk)
            barrier.wait()
            try:
                services.withdraw(session, None, mine)
                session.commit()
                results.append("ok")
            except WeedingError as error:
                session.rollback()
                results.append(str(error))

    threads = [threading.Thread(target=librarian) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(["ok", gettext(
        "The copies of this round were already withdrawn on %(date)s.",
        date=format_date(TODAY))]), results
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(StockWithdrawal).where(
        StockWithdrawal.round_id == pk)) == 1
