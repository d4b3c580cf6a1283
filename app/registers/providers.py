"""One provider per register: plain functions over the session and an explicit school that
return a `layout.Register` (its columns and rows of plain values). The Excel writer and the
printed page both draw what they return; they never read the request.

Registers are views over the data, not data of their own (registers.md): intakes and
copies (app.collection), records (app.catalog), loans and reading-room use
(app.circulation), subscriptions and issues of newspapers and magazines (app.serials).
Parts fed by stocktake and weeding read app.registers.sources_stock.
"""
import dataclasses
import datetime
import itertools
from collections import defaultdict

from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import and_, func, or_, select

from app.catalog.models import ClassNumber, DocumentType, Record, RecordAuthor
from app.circulation import reports
from app.circulation.models import Compensation, Loan, LoanStatus
from app.collection.models import AccessionSeries, Copy, CopyStatus, Intake
from app.core.errors import ValidationError
from app.core.i18n import DATE_FORMAT, collation_key, fold, format_date, local_today
from app.registers import sources_stock
from app.registers.layout import (
    Column, Period, Register, Section, Sheet, money_text, roman_date,
)
from app.serials.models import ISSUES_PER_YEAR, PeriodicalIssue, PeriodicalSubscription
from app.weeding.models import StockWithdrawal

BATCH = 2000  # rows fetched at a time from the database (yield_per / server-side cursor)
TYPE_CODES = ("SGK", "SNV", "STK", "STN")  # the breakdown columns of the general register
FAR_PAST = datetime.date(1900, 1, 1)
FAR_FUTURE = datetime.date(9999, 12, 31)


@dataclasses.dataclass(frozen=True)
class RegisterKind:
    key: str
    name: object  # lazy msgid
    description: object
    landscape: bool = True


KINDS = [
    RegisterKind("general", _l("General accession register"),
                 _l("Part I intakes (one line per delivery note or gift record), Part II "
                    "withdrawals, Part III stocktakes.")),
    RegisterKind("individual", _l("Individual accession register"),
                 _l("One register per accession series, one line per copy, with stocktake "
                    "marks and notes.")),
    RegisterKind("textbooks", _l("Textbook register"),
                 _l("One page per title and volume; copies of one delivery share a line with "
                    "their number range; kept (C) and missing (M).")),
    RegisterKind("periodicals", _l("Newspaper and magazine register"),
                 _l("One page per title and year: issuing body, frequency, subscription "
                    "price, and the issues received by date and number."),
                 landscape=False),
    RegisterKind("loans-teachers", _l("Loan register – teachers and staff"),
                 _l("One page per teacher or staff member."), landscape=False),
    RegisterKind("loans-students", _l("Loan register – students"),
                 _l("One page per class.")),
    RegisterKind("reading", _l("In-library reading register"),
                 _l("Visits per day by reader category and copies read in the library."),
                 landscape=False),
    RegisterKind("catalogue-class", _l("Catalogue by classification"),
                 _l("Titles held, in the order of their class numbers.")),
    RegisterKind("catalogue-title", _l("Catalogue by title"),
                 _l("Titles held, in alphabetical order of title.")),
    RegisterKind("catalogue-author", _l("Catalogue by author"),
                 _l("Titles held, in alphabetical order of the main author.")),
]
BY_KEY = {k.key: k for k in KINDS}


class UnknownRegister(LookupError):
    """No such register or series in the school (the view answers 404)."""


# --- Period -------------------------------------------------------------------------------

def parse_date(text, label):
    text = (text or "").strip()
    if not text:
        return None
    for fmt in (DATE_FORMAT, "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValidationError(_l("%(name)s: “%(value)s” is not a date (dd/mm/yyyy)."),
                          field="period", name=label, value=text[:20])


def parse_period(start_text, end_text):
    """(Period, [error messages]) from the two dates typed as dd/mm/yyyy (either empty)."""
    errors, values = [], []
    for text, label in ((start_text, _l("Start of the period")),
                        (end_text, _l("End of the period"))):
        try:
            values.append(parse_date(text, label))
        except ValidationError as error:
            errors.append(str(error))
            values.append(None)
    start, end = values
    if start and end and end < start:
        errors.append(str(ValidationError(
            _l("The period ends on %(end)s, before it starts on %(start)s: the end date must "
               "not be before the start date."), field="end",
            end=format_date(end), start=format_date(start))))
    return Period(start, end), errors


def _date_conditions(column, period):
    conds = []
    if period.start is not None:
        conds.append(column >= period.start)
    if period.end is not None:
        conds.append(column <= period.end)
    return conds


# --- Shared pieces ------------------------------------------------------------------------

def main_author():
    """The main author of the current Record row (a correlated scalar subquery)."""
    return (select(RecordAuthor.name).where(RecordAuthor.record_id == Record.id)
            .order_by(RecordAuthor.is_main.desc(), RecordAuthor.position, RecordAuthor.id)
            .limit(1).correlate(Record).scalar_subquery())


# Maps, pictures, tapes and discs (and periodicals, which have their own register) are not
# entered in the general register nor in the individual registers (registers.md §2, §3).
IN_REGISTERS = or_(DocumentType.id.is_(None), DocumentType.in_general_register.is_(True))


def type_bucket(code):
    return code if code in TYPE_CODES else "other"


def compensations(session, school_id):
    """{copy id: text} of copies lost on loan and compensated (the register's "bồi thường")."""
    rows = session.execute(select(Loan.copy_id, Loan.compensation, Loan.compensation_amount)
                           .where(Loan.school_id == school_id, Loan.status == LoanStatus.lost,
                                  Loan.compensation.is_not(None))).all()
    result = {}
    for copy_id, how, amount in rows:
        if how == Compensation.amount and amount:
            text = gettext("compensated: %(amount)s đ", amount=money_text(amount))
        elif how == Compensation.replacement:
            text = gettext("compensated with a replacement copy")
        else:
            text = gettext("compensation waived")
        result[copy_id] = text
    return result


def copy_note(status, note, weeded_note=None, compensation=None):
    """The "Ghi chú" of a copy's line: weeded, lost, damaged, compensated, its own note."""
    parts = []
    own = (note or "").strip()
    if weeded_note:
        parts.append(weeded_note)
        # The withdrawal wrote the same words at the head of the copy's own note.
        own = own.replace(weeded_note, "", 1).strip().strip(";").strip()
    elif status == CopyStatus.withdrawn and "thanh loc" not in fold(own):
        parts.append(gettext("weeded"))
    if status == CopyStatus.lost and "mat" not in fold(own).split():
        parts.append(gettext("lost"))
    elif status == CopyStatus.damaged:
        parts.append(gettext("damaged"))
    if compensation:
        parts.append(compensation)
    if own:
        parts.append(own)
    return "; ".join(parts)


def _series_label(series, record_id, number):
    from app.collection.services import accession_label

    return accession_label(series, record_id, number)


def _range_text(first, last):
    return first if first == last else f"{first}–{last}"


def accession_runs(session, school_id, key, conditions, in_registers=False):
    """[(key value, "STK-00001–STK-00003")]: the runs of consecutive accession numbers of
    the school's copies matching `conditions`, per `key` (an intake, a record) and series,
    in order. Runs are found by the database (number − row_number() is constant along a
    run), so a 50,000-copy register returns one row per run, not per copy."""
    parts = [key, Copy.series_id, Copy.sequence_key]
    island = Copy.accession_number - func.row_number().over(
        partition_by=parts, order_by=Copy.accession_number)
    inner = (select(key.label("k"), Copy.series_id.label("series_id"),
                    Copy.sequence_key.label("seq"), Copy.accession_number.label("n"),
                    island.label("island"))
             .select_from(Copy).where(Copy.school_id == school_id, *conditions))
    if in_registers:
        inner = (inner.join(Record, Record.id == Copy.record_id)
                 .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
                 .where(IN_REGISTERS))
    sub = inner.subquery()
    first = func.min(sub.c.n)
    rows = session.execute(
        select(sub.c.k, sub.c.series_id, sub.c.seq, first, func.max(sub.c.n))
        .group_by(sub.c.k, sub.c.series_id, sub.c.seq, sub.c.island)
        .order_by(sub.c.k, sub.c.series_id, sub.c.seq, first)).all()
    series = {s.id: s for s in session.scalars(select(AccessionSeries).where(
        AccessionSeries.school_id == school_id))}
    return [(k, _range_text(_series_label(series[series_id], seq, a),
                            _series_label(series[series_id], seq, b)))
            for k, series_id, seq, a, b in rows]


# --- Sổ đăng ký tổng quát -------------------------------------------------------------------

def _type_columns(group):
    return [Column(code, 7, "int", total=True, group=group) for code in TYPE_CODES] + [
        Column(gettext("Other"), 7, "int", total=True, group=group)]


def general_part1_columns():
    return [
        Column(gettext("Date entered"), 11, "rdate"),
        Column(gettext("General register number"), 9, "int"),
        Column(gettext("Source"), 26),
        Column(gettext("Document number"), 13),
        Column(gettext("Total copies"), 9, "int", total=True),
        Column(gettext("Total amount (VND)"), 14, "money", total=True),
        *_type_columns(gettext("By type of document")),
        Column(gettext("Funding"), 13),
        Column(gettext("Accession numbers from … to …"), 28),
        Column(gettext("Note"), 18),
    ]



def general_part2_columns():
    reason = gettext("By reason")
    return [
        Column(gettext("Date withdrawn"), 11, "rdate"),
        Column(gettext("No."), 6, "int"),
        Column(gettext("Number and date of the withdrawal record"), 24),
        Column(gettext("Total copies"), 9, "int", total=True),
        Column(gettext("Total amount (VND)"), 14, "money", total=True),
        Column(gettext("Worn out"), 8, "int", total=True, group=reason),
        Column(gettext("Outdated"), 8, "int", total=True, group=reason),
        Column(gettext("Lost"), 8, "int", total=True, group=reason),
        Column(gettext("Other reason"), 8, "int", total=True, group=reason),
        *_type_columns(gettext("By type of document")),
        Column(gettext("Note"), 18),
    ]



def general_part3_columns():
    held = gettext("Held, by type of document")
    return [
        Column(gettext("Stocktake date"), 11, "rdate"),
        Column(gettext("Total taken in (copies)"), 11, "int"),
        Column(gettext("Total withdrawn (copies)"), 11, "int"),
        Column(gettext("Held (copies)"), 10, "int"),
        Column(gettext("Held (VND)"), 14, "money"),
        *[Column(code, 7, "int", group=held) for code in TYPE_CODES],
        Column(gettext("Other"), 7, "int", group=held),
        Column(gettext("Note"), 20),
    ]



def general_intake_lines(session, school_id, period):
    """Phần I – Nhập kho: one line per intake (chứng từ) received within `period`, with its
    copies counted by type. Maps, pictures and tapes/discs (document types not entered in
    the general register) are left out of the counts and the number ranges."""
    intakes = session.execute(
        select(Intake).where(Intake.school_id == school_id,
                             *_date_conditions(Intake.received_on, period))
        .order_by(Intake.register_number)).scalars().all()
    if not intakes:
        return []
    chosen = Copy.intake_id.in_(select(Intake.id).where(
        Intake.school_id == school_id, *_date_conditions(Intake.received_on, period)))
    counts = defaultdict(lambda: defaultdict(int))
    money = defaultdict(int)
    rows = session.execute(
        select(Copy.intake_id, DocumentType.code, func.count(), func.sum(Copy.price))
        .join(Record, Record.id == Copy.record_id)
        .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
        .where(Copy.school_id == school_id, chosen, IN_REGISTERS)
        .group_by(Copy.intake_id, DocumentType.code)).all()
    for intake_id, code, count, amount in rows:
        counts[intake_id][type_bucket(code)] += count
        money[intake_id] += int(amount or 0)
    ranges = defaultdict(list)
    for intake_id, text in accession_runs(session, school_id, Copy.intake_id, [chosen],
                                          in_registers=True):
        ranges[intake_id].append(text)
    lines = []
    for intake in intakes:
        by_type = counts[intake.id]
        lines.append([
            intake.received_on, intake.register_number, intake.source, intake.document_number,
            sum(by_type.values()), money[intake.id],
            *[by_type.get(code, 0) for code in TYPE_CODES], by_type.get("other", 0),
            str(intake.funding.label) if intake.funding else "",
            "; ".join(ranges[intake.id]), intake.note or ""])
    return lines


def general_balance_line(session, school_id, period):
    """The "Hiện còn đến ..." line closing Part III (registers.md §2): the register's
    balance at the end of the period (today for an open period), from its own parts: the
    copies taken in by Part I up to that day, less those withdrawn by Part II up to that
    day, with their money and the copies held by type. In the columns of
    `general_part3_columns()`; a line of zeros when nothing was ever taken in."""
    end = min(period.end or local_today(), local_today())

    def counts(*conditions):
        query = (select(DocumentType.code, func.count(), func.sum(Copy.price))
                 .select_from(Copy).join(Intake, Intake.id == Copy.intake_id)
                 .join(Record, Record.id == Copy.record_id)
                 .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
                 .where(Copy.school_id == school_id, Intake.received_on <= end, IN_REGISTERS,
                        *conditions)
                 .group_by(DocumentType.code))
        by_type, total, money = defaultdict(int), 0, 0
        for code, count, amount in session.execute(query):
            by_type[type_bucket(code)] += count
            total += count
            money += int(amount or 0)
        return by_type, total, money

    in_types, taken_in, money_in = counts()
    out_types, taken_out, money_out = counts(Copy.withdrawal_id.in_(
        select(StockWithdrawal.id).where(StockWithdrawal.school_id == school_id,
                                         StockWithdrawal.withdrawn_on <= end)))
    held = {key: in_types.get(key, 0) - out_types.get(key, 0) for key in (*TYPE_CODES, "other")}
    return [end, taken_in, taken_out, taken_in - taken_out, money_in - money_out,
            *[held[code] for code in TYPE_CODES], held["other"],
            gettext("Remaining on %(date)s", date=roman_date(end))]


def general_register(session, school, period):
    part1 = Sheet(gettext("Part I – Intakes"), general_part1_columns(),
                  [Section(general_intake_lines(session, school.id, period))],
                  heading=gettext("PART I – INTAKES"),
                  empty_text=gettext("No intake in this period."))
    part2 = Sheet(gettext("Part II – Withdrawals"), general_part2_columns(),
                  [Section(sources_stock.withdrawal_lines(session, school.id, period))],
                  heading=gettext("PART II – WITHDRAWALS"),
                  empty_text=gettext("No withdrawal in this period."))
    stocktakes = sources_stock.inventory_lines(session, school.id, period)
    balance = general_balance_line(session, school.id, period)
    part3 = Sheet(gettext("Part III – Stocktakes"), general_part3_columns(),
                  [Section(stocktakes, totals=False),
                   Section([balance] if balance and (stocktakes or balance[1]) else [],
                           totals=False, emphasis=True)],
                  heading=gettext("PART III – ANNUAL STOCKTAKE"),
                  empty_text=gettext("No stocktake in this period."))
    return Register("general", gettext("General accession register"), None, period,
                    [part1, part2, part3], landscape=True,
                    filename=gettext("general-register"))


# --- Sổ đăng ký cá biệt -------------------------------------------------------------------

def individual_series(session, school_id):
    """The series with an individual register (every series but the textbooks')."""
    return session.scalars(select(AccessionSeries).where(
        AccessionSeries.school_id == school_id, AccessionSeries.is_textbook.is_(False))
        .order_by(AccessionSeries.code)).all()


def _find_series(session, school_id, code, textbook=False):
    series = session.scalars(select(AccessionSeries).where(
        AccessionSeries.school_id == school_id, AccessionSeries.code == (code or "").strip(),
        AccessionSeries.is_textbook.is_(textbook))).first()
    if series is None:
        raise UnknownRegister(code)
    return series


def individual_rows(session, school_id, series, period, marks):
    """One line per copy of the series, by accession number, streamed in batches (copies of
    document types not entered in the registers, such as maps, are left out); `marks`: the
    stocktake tick columns [(year, subquery of (copy_id, mark))], joined in the query."""
    compensation = compensations(session, school_id)
    weeded = sources_stock.weeding_notes(session, school_id, series.id)
    query = (
        select(Copy.id, Intake.received_on, Copy.accession_label, main_author(), Record.title,
               Record.volume, Record.place, Record.publisher, Record.year, Copy.price,
               Record.class_number, Intake.register_number, Copy.status, Copy.note,
               *[sub.c.mark for _year, sub in marks])
        .join(Record, Record.id == Copy.record_id)
        .outerjoin(Intake, Intake.id == Copy.intake_id)
        .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
        .where(Copy.school_id == school_id, Copy.series_id == series.id,
               Copy.sequence_key == 0,  # (always, outside textbooks: the unique index's order)
               IN_REGISTERS,
               *_date_conditions(Intake.received_on, period))
        .order_by(Copy.accession_number)
        .execution_options(yield_per=BATCH))
    for _year, sub in marks:
        query = query.outerjoin(sub, sub.c.copy_id == Copy.id)
    for (copy_id, received_on, label, author, title, volume, place, publisher, year, price,
         class_number, register_number, status, note, *ticks) in session.execute(query):
        name = title if not volume or volume in title else f"{title}. {volume}"
        if author:
            name = f"{author}. {name}"
        yield [received_on, label, name, place, publisher, year, price, class_number,
               register_number, *(ticks or [""]),
               copy_note(status, note, weeded.get(copy_id), compensation.get(copy_id))]


def individual_register(session, school, period, series_code):
    series = _find_series(session, school.id, series_code)
    marks = sources_stock.inventory_mark_columns(session, school.id, series.id)
    years = [year for year, _sub in marks]
    stocktake = gettext("Stocktake")
    columns = [
        Column(gettext("Date entered"), 11, "rdate"),
        Column(gettext("Accession no."), 13),
        Column(gettext("Author and title"), 40),
        Column(gettext("Place of publication"), 13),
        Column(gettext("Publisher"), 20),
        Column(gettext("Year of publication"), 8, "int"),
        Column(gettext("Price (VND)"), 11, "money", total=True),
        Column(gettext("Subject class / class number"), 11),
        Column(gettext("General register number"), 9, "int"),
        *([Column(str(y), 6, group=stocktake) for y in years]
          or [Column(stocktake, 9)]),
        Column(gettext("Note"), 24),
    ]
    rows = individual_rows(session, school.id, series, period, marks)
    stem = gettext("individual-register")  # (outside the f-string: pybabel extracts it)
    sheet = Sheet(series.code, columns, [Section(rows)],
                  empty_text=gettext("No copy in this period."))
    return Register("individual", gettext("Individual accession register"),
                    f"{series.name} ({series.code})", period, [sheet], landscape=True,
                    filename=stem + f"-{series.code}")


# --- Sổ đăng ký sách giáo khoa ------------------------------------------------------------

def textbook_sections(session, school_id, period):
    """One section per title and volume (a new page each); a line per run of consecutive
    copy numbers of one record (one publication year) entered by the same intake."""
    series_ids = [s.id for s in session.scalars(select(AccessionSeries).where(
        AccessionSeries.school_id == school_id, AccessionSeries.is_textbook.is_(True)))]
    if not series_ids:
        return []
    records = {r.id: r for r in session.execute(
        select(Record.id, Record.title, Record.volume, Record.year, Record.publisher,
               Record.class_number)
        .where(Record.school_id == school_id, Record.id.in_(
            select(Copy.record_id).where(Copy.school_id == school_id,
                                         Copy.series_id.in_(series_ids))))).all()}
    rows = session.execute(
        select(Copy.id, Copy.record_id, Copy.accession_number, Copy.intake_id, Copy.price,
               Copy.status, Intake.received_on, Intake.register_number)
        .outerjoin(Intake, Intake.id == Copy.intake_id)
        .where(Copy.school_id == school_id, Copy.series_id.in_(series_ids),
               *_date_conditions(Intake.received_on, period))
        .order_by(Copy.record_id, Copy.accession_number)
        .execution_options(yield_per=BATCH)).all()
    marks = {}
    for series_id in series_ids:
        marks.update(sources_stock.inventory_marks(session, school_id, series_id))
    by_title = defaultdict(list)  # (title, volume) -> lines
    for record_id, copies in itertools.groupby(rows, key=lambda r: r.record_id):
        record = records[record_id]
        run = []
        for copy in list(copies) + [None]:
            if run and (copy is None or copy.intake_id != run[-1].intake_id
                        or copy.accession_number != run[-1].accession_number + 1):
                by_title[(record.title, record.volume or "")].append(
                    _textbook_line(record, run, marks))
                run = []
            if copy is not None:
                run.append(copy)
    sections = []
    for (title, volume) in sorted(by_title, key=lambda k: (collation_key(k[0]),
                                                            collation_key(k[1]))):
        lines = by_title[(title, volume)]
        heading = title if not volume or volume in title else f"{title} / {volume}"
        classes = sorted({line.pop() for line in lines} - {None, ""})
        sections.append(Section(lines, heading=heading, heading_right=", ".join(classes),
                                page_break=True))
    return sections


def _textbook_line(record, run, marks):
    first, last = run[0], run[-1]
    price = first.price
    amount = sum(int(c.price or 0) for c in run)
    kept = [c for c in run if c.status not in (CopyStatus.lost, CopyStatus.withdrawn)]
    lost = [f"{c.accession_number:02d}" for c in run if c.status == CopyStatus.lost]
    weeded = [f"{c.accession_number:02d}" for c in run if c.status == CopyStatus.withdrawn]
    found = defaultdict(list)
    for c in run:
        if c.id in marks:
            found[marks[c.id]].append(f"{c.accession_number:02d}")
    mc = "; ".join(f"{mark}: {', '.join(numbers)}" for mark, numbers in sorted(found.items()))
    notes = []
    if lost:
        notes.append(gettext("lost: %(numbers)s", numbers=", ".join(lost)))
    if weeded:
        notes.append(gettext("weeded: %(numbers)s", numbers=", ".join(weeded)))
    return [first.received_on,
            _range_text(f"{first.accession_number:02d}", f"{last.accession_number:02d}"),
            len(run), record.year, record.publisher, price, amount, first.register_number,
            len(kept), mc, "; ".join(notes),
            record.class_number]  # popped: the section's heading on the right


def textbook_register(session, school, period):
    columns = [
        Column(gettext("Date entered"), 11, "rdate"),
        Column(gettext("Copy numbers from … to …"), 12),
        Column(gettext("No. of copies"), 8, "int", total=True),
        Column(gettext("Year of publication"), 9, "int"),
        Column(gettext("Publisher"), 24),
        Column(gettext("Price (VND)"), 11, "money"),
        Column(gettext("Amount (VND)"), 13, "money", total=True),
        Column(gettext("General register number"), 9, "int"),
        Column(gettext("Kept (C)"), 8, "int", total=True),
        Column(gettext("Stocktake (M/C)"), 14),
        Column(gettext("Note"), 22),
    ]
    sheet = Sheet(gettext("Textbooks"), columns, textbook_sections(session, school.id, period),
                  empty_text=gettext("No textbook in this period."))
    return Register("textbooks", gettext("Textbook register"), None, period, [sheet],
                    landscape=True, filename=gettext("textbook-register"))


# --- Sổ đăng ký báo, tạp chí ----------------------------------------------------------------

def periodical_columns():
    return [
        Column(gettext("No."), 6, "int"),
        Column(gettext("Issue number"), 12),
        Column(gettext("Date of the issue"), 12, "date"),
        Column(gettext("Date received"), 12, "date"),
        Column(gettext("Copies received"), 10, "int", total=True),
        Column(gettext("Note"), 30),
    ]


def periodical_sections(session, school_id, period):
    """One page per subscription (title and year) whose year meets the period: the title
    and year, its issuing body, frequency, subscription price, then the issues received
    within the period by date of issue and number, with the copies received."""
    query = (select(PeriodicalSubscription, Record.title, Record.publisher)
             .join(Record, Record.id == PeriodicalSubscription.record_id)
             .where(PeriodicalSubscription.school_id == school_id))
    years = []
    if period.start is not None:
        years.append(PeriodicalSubscription.year >= period.start.year)
    if period.end is not None:
        years.append(PeriodicalSubscription.year <= period.end.year)
    if years:
        # (and a subscription of last year with an issue received in this period)
        received = select(PeriodicalIssue.subscription_id).where(
            PeriodicalIssue.school_id == school_id,
            *_date_conditions(PeriodicalIssue.received_on, period))
        query = query.where(or_(and_(*years), PeriodicalSubscription.id.in_(received)))
    subs = session.execute(query).all()
    if not subs:
        return []
    issues = defaultdict(list)
    for issue in session.scalars(
            select(PeriodicalIssue).where(
                PeriodicalIssue.school_id == school_id,
                PeriodicalIssue.subscription_id.in_([s.id for s, _t, _p in subs]),
                *_date_conditions(PeriodicalIssue.received_on, period))
            .order_by(PeriodicalIssue.issue_date, PeriodicalIssue.number,
                      PeriodicalIssue.id)):
        issues[issue.subscription_id].append(issue)
    subs.sort(key=lambda r: (collation_key(r.title), r[0].year))
    sections = []
    for sub, title, publisher in subs:
        lines = [[n, i.number, i.issue_date, i.received_on, i.copies, i.note or ""]
                 for n, i in enumerate(issues[sub.id], start=1)]
        expected = ISSUES_PER_YEAR.get(sub.frequency)
        details = [
            gettext("Issuing body: %(name)s", name=sub.issuing_body or publisher or "—"),
            gettext("Frequency: %(frequency)s", frequency=sub.frequency.label)
            + (gettext(" (%(n)d issues a year)", n=expected) if expected else ""),
            gettext("Subscription price: %(price)s", price=(money_text(sub.price) + " đ")
                    if sub.price is not None else "—")
            + "; " + gettext("copies per issue: %(n)d", n=sub.copies_per_issue)
            + "; " + gettext("funding: %(funding)s", funding=sub.funding.label),
        ]
        if sub.note:
            details.append(sub.note)
        sections.append(Section(
            lines, heading=gettext("%(title)s – year %(year)d", title=title, year=sub.year),
            heading_right=gettext("%(n)d issues received", n=len(lines)),
            details=details, page_break=True,
            total_label=gettext("Total")))
    return sections


def periodical_register(session, school, period):
    """Sổ đăng ký báo, tạp chí: from the subscriptions and the issues received
    (app.serials)."""
    sheet = Sheet(gettext("Periodicals"), periodical_columns(),
                  periodical_sections(session, school.id, period),
                  empty_text=gettext("No newspaper or magazine received in this period."))
    return Register("periodicals", gettext("Newspaper and magazine register"), None, period,
                    [sheet], landscape=False, filename=gettext("periodicals-register"))


# --- Sổ mượn --------------------------------------------------------------------------------

def _loan_lines(session, school, period, class_name=None):
    criteria = reports.LoanCriteria(school_id=school.id, loaned_from=period.start,
                                    loaned_to=period.end, class_name=class_name or None,
                                    today=local_today())
    return reports.register_lines(session, school.id, criteria), criteria.today


def student_loan_register(session, school, period, class_name=None):
    lines, today = _loan_lines(session, school, period, class_name)
    students = [r for r in lines if reports.is_student(r.Reader)]
    sections = []
    for name, group in itertools.groupby(students, key=lambda r: r.Loan.class_name or ""):
        rows = [[r.Reader.full_name, r.Loan.class_name or "", r.Record.title,
                 r.Copy.accession_label, reports.local_date(r.Loan.loaned_at), r.Loan.due_on,
                 reports.local_date(r.Loan.returned_at), reports.loan_remark(r.Loan, today)]
                for r in group]
        sections.append(Section(rows, heading=gettext("Class %(cls)s", cls=name or "?"),
                                page_break=True, totals=False))
    columns = [
        Column(gettext("Full name"), 24), Column(gettext("Class"), 7),
        Column(gettext("Title"), 38), Column(gettext("Accession no."), 14),
        Column(gettext("Loan date"), 11, "date"), Column(gettext("Due date"), 11, "date"),
        Column(gettext("Return date"), 11, "date"), Column(gettext("Note"), 26),
    ]
    subtitle = gettext("Class %(cls)s", cls=class_name) if class_name else None
    sheet = Sheet(gettext("Students"), columns, sections,
                  empty_text=gettext("No loan in this period."))
    return Register("loans-students", gettext("Loan register – students"), subtitle, period,
                    [sheet], landscape=True, filename=gettext("student-loan-register"))


def teacher_loan_register(session, school, period):
    lines, today = _loan_lines(session, school, period)
    staff = [r for r in lines if not reports.is_student(r.Reader)]
    staff.sort(key=lambda r: (reports.person_sort_key(family_and_middle=r.Reader.family_name,
                                                      given=r.Reader.given_name),
                              r.Reader.id, r.Loan.loaned_at, r.Loan.id))
    sections = []
    for _reader_id, group in itertools.groupby(staff, key=lambda r: r.Reader.id):
        group = list(group)
        reader = group[0].Reader
        heading = reader.full_name
        if reader.category is not None:
            heading += f" – {reader.category.name}"
        rows = [[reports.local_date(r.Loan.loaned_at), r.Record.title, r.Copy.accession_label,
                 reports.local_date(r.Loan.returned_at), "", reports.loan_remark(r.Loan, today)]
                for r in group]
        sections.append(Section(rows, heading=heading, page_break=True, totals=False))
    columns = [
        Column(gettext("Loan date"), 11, "date"), Column(gettext("Title"), 40),
        Column(gettext("Accession no."), 14), Column(gettext("Return date"), 11, "date"),
        Column(gettext("Borrower's signature"), 14),
        Column(gettext("Return signature / note"), 24),
    ]
    sheet = Sheet(gettext("Teachers and staff"), columns, sections,
                  empty_text=gettext("No loan in this period."))
    return Register("loans-teachers", gettext("Loan register – teachers and staff"), None,
                    period, [sheet], landscape=False, filename=gettext("teacher-loan-register"))


# --- Sổ theo dõi đọc tại chỗ ----------------------------------------------------------------

def reading_register(session, school, period):
    totals = reports.reading_totals(session, school.id, period.start or FAR_PAST,
                                    period.end or FAR_FUTURE)
    categories = totals.categories
    with_unknown = None in totals.by_category
    rows = []
    for day, cells, visits, copies in totals.days:
        rows.append([day, *[cells.get(c.id, 0) for c in categories],
                     *([cells.get(None, 0)] if with_unknown else []), visits, copies])
    visits_group = gettext("Visits by reader category")
    columns = [Column(gettext("Date"), 12, "date"),
               *[Column(c.name, 10, "int", total=True, group=visits_group)
                 for c in categories],
               *([Column(gettext("Not given"), 10, "int", total=True, group=visits_group)]
                 if with_unknown else []),
               Column(gettext("Total visits"), 10, "int", total=True),
               Column(gettext("Copies read in the library"), 12, "int", total=True)]
    sheet = Sheet(gettext("Reading room"), columns, [Section(rows)],
                  empty_text=gettext("No reading-room use in this period."))
    return Register("reading", gettext("In-library reading register"), None, period, [sheet],
                    landscape=False, filename=gettext("reading-register"))


# --- Mục lục sách -----------------------------------------------------------------------------

def _catalogue_records(session, school_id):
    """[(record row, copies held, accession numbers)] of the records with a copy not
    withdrawn (the titles the library holds today)."""
    held_now = Copy.status != CopyStatus.withdrawn
    held = dict(session.execute(select(Copy.record_id, func.count()).where(
        Copy.school_id == school_id, held_now).group_by(Copy.record_id)).all())
    numbers = defaultdict(list)
    for record_id, text in accession_runs(session, school_id, Copy.record_id, [held_now]):
        numbers[record_id].append(text)
    records = session.execute(
        select(Record.id, Record.class_number, Record.call_number, main_author().label("author"),
               Record.title, Record.volume, Record.place, Record.publisher, Record.year,
               Record.scheme_id)
        .where(Record.school_id == school_id, Record.id.in_(
            select(Copy.record_id).where(Copy.school_id == school_id,
                                         Copy.status != CopyStatus.withdrawn)))).all()
    return [(r, held.get(r.id, 0), "; ".join(numbers.get(r.id, []))) for r in records]


def _catalogue_row(record, copies, numbers):
    title = record.title if not record.volume or record.volume in record.title \
        else f"{record.title}. {record.volume}"
    imprint = ", ".join(str(v) for v in (record.place, record.publisher, record.year) if v)
    return [record.class_number or "", record.call_number or "", record.author or "", title,
            imprint, copies, numbers]


def _catalogue_columns():
    return [
        Column(gettext("Class number"), 12), Column(gettext("Call number"), 16),
        Column(gettext("Main author"), 22), Column(gettext("Title"), 40),
        Column(gettext("Imprint"), 30), Column(gettext("No. of copies"), 8, "int", total=True),
        Column(gettext("Accession numbers"), 30),
    ]


def _class_heading(session, entries):
    """{class number: "895.922 Văn học Việt Nam"}: the longest class of the record's scheme
    that begins its class number (the record's own number when none does)."""
    labels = defaultdict(dict)
    for scheme_id, code, label in session.execute(
            select(ClassNumber.scheme_id, ClassNumber.code, ClassNumber.label)):
        labels[scheme_id][code] = label
    result = {}
    for record, _copies, _numbers in entries:
        number = record.class_number or ""
        known = labels.get(record.scheme_id, {})
        best = None
        for length in range(len(number), 0, -1):
            if number[:length] in known:
                best = number[:length]
                break
        result[record.id] = (f"{best} {known[best]}" if best else
                             number or gettext("Not classified"))
    return result


def catalogue_register(session, school, order):
    entries = _catalogue_records(session, school.id)
    columns = _catalogue_columns()
    if order == "class":
        headings = _class_heading(session, entries)
        entries.sort(key=lambda e: (e[0].class_number is None or e[0].class_number == "",
                                    e[0].class_number or "", collation_key(e[0].title)))
        sections = []
        for heading, group in itertools.groupby(entries, key=lambda e: headings[e[0].id]):
            sections.append(Section([_catalogue_row(*e) for e in group], heading=heading))
        title = gettext("Catalogue by classification")
        filename = gettext("catalogue-by-class")
    elif order == "title":
        entries.sort(key=lambda e: (collation_key(e[0].title), e[0].id))
        sections = [Section([_catalogue_row(*e) for e in entries])]
        title = gettext("Catalogue by title")
        filename = gettext("catalogue-by-title")
    else:
        entries.sort(key=lambda e: (e[0].author is None, collation_key(e[0].author or ""),
                                    collation_key(e[0].title), e[0].id))
        columns = [columns[2], columns[3], *columns[:2], *columns[4:]]
        sections = [Section([[row[2], row[3], row[0], row[1], *row[4:]]
                             for row in (_catalogue_row(*e) for e in entries)])]
        title = gettext("Catalogue by author")
        filename = gettext("catalogue-by-author")
    sheet = Sheet(gettext("Catalogue list"), columns, sections,
                  empty_text=gettext("The library holds no title."))
    register = Register(f"catalogue-{order}", title, None, Period(), [sheet], landscape=True,
                        filename=filename)
    register.period_text = gettext("Titles held on %(date)s", date=format_date(local_today()))
    return register


# --- Dispatch -------------------------------------------------------------------------------

def build(session, school, key, period, series=None, class_name=None):
    """The register `key` of `school` over `period`; UnknownRegister for a key or a series
    the school does not have."""
    if key == "general":
        return general_register(session, school, period)
    if key == "individual":
        return individual_register(session, school, period, series)
    if key == "textbooks":
        return textbook_register(session, school, period)
    if key == "periodicals":
        return periodical_register(session, school, period)
    if key == "loans-teachers":
        return teacher_loan_register(session, school, period)
    if key == "loans-students":
        return student_loan_register(session, school, period, class_name)
    if key == "reading":
        return reading_register(session, school, period)
    if key in ("catalogue-class", "catalogue-title", "catalogue-author"):
        return catalogue_register(session, school, key.split("-", 1)[1])
    raise UnknownRegister(key)


__all__ = ["KINDS", "BY_KEY", "build", "parse_period", "UnknownRegister"]
