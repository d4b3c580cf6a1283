"""Cataloguing rules: ISBN, authors, call numbers, duplicates, copy cataloguing.

Plain functions taking the session and the school explicitly: views, the API, the CLI and
the tests all call these.
"""
import contextlib
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, literal_column, or_, select
from sqlalchemy.orm import joinedload
from stdnum import isbn as stdnum_isbn
from stdnum.exceptions import ValidationError as StdnumError

from app.catalog.models import ROLE_WORDS, SEARCH_VECTOR_SQL, AuthorRole, Record, RecordAuthor
from app.core.errors import ValidationError
from app.core.i18n import collate, fold, split_name


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


# The union catalogue shows at most this many matches of a search: common syllables
# ("hoc sinh") match a million records city-wide, which nobody pages through, and counting or
# sorting them all took seconds. Past the cap the page says "more than 1,000".
SEARCH_CAP = 1000


def search_words(text):
    """The folded words of a search ('Hoa vàng,' -> ['hoa', 'vang']), punctuation around a
    word dropped (it is not indexed); words without a letter or digit are ignored."""
    words = (re.sub(r"^[\W_]+|[\W_]+$", "", word) for word in fold(text or "").split())
    return [w for w in words if w]


def _tsquery(words, prefix):
    """'hoa & vang' (or 'hoa & vang:*' with prefix: the last word may be unfinished).

    Each word is quoted for to_tsquery, which parses it as to_tsvector parses the records
    ('2.0' stays one token, 'nguyen-van' gives its parts too)."""
    quoted = ["'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in words]
    if prefix:
        quoted[-1] += ":*"
    return " & ".join(quoted)


def _word_match(column, word, prefix):
    """SQLite (no word index): the word, or a word starting with it, anywhere in `column`.
    LIKE filters cheaply first; REGEXP (registered by SQLAlchemy) checks word boundaries, so
    that 'hoa' finds 'Hoa' but not 'Hoàng', as on PostgreSQL."""
    pattern = r"(?<![^\W_])" + re.escape(word) + ("" if prefix else r"(?![^\W_])")
    return column.contains(word, autoescape=True) & column.regexp_match(pattern)


def _text_match(session, words, prefix):
    """Every word in the title or the authors (folded forms)."""
    both = Record.title_folded + " " + Record.authors_folded
    if session.get_bind().dialect.name == "postgresql":
        # The expression of ix_record_search_fts, as written there: the index serves it.
        vector = literal_column(SEARCH_VECTOR_SQL)
        match = vector.op("@@", is_comparison=True)(
            func.to_tsquery(literal_column("'simple'::regconfig"), _tsquery(words, prefix)))
        # A record with the words has their letters and digits in its text. PostgreSQL tests
        # this cheap LIKE first: the scan of the first pages (_matching_ids) then builds the
        # vector (30 times slower) only for the few records that pass.
        pieces = [piece for word in words for piece in re.findall(r"[^\W_]+", word)]
        return and_(*(both.contains(piece, autoescape=True) for piece in pieces), match)
    return and_(*(_word_match(both, w, prefix and i == len(words) - 1)
                  for i, w in enumerate(words)))


# PostgreSQL planner settings while the matches are taken (see _matching_ids).
_MATCH_SETTINGS = {
    # Never a scan of the whole table: with LIMIT, the planner may prefer reading the table
    # until it has enough matches; for words common separately but rare together that reads
    # every record (25 s for "hoa vang" at scale 0.3, on a busy machine).
    "enable_seqscan": "off", "enable_indexscan": "off",
    # Common words match hundreds of thousands of records: an exact bitmap, not a lossy one
    # whose pages must all be re-checked.
    "work_mem": "64MB",
    # Parallel workers return the first matches in any order: the pages would not agree.
    "max_parallel_workers_per_gather": "0",
}
# The first pages of the table are read before asking the word index (a TID range scan,
# PostgreSQL 14+): about 10,000 records, 25 a page. A word in one record out of ten or more
# ("hoc", "nguyen") has its cap + 1 matches there, while the index would first collect all
# its matches, hundreds of thousands.
_FIRST_PAGES = 400


@contextlib.contextmanager
def _planner_settings(session, settings):
    """PostgreSQL: these settings for the statements inside, then the previous ones."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    names = list(settings)
    old = session.execute(select(
        *(func.current_setting(name) for name in names),
        *(func.set_config(name, value, True) for name, value in settings.items()))).one()
    yield  # if a statement fails, the rollback of the transaction undoes the settings
    session.execute(select(*(func.set_config(name, old[i], True)
                             for i, name in enumerate(names))))


def _matching_ids(session, words, prefix, isbn, school_ids, cap):
    """Ids of the first cap + 1 matches in the table's order, sorted best first."""
    conditions = [_text_match(session, words, prefix)] if words else []
    if isbn:
        conditions.append(Record.isbn == isbn)
    query = select(Record.id, Record.title, Record.title_folded, Record.authors_folded).where(
        Record.is_hidden.is_(False), or_(*conditions))
    if school_ids is not None:
        query = query.where(Record.school_id.in_(school_ids or {-1}))
    dialect = session.get_bind().dialect.name
    phrase = " ".join(words)

    def sorted_ids(query):
        candidates = query.limit(cap + 1).subquery()
        best = case((candidates.c.title_folded.startswith(phrase, autoescape=True), 0),
                    (candidates.c.title_folded.contains(phrase, autoescape=True), 1),
                    (candidates.c.authors_folded.contains(phrase, autoescape=True), 2),
                    else_=3)
        return session.execute(select(candidates.c.id).order_by(
            best, collate(candidates.c.title, dialect), candidates.c.id)).scalars().all()

    with _planner_settings(session, _MATCH_SETTINGS):
        if dialect == "postgresql":
            # Both ways give the same first cap + 1 matches: the table's order.
            with _planner_settings(session, {"enable_bitmapscan": "off"}):  # TID range scan
                ids = sorted_ids(query.where(
                    literal_column("record.ctid") < literal_column(f"'({_FIRST_PAGES},0)'::tid")))
            if len(ids) > cap:
                return ids
        return sorted_ids(query)


def search_records(session, text, school_ids=None, limit=50, offset=0, cap=SEARCH_CAP):
    """Union catalogue: records whose title or authors contain every word typed (diacritics
    and case ignored), or whose ISBN is the one typed. school_ids None = the whole city.

    When no record has all the words, the last one is taken as the start of a word ("khoa
    ho" finds "Khoa học"). Not always: the index must then read every word starting with it,
    which for a short common start ("a" in "nguyen van a") is most of the index.

    Returns (total, rows): total counts the matches up to cap + 1 (more than `cap` means
    "more than cap"); rows are one page of the first `cap` matches, best first: the title
    starting with the words typed, then containing them, then the authors containing them,
    then the rest (words apart), each by title in Vietnamese order. Past the cap, which matches are kept is the table's order, not a
    ranking: the page asks for more words.
    """
    words = search_words(text)
    digits = re.sub(r"[^0-9Xx]", "", text or "").upper()
    isbn = digits if len(digits) in (10, 13) else None
    if not words and not isbn:
        return 0, []
    ids = _matching_ids(session, words, False, isbn, school_ids, cap)
    if not ids and words and len(words[-1]) >= 2:  # one letter would match nearly everything
        ids = _matching_ids(session, words, True, isbn, school_ids, cap)
    page = ids[:cap][offset:offset + limit]
    if not page:
        return len(ids), []
    records = session.execute(select(Record).where(Record.id.in_(page))
                              .options(joinedload(Record.school))).scalars().all()
    position = {pk: i for i, pk in enumerate(page)}
    return len(ids), sorted(records, key=lambda r: position[r.id])


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
