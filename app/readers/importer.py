"""Import readers from the class lists of school-management software (Excel .xlsx).

Plain functions taking the session and the school (no request): the view, the benchmark
and the tests call them. Three steps:

1. `read_sheet` finds the header row (title rows above it are common in exported lists);
2. `initial_mapping` maps the file's columns to reader fields: the school's saved choice
   (ReaderImportMapping) where the file has those headers, else a guess from the header
   names (accent-insensitive);
3. `preview` checks every row and says what it would do (new / update / unchanged / error:
   readers are matched by their student code); `apply_import` then writes the new and
   changed readers, and the mapping; the caller commits once (one transaction).
"""
import dataclasses
import datetime
import io
import re
import unicodedata

import xlsxwriter
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import select

from app.core.errors import ValidationError
from app.core.i18n import fold, format_date
from app.readers import services
from app.readers.models import (
    Gender, Reader, ReaderCategory, ReaderImportMapping, ReaderStatus,
)

MAX_ROWS = 5000
MAX_BYTES = 5 * 1024 * 1024  # also the limit of app.catalog.excel.read_workbook
MAX_SCANNED_ROWS = 50000  # empty and formatted rows included
HEADER_SEARCH_ROWS = 20  # title rows ("DANH SÁCH HỌC SINH LỚP 6A1") come before the header

NEW, UPDATE, UNCHANGED, ERROR = "new", "update", "unchanged", "error"
OUTCOME_LABELS = {NEW: _l("New"), UPDATE: _l("Update"), UNCHANGED: _l("Unchanged"),
                  ERROR: _l("Error")}


@dataclasses.dataclass(frozen=True)
class Field:
    key: str
    # Headers of school-management software, folded (no accents, lower case); the label in
    # the user's language is accepted too.
    aliases: tuple

    @property
    def label(self):
        return services.LABELS[self.key]


FIELDS = [
    Field("code", ("ma hoc sinh", "ma hs", "ma dinh danh", "ma dinh danh hoc sinh",
                   "ma so hoc sinh", "ma so", "ma ban doc", "ma giao vien", "ma can bo",
                   "ma nhan vien", "student code", "student id", "code")),
    Field("full_name", ("ho va ten", "ho ten", "ho va ten hoc sinh", "ho ten hoc sinh",
                        "ten hoc sinh", "ho va ten giao vien", "full name", "name")),
    Field("family_name", ("ho", "ho dem", "ho va dem", "ho va ten dem", "ho ten dem",
                          "ho va chu dem", "ho lot", "ho va ten lot", "family name",
                          "last name", "surname", "family and middle names")),
    Field("given_name", ("ten", "given name", "first name")),
    Field("class_name", ("lop", "lop hoc", "ten lop", "class", "class name")),
    Field("grade", ("khoi", "khoi lop", "grade")),
    Field("date_of_birth", ("ngay sinh", "ngay thang nam sinh", "ngay/thang/nam sinh",
                            "sinh ngay", "date of birth", "birth date", "birthday", "dob")),
    Field("gender", ("gioi tinh", "gioi", "phai", "gender", "sex")),
    Field("phone", ("so dien thoai", "dien thoai", "sdt", "so dt", "dt", "dien thoai lien he",
                    "so dien thoai lien he", "dien thoai phu huynh", "sdt phu huynh",
                    "phone", "phone number", "mobile")),
    Field("email", ("email", "e-mail", "thu dien tu", "dia chi email")),
    Field("category", ("loai ban doc", "doi tuong", "doi tuong ban doc", "category",
                       "reader category")),
]
BY_KEY = {f.key: f for f in FIELDS}
# Fields an update compares and writes (the name parts come from one or two columns).
UPDATABLE = ("family_name", "given_name", "class_name", "grade", "date_of_birth", "gender",
             "phone", "email", "category")
GENDERS = {"nam": Gender.male, "m": Gender.male, "male": Gender.male, "trai": Gender.male,
           "nu": Gender.female, "f": Gender.female, "female": Gender.female,
           "gai": Gender.female}
DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d", "%d/%m/%y")
PHONE = re.compile(r"^[\d\s+().\-/;,]+$")


def normalise_header(value):
    """'Ngày sinh (*)' -> 'ngay sinh'."""
    text = fold(_text(value)).replace("*", " ").replace("(", " ").replace(")", " ")
    return " ".join(text.rstrip(":").split())


def _text(value):
    """A cell as text: NFC, stripped; whole numbers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return format_date(value if not isinstance(value, datetime.datetime)
                           else value.date())
    return unicodedata.normalize("NFC", str(value)).strip()


# --- The sheet and its header row ----------------------------------------------------------

@dataclasses.dataclass
class Sheet:
    headers: list  # texts of the header row (empty string for an empty cell)
    header_row: int  # 1-based row number of the header
    rows: list  # [(row number, cells)] below the header, non-empty rows only

    # Read once at upload (openpyxl takes about 1 s for 2,000 rows), then kept as JSON
    # while the librarian checks and confirms.
    def to_json(self):
        def cell(value):
            if isinstance(value, datetime.datetime):
                return {"datetime": value.isoformat()}
            if isinstance(value, datetime.date):
                return {"date": value.isoformat()}
            if isinstance(value, datetime.time):
                return str(value)
            return value

        return {"headers": self.headers, "header_row": self.header_row,
                "rows": [[n, [cell(c) for c in cells]] for n, cells in self.rows]}

    @classmethod
    def from_json(cls, data):
        def cell(value):
            if isinstance(value, dict):
                if "datetime" in value:
                    return datetime.datetime.fromisoformat(value["datetime"])
                return datetime.date.fromisoformat(value["date"])
            return value

        return cls(headers=data["headers"], header_row=data["header_row"],
                   rows=[(n, [cell(c) for c in cells]) for n, cells in data["rows"]])


def _alias_index():
    index = {}
    for field in FIELDS:
        for name in (normalise_header(str(field.label)), *field.aliases):
            index.setdefault(name, field.key)
    return index


def _guess_key(header, aliases):
    """The field a header names, exactly or by its beginning ('Ngày sinh (dd/mm/yyyy)')."""
    name = normalise_header(header)
    if not name:
        return None
    if name in aliases:
        return aliases[name]
    best = None
    for alias, key in aliases.items():
        if len(alias) >= 3 and name.startswith(alias + " ") and (
                best is None or len(alias) > len(best[0])):
            best = (alias, key)
    return best[1] if best else None


def _header_score(cells, aliases, known):
    keys = {_guess_key(c, aliases) for c in cells} - {None}
    return len(keys) + sum(1 for c in cells if _text(c) and _text(c) in known)


def read_sheet(data, known_headers=()):
    """The bytes of an upload -> Sheet; ValidationError (field "file") when the file cannot be
    read. `known_headers`: the school's saved headers, which also mark the header row."""
    from app.catalog.excel import read_workbook  # the same checks as the catalogue import

    workbook = read_workbook(data)
    try:
        return _read(workbook, set(known_headers))
    finally:
        workbook.close()


def _read(workbook, known):
    aliases = _alias_index()
    best = None
    for sheet in workbook.worksheets:
        head = [list(r or ()) for r in sheet.iter_rows(max_row=HEADER_SEARCH_ROWS,
                                                       values_only=True)]
        for index, cells in enumerate(head):
            score = _header_score(cells, aliases, known)
            if best is None or score > best[0]:
                best = (score, sheet, index + 1)
    if best is None or not workbook.worksheets:
        raise ValidationError(_l("The file has no sheet to read."), field="file")
    score, sheet, header_row = best
    if score < 2:
        # Nothing recognisable: the first non-empty row is the header; the librarian maps.
        sheet = workbook.worksheets[0]
        header_row = None
    rows = []
    headers = None
    for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
        if number > MAX_SCANNED_ROWS or len(rows) > MAX_ROWS:
            raise ValidationError(_l("At most %(n)d rows can be imported at a time: split "
                                     "the file."), field="file", n=MAX_ROWS)
        cells = list(cells or ())
        if headers is None:
            if (header_row is not None and number < header_row) or all(
                    _text(c) == "" for c in cells):
                continue
            header_row = number
            headers = [_text(c) for c in cells]
            while headers and headers[-1] == "":
                headers.pop()
            continue
        if all(_text(c) == "" for c in cells[:len(headers)]):
            continue
        rows.append((number, cells[:len(headers)]))
    if not headers:
        raise ValidationError(_l("The file is empty."), field="file")
    if not rows:
        raise ValidationError(_l("The file has no row to import below its header row (row "
                                 "%(number)d)."), field="file", number=header_row)
    return Sheet(headers=headers, header_row=header_row, rows=rows)


# --- The mapping of columns to fields ------------------------------------------------------

def guess_mapping(headers):
    """{field: header} from the header names (each column maps to one field at most)."""
    aliases = _alias_index()
    mapping = {}
    for header in headers:
        key = _guess_key(header, aliases)
        if key is not None and key not in mapping:
            mapping[key] = header
    return {f.key: mapping.get(f.key) for f in FIELDS}


def load_mapping(session, school_id):
    row = session.execute(select(ReaderImportMapping).where(
        ReaderImportMapping.school_id == school_id)).scalar_one_or_none()
    return dict(row.mapping or {}) if row is not None else {}


def save_mapping(session, school, mapping):
    row = session.execute(select(ReaderImportMapping).where(
        ReaderImportMapping.school_id == school.id)).scalar_one_or_none()
    clean = {f.key: mapping.get(f.key) or None for f in FIELDS}
    if row is None:
        session.add(ReaderImportMapping(school_id=school.id, school=school, mapping=clean))
    elif row.mapping != clean:
        row.mapping = clean


def initial_mapping(headers, saved):
    """The saved choice for every field whose header is in this file (or that was chosen
    "not imported"), the guess for the others."""
    guessed = guess_mapping(headers)
    present = set(headers)
    mapping = {}
    for field in FIELDS:
        if field.key in saved and (saved[field.key] is None or saved[field.key] in present):
            mapping[field.key] = saved[field.key]
        else:
            mapping[field.key] = guessed[field.key]
    # A column taken by a saved choice is not also guessed for another field.
    taken = {}
    for field in FIELDS:
        header = mapping[field.key]
        if header is not None:
            if header in taken and field.key not in saved:
                mapping[field.key] = None
            else:
                taken.setdefault(header, field.key)
    return mapping


def mapping_problems(mapping, headers):
    """File-level problems of a mapping (the import cannot start)."""
    problems = []
    present = set(headers)
    for key, header in mapping.items():
        if header is not None and header not in present:
            problems.append(gettext("The column “%(column)s” is not in the file.",
                                    column=header))
    if not mapping.get("code"):
        problems.append(gettext("Choose the column of the student code: readers already in "
                                "the library are found by it."))
    if not mapping.get("full_name") and not (mapping.get("family_name")
                                             and mapping.get("given_name")):
        problems.append(gettext("Choose the column of the full name, or the two columns of "
                                "the family and middle names and of the given name."))
    return problems


# --- Checking the rows -----------------------------------------------------------------------

@dataclasses.dataclass
class RowResult:
    number: int
    status: str = NEW
    values: dict = dataclasses.field(default_factory=dict)
    problems: list = dataclasses.field(default_factory=list)  # [(column header, message)]
    changes: list = dataclasses.field(default_factory=list)  # [(field label, old, new)]
    reader_id: int = None  # the existing reader (update, unchanged)

    @property
    def outcome(self):
        return OUTCOME_LABELS[self.status]

    @property
    def full_name(self):
        return " ".join(v for v in (self.values.get("family_name"),
                                    self.values.get("given_name")) if v)


@dataclasses.dataclass
class Preview:
    sheet: Sheet
    mapping: dict
    rows: list = dataclasses.field(default_factory=list)
    errors: list = dataclasses.field(default_factory=list)  # the whole file is refused

    def count(self, status):
        return sum(1 for r in self.rows if r.status == status)

    @property
    def totals(self):
        return {s: self.count(s) for s in (NEW, UPDATE, UNCHANGED, ERROR)}

    @property
    def error_rows(self):
        return [r for r in self.rows if r.status == ERROR]


class _Context:
    """What the rows are checked against, loaded once per import."""

    def __init__(self, session, school, mapping, headers):
        self.mapping = mapping
        self.positions = {key: headers.index(h) for key, h in mapping.items() if h}
        self.split_name = not (mapping.get("family_name") and mapping.get("given_name"))
        self.categories = {}
        for category in session.execute(select(ReaderCategory)).scalars():
            self.categories.setdefault(fold(category.code), category)
            self.categories.setdefault(" ".join(fold(category.name).split()), category)
        self.default_category = services.default_category(session)
        self.category_by_id = {c.id: c for c in self.categories.values()}
        # Plain rows, not ORM objects (3 times faster for 2,000 readers): apply_import loads
        # only the readers it changes.
        self.by_code = {}
        for reader in session.execute(select(
                Reader.id, Reader.code, Reader.category_id, Reader.card_number,
                *(getattr(Reader, key) for key in UPDATABLE if key != "category")).where(
                Reader.school_id == school.id, Reader.code.is_not(None))):
            self.by_code.setdefault(reader.code, []).append(reader)

    def cell(self, cells, key):
        index = self.positions.get(key)
        return cells[index] if index is not None and index < len(cells) else None

    def column(self, key):
        """The header of the column a field comes from, as the librarian knows it."""
        return self.mapping.get(key) or str(BY_KEY[key].label)


def preview(session, school, sheet, mapping):
    """Check every row; nothing is written."""
    result = Preview(sheet=sheet, mapping=mapping)
    result.errors = mapping_problems(mapping, sheet.headers)
    if result.errors:
        return result
    ctx = _Context(session, school, mapping, sheet.headers)
    if ctx.default_category is None and not mapping.get("category"):
        result.errors.append(gettext("No reader category of students exists: ask the "
                                     "department to create one."))
        return result
    for number, cells in sheet.rows:
        result.rows.append(_check_row(number, cells, ctx))
    _check_duplicate_codes(result.rows, ctx)
    for row in result.rows:
        if row.problems:
            row.status = ERROR
        else:
            _match(row, ctx)
    return result


def _check_row(number, cells, ctx):
    row = RowResult(number=number)
    values = row.values

    def problem(key, message, **params):
        row.problems.append((ctx.column(key), str(message) % params if params
                             else str(message)))

    def text(key, max_length=None):
        value = services.clean(_text(ctx.cell(cells, key)))
        if value and max_length and len(value) > max_length:
            problem(key, _l("Too long (at most %(n)d characters)."), n=max_length)
        return value

    values["code"] = text("code", services.MAX_LENGTHS["code"])
    if not values["code"]:
        problem("code", _l("The student code is empty."))

    if ctx.split_name:
        full = text("full_name")
        parts = (full or "").split()
        if not parts:
            problem("full_name", _l("The name is empty."))
        elif len(parts) == 1:
            problem("full_name", _l("“%(value)s”: write the family name and the given name."),
                    value=full)
        else:
            values["family_name"], values["given_name"] = " ".join(parts[:-1]), parts[-1]
    else:
        values["family_name"] = text("family_name")
        values["given_name"] = text("given_name")
        if not values["family_name"]:
            problem("family_name", _l("The family name is empty."))
        if not values["given_name"]:
            problem("given_name", _l("The given name is empty."))
    for key in ("family_name", "given_name"):
        limit = services.MAX_LENGTHS[key]
        if values.get(key) and len(values[key]) > limit:
            problem("full_name" if ctx.split_name else key,
                    _l("Too long (at most %(n)d characters)."), n=limit)

    values["class_name"] = text("class_name", services.MAX_LENGTHS["class_name"])
    grade = ctx.cell(cells, "grade")
    if _text(grade):
        number_ = _integer(grade)
        if number_ is None or not 1 <= number_ <= 12:
            problem("grade", _l("“%(value)s” is not a grade (1 to 12)."), value=_text(grade))
        values["grade"] = number_
    elif values["class_name"]:
        values["grade"] = services.grade_of(values["class_name"])

    birth = ctx.cell(cells, "date_of_birth")
    if _text(birth):
        day = _date(birth)
        if day is None:
            problem("date_of_birth", _l("“%(value)s” is not a date: write it as dd/mm/yyyy."),
                    value=_text(birth))
        elif not datetime.date(1900, 1, 1) <= day <= datetime.date.today():
            problem("date_of_birth", _l("%(value)s is not a plausible date of birth."),
                    value=format_date(day))
        values["date_of_birth"] = day

    gender = _text(ctx.cell(cells, "gender"))
    if gender:
        values["gender"] = GENDERS.get(fold(gender).strip(". "))
        if values["gender"] is None:
            problem("gender", _l("“%(value)s” is not a gender: write Nam or Nữ."),
                    value=gender)

    phone = ctx.cell(cells, "phone")
    if isinstance(phone, (int, float)) and not isinstance(phone, bool):
        # A number cell has lost the leading 0 of a mobile number (912345678).
        digits = _text(phone)
        phone = "0" + digits if len(digits) == 9 else digits
    phone = services.clean(_text(phone))
    if phone:
        if (not PHONE.match(phone) or len(re.sub(r"\D", "", phone)) < 8
                or len(phone) > services.MAX_LENGTHS["phone"]):
            problem("phone", _l("“%(value)s” is not a phone number."), value=phone)
        values["phone"] = phone

    email = text("email")
    if email:
        if not services.EMAIL.match(email) or len(email) > services.MAX_LENGTHS["email"]:
            problem("email", _l("“%(value)s” is not an e-mail address."), value=email)
        values["email"] = email

    category = _text(ctx.cell(cells, "category"))
    if category:
        values["category"] = ctx.categories.get(" ".join(fold(category).split()))
        if values["category"] is None:
            codes = sorted({c.code for c in ctx.categories.values()})
            problem("category", _l("“%(value)s” is not a reader category (%(codes)s)."),
                    value=category, codes=", ".join(codes))
    return row


def _check_duplicate_codes(rows, ctx):
    where = {}
    for row in rows:
        if row.values.get("code"):
            where.setdefault(row.values["code"], []).append(row.number)
    for row in rows:
        numbers = where.get(row.values.get("code"), [])
        if len(numbers) > 1:
            others = ", ".join(str(n) for n in numbers if n != row.number)
            row.problems.append((ctx.column("code"), gettext(
                "The code %(code)s is also on row(s) %(rows)s.", code=row.values["code"],
                rows=others)))


def _match(row, ctx):
    """New reader, or the existing reader of this code with what would change."""
    values = row.values
    found = ctx.by_code.get(values["code"], [])
    if len(found) > 1:
        row.status = ERROR
        row.problems.append((ctx.column("code"), gettext(
            "Several readers of the library have the code %(code)s (%(readers)s): correct "
            "them in the readers list first.", code=values["code"],
            readers="; ".join(services.describe(r) for r in found))))
        return
    if not found:
        row.status = NEW
        values.setdefault("category", ctx.default_category)
        if values["category"] is None:
            values["category"] = ctx.default_category
        return
    reader = found[0]
    row.reader_id = reader.id
    for key in UPDATABLE:
        new = values.get(key)
        if new is None or new == "":
            continue  # an empty cell never erases what the library knows
        old = (ctx.category_by_id.get(reader.category_id) if key == "category"
               else getattr(reader, key))
        if old != new:
            row.changes.append((key, old, new))
    row.status = UPDATE if row.changes else UNCHANGED


def describe_value(key, value):
    """A field's value as the preview shows it."""
    if value is None:
        return ""
    if key == "date_of_birth":
        return format_date(value)
    if key == "gender":
        return str(value.label)
    if key == "category":
        return value.name
    return str(value)


def outcome_lines(result):
    """The preview's table as plain strings: (row, status, outcome, code, name, class,
    details: the problems of an error, the changes of an update)."""
    labels = {k: str(v) for k, v in OUTCOME_LABELS.items()}
    fields = {k: str(v) for k, v in services.LABELS.items()}
    lines = []
    for row in result.rows:
        if row.status == ERROR:
            details = "; ".join(f"“{column}”: {message}" for column, message in row.problems)
        else:
            details = "; ".join(
                f"{fields[key]}: {describe_value(key, old) or '—'} → {describe_value(key, new)}"
                for key, old, new in row.changes)
        lines.append((row.number, row.status, labels[row.status], row.values.get("code") or "",
                      row.full_name, row.values.get("class_name") or "", details))
    return lines


def _integer(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = _text(value)
    return int(text) if text.isdigit() else None


def _date(value):
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # A date cell without date format: Excel's serial day number.
        if 1 <= value <= 2958465:
            from openpyxl.utils.datetime import from_excel

            return from_excel(value).date()
        return None
    text = _text(value)
    for fmt in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


# --- Writing ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Applied:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # rows with errors left out


def apply_import(session, school, result, valid_only=False):
    """Create the new readers and update the changed ones of `result` (a Preview made in
    this session), and remember the mapping. Nothing is committed here."""
    if result.errors:
        raise ValidationError(result.errors[0], field="file")
    bad = result.error_rows
    if bad and not valid_only:
        raise ValidationError(_l("Nothing was imported: %(n)d row(s) have errors. Correct the "
                                 "file and upload it again, or choose to import the valid "
                                 "rows only."), field="file", n=len(bad))
    new = [r for r in result.rows if r.status == NEW]
    updates = [r for r in result.rows if r.status == UPDATE]
    if not new and not updates and not result.count(UNCHANGED):
        raise ValidationError(_l("Nothing was imported: no row is valid."), field="file")
    numbers = services.allocate_cards(session, school, [r.values["category"] for r in new])
    readers = []
    for row, (card, barcode) in zip(new, numbers):
        values = row.values
        # Keys rather than relationships (no cascade to follow for 2,000 objects), and
        # every column set, even to None: the audit log reads them all after the insert,
        # and an attribute never set would be loaded again one by one.
        readers.append(Reader(
            school_id=school.id, category_id=values["category"].id,
            code=values["code"], family_name=values["family_name"],
            given_name=values["given_name"], class_name=values.get("class_name"),
            grade=values.get("grade"), date_of_birth=values.get("date_of_birth"),
            gender=values.get("gender"), phone=values.get("phone"),
            email=values.get("email"), card_number=card, barcode=barcode, photo=None,
            valid_until=None, status=ReaderStatus.active, user_id=None, note=None))
    session.add_all(readers)
    changed = {}
    ids = [row.reader_id for row in updates]
    for start in range(0, len(ids), 1000):
        changed.update((r.id, r) for r in session.execute(select(Reader).where(
            Reader.id.in_(ids[start:start + 1000]))).scalars())
    for row in updates:
        for key, _old, new_value in row.changes:
            setattr(changed[row.reader_id], key, new_value)
    save_mapping(session, school, result.mapping)
    session.flush()
    return Applied(created=len(new), updated=len(updates),
                   unchanged=result.count(UNCHANGED), skipped=len(bad))


# --- The template ----------------------------------------------------------------------------

TEMPLATE_COLUMNS = [
    ("code", _l("Student code"), _l("Required: the student code (mã học sinh / mã định danh) "
                                    "of the school-management software.")),
    ("full_name", _l("Full name"), _l("Required: family, middle and given names, e.g. "
                                      "“Nguyễn Thị Minh Khai” (the given name is the last "
                                      "word).")),
    ("class_name", _l("Class"), _l("E.g. 6A1: the grade is taken from its first digits.")),
    ("date_of_birth", _l("Date of birth"), _l("dd/mm/yyyy, e.g. 15/03/2013.")),
    ("gender", _l("Gender"), _l("Nam or Nữ.")),
    ("phone", _l("Phone"), _l("Of the student or the parents.")),
    ("email", _l("Email"), None),
    ("category", _l("Reader category"), _l("Code or name of a reader category (HS, GV, "
                                           "CBNV...); empty: students (HS).")),
]


def build_template():
    """An empty class list with the usual headers, and a sheet explaining each column."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False,
                                        "strings_to_formulas": False,
                                        "strings_to_urls": False})
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    as_text = book.add_format({"num_format": "@"})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    sheet = book.add_worksheet(re.sub(r"[\[\]:*?/\\]", "-", gettext("Readers"))[:31])
    widths = {"code": 16, "full_name": 30, "class_name": 8, "date_of_birth": 12,
              "gender": 9, "phone": 14, "email": 26, "category": 14}
    for index, (key, label, help_text) in enumerate(TEMPLATE_COLUMNS):
        sheet.write_string(0, index, str(label), header)
        if help_text:
            sheet.write_comment(0, index, str(help_text), {"x_scale": 2})
        # Text columns: codes and phone numbers keep their leading zeros.
        sheet.set_column(index, index, widths[key], as_text)
    sheet.freeze_panes(1, 0)
    notes = book.add_worksheet(re.sub(r"[\[\]:*?/\\]", "-", gettext("Instructions"))[:31])
    notes.set_column(0, 0, 22)
    notes.set_column(1, 1, 90, wrap)
    notes.write_string(0, 0, gettext("How to fill in the list"), header)
    notes.write_string(1, 0, gettext("Lists exported by the school-management software can "
                                     "be uploaded as they are: you choose which column is "
                                     "which before anything is saved."))
    for index, (key, label, help_text) in enumerate(TEMPLATE_COLUMNS, start=3):
        notes.write_string(index, 0, f"· {label}")
        notes.write_string(index, 1, str(help_text or ""))
    book.close()
    return buffer.getvalue()
