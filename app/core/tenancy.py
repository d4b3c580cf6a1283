"""Tenancy: which schools the current user may see and write. One place, under everything.

- `Scope` is computed once per request from the user's unit (and the dated tree at today's date).
- `SchoolOwnedMixin` gives a table its direct `school_id`.
- `SchoolScopeFilter` is the base filter every generated view and API inherits
  (list, show, edit, delete, export, charts, REST: another school's row is simply not found).
- `guard_flush` refuses, at flush time, any write of school data outside the actor's
  writable school, whatever view or service tried it; `guard_rows` applies the same rule to
  rows written with Core bulk statements (app.core.bulk), which bypass the flush.
- `scoped_school` / `school_choices`: the school a page (labels, Excel, MARC...) works on,
  only ever chosen inside the scope.
"""
import dataclasses
import datetime
from typing import FrozenSet, Optional

from flask import abort, g, has_request_context
from flask_appbuilder.models.filters import BaseFilter
from flask_login import current_user
from sqlalchemy import ARRAY, Column, ForeignKey, Integer, any_, bindparam, event, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, declared_attr, relationship

from app.core.errors import TenancyError


@dataclasses.dataclass(frozen=True)
class Scope:
    all_schools: bool = False
    school_ids: FrozenSet[int] = frozenset()
    unit_ids: FrozenSet[int] = frozenset()  # every unit visible (offices, clusters, schools)
    write_school_id: Optional[int] = None  # the librarian's own school
    # The principal's own school: the one write of the principal role is the approval of a
    # weeding round of this school (see guard_flush and `__principal_columns__`).
    approve_school_id: Optional[int] = None

    def can_see_school(self, school_id):
        return self.all_schools or school_id in self.school_ids

    def can_see_unit(self, unit_id):
        return self.all_schools or unit_id in self.unit_ids

    def can_write_school(self, school_id):
        return self.write_school_id is not None and school_id == self.write_school_id

    def can_approve_school(self, school_id):
        return self.approve_school_id is not None and school_id == self.approve_school_id


EMPTY = Scope()

# Above this many ids, PostgreSQL gets one array parameter instead of one per id.
ARRAY_IN_ABOVE = 32


def ids_in(column, ids):
    """`column IN ids` for integer ids. An office sees hundreds of schools and the city's
    pages pass thousands: as IN (…) each id is a parameter that SQLAlchemy renders and psycopg
    parses on every execution (tens of ms per page). On PostgreSQL a long list is sent as one
    integer array, `column = ANY(:ids)`, the same result; SQLite keeps IN."""
    from app.extensions import db

    ids = list(ids)
    if len(ids) > ARRAY_IN_ABOVE and db.engine.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)


def descendant_units(session, root_id, on=None):
    """Ids of the units under `root_id` (both hierarchies) at date `on`, root included."""
    from app.org.models import OrgLink

    on = on or datetime.date.today()
    seen = {root_id}
    frontier = {root_id}
    while frontier:
        rows = session.execute(
            select(OrgLink.child_id).where(
                ids_in(OrgLink.parent_id, frontier),
                OrgLink.valid_from <= on,
                or_(OrgLink.valid_to.is_(None), OrgLink.valid_to >= on),
            )
        ).scalars()
        frontier = set(rows) - seen
        seen |= frontier
    return seen


def scope_for(session, user, on=None):
    """The scope of `user` (an AppUser) at date `on` (today by default)."""
    from app.org.models import OrgUnit, UnitKind

    if user is None or not getattr(user, "is_authenticated", False) or user.unit_id is None:
        return EMPTY
    unit = session.get(OrgUnit, user.unit_id)
    if unit is None:
        return EMPTY
    if unit.kind == UnitKind.department:
        return Scope(all_schools=True)
    if unit.kind == UnitKind.school:
        return _school_scope(unit, user)
    on = on or datetime.date.today()
    if unit.valid_to is not None and unit.valid_to < on:
        # An office that has closed (e.g. a district office on 30/06/2025) keeps read access
        # to the schools it had on its last day, for the reports of its period.
        on = unit.valid_to
    units = descendant_units(session, unit.id, on)
    schools = session.execute(
        select(OrgUnit.id).where(ids_in(OrgUnit.id, units), OrgUnit.kind == UnitKind.school)
    ).scalars()
    return Scope(school_ids=frozenset(schools), unit_ids=frozenset(units))


def _school_scope(unit, user):
    from app.core.security import APPROVER_ROLES, WRITER_ROLES

    role_names = {r.name for r in user.roles}
    ids = frozenset({unit.id})
    writer = unit.id if role_names & WRITER_ROLES else None
    approver = unit.id if role_names & APPROVER_ROLES else None
    return Scope(school_ids=ids, unit_ids=ids, write_school_id=writer,
                 approve_school_id=approver)


def school_user_scope(user):
    """`scope_for` a user of a school, from the unit loaded with the user (the worker's cached
    user, app.core.security.trusted_user_for: no statement); None for any other user."""
    from app.org.models import UnitKind

    unit = user.unit if user.unit_id is not None else None
    if unit is None or unit.kind != UnitKind.school:
        return None
    return _school_scope(unit, user)


def use_scope(user, scope):
    """Make `scope` the current request's scope of `user` (see current_scope)."""
    g._tenancy_scope = (user.id, scope)


def current_scope():
    """Scope of the logged-in user, computed once per request."""
    if not has_request_context():
        return EMPTY
    # Keyed by user: `g` can outlive one login when app contexts are nested (tests, jobs).
    key = getattr(current_user, "id", None)
    cached = g.get("_tenancy_scope")
    if cached is None or cached[0] != key:
        from app.extensions import db

        cached = (key, scope_for(db.session, current_user))
        g._tenancy_scope = cached
    return cached[1]


def scoped_school(code=None):
    """The school a page works on: the school `code` if it is in the user's scope (else 404),
    otherwise the user's own school, or the only school they see.

    None when the user sees several schools and has not chosen one.
    """
    from app.extensions import db
    from app.org.models import OrgUnit, UnitKind

    scope = current_scope()
    if code:
        unit = db.session.execute(select(OrgUnit).where(
            OrgUnit.code == code.strip(), OrgUnit.kind == UnitKind.school)).scalar_one_or_none()
        if unit is None or not scope.can_see_school(unit.id):
            abort(404)
        return unit
    own = scope.write_school_id
    if own is None and not scope.all_schools and len(scope.school_ids) == 1:
        own = next(iter(scope.school_ids))
    return db.session.get(OrgUnit, own) if own is not None else None


def school_choices():
    """The schools (OrgUnit, by code) the user may choose a page's school from; None when
    that is every school of the city (the user types a code instead)."""
    from app.extensions import db
    from app.org.models import OrgUnit, UnitKind

    scope = current_scope()
    if scope.all_schools:
        return None
    return db.session.execute(select(OrgUnit).where(
        ids_in(OrgUnit.id, scope.school_ids or {-1}), OrgUnit.kind == UnitKind.school)
        .order_by(OrgUnit.code)).scalars().all()


class SchoolOwnedMixin:
    """Every school-owned table carries its school directly (never through a chain)."""

    __tenant_owned__ = True
    __audited__ = True

    @declared_attr
    def school_id(cls):
        return Column(Integer, ForeignKey("org_unit.id"), nullable=False, index=True)

    @declared_attr
    def school(cls):
        return relationship("OrgUnit", foreign_keys=[cls.school_id])


def is_school_owned(model):
    return getattr(model, "__tenant_owned__", False)


def restrict_query(query, model, scope=None):
    """Scope any query on a school-owned model (or on OrgUnit) to `scope`."""
    from app.org.models import OrgUnit

    scope = scope or current_scope()
    if scope.all_schools:
        return query
    if model is OrgUnit or (isinstance(model, type) and issubclass(model, OrgUnit)):
        return query.filter(ids_in(model.id, scope.unit_ids or {-1}))
    return query.filter(ids_in(model.school_id, scope.school_ids or {-1}))


class SchoolScopeFilter(BaseFilter):
    """Base filter of every scoped view: FAB applies it to list, show, edit, delete, API."""

    name = "Scope"
    arg_name = None

    def apply(self, query, value):
        return restrict_query(query, self.model)


def _owner_id(obj):
    if obj.school_id is not None:
        return obj.school_id
    school = obj.__dict__.get("school")
    return school.id if school is not None else None


def _web_writer_scope():
    """The scope that limits writes, or None outside a request with a logged-in user."""
    if not has_request_context() or not getattr(current_user, "is_authenticated", False):
        return None
    return current_scope()


def guard_rows(model, school_ids):
    """guard_flush's rule for rows written with Core statements (bulk imports, see
    app.core.bulk), which no flush sees: refuse school data outside the actor's school."""
    if not is_school_owned(model):
        return
    scope = _web_writer_scope()
    if scope is None:
        return
    for school_id in set(school_ids):
        if not scope.can_write_school(school_id):
            raise TenancyError()


def _principal_update(scope, obj, owner):
    """The principal's approval: an update of a row of their own school whose model lists
    the columns a principal may change (`__principal_columns__`), touching only those."""
    allowed = getattr(type(obj), "__principal_columns__", None)
    if not allowed or not scope.can_approve_school(owner):
        return False
    state = sa_inspect(obj)
    changed = {attr.key for attr in state.mapper.column_attrs
               if state.attrs[attr.key].history.has_changes()}
    return changed <= allowed


@event.listens_for(Session, "before_flush")
def guard_flush(session, flush_context, instances):
    """Refuse writes to school data outside the web actor's own school.

    Only applies inside a request with a logged-in user: the CLI, the demo loader and
    services called by trusted jobs pass their school explicitly.
    """
    scope = _web_writer_scope()
    if scope is None:
        return
    # session.dirty is computed on each access: once here (a withdrawal of 5,000 copies
    # asked for it 5,000 times, 18 s of a 19 s request).
    dirty = session.dirty
    for obj in list(session.new) + list(dirty) + list(session.deleted):
        if not is_school_owned(type(obj)):
            continue
        owner = _owner_id(obj)
        if not scope.can_write_school(owner):
            if obj in dirty and _principal_update(scope, obj, owner):
                continue
            raise TenancyError()
        if obj in dirty:
            # Moving a row to another school is never allowed from the web.
            hist = sa_inspect(obj).attrs.school_id.history
            if hist.deleted and any(v is not None and v != owner for v in hist.deleted):
                raise TenancyError()
