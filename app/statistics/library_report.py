"""The school's library report (báo cáo công tác thư viện), in the layout of the HCMC school
monthly report (registers.md §9): I. acquisitions by type with the money by funding; II.
readers (visits and loans of teachers and students, what they read most), activities held,
coordination; III. requests; IV. proposals; signatures of the principal and the librarian.

Figures come from the data of the report's period; the word parts from the librarian
(LibraryReport). The same `figures` feed the printed page and the Excel file.
"""
import dataclasses
import datetime
import io
import math

import xlsxwriter
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import func, select

from app.catalog.models import DocumentType, Record
from app.circulation.models import Loan, LoanStatus, ReadingRoomUse
from app.collection.models import Copy, Funding, Intake
from app.core.i18n import DATE_FORMAT
from app.readers.models import Reader, ReaderCategory, ReaderKind
from app.serials import services as serials

# Rows of part I: the document-type codes of each line (registers.md §9).
ACQUISITION_ROWS = [
    ("SGK", _l("Textbooks")),
    ("STK", _l("Reference books")),
    ("SNV", _l("Professional books")),
    ("STN", _l("Children's books")),
    ("BC", _l("Newspapers and magazines")),
]


@dataclasses.dataclass
class ReaderFigures:
    visits: int = 0
    loans: int = 0
    reads: int = 0
    favourite_type: str = ""


@dataclasses.dataclass
class Figures:
    acquisitions: list  # (label, copies, budget amount, other amount)
    acquisitions_total: tuple
    teachers: ReaderFigures
    students: ReaderFigures
    student_visits_per_week: float
    weeks: int


def _bounds(start, end):
    return (datetime.datetime.combine(start, datetime.time()),
            datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time()))


def figures(session, school_id, start, end):
    codes = {code for code, _label in ACQUISITION_ROWS}
    rows = {code: [0, 0, 0] for code in codes}
    other = [0, 0, 0]
    query = (select(DocumentType.code, Copy.funding, func.count(), func.sum(Copy.price))
             .select_from(Copy).join(Intake, Intake.id == Copy.intake_id)
             .join(Record, Record.id == Copy.record_id)
             .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
             .where(Copy.school_id == school_id, Intake.received_on >= start,
                    Intake.received_on <= end)
             .group_by(DocumentType.code, Copy.funding))
    for code, funding, count, amount in session.execute(query):
        target = rows[code] if code in codes else other
        target[0] += count
        target[1 if funding == Funding.state_budget else 2] += int(amount or 0)
    # Newspapers and magazines: the issues received in the period (app.serials), copies ×
    # the subscription's price per issue, by its funding.
    for i, value in enumerate(serials.acquisitions(session, school_id, start, end)):
        rows["BC"][i] += value
    acquisitions = [(label, *rows[code]) for code, label in ACQUISITION_ROWS]
    acquisitions.append((_l("Other documents"), *other))
    total = tuple(sum(r[i] for r in acquisitions) for i in (1, 2, 3))

    kinds = dict(session.execute(select(ReaderCategory.id, ReaderCategory.kind)).all())

    def group_of(category_id):
        kind = kinds.get(category_id)
        return "students" if kind == ReaderKind.student else "teachers"

    groups = {"teachers": ReaderFigures(), "students": ReaderFigures()}
    first, after = _bounds(start, end)
    for category_id, visits in session.execute(
            select(ReadingRoomUse.category_id, func.sum(ReadingRoomUse.visits))
            .where(ReadingRoomUse.school_id == school_id, ReadingRoomUse.used_on >= start,
                   ReadingRoomUse.used_on <= end)
            .group_by(ReadingRoomUse.category_id)):
        groups[group_of(category_id)].visits += int(visits or 0)
    by_type = {"teachers": {}, "students": {}}
    for category_id, doctype, count in session.execute(
            select(Reader.category_id, DocumentType.name, func.count())
            .select_from(Loan).join(Reader, Reader.id == Loan.reader_id)
            .join(Copy, Copy.id == Loan.copy_id).join(Record, Record.id == Copy.record_id)
            .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
            .where(Loan.school_id == school_id, Loan.status != LoanStatus.cancelled,
                   Loan.loaned_at >= first, Loan.loaned_at < after)
            .group_by(Reader.category_id, DocumentType.name)):
        group = group_of(category_id)
        groups[group].loans += count
        if doctype:
            by_type[group][doctype] = by_type[group].get(doctype, 0) + count
    for category_id, doctype, count in session.execute(
            select(ReadingRoomUse.category_id, DocumentType.name, func.count())
            .select_from(ReadingRoomUse).join(Copy, Copy.id == ReadingRoomUse.copy_id)
            .join(Record, Record.id == Copy.record_id)
            .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
            .where(ReadingRoomUse.school_id == school_id, ReadingRoomUse.used_on >= start,
                   ReadingRoomUse.used_on <= end)
            .group_by(ReadingRoomUse.category_id, DocumentType.name)):
        group = group_of(category_id)
        groups[group].reads += count
        if doctype:
            by_type[group][doctype] = by_type[group].get(doctype, 0) + count
    for group, counts in by_type.items():
        if counts:
            groups[group].favourite_type = max(sorted(counts), key=lambda k: counts[k])
    weeks = max(1, math.ceil(((end - start).days + 1) / 7))
    return Figures(acquisitions, total, groups["teachers"], groups["students"],
                   round(groups["students"].visits / weeks, 1), weeks)


def title(report):
    kind = report.kind.name
    if kind == "month":
        when = report.starts_on.strftime("%m/%Y")
        if report.ends_on.strftime("%m/%Y") != when:
            when += " – " + report.ends_on.strftime("%m/%Y")
        return gettext("LIBRARY REPORT, MONTH %(when)s", when=when)
    if kind == "semester":
        return gettext("LIBRARY REPORT, SEMESTER (%(start)s – %(end)s)",
                       start=report.starts_on.strftime(DATE_FORMAT),
                       end=report.ends_on.strftime(DATE_FORMAT))
    return gettext("ANNUAL LIBRARY REPORT (%(start)s – %(end)s)",
                   start=report.starts_on.strftime(DATE_FORMAT),
                   end=report.ends_on.strftime(DATE_FORMAT))


def reader_lines(fig):
    """Part II.1 as (label, value) lines."""
    t, s = fig.teachers, fig.students
    dash = "–"
    return [
        (gettext("Teacher visits to the library"), t.visits),
        (gettext("Type of documents teachers read most"), t.favourite_type or dash),
        (gettext("Books teachers took home"), t.loans),
        (gettext("Student visits per week (average over %(n)d weeks)", n=fig.weeks),
         fig.student_visits_per_week),
        (gettext("Student visits in the period"), s.visits),
        (gettext("Type of documents students read most"), s.favourite_type or dash),
        (gettext("Books students took home"), s.loans),
        (gettext("Documents read in the library (teachers / students)"),
         f"{t.reads} / {s.reads}"),
    ]


def text_parts(report):
    """The typed parts, in order: (heading, text)."""
    return [
        ("II.2", gettext("Activities held"), report.activities),
        ("II.3", gettext("Coordination"), report.coordination),
        ("III.1", gettext("Requests of teachers"), report.teacher_requests),
        ("III.2", gettext("Requests of students"), report.student_requests),
        ("IV.1", gettext("Proposals to the school"), report.school_proposals),
        ("IV.2", gettext("Proposals to the education office"), report.office_proposals),
    ]


def write_excel(report, fig, head):
    """The report as an .xlsx file (A4 portrait, Times New Roman, the official header)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    ws = book.add_worksheet(gettext("Report")[:31])
    base = {"font_name": "Times New Roman", "font_size": 12, "valign": "top"}
    f = {
        "plain": book.add_format({**base, "text_wrap": True}),
        "bold": book.add_format({**base, "bold": True}),
        "center": book.add_format({**base, "align": "center"}),
        "center_bold": book.add_format({**base, "align": "center", "bold": True}),
        "title": book.add_format({**base, "align": "center", "bold": True, "font_size": 14}),
        "head": book.add_format({**base, "bold": True, "border": 1, "align": "center",
                                 "valign": "vcenter", "text_wrap": True}),
        "cell": book.add_format({**base, "border": 1}),
        "num": book.add_format({**base, "border": 1, "num_format": "#,##0"}),
        "total": book.add_format({**base, "border": 1, "bold": True, "num_format": "#,##0"}),
        "italic": book.add_format({**base, "italic": True, "align": "center"}),
    }
    ws.set_column(0, 0, 34)
    ws.set_column(1, 3, 18)
    ws.merge_range(0, 0, 0, 1, head.authority, f["center"])
    ws.merge_range(1, 0, 1, 1, head.school, f["center_bold"])
    ws.merge_range(0, 2, 0, 3, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", f["center_bold"])
    ws.merge_range(1, 2, 1, 3, "Độc lập - Tự do - Hạnh phúc", f["center_bold"])
    ws.merge_range(3, 0, 3, 3, title(report), f["title"])
    row = 5
    ws.write(row, 0, gettext("I. ACQUISITIONS"), f["bold"])
    row += 1
    for col, label in enumerate([gettext("Type of documents"), gettext("Copies"),
                                 gettext("Amount (state budget)"),
                                 gettext("Amount (other funds)")]):
        ws.write(row, col, label, f["head"])
    first = row + 1
    for label, copies, budget, other in fig.acquisitions:
        row += 1
        ws.write(row, 0, str(label), f["cell"])
        ws.write_number(row, 1, copies, f["num"])
        ws.write_number(row, 2, budget, f["num"])
        ws.write_number(row, 3, other, f["num"])
    row += 1
    ws.write(row, 0, gettext("Total"), f["total"])
    for col, value in zip((1, 2, 3), fig.acquisitions_total):
        letter = "ABCD"[col]
        ws.write_formula(row, col, f"=SUM({letter}{first + 1}:{letter}{row})", f["total"],
                         value)
    row += 2
    ws.write(row, 0, gettext("II. ACTIVITY"), f["bold"])
    row += 1
    ws.write(row, 0, gettext("1. Readers"), f["bold"])
    for label, value in reader_lines(fig):
        row += 1
        ws.write(row, 0, "– " + label, f["plain"])
        ws.write(row, 1, value, f["plain"])
    for number, heading, text in text_parts(report):
        if number == "III.1":
            row += 2
            ws.write(row, 0, gettext("III. REQUESTS"), f["bold"])
        if number == "IV.1":
            row += 2
            ws.write(row, 0, gettext("IV. PROPOSALS"), f["bold"])
        row += 1
        ws.write(row, 0, heading, f["bold"])
        row += 1
        ws.merge_range(row, 0, row, 3, text or "", f["plain"])
        lines = max(1, sum(1 + len(line) // 90 for line in (text or "").splitlines()))
        ws.set_row(row, 16 * lines)
    row += 2
    ws.merge_range(row, 2, row, 3, gettext("Date: day %(day)s month %(month)s year %(year)s",
                                           day=f"{head.signed_on.day:02d}",
                                           month=f"{head.signed_on.month:02d}",
                                           year=head.signed_on.year), f["italic"])
    row += 1
    ws.merge_range(row, 0, row, 1, gettext("PRINCIPAL"), f["center_bold"])
    ws.merge_range(row, 2, row, 3, gettext("LIBRARIAN"), f["center_bold"])
    ws.set_paper(9)
    ws.set_portrait()
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.8, right=0.6, top=0.7, bottom=0.7)
    book.close()
    return buffer.getvalue()
