"""Circulation lists and registers: the queries behind the screens besides the desk, and the
loan register (sổ mượn) in Excel.

Plain functions over the session and explicit schools (they never read the request): the
views, the CLI and the tests call them. Loan times are stored in UTC; registers show the
date in Vietnam (UTC+7), so a loan made at 6:30 in the morning is on the right day.
"""
import dataclasses
import datetime
import itertools
import re

from flask_babel import gettext
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from app.catalog.models import DocumentType, Record
from app.circulation import policies
from app.circulation.models import (
    ClosedDay, Compensation, Loan, LoanRule, LoanStatus, ReadingRoomUse,
)
from app.collection.models import Copy
from app.core.i18n import (  # noqa: F401  (local dates re-exported for the views)
    LOCAL_TZ, collate, collation_key, local_date, local_today, person_sort_key,
)
from app.readers.models import Reader, ReaderCategory, ReaderKind, ReaderStatus

MAX_EXPORT_ROWS = 50000


# --- Local dates ----------------------------------------------------------------------

def utc_start_of(day):
    """The naive UTC timestamp at which the Vietnamese day `day` begins."""
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=LOCAL_TZ)
    return start.astimezone(datetime.timezone.utc).replace(tzinfo=None)


# --- The loan register ------------------------------------------------------------------

@dataclasses.dataclass
class LoanCriteria:
    """What the loan register is filtered by (every field optional)."""

    school_id: int = None
    status: LoanStatus = None
    class_name: str = None
    reader: str = None  # card, barcode, student code or part of the name
    loaned_from: datetime.date = None
    loaned_to: datetime.date = None
    overdue: bool = False
    today: datetime.date = None

    def conditions(self):
        conds = []
        if self.school_id is not None:
            conds.append(Loan.school_id == self.school_id)
        if self.status is not None:
            conds.append(Loan.status == self.status)
        if self.class_name:
            conds.append(Loan.class_name == self.class_name)
        if self.reader:
            text = self.reader.strip()
            name = Reader.family_name + " " + Reader.given_name
            conds.append(Loan.reader_id.in_(select(Reader.id).where(or_(
                Reader.card_number == text, Reader.barcode == text, Reader.code == text,
                name.icontains(text, autoescape=True)))))
        if self.loaned_from is not None:
            conds.append(Loan.loaned_at >= utc_start_of(self.loaned_from))
        if self.loaned_to is not None:
            conds.append(Loan.loaned_at < utc_start_of(
                self.loaned_to + datetime.timedelta(days=1)))
        if self.overdue:
            conds.append(and_(Loan.status == LoanStatus.active,
                              Loan.due_on < (self.today or local_today())))
        return conds


def register_lines(session, school_id, criteria):
    """(loan, reader, copy, record) of one school's loans matching `criteria`, in register
    order: students by class and name, then teachers and staff by name, each by loan date."""
    query = (select(Loan, Reader, Copy, Record)
             .join(Reader, Reader.id == Loan.reader_id)
             .join(Copy, Copy.id == Loan.copy_id)
             .join(Record, Record.id == Copy.record_id)
             .where(Loan.school_id == school_id, *criteria.conditions())
             .order_by(Loan.loaned_at, Loan.id).limit(MAX_EXPORT_ROWS))
    rows = session.execute(query).all()
    return sorted(rows, key=lambda r: (
        class_key(r.Loan.class_name),
        person_sort_key(family_and_middle=r.Reader.family_name, given=r.Reader.given_name),
        r.Reader.id))


def is_student(reader):
    return reader.category is not None and reader.category.kind == ReaderKind.student


def loan_remark(loan, today):
    """The register's "Ghi chú": what happened to the loan besides a plain return."""
    parts = []
    if loan.status == LoanStatus.lost:
        parts.append(str(loan.status.label))
        if loan.compensation is not None:
            text = str(loan.compensation.label)
            if loan.compensation == Compensation.amount and loan.compensation_amount:
                text += f" {int(loan.compensation_amount):,} đ".replace(",", ".")
            parts.append(text)
    elif loan.status == LoanStatus.cancelled:
        parts.append(str(loan.status.label))
    elif loan.status == LoanStatus.active and loan.due_on < today:
        parts.append(gettext("Overdue by %(days)d days", days=(today - loan.due_on).days))
    if loan.renewals:
        parts.append(gettext("Renewed %(n)d times", n=loan.renewals))
    if loan.note:
        parts.append(loan.note)
    return "; ".join(parts)


def register_workbook(session, school, criteria):
    """The loan register in Excel, laid out like the paper registers: "Sổ mượn học sinh",
    one sheet per class, and "Sổ mượn giáo viên", one printed page per teacher."""
    from app.catalog.excel import _formats, _header_text, _new_book, _sheet_name

    today = criteria.today or local_today()
    lines = register_lines(session, school.id, criteria)
    buffer, book = _new_book()
    fmt = _formats(book)
    fmt["cell"] = book.add_format({"border": 1, "valign": "top", "text_wrap": True})
    fmt["cell_date"] = book.add_format({"border": 1, "valign": "top",
                                        "num_format": "dd/mm/yyyy"})
    fmt["reader"] = book.add_format({"bold": True, "font_size": 12})

    def date_cell(sheet, row, col, value):
        if value is None:
            sheet.write_blank(row, col, None, fmt["cell"])
        else:
            sheet.write_datetime(row, col, datetime.datetime.combine(value, datetime.time()),
                                 fmt["cell_date"])

    def page_setup(sheet, title):
        sheet.set_header(f"&L{_header_text(school.name)}&R{_header_text(title)}")
        sheet.set_footer("&C&P / &N")
        sheet.set_paper(9)  # A4
        sheet.set_landscape()
        sheet.fit_to_pages(1, 0)

    students = [r for r in lines if is_student(r.Reader)]
    staff = [r for r in lines if not is_student(r.Reader)]
    headers = [gettext("Full name"), gettext("Class"), gettext("Title"),
               gettext("Accession number"), gettext("Loan date"), gettext("Due date"),
               gettext("Return date"), gettext("Note")]
    widths = [26, 8, 40, 14, 11, 11, 11, 30]
    used_names = set()
    for class_name, group in itertools.groupby(students, key=lambda r: r.Loan.class_name or ""):
        title = gettext("Student loan register – class %(cls)s", cls=class_name or "?")
        name = _sheet_name(gettext("Class %(cls)s", cls=class_name or "?"))
        while name in used_names:
            name = _sheet_name(name[:28] + f"-{len(used_names)}")
        used_names.add(name)
        sheet = book.add_worksheet(name)
        sheet.write_string(0, 0, school.name, fmt["title"])
        sheet.write_string(1, 0, title.upper(), fmt["title"])
        for col, (header, width) in enumerate(zip(headers, widths)):
            sheet.write_string(3, col, header, fmt["header"])
            sheet.set_column(col, col, width)
        row = 3
        for r in group:
            row += 1
            sheet.write_string(row, 0, r.Reader.full_name, fmt["cell"])
            sheet.write_string(row, 1, r.Loan.class_name or "", fmt["cell"])
            sheet.write_string(row, 2, r.Record.title, fmt["cell"])
            sheet.write_string(row, 3, r.Copy.accession_label, fmt["cell"])
            date_cell(sheet, row, 4, local_date(r.Loan.loaned_at))
            date_cell(sheet, row, 5, r.Loan.due_on)
            date_cell(sheet, row, 6, local_date(r.Loan.returned_at))
            sheet.write_string(row, 7, loan_remark(r.Loan, today), fmt["cell"])
        sheet.repeat_rows(3)
        sheet.freeze_panes(4, 0)
        page_setup(sheet, title)

    if staff or not students:
        title = gettext("Teacher and staff loan register")
        sheet = book.add_worksheet(_sheet_name(gettext("Teachers and staff")))
        staff_headers = [gettext("Loan date"), gettext("Title"), gettext("Accession number"),
                         gettext("Return date"), gettext("Borrower's signature"),
                         gettext("Return signature / note")]
        for col, width in enumerate([11, 42, 14, 11, 16, 30]):
            sheet.set_column(col, col, width)
        sheet.write_string(0, 0, school.name, fmt["title"])
        sheet.write_string(1, 0, title.upper(), fmt["title"])
        row, breaks = 2, []
        for _reader_id, group in itertools.groupby(staff, key=lambda r: r.Reader.id):
            group = list(group)
            reader = group[0].Reader
            row += 1
            if row > 3:
                breaks.append(row)  # one printed page per teacher, as in the paper register
            label = reader.full_name
            if reader.category is not None:
                label += f" – {reader.category.name}"
            sheet.write_string(row, 0, label, fmt["reader"])
            row += 1
            for col, header in enumerate(staff_headers):
                sheet.write_string(row, col, header, fmt["header"])
            for r in group:
                row += 1
                date_cell(sheet, row, 0, local_date(r.Loan.loaned_at))
                sheet.write_string(row, 1, r.Record.title, fmt["cell"])
                sheet.write_string(row, 2, r.Copy.accession_label, fmt["cell"])
                date_cell(sheet, row, 3, local_date(r.Loan.returned_at))
                sheet.write_blank(row, 4, None, fmt["cell"])
                sheet.write_string(row, 5, loan_remark(r.Loan, today), fmt["cell"])
            row += 1
        if breaks:
            sheet.set_h_pagebreaks(breaks)
        page_setup(sheet, title)
    book.close()
    return buffer.getvalue(), len(lines)


# --- Classes, overdue loans -----------------------------------------------------------

def class_names(session, school_id):
    """The classes of the school's active readers, in Vietnamese order."""
    names = session.execute(select(Reader.class_name).distinct().where(
        Reader.school_id == school_id, Reader.status == ReaderStatus.active,
        Reader.class_name.is_not(None), Reader.class_name != "")).scalars().all()
    return sorted(names, key=class_key)


def class_key(name):
    """6A1 < 6A2 < 10A1: by grade number, then alphabetically."""
    digits = re.match(r"\d+", name or "")
    return (int(digits.group()) if digits else 999, collation_key(name or ""))


@dataclasses.dataclass
class OverdueReader:
    reader: Reader
    class_name: str
    lines: list  # [(loan, copy, record, days overdue)]

    @property
    def most_days(self):
        return max(days for *_rest, days in self.lines)


def overdue_by_class(session, school_id, today, class_name=None):
    """[(class name or "", [OverdueReader])]: the overdue loans grouped for notices, the
    students by class and teachers and staff last ("")."""
    from app.circulation.services import overdue_loans

    readers = {}
    for loan, reader, copy, record in overdue_loans(session, [school_id], today=today,
                                                    class_name=class_name):
        entry = readers.get(reader.id)
        if entry is None:
            entry = readers[reader.id] = OverdueReader(reader, reader.class_name or "", [])
        entry.lines.append((loan, copy, record, (today - loan.due_on).days))
    groups = {}
    for entry in readers.values():
        groups.setdefault(entry.class_name, []).append(entry)
    order = {name: i for i, name in enumerate(class_names(session, school_id))}
    result = []
    for name in sorted(groups, key=lambda n: (n == "", order.get(n, len(order)),
                                              collation_key(n))):
        entries = sorted(groups[name], key=lambda e: person_sort_key(
            family_and_middle=e.reader.family_name, given=e.reader.given_name))
        result.append((name, entries))
    return result


# --- Rules -------------------------------------------------------------------------------

@dataclasses.dataclass
class MatrixCell:
    rule: LoanRule  # None: no rule applies (nothing can be lent)
    own: bool  # the school's own rule (else the city's default)


def rule_matrix(session, school_id=None):
    """(categories, document types, {(category id, type id): MatrixCell}) of the rule that
    applies to each pair in the school (the city's defaults alone when school_id is None),
    chosen by the same function as the desk (policies.pick_rule)."""
    if school_id is None:
        rules = session.scalars(select(LoanRule).where(LoanRule.school_id.is_(None))).all()
    else:
        rules = policies.school_rules(session, school_id)
    categories = session.scalars(select(ReaderCategory).order_by(ReaderCategory.id)).all()
    dialect = session.get_bind().dialect.name
    types = session.scalars(select(DocumentType).order_by(
        collate(DocumentType.name, dialect))).all()
    cells = {}
    for category in categories:
        for doc_type in types:
            rule = policies.pick_rule(rules, category.id, doc_type.id)
            cells[(category.id, doc_type.id)] = MatrixCell(
                rule, rule is not None and rule.school_id is not None)
    return categories, types, cells


def duplicate_rule(session, rule):
    """Another rule of the same owner for the same reader category and document type."""
    def same(column, value):
        return column.is_(None) if value is None else column == value

    return session.scalars(select(LoanRule).where(
        same(LoanRule.school_id, rule.school_id), same(LoanRule.category_id, rule.category_id),
        same(LoanRule.document_type_id, rule.document_type_id),
        LoanRule.id != (rule.id or -1)).limit(1)).first()


def duplicate_closed_day(session, closed_day):
    """Another closed day of the same owner on the same day."""
    owner = (ClosedDay.school_id.is_(None) if closed_day.school_id is None
             else ClosedDay.school_id == closed_day.school_id)
    return session.scalars(select(ClosedDay).where(
        owner, ClosedDay.day == closed_day.day, ClosedDay.id != (closed_day.id or -1))
        .limit(1)).first()


# --- Reading room --------------------------------------------------------------------------

def reading_entries(session, school_id, day):
    """The reading-room lines of one day, latest first."""
    return session.scalars(
        select(ReadingRoomUse).where(ReadingRoomUse.school_id == school_id,
                                     ReadingRoomUse.used_on == day)
        .options(selectinload(ReadingRoomUse.reader), selectinload(ReadingRoomUse.category),
                 selectinload(ReadingRoomUse.copy).selectinload(Copy.record))
        .order_by(ReadingRoomUse.id.desc())).all()


@dataclasses.dataclass
class ReadingTotals:
    categories: list  # [ReaderCategory] with a column each (None: not given)
    days: list  # [(day, {category id or None: visits}, visits, copies read)]
    by_category: dict  # {category id or None: visits} over the period
    visits: int
    copies: int


def reading_totals(session, school_id, start, end):
    """Visits (lượt bạn đọc) per day and reader category, and copies read (lượt đọc) per day,
    from `start` to `end` inclusive (phiếu thống kê lượt đọc tại chỗ)."""
    rows = session.execute(
        select(ReadingRoomUse.used_on, ReadingRoomUse.category_id,
               func.sum(ReadingRoomUse.visits), func.count(ReadingRoomUse.copy_id))
        .where(ReadingRoomUse.school_id == school_id, ReadingRoomUse.used_on >= start,
               ReadingRoomUse.used_on <= end)
        .group_by(ReadingRoomUse.used_on, ReadingRoomUse.category_id)).all()
    per_day, by_category = {}, {}
    for day, category_id, visits, copies in rows:
        cells, copies_total = per_day.get(day, ({}, 0))
        cells[category_id] = cells.get(category_id, 0) + int(visits or 0)
        per_day[day] = (cells, copies_total + int(copies or 0))
        by_category[category_id] = by_category.get(category_id, 0) + int(visits or 0)
    categories = session.scalars(select(ReaderCategory).order_by(ReaderCategory.id)).all()
    days = [(day, cells, sum(cells.values()), copies)
            for day, (cells, copies) in sorted(per_day.items())]
    return ReadingTotals(categories, days, by_category, sum(by_category.values()),
                         sum(d[3] for d in days))
