"""Loan policies: which rule applies, the due date, open days.

Plain functions over the session: the desk, the API, the CLI and the tests all call them.

What they read (the school's and the city's loan rules, the school's circulation settings,
the closed days, the school years) changes a few times a year and is asked on every scan at
the desk: each worker keeps it per school in app.core.cache, current to the last committed
change (a version number bumped by database triggers). The values are plain immutable
snapshots (`Rule`, `Settings`), never ORM objects: edit rules through the models.
"""
import dataclasses
import datetime
from typing import FrozenSet, Optional, Tuple

from sqlalchemy import or_, select

from app.circulation.models import CirculationSettings, ClosedDay, LoanRule
from app.core import cache

DEFAULT_SETTINGS = dict(closed_on_sundays=True, closed_on_saturdays=False, hold_days=3,
                        fines_enabled=False, fine_per_day=0, undo_minutes=10)


@dataclasses.dataclass(frozen=True)
class Rule:
    """A loan rule as the desk uses it (the columns of LoanRule, and its type's name)."""

    id: int
    school_id: Optional[int]
    category_id: Optional[int]
    document_type_id: Optional[int]
    document_type_name: Optional[str]
    loan_days: Optional[int]
    until_year_end: bool
    max_items: int
    renewals: int
    renewal_days: Optional[int]
    reading_room_only: bool


@dataclasses.dataclass
class Settings:
    """A school's circulation settings (CirculationSettings' columns); a fresh copy each call,
    so changing one (as a test does) changes nothing else."""

    school_id: int
    closed_on_sundays: bool
    closed_on_saturdays: bool
    hold_days: int
    fines_enabled: bool
    fine_per_day: object  # Decimal
    undo_minutes: int


@dataclasses.dataclass(frozen=True)
class SchoolPolicy:
    rules: Tuple[Rule, ...]
    settings: Settings  # copied by settings_for before it leaves
    closed: FrozenSet[datetime.date]  # the city's and the school's closed days
    years: Tuple[Tuple[datetime.date, datetime.date], ...]  # (starts_on, ends_on), by start


def _load(session, school_id):
    from app.catalog.models import DocumentType
    from app.org.models import SchoolYear

    rules = tuple(
        Rule(id=r.id, school_id=r.school_id, category_id=r.category_id,
             document_type_id=r.document_type_id, document_type_name=type_name,
             loan_days=r.loan_days, until_year_end=bool(r.until_year_end),
             max_items=r.max_items, renewals=r.renewals, renewal_days=r.renewal_days,
             reading_room_only=bool(r.reading_room_only))
        for r, type_name in session.execute(
            select(LoanRule, DocumentType.name)
            .outerjoin(DocumentType, DocumentType.id == LoanRule.document_type_id)
            .where(or_(LoanRule.school_id.is_(None), LoanRule.school_id == school_id))
            .order_by(LoanRule.id)))
    row = session.execute(select(
        CirculationSettings.closed_on_sundays, CirculationSettings.closed_on_saturdays,
        CirculationSettings.hold_days, CirculationSettings.fines_enabled,
        CirculationSettings.fine_per_day, CirculationSettings.undo_minutes)
        .where(CirculationSettings.school_id == school_id).limit(1)).first()
    settings = Settings(school_id=school_id, **(row._asdict() if row else DEFAULT_SETTINGS))
    closed = frozenset(session.scalars(select(ClosedDay.day).where(
        or_(ClosedDay.school_id.is_(None), ClosedDay.school_id == school_id))))
    years = tuple(session.execute(select(SchoolYear.starts_on, SchoolYear.ends_on)
                                  .order_by(SchoolYear.starts_on)).tuples())
    return SchoolPolicy(rules=rules, settings=settings, closed=closed, years=years)


def school_policy(session, school_id):
    """Everything above for one school, from the worker's cache when it is current."""
    return cache.cached(session, ("circulation", school_id), lambda: _load(session, school_id))


def school_rules(session, school_id):
    """The rules that can apply in a school: the city's defaults and the school's own."""
    return list(school_policy(session, school_id).rules)


def pick_rule(rules, category_id, document_type_id):
    """The most specific matching rule: document type first, then reader category, then the
    school's own rule over the city's default."""
    best, best_score = None, -1
    for rule in rules:
        if rule.category_id is not None and rule.category_id != category_id:
            continue
        if rule.document_type_id is not None and rule.document_type_id != document_type_id:
            continue
        score = ((rule.document_type_id is not None) * 4 + (rule.category_id is not None) * 2
                 + (rule.school_id is not None))
        if score > best_score:
            best, best_score = rule, score
    return best


def settings_for(session, school_id):
    """The school's settings (the defaults when it has none): a copy, see `Settings`."""
    return dataclasses.replace(school_policy(session, school_id).settings)


def default_settings(school_id):
    """A new CirculationSettings row with the defaults, to add to the session."""
    return CirculationSettings(school_id=school_id, **DEFAULT_SETTINGS)


def closed_days(session, school_id, start, end):
    return {day for day in school_policy(session, school_id).closed if start <= day <= end}


def next_open_day(session, school_id, day, settings, max_days=120):
    """`day` itself if the library is open that day, otherwise the next open day."""
    closed = school_policy(session, school_id).closed
    for _ in range(max_days):
        if not (day in closed or (settings.closed_on_sundays and day.weekday() == 6)
                or (settings.closed_on_saturdays and day.weekday() == 5)):
            return day
        day += datetime.timedelta(days=1)
    return day


def school_year_end(session, school_id, on):
    """The last day of the school year that contains `on` (None outside every year): as
    app.org.services.current_school_year, from the cache."""
    for starts_on, ends_on in school_policy(session, school_id).years:
        if starts_on <= on <= ends_on:
            return ends_on
    return None


def due_date(session, school_id, rule, settings, today, days=None):
    """The due date of a loan (or renewal) made `today` under `rule`."""
    if rule.until_year_end and days is None:
        ends_on = school_year_end(session, school_id, today)
        due = ends_on if ends_on is not None else today + datetime.timedelta(days=365)
    else:
        due = today + datetime.timedelta(days=days or rule.loan_days or 14)
    return next_open_day(session, school_id, due, settings)
