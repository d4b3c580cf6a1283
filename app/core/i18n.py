"""Vietnamese language helpers: collation, name order, folding, date formats.

One place for everything that makes the application read and sort as Vietnamese.
"""
import datetime
import functools
import unicodedata
import zoneinfo

import icu
from sqlalchemy import event
from sqlalchemy.engine import Engine

DATE_FORMAT = "%d/%m/%Y"
DATETIME_FORMAT = "%d/%m/%Y %H:%M"
# Name of the Vietnamese collation in each database dialect (SQLite: registered below).
COLLATION = {"postgresql": "vi-x-icu", "sqlite": "vi"}


@functools.lru_cache(maxsize=1)
def _collator():
    return icu.Collator.createInstance(icu.Locale("vi_VN"))


def collation_key(text):
    """Sort key in Vietnamese alphabetical order (a ă â b c d đ e ê ...)."""
    return _collator().getSortKey(text or "")


def split_name(full_name):
    """'Nguyễn Thị Minh Khai' -> ('Nguyễn', 'Thị Minh', 'Khai')."""
    parts = (full_name or "").split()
    if not parts:
        return "", "", ""
    if len(parts) == 1:
        return "", "", parts[0]
    return parts[0], " ".join(parts[1:-1]), parts[-1]


def person_sort_key(full_name=None, family_and_middle=None, given=None):
    """Vietnamese person order: given name, then middle name, then family name.

    Accepts either a full name or the two parts FAB stores (last_name = family and
    middle names, first_name = given name).
    """
    if full_name is not None:
        family, middle, given = split_name(full_name)
    else:
        fam_parts = (family_and_middle or "").split()
        family = fam_parts[0] if fam_parts else ""
        middle = " ".join(fam_parts[1:])
        given = given or ""
    return (collation_key(given), collation_key(middle), collation_key(family))


class _WithoutMarks(dict):
    """str.translate table deleting combining marks (category Mn); each character is
    looked up once (imports fold every title and author: a loop per character cost more)."""

    def __missing__(self, code):
        value = None if unicodedata.category(chr(code)) == "Mn" else code
        self[code] = value
        return value


_WITHOUT_MARKS = _WithoutMarks()


def fold(text):
    """Diacritics-insensitive search form: 'Đường Nguyễn' -> 'duong nguyen'."""
    text = (text or "").replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFD", text).translate(_WITHOUT_MARKS).lower()


# The library's calendar is Vietnam's: a UTC server is still "yesterday" before 07:00.
LOCAL_TZ = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


def local_today():
    return datetime.datetime.now(LOCAL_TZ).date()


def local_date(utc_naive):
    """The calendar day in Vietnam of a stored (naive UTC) timestamp."""
    if utc_naive is None:
        return None
    return utc_naive.replace(tzinfo=datetime.timezone.utc).astimezone(LOCAL_TZ).date()


def format_date(value):
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.strftime(DATETIME_FORMAT)
    return value.strftime(DATE_FORMAT)


def collate(column, dialect_name):
    """A column expression sorted with the Vietnamese collation of this database."""
    name = COLLATION.get(dialect_name)
    return column.collate(name) if name else column


def _sqlite_vi_compare(a, b):
    return _collator().compare(a or "", b or "")


@event.listens_for(Engine, "connect")
def _register_sqlite_collation(dbapi_connection, connection_record):
    # SQLite has no Vietnamese collation: give every connection ICU's.
    if hasattr(dbapi_connection, "create_collation"):
        dbapi_connection.create_collation("vi", _sqlite_vi_compare)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def compile_catalogues(translations_dir):
    """Compile each messages.po into messages.mo when missing or older (fresh checkouts)."""
    import os

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for lang in os.listdir(translations_dir):
        po = os.path.join(translations_dir, lang, "LC_MESSAGES", "messages.po")
        if not os.path.isfile(po):
            continue
        mo = po[:-3] + ".mo"
        if os.path.exists(mo) and os.path.getmtime(mo) >= os.path.getmtime(po):
            continue
        with open(po, "rb") as fh:
            catalog = read_po(fh, locale=lang)
        tmp = f"{mo}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        os.replace(tmp, mo)  # atomic: several workers may start at once


@functools.cache
def _parsed_locale(name):
    from babel import Locale

    return Locale.parse(name)


def cache_locales(app):
    """Flask-Babel parses the name of the request's locale (FAB's selector answers "vi" or
    "en") on every request, with a look at Babel's data files: the selector answers the
    parsed Locale instead, kept per name (Flask-Babel takes a Locale as it is)."""
    state = app.extensions["babel"]
    selector = state.locale_selector
    if selector is None or getattr(selector, "parsed", False):
        return

    def select():
        name = selector()
        return None if name is None else _parsed_locale(str(name))
    select.parsed = True
    state.locale_selector = select
