"""Weeding use cases (thanh lọc → thanh lý, TT 02/2020/TT-BVHTTDL Art. 16–30).

Every function takes the session, the acting user (or None from the CLI) and the round or the
school explicitly, never reads the request, raises `WeedingError` with a Vietnamese message
naming the problem, and changes nothing when it refuses (every check comes before the first
write). The caller commits.
"""
import datetime
from decimal import Decimal

from flask_babel import force_locale, gettext, lazy_gettext as _l
from sqlalchemy import and_, func, select
from sqlalchemy.orm import lazyload

from app.catalog.models import DocumentType, Record
from app.circulation.models import Hold, HoldStatus, Loan, LoanStatus
from app.collection.models import Copy, CopyStatus
from app.collection.services import allocate
from app.core.errors import DomainError
from app.core.i18n import format_date, local_today
from app.readers.models import Reader
from app.weeding.models import (
    DisposalMethod, RoundStatus, StockWithdrawal, WeedingItem, WeedingReason, WeedingRound,
)

# TT 02/2020: at most 10% of the holdings per round, a round every 3 years, the list shown
# publicly for 15 days before the disposal, periodicals weeded 2 years after publication.
MAX_SHARE = Decimal("0.10")
ROUND_INTERVAL_YEARS = 3
DISPLAY_DAYS = 15
PERIODICAL_YEARS = 2
PERIODICAL_TYPES = ("BC",)  # document types of newspapers and magazines
TEXTBOOK_TYPES = ("SGK",)
# Copies whose rounds are still open (a copy is in at most one open round).
OPEN_STATUSES = (RoundStatus.draft, RoundStatus.proposed, RoundStatus.committee,
                 RoundStatus.approved)
EDITABLE = (RoundStatus.draft,)


class WeedingError(DomainError):
    status = 409


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _actor_id(actor):
    return getattr(actor, "id", None)


# --- rounds ---------------------------------------------------------------------------------

def create_round(session, actor, school, name, plan_note=None):
    name = (name or "").strip()
    if not name:
        raise WeedingError(_l("Give the weeding round a name, e.g. “Thanh lọc năm 2026”."))
    round_ = WeedingRound(school=school, school_id=school.id, name=name[:200],
                          plan_note=(plan_note or "").strip()[:1000] or None,
                          number=allocate(session, school.id, "weeding_round"),
                          status=RoundStatus.draft, created_at=_now(),
                          created_by_id=_actor_id(actor))
    session.add(round_)
    session.flush()
    return round_


def round_of(session, school_ids, pk):
    """The round `pk` if it belongs to one of `school_ids` (None: any school), else an error
    (the views answer 404)."""
    round_ = session.get(WeedingRound, pk) if pk else None
    if round_ is None or (school_ids is not None and round_.school_id not in school_ids):
        raise WeedingError(_l("Weeding round not found."))
    return round_


def _lock(session, round_):
    """Reload the round with its row locked to the end of the transaction (PostgreSQL; SQLite
    writes one transaction at a time): two people approving or withdrawing the same round at
    once go one after the other, and the second sees what the first did."""
    session.flush()
    session.refresh(round_, with_for_update=True)


def _check_status(round_, allowed, message):
    if round_.status not in allowed:
        raise WeedingError(message, status=round_.status.label)


# --- the list of copies ---------------------------------------------------------------------

def holdings(session, school_id):
    """Copies the school holds (every copy not yet withdrawn)."""
    return session.scalar(select(func.count()).select_from(Copy).where(
        Copy.school_id == school_id, Copy.status != CopyStatus.withdrawn))


def _in_open_rounds(session, school_id, copy_ids, except_round_id=None):
    """{copy id: round} of the copies already proposed in an open round of the school."""
    if not copy_ids:
        return {}
    query = (select(WeedingItem.copy_id, WeedingRound)
             .join(WeedingRound, WeedingRound.id == WeedingItem.round_id)
             .where(WeedingItem.school_id == school_id, WeedingItem.copy_id.in_(copy_ids),
                    WeedingRound.status.in_(OPEN_STATUSES)))
    if except_round_id is not None:
        query = query.where(WeedingRound.id != except_round_id)
    return dict(session.execute(query).all())


def criterion_copies(session, school_id, reason, before_year=None, today=None):
    """Copies of the school matching a criterion (not withdrawn), by accession number."""
    today = today or local_today()
    query = (select(Copy).join(Record, Record.id == Copy.record_id)
             .options(lazyload(Copy.record))
             .where(Copy.school_id == school_id, Copy.status != CopyStatus.withdrawn))
    if reason == WeedingReason.outdated_textbook:
        if not before_year:
            raise WeedingError(_l("Give the year of the new curriculum: textbooks published "
                                  "before it are proposed."))
        query = (query.join(DocumentType, DocumentType.id == Record.document_type_id)
                 .where(DocumentType.code.in_(TEXTBOOK_TYPES), Record.year < before_year))
    elif reason == WeedingReason.worn_out:
        query = query.where(Copy.status == CopyStatus.damaged)
    elif reason == WeedingReason.lost:
        query = query.where(Copy.status == CopyStatus.lost)
    elif reason == WeedingReason.old_periodical:
        query = (query.join(DocumentType, DocumentType.id == Record.document_type_id)
                 .where(DocumentType.code.in_(PERIODICAL_TYPES),
                        Record.year <= today.year - PERIODICAL_YEARS))
    else:
        raise WeedingError(_l("This criterion selects no copy by itself: pick the copies by "
                              "hand."))
    return session.scalars(query.order_by(Copy.series_id, Copy.sequence_key,
                                          Copy.accession_number)).all()


def add_by_criterion(session, actor, round_, reason, before_year=None, today=None):
    """Propose every copy matching the criterion that is not yet in an open round.
    Returns the number of copies added."""
    _check_status(round_, EDITABLE, _l("Copies can be added only to a draft round (this "
                                       "round is “%(status)s”)."))
    copies = criterion_copies(session, round_.school_id, reason, before_year, today)
    taken = _in_open_rounds(session, round_.school_id, [c.id for c in copies])
    own = set(session.scalars(select(WeedingItem.copy_id).where(
        WeedingItem.round_id == round_.id)))
    new = [c for c in copies if c.id not in taken and c.id not in own]
    session.add_all(WeedingItem(school_id=round_.school_id, round_id=round_.id, copy_id=c.id,
                                reason=reason) for c in new)
    session.flush()
    return len(new)


def find_copies(session, school_id, codes):
    """The copies of the school with these barcodes or accession labels, in the order given;
    an unknown code (or one of another school) is refused by name."""
    wanted, seen = [], set()
    for code in codes:
        code = (code or "").strip()
        if code and code not in seen:
            seen.add(code)
            wanted.append(code)
    if not wanted:
        raise WeedingError(_l("Scan or type the barcodes or accession numbers of the copies, "
                              "one a line."))
    rows = session.scalars(select(Copy).where(
        Copy.school_id == school_id,
        Copy.barcode.in_(wanted) | Copy.accession_label.in_(wanted))).all()
    by_code = {}
    for copy in rows:
        by_code.setdefault(copy.barcode, copy)
        by_code.setdefault(copy.accession_label, copy)
    for code in wanted:
        if code not in by_code:
            raise WeedingError(_l("No copy of this school has the barcode or accession number "
                                  "“%(code)s”."), code=code)
    out, ids = [], set()
    for code in wanted:
        copy = by_code[code]
        if copy.id not in ids:
            ids.add(copy.id)
            out.append(copy)
    return out


def add_copies(session, actor, round_, copies, reason=WeedingReason.other, note=None):
    """Propose these copies (picked by hand). Every copy is checked first: one of another
    school, already withdrawn, or already proposed refuses the whole list by name."""
    _check_status(round_, EDITABLE, _l("Copies can be added only to a draft round (this "
                                       "round is “%(status)s”)."))
    if not isinstance(reason, WeedingReason):
        raise WeedingError(_l("Choose the reason for weeding."))
    for copy in copies:
        if copy.school_id != round_.school_id:
            raise WeedingError(_l("Copy %(copy)s belongs to another school: it cannot be "
                                  "proposed."), copy=copy.accession_label)
        if copy.status == CopyStatus.withdrawn:
            raise WeedingError(_l("Copy %(copy)s has already been withdrawn."),
                               copy=copy.accession_label)
    ids = [c.id for c in copies]
    taken = _in_open_rounds(session, round_.school_id, ids, except_round_id=round_.id)
    for copy in copies:
        if copy.id in taken:
            raise WeedingError(_l("Copy %(copy)s is already proposed in round “%(round)s”."),
                               copy=copy.accession_label, round=taken[copy.id].name)
    own = set(session.scalars(select(WeedingItem.copy_id).where(
        WeedingItem.round_id == round_.id, WeedingItem.copy_id.in_(ids))))
    new = [c for c in copies if c.id not in own]
    session.add_all(WeedingItem(school_id=round_.school_id, round_id=round_.id, copy_id=c.id,
                                reason=reason, note=(note or "").strip()[:255] or None)
                    for c in new)
    session.flush()
    return len(new)


def add_copy_ids(session, actor, round_, copy_ids, reason=WeedingReason.other):
    """Propose copies by id (ticked in a list): an id of another school is refused."""
    copies = []
    for pk in copy_ids:
        copy = session.get(Copy, pk)
        if copy is None:
            raise WeedingError(_l("Copy not found."))
        copies.append(copy)
    return add_copies(session, actor, round_, copies, reason)


def remove_item(session, actor, round_, item_id):
    _check_status(round_, EDITABLE, _l("Copies can be removed only from a draft round (this "
                                       "round is “%(status)s”)."))
    item = session.get(WeedingItem, item_id)
    if item is None or item.round_id != round_.id:
        raise WeedingError(_l("This copy is not in the round."))
    session.delete(item)  # a draft line, before any form was issued
    session.flush()


def items(session, round_):
    """[(item, copy, record)] of the round by accession number."""
    return session.execute(
        select(WeedingItem, Copy, Record)
        .join(Copy, Copy.id == WeedingItem.copy_id).join(Record, Record.id == Copy.record_id)
        .options(lazyload(Copy.record))
        .where(WeedingItem.round_id == round_.id)
        .order_by(Copy.series_id, Copy.sequence_key, Copy.accession_number)).all()


def totals(session, round_):
    """(copies, total value) of the round."""
    count, value = session.execute(
        select(func.count(), func.coalesce(func.sum(Copy.price), 0))
        .select_from(WeedingItem).join(Copy, Copy.id == WeedingItem.copy_id)
        .where(WeedingItem.round_id == round_.id)).one()
    return count, Decimal(value or 0)


def warnings(session, round_, today=None):
    """What the librarian and the principal must know before going on (nothing blocks)."""
    today = today or local_today()
    out = []
    count, _value = totals(session, round_)
    held = holdings(session, round_.school_id)
    if round_.status == RoundStatus.withdrawn:
        held += count  # the share of the holdings when the round was proposed
    if held and Decimal(count) > MAX_SHARE * held:
        out.append(gettext(
            "The round proposes %(count)d copies, %(share)s%% of the %(held)d copies held: "
            "TT 02/2020 allows at most %(max)d%% per round.", count=count,
            share=f"{100 * count / held:.1f}".replace(".", ","), held=held,
            max=int(MAX_SHARE * 100)))
    last = session.scalar(select(func.max(WeedingRound.withdrawn_on)).where(
        WeedingRound.school_id == round_.school_id,
        WeedingRound.status == RoundStatus.withdrawn, WeedingRound.id != round_.id))
    if last is not None and _add_years(last, ROUND_INTERVAL_YEARS) > today:
        out.append(gettext(
            "The last weeding round was withdrawn on %(date)s, less than %(years)d years "
            "ago: TT 02/2020 plans a round every %(years)d years (an earlier one needs the "
            "managing body's request).", date=format_date(last), years=ROUND_INTERVAL_YEARS))
    on_loan = session.scalars(
        select(Copy.accession_label).join(WeedingItem, WeedingItem.copy_id == Copy.id)
        .where(WeedingItem.round_id == round_.id, Copy.status == CopyStatus.on_loan)
        .order_by(Copy.accession_label)).all()
    if on_loan and round_.status in OPEN_STATUSES:
        out.append(gettext("On loan now (they must come back before the withdrawal): "
                           "%(copies)s.", copies=", ".join(on_loan)))
    return out


def _add_years(day, years):
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


# --- the steps ------------------------------------------------------------------------------

def propose(session, actor, round_, today=None):
    """Draw up the list (Mẫu 04): the round leaves the draft; its copies are fixed."""
    _lock(session, round_)
    _check_status(round_, (RoundStatus.draft,), _l("Only a draft round can be proposed (this "
                                                   "round is “%(status)s”)."))
    count, _value = totals(session, round_)
    if not count:
        raise WeedingError(_l("The round has no copy: add the copies to weed first."))
    round_.status = RoundStatus.proposed
    round_.proposed_on = today or local_today()
    session.flush()
    return round_


def parse_members(text):
    """Committee members, one a line "Name; position" -> [(name, position)]."""
    out = []
    for line in (text or "").splitlines():
        name, _sep, position = line.partition(";")
        name = " ".join(name.split())
        if name:
            out.append((name, " ".join(position.split())))
    return out


def record_committee(session, actor, round_, decision_number, decision_date, members,
                     appraisal_date, conclusion):
    """The committee (Mẫu 05) and its appraisal (Mẫu 06a/06b)."""
    _check_status(round_, (RoundStatus.proposed, RoundStatus.committee), _l(
        "The committee's appraisal is recorded after the list is drawn up and before the "
        "approval (this round is “%(status)s”)."))
    decision_number = (decision_number or "").strip()
    if not decision_number:
        raise WeedingError(_l("Give the number of the decision forming the committee "
                              "(Mẫu 05)."))
    if decision_date is None:
        raise WeedingError(_l("Give the date of the decision forming the committee."))
    if not parse_members(members):
        raise WeedingError(_l("List the committee members, one a line: “Name; position”."))
    if appraisal_date is None:
        raise WeedingError(_l("Give the date of the committee's appraisal meeting."))
    if appraisal_date < decision_date:
        raise WeedingError(_l("The appraisal (%(appraisal)s) cannot come before the decision "
                              "forming the committee (%(decision)s)."),
                           appraisal=format_date(appraisal_date),
                           decision=format_date(decision_date))
    round_.committee_decision_number = decision_number[:60]
    round_.committee_decision_date = decision_date
    round_.committee_members = "\n".join(f"{n}; {p}" if p else n
                                         for n, p in parse_members(members))
    round_.appraisal_date = appraisal_date
    round_.appraisal_conclusion = (conclusion or "").strip()[:1000] or None
    round_.status = RoundStatus.committee
    session.flush()
    return round_


def approve(session, actor, school_id, round_, decision_number, decision_date,
            disposal_method, today=None):
    """The principal approves the list (Mẫu 07a/07b); the public display starts today.

    `school_id` is the principal's own school: a round of another school is not found."""
    today = today or local_today()
    if round_.school_id != school_id:
        raise WeedingError(_l("Weeding round not found."))
    _lock(session, round_)
    if round_.status in (RoundStatus.approved, RoundStatus.withdrawn):
        raise WeedingError(_l("This round was already approved by decision %(number)s of "
                              "%(date)s."), number=round_.decision_number,
                           date=format_date(round_.decision_date))
    _check_status(round_, (RoundStatus.committee,), _l(
        "The round can be approved only after the committee's appraisal (this round is "
        "“%(status)s”)."))
    decision_number = (decision_number or "").strip()
    if not decision_number:
        raise WeedingError(_l("Give the number of the approval decision."))
    if decision_date is None:
        raise WeedingError(_l("Give the date of the approval decision."))
    if decision_date > today:
        raise WeedingError(_l("The decision date %(date)s is in the future."),
                           date=format_date(decision_date))
    if round_.appraisal_date and decision_date < round_.appraisal_date:
        raise WeedingError(_l("The decision (%(decision)s) cannot come before the committee's "
                              "appraisal (%(appraisal)s)."),
                           decision=format_date(decision_date),
                           appraisal=format_date(round_.appraisal_date))
    if not isinstance(disposal_method, DisposalMethod):
        raise WeedingError(_l("Choose how the copies are disposed of."))
    round_.decision_number = decision_number[:60]
    round_.decision_date = decision_date
    round_.disposal_method = disposal_method
    round_.approved_by_id = _actor_id(actor)
    round_.approved_at = _now()
    round_.display_from = today
    round_.status = RoundStatus.approved
    session.flush()
    return round_


def display_ends(round_):
    """Last day of the public display (15 days, the first included); None before approval."""
    if round_.display_from is None:
        return None
    return round_.display_from + datetime.timedelta(days=DISPLAY_DAYS - 1)


def withdrawable_from(round_):
    ends = display_ends(round_)
    return ends + datetime.timedelta(days=1) if ends else None


def weeded_note(round_):
    """The annotation of the individual register (TT 02/2020 Art. 28), always in Vietnamese:
    it is written in the school's official register."""
    return decision_note(round_.decision_number, round_.decision_date)


def decision_note(number, date):
    """"đã thanh lọc, QĐ số 15/QĐ-THCS ngày 24/11/2026": the note of a copy weeded by the
    decision `number` of `date` (a Part II line's document), in Vietnamese."""
    with force_locale("vi"):
        return gettext("weeded, decision no. %(number)s of %(date)s",
                       number=number, date=format_date(date))


def withdraw(session, actor, round_, today=None):
    """After the 15 days of public display: every copy of the round is withdrawn (status,
    note with the decision number, the Part II line), in one transaction; records left with
    no copy are hidden from the catalogue. A copy on loan refuses everything, by name."""
    today = today or local_today()
    _lock(session, round_)
    if round_.status == RoundStatus.withdrawn:
        raise WeedingError(_l("The copies of this round were already withdrawn on %(date)s."),
                           date=format_date(round_.withdrawn_on))
    _check_status(round_, (RoundStatus.approved,), _l(
        "The copies can be withdrawn only after the principal's approval (this round is "
        "“%(status)s”)."))
    start = withdrawable_from(round_)
    if today < start:
        raise WeedingError(_l("The list is on public display until %(end)s (15 days from "
                              "%(start)s): the copies can be withdrawn from %(from)s."),
                           end=format_date(display_ends(round_)),
                           start=format_date(round_.display_from), **{"from": format_date(start)})
    rows = session.execute(
        select(WeedingItem, Copy).join(Copy, Copy.id == WeedingItem.copy_id)
        .options(lazyload(Copy.record)).where(WeedingItem.round_id == round_.id)
        .order_by(Copy.accession_label)).all()
    copies = [copy for _item, copy in rows]
    on_loan = [c for c in copies if c.status == CopyStatus.on_loan]
    if on_loan:
        holder = session.execute(
            select(Reader).join(Loan, Loan.reader_id == Reader.id)
            .where(Loan.copy_id == on_loan[0].id, Loan.status == LoanStatus.active)).scalar()
        more = len(on_loan) - 1
        raise WeedingError(
            _l("Copy %(copy)s is on loan to %(reader)s: it must be returned (or recorded as "
               "lost) before the withdrawal. Nothing was withdrawn."),
            copy=on_loan[0].accession_label + (f" (+{more})" if more else ""),
            reader=holder.full_name if holder else "?")
    done = [c for c in copies if c.status == CopyStatus.withdrawn]
    if done:
        raise WeedingError(_l("Copy %(copy)s has already been withdrawn (another decision). "
                              "Nothing was withdrawn."), copy=done[0].accession_label)
    line = StockWithdrawal(
        school_id=round_.school_id,
        register_number=allocate(session, round_.school_id, "stock_withdrawal"),
        withdrawn_on=today, document_number=round_.decision_number,
        document_date=round_.decision_date, round_id=round_.id, copies_count=len(copies),
        total_value=sum((Decimal(c.price or 0) for c in copies), Decimal(0)))
    with force_locale("vi"):  # written in the register: Vietnamese
        line.note = str(round_.disposal_method.label)
    session.add(line)
    session.flush()
    note = weeded_note(round_)
    for copy in copies:
        copy.status = CopyStatus.withdrawn
        copy.withdrawal_id = line.id
        copy.note = (f"{note}; {copy.note}" if copy.note else note)[:500]
    round_.status = RoundStatus.withdrawn
    round_.withdrawn_on = today
    round_.withdrawn_by_id = _actor_id(actor)
    # A copy set aside for a hold goes back to the shelf of no one: the reader waits for
    # another copy, or the hold is cancelled when the title has none left.
    in_round = select(WeedingItem.copy_id).where(WeedingItem.round_id == round_.id)
    for hold in session.scalars(select(Hold).where(Hold.copy_id.in_(in_round),
                                                   Hold.status == HoldStatus.ready)):
        hold.status, hold.copy_id, hold.ready_on, hold.expires_on = (
            HoldStatus.waiting, None, None, None)
    session.flush()
    hidden = hide_empty_records(session, round_.school_id, {c.record_id for c in copies})
    if hidden:
        for hold in session.scalars(select(Hold).where(
                Hold.school_id == round_.school_id, Hold.record_id.in_(hidden),
                Hold.status == HoldStatus.waiting)):
            hold.status = HoldStatus.cancelled
        session.flush()
    return line


def hide_empty_records(session, school_id, record_ids):
    """Hide from the catalogue the records left with no copy that is not withdrawn; show
    again those that have one. Returns the ids of the records hidden."""
    if not record_ids:
        return set()
    remaining = set(session.scalars(select(Copy.record_id).where(
        Copy.school_id == school_id, Copy.record_id.in_(record_ids),
        Copy.status != CopyStatus.withdrawn).distinct()))
    hidden = set()
    for record in session.scalars(select(Record).where(Record.id.in_(record_ids),
                                                       Record.school_id == school_id)):
        should_hide = record.id not in remaining
        if record.is_hidden != should_hide:
            record.is_hidden = should_hide
        if should_hide:
            hidden.add(record.id)
    session.flush()
    return hidden


def cancel(session, actor, round_, reason=None, today=None):
    """Cancel a round before the withdrawal; its list stays in the dossier."""
    _lock(session, round_)
    if round_.status == RoundStatus.withdrawn:
        raise WeedingError(_l("The copies of this round were withdrawn on %(date)s: the round "
                              "can no longer be cancelled."),
                           date=format_date(round_.withdrawn_on))
    if round_.status == RoundStatus.cancelled:
        raise WeedingError(_l("This round is already cancelled."))
    round_.status = RoundStatus.cancelled
    round_.cancelled_on = today or local_today()
    round_.cancel_reason = (reason or "").strip()[:500] or None
    session.flush()
    return round_


# --- the general register, Part II ----------------------------------------------------------

def withdrawal_breakdown(session, school_id, start=None, end=None):
    """Part II lines (xuất kho) of the school withdrawn from `start` to `end` (both included;
    None: no limit), by running number, each with its copies counted by reason and by
    document type: [(line, [(reason, type code or "", entered in the general register,
    copies, value)])]. One query for the lines, one for every breakdown."""
    query = select(StockWithdrawal).where(StockWithdrawal.school_id == school_id)
    if start is not None:
        query = query.where(StockWithdrawal.withdrawn_on >= start)
    if end is not None:
        query = query.where(StockWithdrawal.withdrawn_on <= end)
    lines = session.scalars(query.order_by(StockWithdrawal.register_number)).all()
    if not lines:
        return []
    parts = {}
    rows = session.execute(
        select(Copy.withdrawal_id, WeedingItem.reason, DocumentType.code,
               DocumentType.in_general_register, func.count(),
               func.coalesce(func.sum(Copy.price), 0))
        .select_from(Copy)
        .join(StockWithdrawal, StockWithdrawal.id == Copy.withdrawal_id)
        .join(WeedingItem, and_(WeedingItem.copy_id == Copy.id,
                                WeedingItem.round_id == StockWithdrawal.round_id))
        .join(Record, Record.id == Copy.record_id)
        .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
        .where(Copy.school_id == school_id, Copy.withdrawal_id.in_([line.id for line in lines]))
        .group_by(Copy.withdrawal_id, WeedingItem.reason, DocumentType.code,
                  DocumentType.in_general_register)).all()
    for line_id, reason, code, in_register, n, value in rows:
        # A copy of no document type is entered in the register (as Part I counts it).
        parts.setdefault(line_id, []).append(
            (reason, code or "", in_register is not False, n, Decimal(value or 0)))
    return [(line, parts.get(line.id, [])) for line in lines]


def register_part_two(session, school_id):
    """Lines of Part II (xuất kho) with their breakdown by reason and by document type:
    [(line, {reason: count}, {type code: count})]."""
    out = []
    for line, parts in withdrawal_breakdown(session, school_id):
        by_reason, by_type = {}, {}
        for reason, code, _in_register, n, _value in parts:
            by_reason[reason] = by_reason.get(reason, 0) + n
            by_type[code] = by_type.get(code, 0) + n
        out.append((line, by_reason, by_type))
    return out
