"""Cataloguing rules: ISBN, authors, call numbers, duplicates, copy cataloguing.

Plain functions taking the session and the school explicitly: views, the API, the CLI and
the tests all call these.
"""
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from stdnum import isbn as stdnum_isbn
from stdnum.exceptions import ValidationError as StdnumError

from app.catalog.models import ROLE_WORDS, AuthorRole, Record, RecordAuthor
from app.core.errors import ValidationError
from app.core.i18n import fold, split_name


# --- ISBN -----------------------------------------------------------------------------

def normalise_isbn(value, field="isbn", row=None):
    """'978-604-1-23456-7' -> '9786041234567'; raises a clear error on a wrong check digit."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return stdnum_isbn.validate(text)
    except StdnumError:
        raise ValidationError(
            _l("The ISBN “%(isbn)s” is not valid (wrong length or check digit)."),
            field=field, row=row, isbn=text) from None


def hyphenate_isbn(value):
    if not value:
        return ""
    try:
        return stdnum_isbn.format(value)
    except StdnumError:
        return value


# --- Authors --------------------------------------------------------------------------

def parse_authors(text):
    """Lines of 'Name; role' (role optional, Vietnamese or English) -> [(name, AuthorRole)]."""
    out = []
    for line in re.split(r"[\n\r]+", text or ""):
        line = line.strip()
        if not line:
            continue
        name, _sep, role_text = line.partition(";")
        role = ROLE_WORDS.get(role_text.strip().lower(), AuthorRole.author)
        name = " ".join(name.split())
        if name:
            out.append((name, role))
    return out


# --- Call numbers -----------------------------------------------------------------------

def _letters(word, length):
    letters = "".join(ch for ch in word if ch.isalpha())
    return letters[:length]


def author_mark(record, rule="given_name", length=3):
    """First letters of the given name (Vietnamese practice), the family name, or the title.

    Vietnamese names: 'Nguyễn Nhật Ánh' -> given name 'Ánh'. Foreign names written
    'Family, Given' use the part before the comma as the family name.
    """
    rule = getattr(rule, "name", rule)
    author = record.main_author
    if rule != "title" and author:
        if "," in author:
            family, _c, given = author.partition(",")
            given = given.strip().split()[0] if given.strip() else family
        else:
            family, _middle, given = split_name(author)
            family = family or given
        word = given if rule == "given_name" else family
        mark = _letters(word, length)
        if mark:
            return mark[0].upper() + mark[1:].lower()
    title = re.sub(r"^\W+", "", record.title or "")
    mark = _letters(title.split()[0] if title.split() else "", length)
    return (mark[0].upper() + mark[1:].lower()) if mark else ""


def compute_call_number(record, rule="given_name", length=3):
    """Class number + author (or title) mark: '895.922 / Ánh'. Kept if set by hand."""
    record.author_mark = author_mark(record, rule, length)
    if record.call_number_is_manual and record.call_number:
        return record.call_number
    parts = [p for p in (record.class_number, record.author_mark) if p]
    record.call_number = " / ".join(parts) if parts else None
    return record.call_number


# --- Duplicates and the union catalogue -----------------------------------------------

def find_duplicates(session, school_id, title=None, authors=None, isbn=None, exclude_id=None,
                    limit=10):
    """Records of the school with the same ISBN, or a similar title and author
    (diacritics and case ignored)."""
    conditions = []
    if isbn:
        conditions.append(Record.isbn == isbn)
    folded_title = fold(title or "").strip()
    if folded_title:
        cond = Record.title_folded.like(f"{folded_title}%")
        folded_author = fold(authors or "").split()
        if folded_author:
            cond = cond & Record.authors_folded.like(f"%{folded_author[-1]}%")
        conditions.append(cond)
    if not conditions:
        return []
    query = select(Record).where(Record.school_id == school_id, or_(*conditions))
    if exclude_id:
        query = query.where(Record.id != exclude_id)
    return session.execute(query.order_by(Record.id).limit(limit)).scalars().all()


def search_records(session, text, school_ids=None, limit=50, offset=0):
    """Diacritics-insensitive search on title, author, ISBN; school_ids None = whole city."""
    query = select(Record).where(Record.is_hidden.is_(False))
    if school_ids is not None:
        query = query.where(Record.school_id.in_(school_ids or {-1}))
    words = fold(text or "").split()
    digits = re.sub(r"[^0-9Xx]", "", text or "")
    for word in words:
        like = f"%{word}%"
        query = query.where(or_(Record.title_folded.like(like),
                                Record.authors_folded.like(like),
                                Record.isbn == digits if len(digits) in (10, 13) else False))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar()
    rows = session.execute(query.order_by(Record.title_folded, Record.id)
                           .limit(limit).offset(offset)).scalars().all()
    return total, rows


COPIED_FIELDS = ("title", "subtitle", "responsibility", "edition", "place", "publisher", "year",
                 "pages", "size_cm", "isbn", "price", "language", "series_statement", "volume",
                 "summary", "subjects", "document_type_id", "scheme_id", "class_number",
                 "marc")


def copy_record(session, source, school, settings=None):
    """Copy cataloguing: a record of another school becomes a record of `school`."""
    if source.school_id == school.id:
        raise ValidationError(_l("This record is already in your catalogue."))
    record = Record(school=school, school_id=school.id, copied_from_id=source.id,
                    **{f: getattr(source, f) for f in COPIED_FIELDS})
    record.authors = [
        RecordAuthor(name=a.name, role=a.role, is_main=a.is_main, position=a.position,
                     school=school, school_id=school.id)
        for a in source.authors
    ]
    if settings is not None and settings.scheme_id and source.scheme_id != settings.scheme_id:
        # The class number belongs to the source school's scheme: keep it only if it matches.
        record.scheme_id, record.class_number = settings.scheme_id, None
    record.refresh_search_fields()
    rule = settings.author_mark_rule if settings else "given_name"
    length = settings.author_mark_length if settings else 3
    compute_call_number(record, rule, length)
    session.add(record)
    return record
