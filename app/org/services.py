"""Rules of the organisation tree, school years and accounts (views, CLI and tests call these)."""
import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from app.core.errors import ValidationError
from app.core.security import ROLE_UNIT_KINDS, role_label
from app.core.tenancy import descendant_units
from app.org.models import FAR_PAST, Hierarchy, OrgLink, OrgUnit, UnitKind

# Which kinds may sit under which, per hierarchy.
ALLOWED_PARENTS = {
    UnitKind.district_office: {UnitKind.department},
    UnitKind.ward_office: {UnitKind.department},
    UnitKind.cluster: {UnitKind.department},
    UnitKind.school: {UnitKind.department, UnitKind.district_office, UnitKind.ward_office,
                      UnitKind.cluster},
}


def _overlaps(a_from, a_to, b_from, b_to):
    a_to = a_to or datetime.date.max
    b_to = b_to or datetime.date.max
    return a_from <= b_to and b_from <= a_to


def validate_link(session, link):
    """Raise ValidationError if `link` would break the tree; nothing is saved then."""
    with session.no_autoflush:
        _validate_link(session, link)


def _validate_link(session, link):
    child = link.child or (session.get(OrgUnit, link.child_id) if link.child_id else None)
    parent = link.parent or (session.get(OrgUnit, link.parent_id) if link.parent_id else None)
    if child is None:
        raise ValidationError(_l("Choose the unit to place in the tree."), field="child")
    if parent is None:
        raise ValidationError(_l("Choose the parent unit."), field="parent")
    valid_from = link.valid_from or FAR_PAST
    if link.valid_to is not None and link.valid_to < valid_from:
        raise ValidationError(
            _l("The end date must not be before the start date."), field="valid_to")
    if child.id is not None and child.id == parent.id:
        raise ValidationError(_l("A unit cannot be placed under itself."), field="parent")
    allowed = ALLOWED_PARENTS.get(child.kind, set())
    if parent.kind not in allowed:
        raise ValidationError(
            _l("A unit of kind “%(child)s” cannot be placed under a unit of kind “%(parent)s”."),
            field="parent", child=child.kind.label, parent=parent.kind.label)
    if child.id is not None and parent.id is not None:
        # The new parent must not be one of the child's descendants, at any date.
        under_child = _all_descendants_any_date(session, child.id)
        if parent.id in under_child:
            raise ValidationError(
                _l("“%(parent)s” is under “%(child)s”: a unit cannot be moved under its own "
                   "descendant."), field="parent", parent=parent.name, child=child.name)
    hierarchy = link.hierarchy or Hierarchy.administrative
    others = session.execute(
        select(OrgLink).where(OrgLink.child_id == child.id, OrgLink.hierarchy == hierarchy)
    ).scalars()
    for other in others:
        if other is link or (link.id is not None and other.id == link.id):
            continue
        if _overlaps(valid_from, link.valid_to, other.valid_from, other.valid_to):
            raise ValidationError(
                _l("“%(child)s” is already under “%(parent)s” in this hierarchy during these "
                   "dates: end that placement first."),
                field="valid_from", child=child.name, parent=other.parent.name)


def _all_descendants_any_date(session, root_id):
    seen = {root_id}
    frontier = {root_id}
    while frontier:
        rows = session.execute(
            select(OrgLink.child_id).where(OrgLink.parent_id.in_(frontier))
        ).scalars()
        frontier = set(rows) - seen
        seen |= frontier
    return seen - {root_id}


def place_unit(session, child, parent, hierarchy=Hierarchy.administrative,
               valid_from=FAR_PAST, valid_to=None):
    session.flush()  # give new units their ids for the checks
    link = OrgLink(child_id=child.id, parent_id=parent.id, hierarchy=hierarchy,
                   valid_from=valid_from, valid_to=valid_to)
    validate_link(session, link)
    session.add(link)
    return link


def move_unit(session, child, new_parent, on, hierarchy=Hierarchy.administrative):
    """Close the child's current placement the day before `on` and open one under new_parent."""
    current = parent_link_at(session, child.id, on, hierarchy)
    if current is not None:
        if current.valid_from >= on:
            raise ValidationError(
                _l("The unit's current placement starts on or after the move date."),
                field="valid_from")
        current.valid_to = on - datetime.timedelta(days=1)
        session.flush()
    return place_unit(session, child, new_parent, hierarchy, valid_from=on)


def parent_link_at(session, unit_id, on, hierarchy=Hierarchy.administrative):
    return session.execute(
        select(OrgLink).where(
            OrgLink.child_id == unit_id,
            OrgLink.hierarchy == hierarchy,
            OrgLink.valid_from <= on,
            or_(OrgLink.valid_to.is_(None), OrgLink.valid_to >= on),
        )
    ).scalars().first()


def parent_at(session, unit_id, on, hierarchy=Hierarchy.administrative):
    link = parent_link_at(session, unit_id, on, hierarchy)
    return link.parent if link else None


def schools_under(session, unit_id, on=None):
    """Ids of the schools under a unit at a date (the unit itself if it is a school)."""
    units = descendant_units(session, unit_id, on)
    return set(session.execute(
        select(OrgUnit.id).where(OrgUnit.id.in_(units), OrgUnit.kind == UnitKind.school)
    ).scalars())


def validate_unit(session, unit):
    if unit.kind == UnitKind.school and not any(
        getattr(unit, f) for f, _label in OrgUnit.LEVEL_FIELDS
    ):
        raise ValidationError(_l("Tick at least one level taught by the school."),
                              field="teaches_primary")
    if unit.valid_to is not None and unit.valid_from and unit.valid_to < unit.valid_from:
        raise ValidationError(_l("The end date must not be before the start date."),
                              field="valid_to")


def validate_school_year(session, year):
    if not (year.starts_on and year.semester1_ends_on and year.semester2_starts_on
            and year.ends_on):
        raise ValidationError(_l("Fill in every date of the school year."))
    if not (year.starts_on < year.semester1_ends_on < year.semester2_starts_on < year.ends_on):
        raise ValidationError(
            _l("The dates must follow each other: start of the year, end of semester 1, "
               "start of semester 2, end of the year."), field="semester1_ends_on")


def validate_account(session, user):
    """An account is bound to one unit whose kind fits each of its roles."""
    if user.unit is None and user.unit_id is None:
        raise ValidationError(_l("Bind the account to a unit of the organisation tree."),
                              field="unit")
    unit = user.unit
    for role in user.roles or []:
        kinds = ROLE_UNIT_KINDS.get(role.name)
        if kinds and unit.kind.name not in kinds:
            raise ValidationError(
                _l("The role “%(role)s” cannot be given to an account of “%(unit)s”."),
                field="roles", role=role_label(role.name), unit=unit.name)


def current_school_year(session, on=None):
    from app.org.models import SchoolYear

    on = on or datetime.date.today()
    return session.execute(
        select(SchoolYear).where(SchoolYear.starts_on <= on, SchoolYear.ends_on >= on)
    ).scalars().first()
