"""The forms of a weeding round's dossier (TT 02/2020/TT-BVHTTDL annex: Mẫu 04, 05, 06a, 06b,
07a, 07b) and the general register's Part II, as Excel files and printable pages.

Each form is built once as a `Document` (header, title, paragraphs, one table, signatures);
`to_xlsx` and the template weeding/document.html render the same document. Official
documents are always written in Vietnamese, whatever the language of the screens: they are
built under force_locale("vi") (the msgids are English, as everywhere in the code).

The annex's exact wording was not available (registers.md §8): the layouts follow the
usual Vietnamese administrative form (Nghị định 30/2020 header, Căn cứ..., Điều 1, 2, 3,
signature blocks) with the content the procedure requires.
"""
import dataclasses
import io
import re
from decimal import Decimal
from typing import List, Optional

import xlsxwriter
from flask_babel import force_locale, gettext
from sqlalchemy import select

from app.core.i18n import format_date, local_today
from app.org.models import AppUser, OrgUnit, UnitKind
from app.registers.layout import roman_date
from app.weeding import services
from app.weeding.models import RoundStatus, WeedingReason

FORMS = ("04", "05", "06a", "06b", "07a", "07b")


@dataclasses.dataclass
class Column:
    label: str
    width: int = 12
    kind: str = "text"  # text, int, money


@dataclasses.dataclass
class Document:
    code: str  # "04", "05"... or "register2"
    form_label: str
    managing_body: str
    school_name: str
    number_line: str
    place_date: str
    title: str
    subtitle: str = ""
    before: List[str] = dataclasses.field(default_factory=list)
    columns: List[Column] = dataclasses.field(default_factory=list)
    rows: List[list] = dataclasses.field(default_factory=list)
    total: Optional[list] = None
    after: List[str] = dataclasses.field(default_factory=list)
    signatures: List[tuple] = dataclasses.field(default_factory=list)  # (title, name)
    landscape: bool = False
    filename: str = "document"


def _money(value):
    return f"{int(value or 0):,}".replace(",", ".")


def _date_words(day):
    if day is None:
        return gettext("day ... month ... year ...")
    return gettext("day %(d)02d month %(m)02d year %(y)d", d=day.day, m=day.month, y=day.year)


def _managing_body(session, school):
    dept = session.scalars(select(OrgUnit).where(OrgUnit.kind == UnitKind.department)
                           .order_by(OrgUnit.id).limit(1)).first()
    return (dept.name if dept else gettext("Department of Education and Training")).upper()


def _person(session, user_id):
    user = session.get(AppUser, user_id) if user_id else None
    return f"{user.last_name} {user.first_name}".strip() if user else ""


def _place(school):
    return gettext("Ho Chi Minh City")


def _base(session, round_, code, title, day, number=None, **kw):
    school = round_.school
    number_line = gettext("No.: %(number)s", number=number) if number else ""
    return Document(
        code=code, form_label=gettext("Form %(code)s (TT 02/2020/TT-BVHTTDL)", code=code),
        managing_body=_managing_body(session, school), school_name=school.name.upper(),
        number_line=number_line,
        place_date=f"{_place(school)}, {_date_words(day)}", title=title,
        filename=f"mau-{code}-dot-{round_.number}", **kw)


def _item_columns(with_opinion=False):
    cols = [Column(gettext("No."), 5, "int"), Column(gettext("Accession no."), 14),
            Column(gettext("Title"), 38), Column(gettext("Author"), 20),
            Column(gettext("Publisher"), 20), Column(gettext("Year"), 7, "int"),
            Column(gettext("Price (VND)"), 12, "money"), Column(gettext("Reason"), 24)]
    cols.append(Column(gettext("Committee's opinion") if with_opinion else gettext("Note"), 18))
    return cols


def _item_rows(session, round_, with_opinion=False):
    rows = []
    for i, (item, copy, record) in enumerate(services.items(session, round_), start=1):
        last = (gettext("Agreed to weed") if with_opinion else (item.note or ""))
        rows.append([i, copy.accession_label, record.title, record.main_author or "",
                     record.publisher or "", record.year or "", int(copy.price or 0),
                     str(item.reason.label), last])
    return rows


def _item_total(session, round_):
    count, value = services.totals(session, round_)
    return ["", gettext("Total: %(n)d copies", n=count), "", "", "", "", int(value), "", ""]


def _members(round_):
    return services.parse_members(round_.committee_members)


def _legal_bases():
    return [gettext("Pursuant to the Library Law of 21 November 2019;"),
            gettext("Pursuant to Circular No. 02/2020/TT-BVHTTDL of 22 May 2020 of the "
                    "Minister of Culture, Sports and Tourism on library professional "
                    "operations;")]


def _reason_summary(session, round_):
    counts = {}
    for item, copy, _record in services.items(session, round_):
        n, v = counts.get(item.reason, (0, Decimal(0)))
        counts[item.reason] = (n + 1, v + Decimal(copy.price or 0))
    return [[i, str(reason.label), n, int(v)] for i, (reason, (n, v)) in
            enumerate(sorted(counts.items(), key=lambda kv: list(WeedingReason).index(kv[0])),
                      start=1)]


def build(session, round_, code, today=None):
    """The form `code` of the round, in Vietnamese."""
    if code not in FORMS:
        raise services.WeedingError(gettext("Unknown form."))
    with force_locale("vi"):
        return _BUILDERS[code](session, round_, today or local_today())


def _form_04(session, round_, today):
    doc = _base(session, round_, "04", gettext("LIST OF INFORMATION RESOURCES PROPOSED FOR "
                                               "WEEDING"), round_.proposed_on or today,
                landscape=True)
    doc.subtitle = gettext("Weeding round no. %(n)d: %(name)s", n=round_.number,
                           name=round_.name)
    count, value = services.totals(session, round_)
    held = services.holdings(session, round_.school_id) + (
        count if round_.status == RoundStatus.withdrawn else 0)
    doc.before = [gettext("Copies proposed: %(n)d of the %(held)d copies held; total value "
                          "%(value)s VND.", n=count, held=held, value=_money(value))]
    if round_.plan_note:
        doc.before.append(gettext("Weeding plan: %(plan)s", plan=round_.plan_note))
    doc.before += [gettext("Warning: %(text)s", text=w)
                   for w in services.warnings(session, round_, today)]
    doc.columns = _item_columns()
    doc.rows = _item_rows(session, round_)
    doc.total = _item_total(session, round_)
    doc.signatures = [(gettext("PRINCIPAL"), ""),
                      (gettext("LIBRARIAN (LIST DRAWN UP BY)"),
                       _person(session, round_.created_by_id))]
    return doc


def _form_05(session, round_, today):
    doc = _base(session, round_, "05", gettext("DECISION"), round_.committee_decision_date,
                number=round_.committee_decision_number)
    doc.subtitle = gettext("On the establishment of the committee appraising the information "
                           "resources proposed for weeding")
    count, value = services.totals(session, round_)
    doc.before = [gettext("PRINCIPAL OF %(school)s", school=round_.school.name.upper()),
                  *_legal_bases(),
                  gettext("At the proposal of the school librarian,"),
                  gettext("DECIDES:"),
                  gettext("Article 1. To establish the committee appraising the information "
                          "resources proposed for weeding of the school library, made up of "
                          "the following persons:")]
    doc.columns = [Column(gettext("No."), 5, "int"), Column(gettext("Full name"), 30),
                   Column(gettext("Position in the committee"), 30)]
    doc.rows = [[i, name, position] for i, (name, position) in
                enumerate(_members(round_), start=1)]
    doc.after = [
        gettext("Article 2. The committee appraises the list of %(n)d copies (total value "
                "%(value)s VND) proposed for weeding in round no. %(number)d, writes the "
                "minutes of its appraisal and proposes the disposal to the principal.",
                n=count, value=_money(value), number=round_.number),
        gettext("Article 3. This decision takes effect from the date of signing. The persons "
                "named in Article 1 and the school library are responsible for implementing "
                "it.")]
    doc.signatures = [(gettext("Recipients: as in Article 3; filed."), None),
                      (gettext("PRINCIPAL"), "")]
    return doc


def _chair_and_secretary(round_):
    members = _members(round_)
    chair = next((n for n, p in members if "chủ tịch" in p.lower() or "chair" in p.lower()),
                 members[0][0] if members else "")
    secretary = next((n for n, p in members if "thư ký" in p.lower()
                      or "secretary" in p.lower()), "")
    return chair, secretary


def _form_06a(session, round_, today):
    doc = _base(session, round_, "06a", gettext("MINUTES"), round_.appraisal_date)
    doc.subtitle = gettext("Of the meeting of the committee appraising the information "
                           "resources proposed for weeding")
    count, value = services.totals(session, round_)
    members = "; ".join(f"{n} ({p})" if p else n for n, p in _members(round_))
    doc.before = [
        gettext("Today, %(date)s, at %(school)s, the appraisal committee established by "
                "decision no. %(number)s of %(decision_date)s met to appraise the list of "
                "information resources proposed for weeding.",
                date=_date_words(round_.appraisal_date), school=round_.school.name,
                number=round_.committee_decision_number or "...",
                decision_date=format_date(round_.committee_decision_date)),
        gettext("Members present: %(members)s.", members=members or "..."),
        gettext("The committee examined %(n)d copies (total value %(value)s VND), by reason:",
                n=count, value=_money(value))]
    doc.columns = [Column(gettext("No."), 5, "int"), Column(gettext("Reason"), 40),
                   Column(gettext("Copies"), 10, "int"), Column(gettext("Value (VND)"), 16,
                                                                "money")]
    doc.rows = _reason_summary(session, round_)
    doc.total = ["", gettext("Total"), count, int(value)]
    doc.after = [gettext("Conclusion of the committee: %(text)s",
                         text=round_.appraisal_conclusion or gettext(
                             "the committee agrees to weed every copy of the attached list "
                             "and proposes it to the principal for approval.")),
                 gettext("The meeting ended on the same day; these minutes were read to the "
                         "members, who agreed with them.")]
    chair, secretary = _chair_and_secretary(round_)
    doc.signatures = [(gettext("SECRETARY"), secretary), (gettext("CHAIR OF THE COMMITTEE"),
                                                          chair)]
    return doc


def _form_06b(session, round_, today):
    doc = _base(session, round_, "06b", gettext("LIST OF INFORMATION RESOURCES APPRAISED BY "
                                                "THE COMMITTEE"), round_.appraisal_date,
                landscape=True)
    doc.subtitle = gettext("Attached to the minutes of the appraisal committee of %(date)s",
                           date=format_date(round_.appraisal_date))
    doc.columns = _item_columns(with_opinion=True)
    doc.rows = _item_rows(session, round_, with_opinion=True)
    doc.total = _item_total(session, round_)
    chair, secretary = _chair_and_secretary(round_)
    doc.signatures = [(gettext("SECRETARY"), secretary), (gettext("CHAIR OF THE COMMITTEE"),
                                                          chair)]
    return doc


def _decision_bases(round_):
    return [gettext("PRINCIPAL OF %(school)s", school=round_.school.name.upper()),
            *_legal_bases(),
            gettext("Pursuant to the minutes of the appraisal committee of %(date)s;",
                    date=format_date(round_.appraisal_date)),
            gettext("At the proposal of the school librarian,"), gettext("DECIDES:")]


def _approver(session, round_):
    return _person(session, round_.approved_by_id)


def _form_07a(session, round_, today):
    doc = _base(session, round_, "07a", gettext("DECISION"), round_.decision_date,
                number=round_.decision_number, landscape=True)
    doc.subtitle = gettext("On the approval of the list of information resources to be "
                           "weeded")
    count, value = services.totals(session, round_)
    doc.before = _decision_bases(round_) + [
        gettext("Article 1. To approve the list of %(n)d copies (total value %(value)s VND) "
                "to be weeded from the school library, as attached.", n=count,
                value=_money(value)),
        gettext("Article 2. The library displays the list publicly for 15 days at the "
                "library and on the school's website, from %(start)s to %(end)s; then writes "
                "“đã thanh lọc” and the number of this decision on the line of each copy in "
                "the individual register and in the catalogue.",
                start=format_date(round_.display_from) or "...",
                end=format_date(services.display_ends(round_)) or "..."),
        gettext("Article 3. This decision takes effect from the date of signing. The "
                "school library is responsible for implementing it."),
        gettext("LIST OF THE COPIES TO BE WEEDED")]
    doc.columns = _item_columns()
    doc.rows = _item_rows(session, round_)
    doc.total = _item_total(session, round_)
    doc.signatures = [(gettext("Recipients: as in Article 3; filed."), None),
                      (gettext("PRINCIPAL"), _approver(session, round_))]
    return doc


def _form_07b(session, round_, today):
    doc = _base(session, round_, "07b", gettext("DECISION"), round_.decision_date,
                number=round_.decision_number)
    method = (str(round_.disposal_method.label) if round_.disposal_method
              else gettext("Liquidation"))
    doc.subtitle = gettext("On the disposal of the weeded information resources")
    count, value = services.totals(session, round_)
    doc.before = _decision_bases(round_) + [
        gettext("Article 1. To dispose of the %(n)d weeded copies (total value %(value)s VND) "
                "listed in decision no. %(number)s, by: %(method)s.", n=count,
                value=_money(value), number=round_.decision_number or "...",
                method=method.lower()),
        gettext("Article 2. After the public display, the library withdraws the copies from "
                "the stock and records the withdrawal in Part II of the general register; "
                "the weeding dossier is kept for at least 5 years."),
        gettext("Article 3. This decision takes effect from the date of signing. The "
                "school library is responsible for implementing it."),
        gettext("Copies by reason:")]
    doc.columns = [Column(gettext("No."), 5, "int"), Column(gettext("Reason"), 40),
                   Column(gettext("Copies"), 10, "int"),
                   Column(gettext("Value (VND)"), 16, "money")]
    doc.rows = _reason_summary(session, round_)
    doc.total = ["", gettext("Total"), count, int(value)]
    doc.signatures = [(gettext("Recipients: as in Article 3; filed."), None),
                      (gettext("PRINCIPAL"), _approver(session, round_))]
    return doc


_BUILDERS = {"04": _form_04, "05": _form_05, "06a": _form_06a, "06b": _form_06b,
             "07a": _form_07a, "07b": _form_07b}


def register_document(session, school, today=None):
    """Part II of the general register (xuất kho) of a school."""
    today = today or local_today()
    with force_locale("vi"):
        doc = Document(
            code="register2", form_label="", managing_body=_managing_body(session, school),
            school_name=school.name.upper(), number_line="",
            place_date=f"{_place(school)}, {_date_words(today)}",
            title=gettext("GENERAL REGISTER – PART II: WITHDRAWALS"), landscape=True,
            filename=f"so-dang-ky-tong-quat-phan-2-{school.code}")
        reasons = list(WeedingReason)
        doc.columns = ([Column(gettext("Date of withdrawal"), 12), Column(gettext("No."), 6,
                                                                           "int"),
                        Column(gettext("Document no. and date"), 24),
                        Column(gettext("Copies"), 9, "int"),
                        Column(gettext("Value (VND)"), 14, "money")]
                       + [Column(str(r.label), 12, "int") for r in reasons]
                       + [Column(gettext("By document type"), 22), Column(gettext("Note"), 20)])
        total_copies, total_value = 0, 0
        for line, by_reason, by_type in services.register_part_two(session, school.id):
            doc.rows.append(
                [roman_date(line.withdrawn_on), line.register_number,
                 f"{line.document_number}, {format_date(line.document_date)}",
                 line.copies_count, int(line.total_value or 0)]
                + [by_reason.get(r, 0) or "" for r in reasons]
                + [", ".join(f"{code or '?'}: {n}" for code, n in sorted(by_type.items())),
                   line.note or ""])
            total_copies += line.copies_count
            total_value += int(line.total_value or 0)
        doc.total = (["", "", gettext("Total"), total_copies, total_value]
                     + [""] * (len(reasons) + 2))
        doc.signatures = [(gettext("LIBRARIAN"), ""), (gettext("PRINCIPAL"), "")]
        return doc


# --- Excel --------------------------------------------------------------------------------

def to_xlsx(doc):
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False,
                                        "strings_to_formulas": False, "strings_to_urls": False})
    base = {"font_name": "Times New Roman", "font_size": 12}
    fmt = {name: book.add_format({**base, **spec}) for name, spec in {
        "center": {"align": "center", "valign": "vcenter", "text_wrap": True},
        "center_bold": {"align": "center", "valign": "vcenter", "bold": True,
                        "text_wrap": True},
        "center_italic": {"align": "center", "italic": True},
        "motto": {"align": "center", "bold": True, "underline": 1},
        "title": {"align": "center", "valign": "vcenter", "bold": True, "font_size": 14,
                  "text_wrap": True},
        "subtitle": {"align": "center", "valign": "vcenter", "bold": True, "text_wrap": True},
        "para": {"text_wrap": True, "valign": "top"},
        "form": {"align": "right", "italic": True, "font_size": 10},
        "th": {"bold": True, "border": 1, "align": "center", "valign": "vcenter",
               "text_wrap": True, "bg_color": "#F2F2F2"},
        "td": {"border": 1, "valign": "top", "text_wrap": True},
        "td_int": {"border": 1, "valign": "top", "align": "center"},
        "td_money": {"border": 1, "valign": "top", "num_format": "#,##0"},
        "tot": {"border": 1, "bold": True, "text_wrap": True},
        "tot_money": {"border": 1, "bold": True, "num_format": "#,##0"},
    }.items()}
    sheet = book.add_worksheet(re.sub(r"[\[\]:*?/\\]", "-",
                                      doc.form_label.split(" (")[0] or doc.title)[:31])
    sheet.set_paper(9)  # A4
    if doc.landscape:
        sheet.set_landscape()
    else:
        sheet.set_portrait()
    sheet.set_margins(left=0.6, right=0.5, top=0.6, bottom=0.6)
    sheet.fit_to_pages(1, 0)
    sheet.hide_gridlines(2)
    columns = doc.columns or [Column("", 15)] * 6
    ncols = max(len(columns), 6)
    for i in range(ncols):
        sheet.set_column(i, i, columns[i].width if i < len(columns) else 12)
    split = max(ncols // 2 - 1, 1)  # left block 0..split-1 ; right block split..ncols-1

    def both(row, left, right, lfmt, rfmt):
        _merge(sheet, row, 0, split - 1, left, fmt[lfmt])
        _merge(sheet, row, split, ncols - 1, right, fmt[rfmt])

    row = 0
    if doc.form_label:
        _merge(sheet, row, 0, ncols - 1, doc.form_label, fmt["form"])
        row += 1
    fixed = fixed_texts()
    both(row, doc.managing_body, fixed["nation"], "center", "center_bold")
    row += 1
    both(row, doc.school_name, fixed["motto"], "center_bold", "motto")
    row += 1
    both(row, doc.number_line, doc.place_date, "center", "center_italic")
    row += 2
    sheet.set_row(row, 22)
    _merge(sheet, row, 0, ncols - 1, doc.title, fmt["title"])
    row += 1
    if doc.subtitle:
        sheet.set_row(row, _height(doc.subtitle, ncols * 11))
        _merge(sheet, row, 0, ncols - 1, doc.subtitle, fmt["subtitle"])
        row += 1
    row += 1
    width = sum(c.width for c in columns)
    for text in doc.before:
        sheet.set_row(row, _height(text, width))
        # "HIỆU TRƯỞNG ...", "QUYẾT ĐỊNH:": the headings of a decision, centred and bold.
        _merge(sheet, row, 0, ncols - 1, text,
               fmt["center_bold" if text == text.upper() else "para"])
        row += 1
    if doc.columns:
        row += 1
        sheet.set_row(row, 32)
        for i, col in enumerate(doc.columns):
            sheet.write_string(row, i, col.label, fmt["th"])
        row += 1
        for values in doc.rows:
            for i, (col, value) in enumerate(zip(doc.columns, values)):
                _cell(sheet, row, i, col, value, fmt, total=False)
            row += 1
        if doc.total:
            for i, (col, value) in enumerate(zip(doc.columns, doc.total)):
                _cell(sheet, row, i, col, value, fmt, total=True)
            row += 1
    if doc.after:
        row += 1
    for text in doc.after:
        sheet.set_row(row, _height(text, width))
        _merge(sheet, row, 0, ncols - 1, text, fmt["para"])
        row += 1
    row += 1
    blocks = [(0, split - 1), (split, ncols - 1)]
    for (title, name), (first, last) in zip(doc.signatures[-2:], blocks[-len(doc.signatures):]):
        if name is None:  # "Nơi nhận" on the left
            _merge(sheet, row, first, last, title, fmt["para"])
            continue
        _merge(sheet, row, first, last, title, fmt["center_bold"])
        _merge(sheet, row + 1, first, last, fixed["signature_hint"],
               fmt["center_italic"])
        _merge(sheet, row + 5, first, last, name or "", fmt["center_bold"])
    book.close()
    return buffer.getvalue()


def fixed_texts():
    """The national header and the signature hint, in Vietnamese (forms are official)."""
    with force_locale("vi"):
        return {"nation": gettext("SOCIALIST REPUBLIC OF VIET NAM"),
                "motto": gettext("Independence - Freedom - Happiness"),
                "signature_hint": gettext("(Signature, full name)")}


def _merge(sheet, row, first, last, value, cell_format):
    if last > first:
        sheet.merge_range(row, first, row, last, value, cell_format)
    else:
        sheet.write(row, first, value, cell_format)


def _height(text, width_chars):
    lines = max(1, -(-len(text) * 12 // max(width_chars * 10, 1)))
    return 16 * lines + 2


def _cell(sheet, row, col, column, value, fmt, total):
    if value == "" or value is None:
        sheet.write_blank(row, col, None, fmt["tot" if total else "td"])
    elif column.kind in ("int", "money") and isinstance(value, (int, Decimal)):
        name = ("tot_money" if total else "td_money") if column.kind == "money" else (
            "tot" if total else "td_int")
        sheet.write_number(row, col, int(value), fmt[name])
    else:
        sheet.write_string(row, col, str(value), fmt["tot" if total else "td"])


def safe_filename(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
