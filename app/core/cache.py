"""Per-worker caches of what rarely changes, kept exact by one version number in the database.

The desk asks the same things on every scan: the logged-in user (roles, groups, unit), the
school's loan rules, its circulation settings, its closed days, the school years, the
permissions of the user's roles. They change
a few times a year; asking the database for them cost several statements per request. Here
each worker (process) keeps them, and one number says whether they are still current:

- `config_version` is a one-row table. Database triggers (migration c8e3a4b5f603) add 1 to it
  whenever a watched table (`WATCHED_TABLES`) changes, whoever changes it: a view, a service,
  a Core statement, the CLI, psql, another worker. The new number is visible to the others
  when that transaction commits, like the change itself.
- A transaction reads the number once (`version`, one narrow statement): for a web request,
  when Flask-Login asks for the user (app.core.security). An entry is
  used only when it was stored under the same number; otherwise it is loaded again.
- The desk's JSON API (app.core.security.cached_access_api) saves that statement: it takes the
  user's entries on trust (`trust`: the number they were stored under becomes the
  transaction's *assumed* number), and its first statement reads the real number along with
  its own columns (`version_column`, `observe`). A different number raises `Stale` before
  anything is written, committed or answered (`confirm` reads it when no statement did): the
  request is then rolled back and run again from the start, the ordinary way.
- A session that changed a watched table itself (flush or DML statement, not yet committed)
  sees its own changes: it bypasses the caches and stores nothing until its transaction ends
  (its changes may still be rolled back). Only `text()` SQL run through that same session is
  not noticed (the triggers still invalidate the entries for the next transaction).

Values are shared by every request of the worker: they must be immutable (tuples, frozensets,
frozen dataclasses), never ORM objects.
"""
import functools
import threading

from flask_appbuilder import Model
from sqlalchemy import Column, Integer, event, literal_column, select
from sqlalchemy.orm import Session

# Changes to these tables change a cached value (circulation policies, permissions).
WATCHED_TABLES = frozenset({
    "loan_rule", "closed_day", "circulation_settings", "school_year", "document_type",
    "reader_category", "ab_role", "ab_permission", "ab_view_menu", "ab_permission_view",
    "ab_permission_view_role",
    # The logged-in user (app.core.security.get_user_by_id), migration a1d7e8f9c007: accounts
    # (not FAB's login bookkeeping, see AppSecurityManager.LOGIN_BOOKKEEPING), their roles
    # and groups, and the units (the tenancy scope).
    "ab_user", "ab_user_role", "ab_group", "ab_user_group", "ab_group_role", "org_unit",
})

_VERSION = "_config_version"  # session.info: the number read in this transaction
_DIRTY = "_config_dirty"  # session.info: this transaction changed a watched table
_ASSUMED = "_config_assumed"
_URL = "_config_database"  # session.info: the URL of the session's database (entries' keys)  # session.info: the number `trust` assumed, not yet confirmed


class ConfigVersion(Model):
    """One row (id 1): bumped by triggers when a table in WATCHED_TABLES changes."""

    __tablename__ = "config_version"
    __audited__ = False

    id = Column(Integer, primary_key=True, autoincrement=False)
    version = Column(Integer, nullable=False, default=0)


def version_column():
    """The current number as a scalar subquery, to add to a query the request sends anyway."""
    return (select(ConfigVersion.version).where(ConfigVersion.id == literal_column("1"))
            .scalar_subquery().label("config_version"))


class Stale(Exception):
    """Entries taken on trust (`trust`) were stored under another number than the database's:
    the caller rolls back and runs the request again without trust."""


def remember_version(session, number):
    """Note the number read by another query (the user load) for this transaction."""
    if number is not None and _VERSION not in session.info:
        session.info[_VERSION] = number


def observe(session, number):
    """The number read by a statement of this transaction (`version_column`): it becomes the
    transaction's number, and an assumption (`trust`) that it contradicts raises `Stale`."""
    number = -1 if number is None else number
    info = session.info
    if _VERSION in info:
        return
    assumed = info.get(_ASSUMED)
    if assumed is not None and number != assumed:
        raise Stale()
    info[_VERSION] = number


@functools.cache
def _version_statement():
    return select(ConfigVersion.version).where(ConfigVersion.id == 1)


def version(session):
    """The number, read once per transaction (-1 if the row is missing: nothing is cached).
    Raises `Stale` when it is not the number assumed by `trust`."""
    number = session.info.get(_VERSION)
    if number is None:
        number = session.execute(_version_statement()).scalar()
        observe(session, number)
        number = session.info[_VERSION]
    return number


def _database(session, info):
    """The session's database (its URL as a string: a URL object renders itself to hash),
    looked up once per session."""
    url = info.get(_URL)
    if url is None:
        url = info[_URL] = session.get_bind().url.render_as_string()
    return url


def trust(session, key):
    """The entry of `key` without reading the number (no statement): the number it was stored
    under becomes this transaction's assumed number, which `observe` or `confirm` must find
    in the database before anything is committed or answered (else `Stale`). MISSING when
    there is no entry, or the transaction already knows its number or changed a watched
    table: then use `cached`."""
    info = session.info
    if info.get(_DIRTY) or _VERSION in info:
        return MISSING
    entry = _entries.get((_database(session, info), key))
    if entry is None or entry[0] < 0 or info.get(_ASSUMED, entry[0]) != entry[0]:
        return MISSING
    info[_ASSUMED] = entry[0]
    stats["trusted"] += 1
    return entry[1]


def forget_assumption(session):
    """Drop an assumption left by a request that ended on an error (nothing was committed):
    the next transaction of this session reads the number again."""
    if _VERSION not in session.info:
        session.info.pop(_ASSUMED, None)


def confirm(session):
    """Read the number if this transaction assumed one and no statement has read it yet
    (raises `Stale` if it differs). Call before committing or answering."""
    info = session.info
    if _ASSUMED in info and _VERSION not in info:
        version(session)


_entries = {}  # key -> (version, value)
_lock = threading.Lock()
stats = {"hits": 0, "loads": 0, "trusted": 0}  # for the tests and the benchmark
MISSING = object()


def cached(session, key, load):
    """The value of `key` for this transaction: from the worker's cache when it was stored
    under the current version number, else `load()` (stored unless this session has changed a
    watched table, or the number is unknown)."""
    info = session.info
    if info.get(_DIRTY):
        stats["loads"] += 1
        return load()
    # Keyed by database too (tests, benchmarks).
    key = (_database(session, info), key)
    entry = _entries.get(key)
    # The number assumed by `trust` will be checked before anything is committed or answered.
    known = info.get(_VERSION, info.get(_ASSUMED))
    if entry is not None and entry[0] == known and known >= 0:
        stats["hits"] += 1
        return entry[1]
    number = version(session)  # read before loading: a newer value under an older number
    # is harmless, the reverse is not possible.
    if entry is not None and entry[0] == number and number >= 0:
        stats["hits"] += 1
        return entry[1]
    value = load()
    stats["loads"] += 1
    if number >= 0:
        with _lock:
            _entries[key] = (number, value)
    return value


def clear():
    """Forget every entry of this worker (tests)."""
    with _lock:
        _entries.clear()


def _mark_dirty(session):
    session.info[_DIRTY] = True
    session.info.pop(_VERSION, None)


def _watched(obj):
    table = getattr(type(obj), "__table__", None)
    return table is not None and table.name in WATCHED_TABLES


@event.listens_for(Session, "after_flush")
def _after_flush(session, flush_context):
    # The lists still hold what this flush wrote.
    if session.info.get(_DIRTY):
        return
    for objects in (session.new, session.dirty, session.deleted):
        if any(_watched(obj) for obj in objects):
            _mark_dirty(session)
            return


@event.listens_for(Session, "do_orm_execute")
def _dml(state):
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in WATCHED_TABLES:
            _mark_dirty(state.session)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _end(session):
    session.info.pop(_VERSION, None)
    session.info.pop(_DIRTY, None)
    session.info.pop(_ASSUMED, None)
