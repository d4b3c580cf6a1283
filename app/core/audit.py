"""Audit log: who changed which record, when, and what changed (old → new per field).

Recorded by one SQLAlchemy listener for every model marked `__audited__ = True` (all
school-owned tables and the organisation tree), whatever view, API, import or service
made the change. The history of one record is visible to its school's staff and the
department.
"""
import contextvars
import datetime
import decimal
import enum

from flask import has_request_context
from flask_appbuilder import Model
from flask_login import current_user
from sqlalchemy import JSON, Column, DateTime, Index, Integer, String, event, inspect
from sqlalchemy.orm import Session

from app.core.enums import LabeledEnum, N_

# Who acts outside a web request (CLI, jobs): set with `acting_as(...)`.
_actor = contextvars.ContextVar("audit_actor", default=(None, "system"))


class AuditAction(LabeledEnum):
    insert = N_("Created")
    update = N_("Changed")
    delete = N_("Deleted")


class AuditLog(Model):
    __tablename__ = "audit_log"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=datetime.datetime.utcnow)
    user_id = Column(Integer, index=True)  # no FK: the log outlives accounts
    username = Column(String(100), nullable=False)
    school_id = Column(Integer, index=True)  # the school the record belongs to, if any
    table_name = Column(String(64), nullable=False)
    row_id = Column(Integer, nullable=False)
    action = Column(String(10), nullable=False)
    changes = Column(JSON, nullable=False, default=dict)

    __table_args__ = (Index("ix_audit_log_record", "table_name", "row_id"),)

    @property
    def action_label(self):
        return AuditAction[self.action].label

    @property
    def table_label(self):
        return table_label(self.table_name)


def table_label(table_name):
    """The translated name of an audited table ("location" -> "Kho/vị trí xếp giá")."""
    from flask_babel import lazy_gettext

    for mapper in Model.registry.mappers:
        cls = mapper.class_
        if getattr(cls, "__tablename__", None) == table_name and getattr(cls, "__label__", None):
            return lazy_gettext(cls.__label__)
    return table_name


class acting_as:
    """Context manager naming the actor of changes made outside a request."""

    def __init__(self, user=None, name="system"):
        self.value = (getattr(user, "id", None), getattr(user, "username", None) or name)

    def __enter__(self):
        self.token = _actor.set(self.value)

    def __exit__(self, *exc):
        _actor.reset(self.token)


def _actor_now():
    if has_request_context() and getattr(current_user, "is_authenticated", False):
        return current_user.id, current_user.username
    return _actor.get()


_SIMPLE_TYPES = frozenset((str, int, float, bool, dict, list))  # kept as they are by _plain


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return None
    return value


def _is_audited(obj):
    return getattr(type(obj), "__audited__", False)


def _school_of(obj):
    school_id = getattr(obj, "school_id", None)
    if school_id is None and type(obj).__tablename__ == "org_unit":
        return obj.id  # a school's own record belongs to that school's history
    return school_id


SECRET_COLUMNS = ("password",)
# Columns not copied into the log: the original MARC of an imported record (about a
# kilobyte, kept in the record itself and never edited) would double the size of an import.
UNLOGGED_COLUMNS = {("record", "marc")}


def _changes(obj, action):
    state = inspect(obj)
    out = {}
    table = type(obj).__tablename__
    skipped = SECRET_COLUMNS + tuple(c for t, c in UNLOGGED_COLUMNS if t == table)
    if action == "insert":
        # Read the flushed values from the object's dict: building the attribute history of
        # every column costs more than the INSERT itself (imports create thousands of rows).
        values = state.dict
        for attr in state.mapper.column_attrs:
            key = attr.key
            if key in skipped:
                continue
            value = values[key] if key in values else getattr(obj, key)
            if value is not None:
                out[key] = [None, value if type(value) in _SIMPLE_TYPES else _plain(value)]
        return out
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in skipped:
            continue
        hist = state.attrs[key].history
        if action == "delete":
            value = state.attrs[key].loaded_value
            out[key] = [_plain(value), None]
        elif hist.has_changes():
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            if _plain(old) != _plain(new):
                out[key] = [_plain(old), _plain(new)]
    return out


@event.listens_for(Session, "before_flush")
def _collect(session, flush_context, instances):
    # Updates and deletes must be read before the flush clears their history.
    pending = session.info.setdefault("_audit_pending", [])
    for obj in session.dirty:
        if _is_audited(obj) and session.is_modified(obj, include_collections=False):
            changes = _changes(obj, "update")
            if changes:
                pending.append((obj, "update", changes))
    for obj in session.deleted:
        if _is_audited(obj):
            pending.append((obj, "delete", _changes(obj, "delete")))
    for obj in session.new:
        if _is_audited(obj):
            pending.append((obj, "insert", None))


@event.listens_for(Session, "after_flush")
def _write(session, flush_context):
    pending = session.info.pop("_audit_pending", [])
    if not pending:
        return
    user_id, username = _actor_now()
    now = datetime.datetime.utcnow()
    rows = []
    for obj, action, changes in pending:
        if action == "insert":
            changes = _changes(obj, "insert")
        state = inspect(obj)
        row_id = state.identity[0] if state.identity else getattr(obj, "id", None)
        if row_id is None:
            continue
        rows.append(
            dict(at=now, user_id=user_id, username=username or "system",
                 school_id=_school_of(obj), table_name=type(obj).__tablename__,
                 row_id=row_id, action=action, changes=changes)
        )
    if rows:
        session.connection().execute(AuditLog.__table__.insert(), rows)


def insert_entries(model, rows):
    """The "insert" entries of rows written without the ORM (app.core.bulk), which the flush
    listeners do not see: the same entries as for ORM objects, from the row values (each
    row with its "id"). Empty for a model that is not audited."""
    if not getattr(model, "__audited__", False) or not rows:
        return []
    user_id, username = _actor_now()
    username = username or "system"
    now = datetime.datetime.utcnow()
    table = model.__tablename__
    own_school = table == "org_unit"
    simple = _SIMPLE_TYPES
    skipped = SECRET_COLUMNS + tuple(c for t, c in UNLOGGED_COLUMNS if t == table)
    return [
        {"at": now, "user_id": user_id, "username": username,
         "school_id": row["id"] if own_school and row.get("school_id") is None
         else row.get("school_id"),
         "table_name": table, "row_id": row["id"], "action": "insert",
         "changes": {key: [None, value if type(value) in simple else _plain(value)]
                     for key, value in row.items()
                     if value is not None and key not in skipped}}
        for row in rows]


@event.listens_for(Session, "after_rollback")
def _discard(session):
    session.info.pop("_audit_pending", None)
