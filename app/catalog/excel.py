"""The catalogue in Excel: exports (records, copies), the import template, the import.

Plain functions taking the session and the school explicitly (no request): the views, the
CLI and the tests call them.

Import in two steps: `parse_import` reads and checks every row (nothing is written) and
`apply_import` creates the records and their copies of the valid rows; the caller commits
once (one transaction) or rolls back.
"""
import dataclasses
import datetime
import io
import re
import unicodedata
from decimal import Decimal

import xlsxwriter
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.catalog.models import AuthorRole, DocumentType, ROLE_WORDS, Record
from app.catalog.services import compute_call_number, hyphenate_isbn, normalise_isbn
from app.collection.models import AccessionSeries, Copy, Intake, Location
from app.collection.services import MAX_COPIES_AT_ONCE, add_copies, ensure_library
from app.core.errors import ValidationError
from app.core.i18n import collate, fold

MAX_ROWS = 5000
MAX_SCANNED_ROWS = 50000  # empty rows included
MAX_BYTES = 5 * 1024 * 1024


# --- Columns of the import template ------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Column:
    key: str
    label: object  # lazy msgid: the header in the user's language
    aliases: tuple  # other accepted headers, folded (Vietnamese without accents, English)
    help: object
    example: object = None
    required: bool = False
    width: int = 16
    max_length: int = None

    def header(self):
        return f"{self.label}*" if self.required else str(self.label)


COLUMNS = [
    Column("title", _l("Title"), ("nhan de", "ten sach", "title"),
           _l("Required. The title as printed on the title page."),
           "Tôi thấy hoa vàng trên cỏ xanh", required=True, width=40, max_length=500),
    Column("authors", _l("Authors"), ("tac gia", "authors", "author"),
           _l("One author per line (Alt+Enter in Excel) or separated by “;”. A role may "
              "follow a name after “;”: “Lê Văn A; dịch” (chủ biên, biên soạn, dịch, minh "
              "họa)."), "Nguyễn Nhật Ánh", width=28),
    Column("publisher", _l("Publisher"), ("nha xuat ban", "nxb", "publisher"),
           _l("The publisher's name."), "Nhà xuất bản Trẻ", width=26, max_length=200),
    Column("place", _l("Place of publication"), ("noi xuat ban", "place of publication"),
           _l("City of publication."), "TP. Hồ Chí Minh", width=18, max_length=120),
    Column("year", _l("Year of publication"), ("nam xuat ban", "nam", "year",
                                                "year of publication"),
           _l("A year of four digits, e.g. 2018."), 2018, width=10),
    Column("pages", _l("Pages"), ("so trang", "pages"),
           _l("As printed, e.g. “378 tr.”."), "378 tr.", width=10, max_length=60),
    Column("size_cm", _l("Size (cm)"), ("kho (cm)", "kho cm", "size (cm)"),
           _l("Height of the book in whole centimetres, e.g. 20."), 20, width=9),
    Column("isbn", _l("ISBN"), ("isbn",),
           _l("ISBN-10 or ISBN-13, with or without hyphens (the check digit is verified)."),
           "978-604-1-00012-4", width=20),
    Column("price", _l("Price (VND)"), ("gia tien (dong)", "gia tien", "gia", "price",
                                        "price (vnd)"),
           _l("Price in đồng, digits only, e.g. 125000."), 125000, width=12),
    Column("language", _l("Language"), ("ngon ngu", "language"),
           _l("MARC code such as vie, eng, fra (or “Tiếng Việt”, “Tiếng Anh”...); empty: "
              "vie."), "vie", width=10),
    Column("document_type", _l("Document type"), ("loai tai lieu", "document type"),
           _l("Code or name of a document type (list below)."), "STN", width=14),
    Column("class_number", _l("Class number"), ("ky hieu phan loai", "class number"),
           _l("Class number in your school's classification scheme, e.g. 895.9223."),
           "895.9223", width=14, max_length=30),
    Column("summary", _l("Summary"), ("tom tat", "summary"),
           _l("A short summary of the content."), None, width=30),
    Column("subjects", _l("Subjects / keywords"), ("chu de / tu khoa", "tu khoa", "chu de",
                                                   "keywords", "subjects / keywords"),
           _l("Keywords separated by “;”."), "tuổi thơ; làng quê", width=24,
           max_length=1000),
    Column("count", _l("Number of copies"), ("so ban", "so luong", "number of copies"),
           _l("Copies to add, each with the next accession number of its register; empty: "
              "the record only."), 2, width=9),
    Column("series", _l("Accession register"), ("so dang ky", "so dkcb", "accession register",
                                                "accession series"),
           _l("Code of one of your school's accession registers (list below); empty: the "
              "usual register of the document type."), "STN", width=12),
    Column("location", _l("Shelving location"), ("kho/vi tri xep gia", "kho", "vi tri",
                                                 "shelving location", "location"),
           _l("Code of one of your school's shelving locations (list below)."), "KM",
           width=12),
]
BY_KEY = {c.key: c for c in COLUMNS}
# The column added to the rejected rows' file: ignored when that file is imported again.
REASON_ALIASES = ("ly do", "reason")

LANGUAGES = {
    "tieng viet": "vie", "viet": "vie", "vietnamese": "vie",
    "tieng anh": "eng", "anh": "eng", "english": "eng",
    "tieng phap": "fra", "phap": "fra", "french": "fra",
    "tieng trung": "chi", "trung": "chi", "tieng hoa": "chi", "chinese": "chi",
    "tieng nga": "rus", "nga": "rus", "russian": "rus",
    "tieng nhat": "jpn", "nhat": "jpn", "japanese": "jpn",
    "tieng han": "kor", "han": "kor", "korean": "kor",
    "tieng duc": "ger", "duc": "ger", "german": "ger",
}


def normalise_header(value):
    return " ".join(fold(_text(value)).replace("*", " ").split())


def _text(value):
    """A cell as text: NFC, stripped; whole numbers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFC", str(value)).strip()


def header_keys():
    keys = {}
    for column in COLUMNS:
        for name in (str(column.label), column.header(), *column.aliases):
            keys.setdefault(normalise_header(name), column.key)
    return keys


# --- Parsing ---------------------------------------------------------------------------

@dataclasses.dataclass
class Problem:
    column: str  # the column's header as the user knows it
    message: str

    def __str__(self):
        return self.message


@dataclasses.dataclass
class ImportRow:
    number: int  # row number in the sheet (the header is row 1)
    raw: list  # the cells as read, in the file's column order
    data: dict = dataclasses.field(default_factory=dict)
    problems: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def messages(self):
        return [row_message(self.number, p) for p in self.problems]

    def reasons(self):
        """The problems without the row number (for the rejected rows' file)."""
        return [gettext("Column “%(column)s”: %(problem)s", column=p.column, problem=p.message)
                for p in self.problems]


@dataclasses.dataclass
class ImportResult:
    headers: list = dataclasses.field(default_factory=list)  # as in the file
    rows: list = dataclasses.field(default_factory=list)
    errors: list = dataclasses.field(default_factory=list)  # the whole file is refused
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def valid_rows(self):
        return [r for r in self.rows if r.ok]

    @property
    def invalid_rows(self):
        return [r for r in self.rows if not r.ok]


def row_message(number, problem):
    return gettext("Row %(row)d, column “%(column)s”: %(problem)s", row=number,
                   column=problem.column, problem=problem.message)


class Reference:
    """What a row may refer to: document types (city-wide), the school's registers and
    shelving locations. Loaded once per import."""

    def __init__(self, session, school):
        self.school = school
        self.types = session.execute(select(DocumentType).order_by(DocumentType.code)
                                     ).scalars().all()
        self.series = session.execute(select(AccessionSeries).where(
            AccessionSeries.school_id == school.id).order_by(AccessionSeries.code)
        ).scalars().all()
        self.locations = session.execute(select(Location).where(
            Location.school_id == school.id, Location.is_active.is_(True))
            .order_by(Location.code)).scalars().all()
        self._types = {}
        for t in self.types:
            self._types.setdefault(fold(t.code), t)
            self._types.setdefault(" ".join(fold(t.name).split()), t)
        self._series = {s.code.upper(): s for s in self.series}
        self._locations = {loc.code.upper(): loc for loc in self.locations}

    def document_type(self, text):
        return self._types.get(" ".join(fold(text).split()))

    def series_by_code(self, code):
        return self._series.get((code or "").strip().upper())

    def location(self, code):
        return self._locations.get((code or "").strip().upper())


def read_workbook(data):
    """The bytes of an upload -> an openpyxl workbook, or a ValidationError in words."""
    import openpyxl

    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise ValidationError(_l("The file is in the old Excel 97–2003 format (.xls). Open it "
                                 "in Excel and save it as an Excel workbook (.xlsx), then "
                                 "upload it again."), field="file")
    if len(data) > MAX_BYTES:
        raise ValidationError(_l("The file is too large (at most %(mb)d MB)."), field="file",
                              mb=MAX_BYTES // (1024 * 1024))
    not_excel = ValidationError(_l("The file is not an Excel workbook (.xlsx). Download the "
                                   "template, fill it in and upload it again."), field="file")
    if data[:4] != b"PK\x03\x04":
        raise not_excel
    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # BadZipFile, KeyError, ValueError...: a damaged or foreign zip
        raise not_excel from None


def _find_sheet(workbook, keys):
    """The first sheet whose first row has the title column (else the first sheet)."""
    title_key = "title"
    for sheet in workbook.worksheets:
        first = next(sheet.iter_rows(min_row=1, max_row=1, values_only=True), ())
        if any(keys.get(normalise_header(v)) == title_key for v in first):
            return sheet
    return workbook.worksheets[0] if workbook.worksheets else None


def parse_import(data, session, school):
    """Read an uploaded workbook (bytes) and check every row against the school's data.

    Returns an ImportResult: `errors` refuse the whole file (not Excel, missing columns,
    too many rows); otherwise each row has its `problems` (row, column, what is wrong).
    """
    result = ImportResult()
    try:
        workbook = read_workbook(data)
    except ValidationError as error:
        result.errors.append(str(error))
        return result
    try:
        return _parse_workbook(workbook, session, school, result)
    finally:
        workbook.close()


def _parse_workbook(workbook, session, school, result):
    keys = header_keys()
    sheet = _find_sheet(workbook, keys)
    rows = sheet.iter_rows(values_only=True) if sheet is not None else iter(())
    header = list(next(rows, ()) or ())
    while header and _text(header[-1]) == "":
        header.pop()
    result.headers = [_text(h) for h in header]
    positions = {}
    for index, cell in enumerate(header):
        name = normalise_header(cell)
        if not name or name in REASON_ALIASES:
            continue
        key = keys.get(name)
        if key is None:
            result.warnings.append(gettext("The column “%(column)s” is not part of the "
                                           "template: it is ignored.", column=_text(cell)))
        elif key in positions:
            result.warnings.append(gettext("The column “%(column)s” appears twice: only the "
                                           "first one is read.", column=_text(cell)))
        else:
            positions[key] = index
    missing = [c.header() for c in COLUMNS if c.required and c.key not in positions]
    if missing:
        result.errors.append(gettext(
            "The header row (row 1) lacks the required column(s): %(columns)s. Keep the "
            "header row of the template.", columns=", ".join(missing)))
        return result
    reference = Reference(session, school)
    example = [_text(c.example) for c in COLUMNS]
    for number, cells in enumerate(rows, start=2):
        if number > MAX_SCANNED_ROWS:  # a sheet of a million empty or formatted rows
            result.errors.append(gettext("At most %(n)d rows can be imported at a time: split "
                                         "the file.", n=MAX_ROWS))
            result.rows = []
            return result
        cells = list(cells or ())
        values = {key: cells[i] if i < len(cells) else None for key, i in positions.items()}
        if all(_text(v) == "" for v in values.values()):
            continue
        if [_text(values.get(c.key)) for c in COLUMNS] == example:
            continue  # the template's example row, left as it was
        if len(result.rows) >= MAX_ROWS:
            result.errors.append(gettext("At most %(n)d rows can be imported at a time: split "
                                         "the file.", n=MAX_ROWS))
            result.rows = []
            return result
        raw = cells[:len(header)] + [None] * (len(header) - len(cells))
        result.rows.append(_check_row(number, raw, values, reference))
    if not result.rows:
        result.errors.append(gettext("The file has no row to import (rows 2 and below are "
                                     "empty)."))
        return result
    _warn_duplicate_isbns(session, school, result)
    return result


def _integer(value):
    """int, or None when the cell is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = _text(value).replace(" ", "")
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


def _price(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(round(value)) if value >= 0 else None
    text = fold(_text(value)).replace("vnd", "").replace(" ", "").rstrip("d")
    text = text.replace(".", "").replace(",", "")
    return Decimal(int(text)) if text.isdigit() else None


def split_authors(text):
    """The authors cell -> the record form's lines 'Name; role'.

    Authors are one per line or separated by ';'. A part that is a role word (dịch, chủ
    biên...) is the role of the name before it, never a new author.
    """
    lines = []
    for line in re.split(r"[\n\r]+", text or ""):
        for part in line.split(";"):
            part = " ".join(part.split())
            if not part:
                continue
            if part.lower() in ROLE_WORDS and lines and ";" not in lines[-1]:
                lines[-1] = f"{lines[-1]}; {part}"
            elif part.lower() not in ROLE_WORDS:
                lines.append(part)
    return "\n".join(lines)


def _check_row(number, raw, values, reference):
    row = ImportRow(number=number, raw=raw)
    data = row.data

    def problem(key, message, **params):
        row.problems.append(Problem(BY_KEY[key].header(), str(message) % params if params
                                    else str(message)))

    for column in COLUMNS:
        if column.max_length is None:
            continue
        text = _text(values.get(column.key))
        if len(text) > column.max_length:
            problem(column.key, _l("Too long (at most %(n)d characters)."), n=column.max_length)
        data[column.key] = text or None

    if not data.get("title"):
        problem("title", _l("The title is missing."))

    authors = split_authors(_text(values.get("authors")))
    for line in authors.splitlines():
        if len(line.partition(";")[0]) > 255:
            problem("authors", _l("An author's name is too long (at most 255 characters)."))
    data["authors_text"] = authors

    year = values.get("year")
    data["year"] = None
    if _text(year):
        number_ = _integer(year)
        if number_ is None:
            problem("year", _l("“%(value)s” is not a year (a number such as 2018)."),
                    value=_text(year))
        elif not 1400 <= number_ <= datetime.date.today().year + 1:
            problem("year", _l("The year %(value)d is not a plausible year of publication."),
                    value=number_)
        else:
            data["year"] = number_

    size = values.get("size_cm")
    data["size_cm"] = None
    if _text(size):
        number_ = _integer(size)
        if number_ is None or not 1 <= number_ <= 100:
            problem("size_cm", _l("“%(value)s” is not a size in whole centimetres (1 to 100)."),
                    value=_text(size))
        else:
            data["size_cm"] = number_

    data["isbn"] = None
    if _text(values.get("isbn")):
        try:
            data["isbn"] = normalise_isbn(_text(values.get("isbn")), field="isbn", row=number)
        except ValidationError as error:
            problem("isbn", str(error))

    price = values.get("price")
    data["price"] = None
    if _text(price):
        data["price"] = _price(price)
        if data["price"] is None:
            problem("price", _l("“%(value)s” is not a price in đồng (digits only)."),
                    value=_text(price))

    language = _text(values.get("language"))
    data["language"] = "vie"
    if language:
        code = LANGUAGES.get(" ".join(fold(language).split()))
        if code is None and re.fullmatch(r"[A-Za-z]{3}", language):
            code = language.lower()
        if code is None:
            problem("language", _l("“%(value)s” is not a language code (vie, eng, fra...)."),
                    value=language)
        else:
            data["language"] = code

    data["summary"] = _text(values.get("summary")) or None
    subjects = [s.strip() for s in re.split(r"[;\n\r]+", _text(values.get("subjects")))]
    data["subjects"] = "; ".join(s for s in subjects if s) or None
    if data["subjects"] and len(data["subjects"]) > 1000:
        problem("subjects", _l("Too long (at most %(n)d characters)."), n=1000)

    type_text = _text(values.get("document_type"))
    data["document_type"] = None
    if type_text:
        data["document_type"] = reference.document_type(type_text)
        if data["document_type"] is None:
            problem("document_type", _l("There is no document type “%(value)s” (use a code or "
                                        "a name from the list in the instructions)."),
                    value=type_text)

    count = values.get("count")
    data["count"] = 0
    if _text(count):
        number_ = _integer(count)
        if number_ is None or not 1 <= number_ <= MAX_COPIES_AT_ONCE:
            problem("count", _l("“%(value)s” is not a number of copies (a whole number from "
                                "1 to %(max)d)."), value=_text(count), max=MAX_COPIES_AT_ONCE)
        else:
            data["count"] = number_

    series_code = _text(values.get("series"))
    data["series"] = None
    if series_code:
        data["series"] = reference.series_by_code(series_code)
        if data["series"] is None:
            problem("series", _l("Your school has no accession register “%(value)s”."),
                    value=series_code)
    elif data["count"]:
        usual = data["document_type"].default_series if data["document_type"] else None
        data["series"] = reference.series_by_code(usual) if usual else None
        # (An unknown document type is reported once, not again as a missing register.)
        if data["series"] is None and not (type_text and data["document_type"] is None):
            problem("series", _l("Enter the accession register of the copies (the document "
                                 "type has no usual register in your school)."))

    location_code = _text(values.get("location"))
    data["location"] = None
    if location_code:
        data["location"] = reference.location(location_code)
        if data["location"] is None:
            problem("location", _l("Your school has no shelving location in use with the "
                                   "code “%(value)s”."), value=location_code)
    return row


def _warn_duplicate_isbns(session, school, result):
    seen = {}
    for row in result.valid_rows:
        isbn = row.data.get("isbn")
        if not isbn:
            continue
        if isbn in seen:
            result.warnings.append(gettext("Rows %(a)d and %(b)d have the same ISBN %(isbn)s.",
                                           a=seen[isbn], b=row.number,
                                           isbn=hyphenate_isbn(isbn)))
        seen.setdefault(isbn, row.number)
    if not seen:
        return
    existing = set(session.execute(select(Record.isbn).where(
        Record.school_id == school.id, Record.isbn.in_(list(seen)))).scalars())
    for isbn in sorted(existing, key=lambda i: seen[i]):
        result.warnings.append(gettext(
            "Row %(row)d: a record with the ISBN %(isbn)s is already in your catalogue "
            "(possible duplicate).", row=seen[isbn], isbn=hyphenate_isbn(isbn)))


# --- Applying --------------------------------------------------------------------------

RECORD_FIELDS = ("title", "publisher", "place", "year", "pages", "size_cm", "isbn", "price",
                 "language", "class_number", "summary", "subjects", "document_type")


def apply_import(session, school, rows, intake=None):
    """Create the records of `rows` (valid rows of parse_import) and their copies.

    Everything is flushed in the caller's transaction: commit once, or roll back and
    nothing is left. Returns [(record, copies)].
    """
    if any(not row.ok for row in rows):
        raise ValueError("apply_import takes valid rows only")
    settings = ensure_library(session, school)
    created = []
    for row in rows:
        data = row.data
        record = Record(school=school, school_id=school.id, scheme_id=settings.scheme_id,
                        **{f: data.get(f) for f in RECORD_FIELDS})
        record.authors_text = data.get("authors_text") or ""
        record.refresh_search_fields()
        compute_call_number(record, settings.author_mark_rule, settings.author_mark_length)
        session.add(record)
        session.flush()
        copies = []
        if data.get("count"):
            copies = add_copies(session, school, record, data["series"], data["count"],
                                location=data.get("location"), intake=intake)
        created.append((record, copies))
    return created


# --- Writing workbooks -----------------------------------------------------------------

def _formats(book):
    return {
        "header": book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1,
                                   "text_wrap": True, "valign": "vcenter"}),
        "required": book.add_format({"bold": True, "bg_color": "#FCE4D6", "border": 1,
                                     "text_wrap": True, "valign": "vcenter",
                                     "font_color": "#9C0006"}),
        "text": book.add_format({"num_format": "@"}),
        "wrap": book.add_format({"text_wrap": True, "valign": "top"}),
        "integer": book.add_format({"num_format": "0"}),
        "money": book.add_format({"num_format": "#,##0"}),
        "date": book.add_format({"num_format": "dd/mm/yyyy"}),
        "total": book.add_format({"bold": True, "top": 2}),
        "total_money": book.add_format({"bold": True, "top": 2, "num_format": "#,##0"}),
        "title": book.add_format({"bold": True, "font_size": 13}),
        "example": book.add_format({"italic": True, "font_color": "#7F7F7F"}),
        "example_text": book.add_format({"italic": True, "font_color": "#7F7F7F",
                                         "num_format": "@"}),
    }


def _sheet_name(text):
    """Excel sheet names: at most 31 characters, none of []:*?/\\ ."""
    return re.sub(r"[\[\]:*?/\\]", "-", str(text))[:31]


def _new_book():
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False,
                                        "strings_to_formulas": False, "strings_to_urls": False})
    return buffer, book


def build_template(reference=None):
    """The import template: the header row and one example row, and a sheet explaining
    each column (with the document types, and the school's registers and locations when
    `reference` is given)."""
    buffer, book = _new_book()
    fmt = _formats(book)
    sheet = book.add_worksheet(_sheet_name(gettext("Records")))
    for index, column in enumerate(COLUMNS):
        sheet.write_string(0, index, column.header(),
                           fmt["required"] if column.required else fmt["header"])
        sheet.write_comment(0, index, str(column.help), {"x_scale": 2, "y_scale": 1.5})
        is_text = column.key in ("isbn", "class_number", "series", "location", "pages")
        sheet.set_column(index, index, column.width, fmt["text"] if is_text else None)
        value = column.example
        if value is None:
            continue
        if isinstance(value, int):
            sheet.write_number(1, index, value, fmt["example"])
        else:
            sheet.write_string(1, index, str(value),
                               fmt["example_text"] if is_text else fmt["example"])
    sheet.set_row(0, 32)
    sheet.freeze_panes(1, 0)
    if reference is not None:
        _validations(sheet, reference)

    notes = book.add_worksheet(_sheet_name(gettext("Instructions")))
    notes.set_column(0, 0, 24)
    notes.set_column(1, 1, 10)
    notes.set_column(2, 2, 80, fmt["wrap"])
    notes.set_column(3, 3, 30)
    notes.write_string(0, 0, gettext("Importing a catalogue from Excel"), fmt["title"])
    lines = [
        gettext("Row 1 of the first sheet is the header: keep it. Fill in one row per title "
                "from row 2; the example row is ignored if left unchanged (replace or delete "
                "it)."),
        gettext("Columns marked * are required; the others may be left empty or removed."),
        gettext("Every row is checked before anything is saved: if a row has a problem, "
                "nothing is imported, unless you choose to import the valid rows only (the "
                "rejected rows can then be downloaded with the reason)."),
        gettext("Call numbers are made from the class number and the author mark; each copy "
                "gets the next accession number of its register."),
    ]
    for i, line in enumerate(lines, start=1):
        notes.write_string(i, 2, line)
    row = len(lines) + 2
    for index, header in enumerate((gettext("Column"), gettext("Required"),
                                    gettext("What to enter"), gettext("Example"))):
        notes.write_string(row, index, header, fmt["header"])
    for column in COLUMNS:
        row += 1
        notes.write_string(row, 0, column.header())
        notes.write_string(row, 1, gettext("Yes") if column.required else "")
        notes.write_string(row, 2, str(column.help))
        if column.example is not None:
            notes.write_string(row, 3, str(column.example))
    if reference is not None:
        sections = [
            (gettext("Document types"), [(t.code, t.name, t.default_series or "")
                                         for t in reference.types]),
            (gettext("Accession registers of your school"),
             [(s.code, s.name, "") for s in reference.series]),
            (gettext("Shelving locations of your school"),
             [(loc.code, loc.name, "") for loc in reference.locations]),
        ]
        for title, items in sections:
            row += 2
            notes.write_string(row, 0, title, fmt["title"])
            row += 1
            notes.write_string(row, 0, gettext("Code"), fmt["header"])
            notes.write_string(row, 2, gettext("Name"), fmt["header"])
            for code, name, usual in items:
                row += 1
                notes.write_string(row, 0, code)
                notes.write_string(row, 2, gettext("%(name)s (usual register: %(code)s)",
                                                   name=name, code=usual) if usual else name)
    book.close()
    return buffer.getvalue()


def _validations(sheet, reference):
    """Drop-down lists (warnings only: names are accepted too) on the code columns."""
    lists = {
        "document_type": [t.code for t in reference.types],
        "series": [s.code for s in reference.series],
        "location": [loc.code for loc in reference.locations],
    }
    for key, codes in lists.items():
        if not codes or len(",".join(codes)) > 250:
            continue
        index = [c.key for c in COLUMNS].index(key)
        sheet.data_validation(1, index, MAX_ROWS, index, {
            "validate": "list", "source": codes, "error_type": "warning",
            "error_title": str(BY_KEY[key].label),
            "error_message": gettext("This code is not in the list."),
        })


def _write_table(book, fmt, title, headers, widths, rows, kinds, totals, school_name):
    """A sheet with a formatted header, typed cells and a totals row of formulas."""
    sheet = book.add_worksheet(_sheet_name(title))
    for index, (header, width) in enumerate(zip(headers, widths)):
        sheet.write_string(0, index, header, fmt["header"])
        sheet.set_column(index, index, width)
    r = 0
    for r, values in enumerate(rows, start=1):
        for c, (value, kind) in enumerate(zip(values, kinds)):
            if value is None or value == "":
                continue
            if kind == "number":
                sheet.write_number(r, c, value, fmt["integer"])
            elif kind == "money":
                sheet.write_number(r, c, float(value), fmt["money"])
            elif kind == "date":
                sheet.write_datetime(r, c, datetime.datetime.combine(
                    value, datetime.time()), fmt["date"])
            else:
                sheet.write_string(r, c, str(value))
    last = r  # 0-based index of the last data row
    total_row = last + 1
    sheet.write_string(total_row, 0, gettext("Total"), fmt["total"])
    for c in range(1, len(headers)):
        sheet.write_blank(total_row, c, None, fmt["total"])
    letter = xlsxwriter.utility.xl_col_to_name
    for c, (how, value) in totals.items():
        cells = f"{letter(c)}2:{letter(c)}{max(last + 1, 2)}"
        formula = f"=COUNTA({cells})" if how == "count" else f"=SUM({cells})"
        if last == 0:
            formula = "=0"
        sheet.write_formula(total_row, c, formula,
                            fmt["total_money"] if how == "money" else fmt["total"], value)
    sheet.freeze_panes(1, 0)
    if last:
        sheet.autofilter(0, 0, last, len(headers) - 1)
    sheet.set_header(f"&L{_header_text(school_name)}&R{_header_text(title)}")
    sheet.set_footer("&C&P / &N")
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    return sheet


def _header_text(text):
    return str(text).replace("&", "&&")


def export_records(session, school_id):
    """The school's catalogue: one row per record, with its number of copies."""
    from app.org.models import OrgUnit

    school = session.get(OrgUnit, school_id)
    dialect = session.get_bind().dialect.name
    counts = dict(session.execute(select(Copy.record_id, func.count()).where(
        Copy.school_id == school_id).group_by(Copy.record_id)).all())
    records = session.execute(
        select(Record).where(Record.school_id == school_id)
        .options(selectinload(Record.authors), selectinload(Record.document_type))
        .order_by(collate(Record.title, dialect), Record.id)).scalars().all()
    rows = []
    for record in records:
        authors = "; ".join(a.name if a.role == AuthorRole.author else
                            f"{a.name} ({a.role.label})" for a in record.authors)
        rows.append([record.title, authors, record.publisher, record.year,
                     hyphenate_isbn(record.isbn), record.call_number,
                     record.document_type.name if record.document_type else None,
                     counts.get(record.id, 0)])
    buffer, book = _new_book()
    fmt = _formats(book)
    headers = [gettext("Title"), gettext("Authors"), gettext("Publisher"), gettext("Year"),
               gettext("ISBN"), gettext("Call number"), gettext("Document type"),
               gettext("Number of copies")]
    _write_table(book, fmt, gettext("Catalogue"), headers, [45, 30, 28, 8, 20, 16, 18, 10],
                 rows, ["text", "text", "text", "number", "text", "text", "text", "number"],
                 {0: ("count", len(rows)), 7: ("sum", sum(r[7] for r in rows))},
                 school.name if school else "")
    book.close()
    return buffer.getvalue()


def export_copies(session, school_id):
    """The school's copies in register order, with their intake (general register line)."""
    from app.org.models import OrgUnit

    school = session.get(OrgUnit, school_id)
    query = (
        select(Copy.accession_label, Copy.barcode, Record.title, AccessionSeries.code,
               Location.name, Copy.status, Copy.price, Intake.register_number,
               Intake.received_on)
        .join(Record, (Record.id == Copy.record_id) & (Record.school_id == Copy.school_id))
        .join(AccessionSeries, AccessionSeries.id == Copy.series_id)
        .outerjoin(Location, Location.id == Copy.location_id)
        .outerjoin(Intake, Intake.id == Copy.intake_id)
        .where(Copy.school_id == school_id)
        .order_by(AccessionSeries.code, Copy.sequence_key, Copy.accession_number))
    rows = [[label, barcode, title, series, location, status.label if status else None,
             price, register, received]
            for label, barcode, title, series, location, status, price, register, received
            in session.execute(query)]
    buffer, book = _new_book()
    fmt = _formats(book)
    headers = [gettext("Accession number"), gettext("Barcode"), gettext("Title"),
               gettext("Accession register"), gettext("Shelving location"), gettext("Status"),
               gettext("Price (VND)"), gettext("Register no."), gettext("Intake date")]
    _write_table(book, fmt, gettext("Copies"), headers, [14, 20, 45, 10, 18, 14, 12, 10, 12],
                 rows, ["text", "text", "text", "text", "text", "text", "money", "number",
                        "date"],
                 {0: ("count", len(rows)),
                  6: ("money", float(sum(r[6] or 0 for r in rows)))},
                 school.name if school else "")
    book.close()
    return buffer.getvalue()


def rejected_rows_workbook(result):
    """The rows refused by an import, as in the file, with a last column giving why."""
    buffer, book = _new_book()
    fmt = _formats(book)
    sheet = book.add_worksheet(_sheet_name(gettext("Records")))
    headers = list(result.headers) + [gettext("Reason")]
    for index, header in enumerate(headers):
        sheet.write_string(0, index, header, fmt["header"])
        sheet.set_column(index, index, 16)
    sheet.set_column(len(headers) - 1, len(headers) - 1, 60, fmt["wrap"])
    for r, row in enumerate(result.invalid_rows, start=1):
        for c, value in enumerate(row.raw[:len(result.headers)]):
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(r, c, value)
            elif isinstance(value, (int, float)):
                sheet.write_number(r, c, value)
            elif isinstance(value, datetime.datetime):
                sheet.write_datetime(r, c, value, fmt["date"])
            elif isinstance(value, datetime.date):
                sheet.write_datetime(r, c, datetime.datetime.combine(value, datetime.time()),
                                     fmt["date"])
            else:
                sheet.write_string(r, c, str(value))
        sheet.write_string(r, len(headers) - 1, "\n".join(row.reasons()))
    sheet.freeze_panes(1, 0)
    book.close()
    return buffer.getvalue()
