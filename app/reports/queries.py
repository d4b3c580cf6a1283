"""Aggregate queries for dashboards: one GROUP BY per figure, always under a Scope."""
import datetime

from sqlalchemy import case, func, or_, select

from app.catalog.models import DocumentType, Record
from app.collection.models import Copy, CopyStatus, Location
from app.core.audit import AuditLog
from app.core.tenancy import Scope
from app.org.models import AppUser, Hierarchy, OrgLink, OrgUnit, UnitKind

LEVELS = [
    ("teaches_preschool", "MN"),
    ("teaches_primary", "TH"),
    ("teaches_lower_secondary", "THCS"),
    ("teaches_upper_secondary", "THPT"),
]


def _active(model, on):
    return (model.valid_from <= on) & or_(model.valid_to.is_(None), model.valid_to >= on)


def _school_filter(scope: Scope, column):
    if scope.all_schools:
        return True
    return column.in_(scope.school_ids or {-1})


def school_counts(session, scope, on=None):
    """Schools of the scope open at `on`: total, public, and per level taught."""
    on = on or datetime.date.today()
    cols = [func.count(OrgUnit.id),
            func.coalesce(func.sum(case((OrgUnit.is_public, 1), else_=0)), 0)]
    cols += [func.coalesce(func.sum(case((getattr(OrgUnit, f), 1), else_=0)), 0)
             for f, _abbr in LEVELS]
    row = session.execute(
        select(*cols).where(OrgUnit.kind == UnitKind.school, _active(OrgUnit, on),
                            _school_filter(scope, OrgUnit.id))
    ).one()
    total, public = int(row[0]), int(row[1])
    levels = [(abbr, int(n)) for (_f, abbr), n in zip(LEVELS, row[2:])]
    return {"total": total, "public": public, "non_public": total - public, "levels": levels}


def unit_counts(session, on=None):
    """Offices and clusters open at `on`, by kind (department view)."""
    on = on or datetime.date.today()
    rows = session.execute(
        select(OrgUnit.kind, func.count()).where(_active(OrgUnit, on))
        .group_by(OrgUnit.kind)
    ).all()
    return {kind: n for kind, n in rows}


def schools_per_parent(session, scope, on=None, hierarchy=Hierarchy.administrative, limit=30):
    """(parent name, number of schools) under each office or cluster at `on`."""
    on = on or datetime.date.today()
    parent = OrgUnit.__table__.alias("parent")
    child = OrgUnit.__table__.alias("child")
    rows = session.execute(
        select(parent.c.name, func.count(child.c.id))
        .select_from(OrgLink)
        .join(parent, parent.c.id == OrgLink.parent_id)
        .join(child, child.c.id == OrgLink.child_id)
        .where(OrgLink.hierarchy == hierarchy, _active(OrgLink, on),
               child.c.kind == UnitKind.school.name,
               parent.c.kind != UnitKind.department.name,
               _school_filter(scope, child.c.id))
        .group_by(parent.c.id, parent.c.name)
        .order_by(func.count(child.c.id).desc(), parent.c.name)
        .limit(limit)
    ).all()
    return [(name, int(n)) for name, n in rows]


def account_count(session, scope):
    query = select(func.count(AppUser.id)).where(AppUser.active.is_(True))
    if not scope.all_schools:
        query = query.where(AppUser.unit_id.in_(scope.unit_ids or {-1}))
    return int(session.execute(query).scalar())


def locations_by_kind(session, scope):
    rows = session.execute(
        select(Location.kind, func.count()).where(_school_filter(scope, Location.school_id))
        .group_by(Location.kind)
    ).all()
    return [(kind.label, int(n)) for kind, n in rows]


def changes_per_day(session, scope, days=30, today=None):
    """Number of recorded changes per day over the last `days` days (activity chart)."""
    today = today or datetime.date.today()
    start = today - datetime.timedelta(days=days - 1)
    day = func.date(AuditLog.at)
    query = (select(day, func.count()).where(AuditLog.at >= datetime.datetime.combine(
        start, datetime.time())).group_by(day))
    if not scope.all_schools:
        query = query.where(AuditLog.school_id.in_(scope.school_ids or {-1}))
    counts = {str(d): int(n) for d, n in session.execute(query).all()}
    out = []
    for i in range(days):
        d = start + datetime.timedelta(days=i)
        out.append((d.strftime("%d/%m"), counts.get(d.isoformat(), 0)))
    return out


def collection_counts(session, school_ids):
    """Titles and copies of a few schools (school dashboards; city totals come later from
    aggregates)."""
    records = session.execute(select(func.count()).select_from(Record).where(
        Record.school_id.in_(school_ids or {-1}))).scalar()
    copies = session.execute(select(func.count()).select_from(Copy).where(
        Copy.school_id.in_(school_ids or {-1}), Copy.status != CopyStatus.withdrawn)).scalar()
    return int(records), int(copies)


def copies_by_document_type(session, school_ids):
    rows = session.execute(
        select(func.coalesce(DocumentType.name, ""), func.count(Copy.id))
        .select_from(Copy)
        .join(Record, (Record.id == Copy.record_id) & (Record.school_id == Copy.school_id))
        .outerjoin(DocumentType, DocumentType.id == Record.document_type_id)
        .where(Copy.school_id.in_(school_ids or {-1}), Copy.status != CopyStatus.withdrawn)
        .group_by(DocumentType.name).order_by(func.count(Copy.id).desc())).all()
    return [(name, int(n)) for name, n in rows]
