"""Readers' business rules: card numbers and barcodes, checks, loans of a reader.

Plain functions taking the session and the school (never the request): the views, the
importer, the CLI and the tests call them.
"""
import datetime
import re
import unicodedata

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.collection.models import LibrarySettings
from app.collection.services import allocate
from app.core.errors import ValidationError
from app.readers.models import Reader, ReaderCategory, ReaderKind

CARD_COUNTER = "reader-card"
CARD_DIGITS = 5
# What a hand scanner reads and Code 128 encodes: letters without accents, digits, - . /
CODE_CHARS = re.compile(r"^[A-Za-z0-9./-]+$")
CATEGORY_CODE = re.compile(r"^[A-Z0-9]{1,10}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CLASS_GRADE = re.compile(r"^(?:l[oơ]p\s*)?(\d{1,2})", re.IGNORECASE)
# Labels of the reader's fields, as the forms, the import and the messages show them.
LABELS = {
    "school": _l("School"),
    "category": _l("Reader category"),
    "code": _l("Student or staff code"),
    "family_name": _l("Family and middle names"),
    "given_name": _l("Given name"),
    "full_name": _l("Full name"),
    "class_name": _l("Class"),
    "grade": _l("Grade"),
    "date_of_birth": _l("Date of birth"),
    "gender": _l("Gender"),
    "phone": _l("Phone"),
    "email": _l("Email"),
    "photo": _l("Photo"),
    "card_number": _l("Card number"),
    "barcode": _l("Barcode"),
    "valid_until": _l("Valid until"),
    "status": _l("Status"),
    "note": _l("Note"),
}
MAX_LENGTHS = {"family_name": 120, "given_name": 60, "class_name": 30, "code": 40,
               "phone": 30, "email": 120, "card_number": 40, "barcode": 40, "note": 255}


def clean(text):
    """User text as stored: NFC (decomposed accents from some software), single spaces."""
    if text is None:
        return None
    text = " ".join(unicodedata.normalize("NFC", str(text)).split())
    return text or None


def grade_of(class_name):
    """The grade (khối) a class name starts with: '6A1' -> 6, '10 Toán' -> 10, 'Lớp 9/2' -> 9."""
    match = CLASS_GRADE.match((class_name or "").strip())
    if match and 1 <= int(match.group(1)) <= 12:
        return int(match.group(1))
    return None


def default_category(session):
    """Students' category, for imported class lists: code HS, else the first student kind."""
    categories = session.execute(select(ReaderCategory).order_by(ReaderCategory.id)).scalars()
    student = None
    for category in categories:
        if category.code == "HS":
            return category
        if student is None and category.kind == ReaderKind.student:
            student = category
    return student


def barcode_prefix(session, school):
    settings = session.execute(select(LibrarySettings.barcode_prefix).where(
        LibrarySettings.school_id == school.id)).scalar_one_or_none()
    return settings or school.code


def taken_numbers(session, school_id):
    """Card numbers and barcodes already used in the school (sets)."""
    rows = session.execute(select(Reader.card_number, Reader.barcode).where(
        Reader.school_id == school_id)).all()
    return {r.card_number for r in rows}, {r.barcode for r in rows}


def allocate_cards(session, school, categories):
    """(card number, barcode) for each category of `categories` (one per new reader).

    Card number = category code + the school's next number of the "reader-card" counter;
    barcode = the school's barcode prefix + card number. Numbers already used (typed by
    hand, or loaded before the counter existed) are skipped, never reused.
    """
    if not categories:
        return []
    cards, barcodes = taken_numbers(session, school.id)
    prefix = barcode_prefix(session, school)
    out = [None] * len(categories)
    todo = list(range(len(categories)))
    while todo:
        first = allocate(session, school.id, CARD_COUNTER, len(todo))
        left = []
        for offset, index in enumerate(todo):
            card = f"{categories[index].code}{first + offset:0{CARD_DIGITS}d}"
            barcode = f"{prefix}{card}"
            if card in cards or barcode in barcodes:
                left.append(index)
                continue
            cards.add(card)
            barcodes.add(barcode)
            out[index] = (card, barcode)
        todo = left
    return out


def prepare_reader(session, reader):
    """Normalise and check a reader before it is saved (add and edit); give it a card number
    and a barcode when they are left empty. Raises ValidationError naming the field."""
    for name in ("family_name", "given_name", "class_name", "code", "phone", "email",
                 "card_number", "barcode", "note"):
        setattr(reader, name, clean(getattr(reader, name)))
    for name in MAX_LENGTHS:
        value = getattr(reader, name)
        if value is not None and len(value) > MAX_LENGTHS[name]:
            raise ValidationError(_l("“%(label)s” is too long (at most %(n)d characters)."),
                                  field=name, label=LABELS[name], n=MAX_LENGTHS[name])
    if not reader.given_name or not reader.family_name:
        raise ValidationError(_l("Enter the family and middle names and the given name."),
                              field="given_name" if not reader.given_name else "family_name")
    if reader.card_number and not CODE_CHARS.match(reader.card_number):
        raise ValidationError(_l("The card number may only contain letters without accents, "
                                 "digits and the signs - . /"), field="card_number")
    if reader.barcode and not CODE_CHARS.match(reader.barcode):
        raise ValidationError(_l("The barcode may only contain letters without accents, "
                                 "digits and the signs - . / (it is printed in Code 128)."),
                              field="barcode")
    if reader.email and not EMAIL.match(reader.email):
        raise ValidationError(_l("“%(email)s” is not an e-mail address."), field="email",
                              email=reader.email)
    if reader.date_of_birth is not None and not (
            datetime.date(1900, 1, 1) <= reader.date_of_birth <= datetime.date.today()):
        raise ValidationError(_l("The date of birth must be a past date."),
                              field="date_of_birth")
    if reader.grade is None:
        reader.grade = grade_of(reader.class_name)
    elif not 1 <= reader.grade <= 12:
        raise ValidationError(_l("The grade must be between 1 and 12."), field="grade")
    school = reader.school
    with session.no_autoflush:
        _check_unique(session, reader)
        if not reader.card_number:
            card, barcode = allocate_cards(session, school, [reader.category])[0]
            reader.card_number = card
            reader.barcode = reader.barcode or barcode
        elif not reader.barcode:
            reader.barcode = f"{barcode_prefix(session, school)}{reader.card_number}"
            _check_unique(session, reader)
    return reader


def _check_unique(session, reader):
    """Card number, barcode and code are unique within the school (a clear message, not a
    database error)."""
    for name, message in (
            ("card_number", _l("The card number “%(value)s” is already used by %(reader)s.")),
            ("barcode", _l("The barcode “%(value)s” is already used by %(reader)s.")),
            ("code", _l("The code “%(value)s” is already used by %(reader)s."))):
        value = getattr(reader, name)
        if not value:
            continue
        query = select(Reader).where(Reader.school_id == reader.school_id,
                                     getattr(Reader, name) == value)
        if reader.id is not None:
            query = query.where(Reader.id != reader.id)
        other = session.execute(query.limit(1)).scalar_one_or_none()
        if other is not None:
            raise ValidationError(message, field=name, value=value,
                                  reader=describe(other))


def describe(reader):
    """'Nguyễn Văn An (6A1, HS00012)' for messages (a Reader or a row with its columns)."""
    name = f"{reader.family_name} {reader.given_name}".strip()
    details = ", ".join(v for v in (reader.class_name, reader.card_number) if v)
    return f"{name} ({details})" if details else name


def check_can_delete(session, reader):
    """A reader with a loan history stays (the loan register keeps them): mark them as left
    instead."""
    from app.circulation.models import Hold, Loan, ReadingRoomUse

    for model in (Loan, Hold, ReadingRoomUse):
        used = session.execute(select(func.count()).select_from(model).where(
            model.school_id == reader.school_id, model.reader_id == reader.id)).scalar()
        if used:
            raise ValidationError(_l("%(reader)s has loans or other library history and "
                                     "cannot be deleted: set the status to “Left the school” "
                                     "instead."), field="status", reader=reader.full_name)


def validate_category(session, category):
    category.code = (clean(category.code) or "").upper()
    category.name = clean(category.name)
    if not CATEGORY_CODE.match(category.code):
        raise ValidationError(_l("The code must be 1 to 10 capital letters without accents "
                                 "or digits (it begins every card number)."), field="code")
    query = select(ReaderCategory.id).where(ReaderCategory.code == category.code)
    if category.id is not None:
        query = query.where(ReaderCategory.id != category.id)
    if session.execute(query).first():
        raise ValidationError(_l("The code “%(code)s” is already used."), field="code",
                              code=category.code)


def check_category_unused(session, category):
    from app.circulation.models import LoanRule, ReadingRoomUse

    readers = session.execute(select(func.count()).select_from(Reader).where(
        Reader.category_id == category.id)).scalar()
    rules = session.execute(select(func.count()).select_from(LoanRule).where(
        LoanRule.category_id == category.id)).scalar()
    uses = session.execute(select(func.count()).select_from(ReadingRoomUse).where(
        ReadingRoomUse.category_id == category.id)).scalar()
    if readers or rules or uses:
        raise ValidationError(_l("The category “%(name)s” is used by %(n)d reader(s) and by "
                                 "loan rules or statistics: it cannot be deleted."),
                              field="code", name=category.name, n=readers)


# --- Loans of a reader (read-only, for the reader's page) -------------------------------

def reader_loans(session, reader, history_limit=100):
    """(current loans, past loans (most recent first, at most `history_limit`), number of
    past loans)."""
    from sqlalchemy.orm import selectinload

    from app.circulation.models import Loan, LoanStatus
    from app.collection.models import Copy

    base = select(Loan).where(Loan.school_id == reader.school_id,
                              Loan.reader_id == reader.id).options(
        selectinload(Loan.copy).selectinload(Copy.record))
    current = session.execute(base.where(Loan.status == LoanStatus.active)
                              .order_by(Loan.due_on, Loan.id)).scalars().all()
    past_query = base.where(Loan.status != LoanStatus.active)
    past = session.execute(past_query.order_by(Loan.loaned_at.desc(), Loan.id.desc())
                           .limit(history_limit)).scalars().all()
    total = session.execute(select(func.count()).select_from(Loan).where(
        Loan.school_id == reader.school_id, Loan.reader_id == reader.id,
        Loan.status != LoanStatus.active)).scalar()
    return current, past, total


def reader_sort_key(family_name, given_name):
    """The readers list's order (see Reader.__sort_with__): given name, then family and
    middle names, with the Vietnamese collation."""
    from app.core.i18n import collation_key

    return collation_key(given_name), collation_key(family_name)


def local_day(moment):
    """The calendar day in Vietnam of a UTC timestamp (UTC+7 all year: no daylight saving)."""
    return (moment + datetime.timedelta(hours=7)).date() if moment is not None else None


def classes_of(session, school_id):
    """[(class name, number of active readers)] of a school, in class order."""
    from app.readers.models import ReaderStatus

    rows = session.execute(
        select(Reader.class_name, func.count()).where(
            Reader.school_id == school_id, Reader.class_name.is_not(None),
            Reader.status == ReaderStatus.active)
        .group_by(Reader.class_name)).all()
    return sorted(rows, key=lambda r: class_sort_key(r[0]))


def class_sort_key(class_name):
    """'6A2' < '6A10' < '10A1': grade, then letters, then number."""
    parts = re.split(r"(\d+)", class_name or "")
    return [int(p) if p.isdigit() else p.lower() for p in parts]
