"""The official layout of the registers (sổ sách), shared by the Excel files and the printed pages.

A register is described once (`Register` → `Sheet` → `Section` → rows of plain values) by a
provider (app.registers.providers) and written here:

- the administrative header: the managing body ("SỞ GD&ĐT ..." / "PHÒNG GD&ĐT ...") and the
  school on the left, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM / Độc lập - Tự do - Hạnh phúc" on the
  right; the title, the period; the column headers (two rows when columns are grouped);
  the rows, a totals line per section; the signature block (người lập, hiệu trưởng);
- A4 portrait or landscape per register, header rows repeated on every printed page, fitted
  to the page width, Times New Roman (a Vietnamese-capable font) in every cell;
- dates in the traditional style ("26.XI.2025") where the register uses it (`roman_date`,
  the one place that writes them).

Excel: xlsxwriter in constant_memory mode (rows flushed to disk as they are written, into
a temporary file), so a 50,000-copy register is written with a constant, small memory.
"""
import dataclasses
import datetime
import re
import tempfile
import types
from decimal import Decimal
from typing import Iterable, List, Optional

import xlsxwriter
from flask_babel import gettext

from app.core.i18n import format_date

FONT = "Times New Roman"
ROMAN_MONTHS = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
MAX_PAGE_BREAKS = 1023  # Excel's limit of manual page breaks per sheet
A4 = 9  # xlsxwriter paper code


def roman_date(value):
    """The traditional register date: day, month in Roman numerals, year: "26.XI.2025"."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        value = value.date()
    return f"{value.day}.{ROMAN_MONTHS[value.month - 1]}.{value.year}"


def money_text(value):
    """125000 -> "125.000" (Vietnamese thousands separator)."""
    if value is None or value == "":
        return ""
    return f"{int(value):,}".replace(",", ".")


@dataclasses.dataclass(frozen=True)
class Period:
    """The dates a register covers, both ends inclusive; None = open on that side."""

    start: Optional[datetime.date] = None
    end: Optional[datetime.date] = None

    @property
    def is_open(self):
        return self.start is None and self.end is None

    def contains(self, day):
        if day is None:
            return self.is_open
        return ((self.start is None or day >= self.start)
                and (self.end is None or day <= self.end))

    def text(self):
        if self.start and self.end:
            return gettext("From %(start)s to %(end)s", start=format_date(self.start),
                           end=format_date(self.end))
        if self.start:
            return gettext("From %(start)s", start=format_date(self.start))
        if self.end:
            return gettext("Up to %(end)s", end=format_date(self.end))
        return gettext("Whole register")


@dataclasses.dataclass
class Column:
    """One column: `kind` says how values are written: text, int, money, date (dd/mm/yyyy),
    rdate (a date in the traditional Roman-numeral style). `total`: summed on the totals
    line. `group`: a label spanning consecutive columns of the same group (two header rows)."""

    label: str
    width: float = 12
    kind: str = "text"
    total: bool = False
    group: Optional[str] = None


class Section:
    """A block of rows under an optional heading (a class, a teacher, a title and volume):
    a new printed page when `page_break` is set. Iterating it sums the total columns."""

    def __init__(self, rows: Iterable, heading: str = None, heading_right: str = None,
                 page_break: bool = False, totals: bool = True, total_label: str = None,
                 emphasis: bool = False, details: Iterable[str] = ()):
        self._rows = rows
        # Lines under the heading, before the rows (a periodical's issuing body, frequency,
        # subscription price).
        self.details = list(details)
        self.emphasis = emphasis  # rows in bold red: the "Hiện còn đến ..." balance line
        self.heading = heading
        self.heading_right = heading_right
        self.page_break = page_break
        self.show_totals = totals
        self.total_label = total_label
        self.sums = None
        self.count = 0

    def rows(self, columns):
        self.sums = [Decimal(0) if c.total else None for c in columns]
        self.count = 0
        for row in self._rows:
            self.count += 1
            for i, column in enumerate(columns):
                if column.total and row[i] not in (None, ""):
                    self.sums[i] += Decimal(row[i])
            yield row


@dataclasses.dataclass
class Sheet:
    """One sheet of the Excel file / one part of the printed register."""

    name: str
    columns: List[Column]
    sections: Iterable[Section]
    heading: Optional[str] = None  # "PHẦN I – NHẬP KHO"
    empty_text: Optional[str] = None  # shown on the page when the part has no line
    note: Optional[str] = None  # a line under the heading (where the data will come from)


@dataclasses.dataclass
class Register:
    key: str
    title: str
    subtitle: Optional[str]
    period: Period
    sheets: List[Sheet]
    landscape: bool = True
    filename: str = "register"
    period_text: Optional[str] = None  # instead of the period (catalogues: "held on ...")

    def period_line(self):
        return self.period_text or self.period.text()


@dataclasses.dataclass
class Letterhead:
    """The administrative header and the signature block of one school's registers."""

    authority: str  # "SỞ GD&ĐT TP. HỒ CHÍ MINH", "PHÒNG GD&ĐT QUẬN 1"
    school: str  # "TRƯỜNG THCS NGUYỄN DU"
    signed_on: datetime.date


_SHORT_NAMES = [
    (re.compile(r"^(Sở|Phòng) Giáo dục và Đào tạo\s*", re.I), r"\1 GD&ĐT "),
    (re.compile(r"Thành phố Hồ Chí Minh", re.I), "TP. Hồ Chí Minh"),
]


def authority_name(name):
    """'Sở Giáo dục và Đào tạo Thành phố Hồ Chí Minh' -> 'SỞ GD&ĐT TP. HỒ CHÍ MINH'."""
    text = name or ""
    for pattern, short in _SHORT_NAMES:
        text = pattern.sub(short, text)
    return " ".join(text.split()).upper()


def letterhead(session, school, on=None, signed_on=None):
    """The header of a school's registers: its managing unit in the administrative tree on
    `on` (the end of the period: a register of 2024 names the district office of 2024),
    signed on `signed_on` (today in Vietnam by default)."""
    from app.core.i18n import local_today
    from app.org.services import parent_at

    today = local_today()
    on = min(on or today, today)
    parent = parent_at(session, school.id, on)
    for day in (school.valid_to, today):
        # A school placed only after `on` (or closed before it): its nearest placement.
        if parent is None and day is not None:
            parent = parent_at(session, school.id, day)
    return Letterhead(authority=authority_name(parent.name) if parent else "",
                      school=school.name.upper(), signed_on=signed_on or today)


def signature_date_text(day):
    return gettext("Date: day %(day)s month %(month)s year %(year)s", day=f"{day.day:02d}",
                   month=f"{day.month:02d}", year=day.year)


def display_value(column, value):
    """A value as the printed page shows it."""
    if value is None:
        return ""
    if column.kind == "rdate":
        return roman_date(value) if isinstance(value, datetime.date) else str(value)
    if column.kind == "date":
        return format_date(value) if isinstance(value, datetime.date) else str(value)
    if column.kind == "money":
        return money_text(value) if isinstance(value, (int, Decimal, float)) else str(value)
    if column.kind == "int":
        return str(int(value)) if isinstance(value, (int, Decimal, float)) else str(value)
    return str(value)


def header_rows(columns):
    """The column header as rows of (label, colspan, rowspan) cells (None = covered)."""
    grouped = any(c.group for c in columns)
    if not grouped:
        return [[(c.label, 1, 1) for c in columns]]
    top, bottom = [], []
    i = 0
    while i < len(columns):
        group = columns[i].group
        if not group:
            top.append((columns[i].label, 1, 2))
            i += 1
            continue
        j = i
        while j < len(columns) and columns[j].group == group:
            bottom.append((columns[j].label, 1, 1))
            j += 1
        top.append((group, j - i, 1))
        i = j
    return [top, bottom]


# --- Excel -------------------------------------------------------------------------------

class _Formats:
    def __init__(self, book):
        base = {"font_name": FONT, "font_size": 11}

        def add(**props):
            return book.add_format({**base, **props})

        self.authority = add(align="center", valign="vcenter")
        self.school = add(bold=True, align="center", valign="vcenter")
        self.nation = add(bold=True, align="center", valign="vcenter")
        self.motto = add(bold=True, underline=1, align="center", valign="vcenter")
        self.title = add(bold=True, font_size=14, align="center", valign="vcenter")
        self.subtitle = add(bold=True, font_size=12, align="center", valign="vcenter")
        self.period = add(italic=True, align="center", valign="vcenter")
        self.part = add(bold=True, font_size=12)
        self.note = add(italic=True, font_size=10)
        self.detail = add()
        self.heading = add(bold=True, font_size=12)
        self.heading_right = add(bold=True, font_size=12, align="right")
        self.header = add(bold=True, align="center", valign="vcenter", text_wrap=True, border=1)
        self._cells(self, add)
        # The balance line ("Hiện còn đến ..."), traditionally written in red.
        self.emphasis = types.SimpleNamespace()
        self._cells(self.emphasis, add, bold=True, font_color="#C00000")
        self.total_label = add(bold=True, border=1)
        self.total_int = add(bold=True, border=1, num_format="0", align="center")
        self.total_money = add(bold=True, border=1, num_format="#,##0")
        self.total_blank = add(border=1)
        self.sign_date = add(italic=True, align="center")
        self.sign_role = add(bold=True, align="center")
        self.sign_hint = add(italic=True, align="center", font_size=10)
        self.plain = add()

    @staticmethod
    def _cells(target, add, **extra):
        cell = dict(border=1, valign="top", **extra)
        target.text = add(text_wrap=True, **cell)
        target.int = add(num_format="0", align="center", **cell)
        target.money = add(num_format="#,##0", **cell)
        target.date = add(num_format="dd/mm/yyyy", align="center", **cell)
        target.rdate = add(align="center", **cell)


def _sheet_name(text, used):
    name = re.sub(r"[\[\]:*?/\\]", "-", str(text))[:31] or "Sheet"
    base, n = name, 1
    while name.lower() in used:
        n += 1
        name = f"{base[:28]}-{n}"
    used.add(name.lower())
    return name


def _cell_writers(ws, columns, fmt):
    """One function per column writing a value in its column's style. They call the
    worksheet's unwrapped writers (xlsxwriter's public ones only add cell-reference
    parsing: a third of the time of a 50,000-line register)."""
    write_string = getattr(ws, "_write_string", ws.write_string)
    write_number = getattr(ws, "_write_number", ws.write_number)
    write_blank = getattr(ws, "_write_blank", ws.write_blank)
    write_datetime = getattr(ws, "_write_datetime", ws.write_datetime)
    midnight = datetime.time()

    def writer(column):
        kind = column.kind
        text_format = fmt.text
        if kind == "date":
            def write(row, col, value):
                if isinstance(value, datetime.date):
                    write_datetime(row, col, datetime.datetime.combine(value, midnight),
                                   fmt.date)
                else:
                    write_string(row, col, str(value), text_format)
        elif kind == "rdate":
            def write(row, col, value):
                write_string(row, col, roman_date(value) if isinstance(value, datetime.date)
                             else str(value), fmt.rdate)
        elif kind in ("int", "money"):
            number_format = getattr(fmt, kind)

            def write(row, col, value):
                if isinstance(value, Decimal):
                    write_number(row, col, float(value), number_format)
                elif isinstance(value, (int, float)):
                    write_number(row, col, value, number_format)
                else:
                    write_string(row, col, str(value), text_format)
        else:
            def write(row, col, value):
                write_string(row, col, value if isinstance(value, str) else str(value),
                             text_format)

        def write_or_blank(row, col, value):
            if value is None or value == "":
                write_blank(row, col, None, text_format)
            else:
                write(row, col, value)
        return write_or_blank

    return [writer(c) for c in columns]


def _centered(ws, row, first, last, text, fmt):
    if last > first:
        ws.merge_range(row, first, row, last, text, fmt)
    else:
        ws.write_string(row, first, text, fmt)


def write_excel(register, head, target=None):
    """Write `register` as an .xlsx into `target` (a path or a binary file object; a new
    temporary file by default) and return it. Rows are streamed (constant_memory)."""
    if target is None:
        target = tempfile.TemporaryFile(suffix=".xlsx")
    book = xlsxwriter.Workbook(target, {
        "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
        "strings_to_urls": False, "default_format_properties": {"font_name": FONT,
                                                                 "font_size": 11}})
    fmt = _Formats(book)
    used = set()
    for sheet in register.sheets:
        _write_sheet(book, fmt, register, head, sheet, _sheet_name(sheet.name, used))
    book.close()
    if hasattr(target, "seek"):
        target.seek(0)
    return target


def _write_sheet(book, fmt, register, head, sheet, name):
    ws = book.add_worksheet(name)
    columns = sheet.columns
    last = len(columns) - 1
    for col, column in enumerate(columns):
        ws.set_column(col, col, column.width)
    # The header block: left half the managing body and the school, right half the nation.
    split = max((last + 1) // 2 - 1, 0)
    right = min(split + 1, last)
    row = 0
    _centered(ws, row, 0, split, head.authority, fmt.authority)
    _centered(ws, row, right, last, gettext("SOCIALIST REPUBLIC OF VIET NAM"), fmt.nation)
    row = 1
    _centered(ws, row, 0, split, head.school, fmt.school)
    _centered(ws, row, right, last, gettext("Independence - Freedom - Happiness"), fmt.motto)
    row = 3
    ws.set_row(row, 22)
    _centered(ws, row, 0, last, register.title.upper(), fmt.title)
    if register.subtitle:
        row += 1
        _centered(ws, row, 0, last, register.subtitle, fmt.subtitle)
    row += 1
    _centered(ws, row, 0, last, register.period_line(), fmt.period)
    if sheet.heading:
        row += 2
        ws.write_string(row, 0, sheet.heading, fmt.part)
    if sheet.note:
        row += 1
        ws.write_string(row, 0, sheet.note, fmt.note)
    row += 2
    # Column headers (repeated on every printed page).
    first_header = row
    layout = header_rows(columns)
    tall = []  # header cells spanning both rows, merged once both rows are written
    covered = set()
    for r, cells in enumerate(layout):
        # Row by row (constant_memory flushes a row as soon as a later row is written):
        # a cell spanning both rows is written on the first and blanked on the second.
        col = 0
        for label, colspan, rowspan in cells:
            while (r, col) in covered:
                ws.write_blank(row + r, col, None, fmt.header)
                col += 1
            if colspan > 1:
                ws.merge_range(row + r, col, row + r, col + colspan - 1, label, fmt.header)
            else:
                ws.write_string(row + r, col, label, fmt.header)
            if rowspan > 1:
                tall.append(col)
                for dr in range(1, rowspan):
                    covered.add((r + dr, col))
            col += colspan
        while (r, col) in covered:
            ws.write_blank(row + r, col, None, fmt.header)
            col += 1
    for col in tall:
        # merge_range would write the second row's blank cell out of order: record the
        # merged area directly (the cells themselves are already written).
        ws.merge.append([row, col, row + len(layout) - 1, col])
    row += len(layout)
    ws.repeat_rows(first_header, row - 1)
    breaks = []
    plain_writers = _cell_writers(ws, columns, fmt)
    emphasis_writers = None
    for section in sheet.sections:
        writers = plain_writers
        if section.emphasis:
            emphasis_writers = emphasis_writers or _cell_writers(ws, columns, fmt.emphasis)
            writers = emphasis_writers
        if section.heading or section.heading_right:
            if section.page_break and row > first_header + len(layout):
                if len(breaks) < MAX_PAGE_BREAKS:
                    breaks.append(row)
            if section.heading:
                ws.write_string(row, 0, section.heading, fmt.heading)
            if section.heading_right:
                ws.write_string(row, last, section.heading_right, fmt.heading_right)
            row += 1
        for line in section.details:
            ws.write_string(row, 0, line, fmt.detail)
            row += 1
        for values in section.rows(columns):
            for col, write in enumerate(writers):
                write(row, col, values[col])
            row += 1
        if section.show_totals and any(c.total for c in columns):
            label_done = False
            for col, column in enumerate(columns):
                if column.total:
                    ws.write_number(row, col, float(section.sums[col]),
                                    fmt.total_money if column.kind == "money" else fmt.total_int)
                elif not label_done:
                    ws.write_string(row, col, section.total_label or gettext("Total"),
                                    fmt.total_label)
                    label_done = True
                else:
                    ws.write_blank(row, col, None, fmt.total_blank)
            row += 1
    # Signature block.
    row += 1
    _centered(ws, row, right, last, signature_date_text(head.signed_on), fmt.sign_date)
    row += 1
    _centered(ws, row, 0, split, gettext("PREPARED BY"), fmt.sign_role)
    _centered(ws, row, right, last, gettext("PRINCIPAL"), fmt.sign_role)
    row += 1
    _centered(ws, row, 0, split, gettext("(signature and full name)"), fmt.sign_hint)
    _centered(ws, row, right, last, gettext("(signature, full name and seal)"), fmt.sign_hint)
    # Page set-up: A4, header rows repeated, fitted to the page width, page numbers.
    ws.set_paper(A4)
    if register.landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    ws.set_margins(left=0.5, right=0.4, top=0.6, bottom=0.6)
    ws.fit_to_pages(1, 0)
    ws.set_footer("&C&P / &N")
    ws.freeze_panes(first_header + len(layout), 0)
    if breaks:
        ws.set_h_pagebreaks(breaks)
    return ws

