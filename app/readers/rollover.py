"""Chuyển năm học (year-end rollover): move every class of a school up one grade.

Plain use cases (the wizard, tests and any later CLI call them): `propose_mapping`,
`preview`, `apply`, `undo`, `confirm`. They take the session, the acting user and the school,
raise DomainError/ValidationError with a Vietnamese message, change nothing when they refuse
and only flush: the caller commits.

Rules:
- the students of a class (category of kind "student", status active or suspended: a
  suspended reader still moves up with their class) move to the class the mapping gives;
  "" means the class graduates (status graduated, class kept as their last class);
- loans are never touched: each keeps the class it was made in, and the reader's history
  stays attached to the reader; every reader change goes through the audit log;
- the rollover keeps a snapshot of every changed reader so that `undo` restores them
  exactly, until the librarian confirms the new year.
"""
import collections
import dataclasses
import datetime
import re
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select

from app.catalog.models import Record
from app.circulation.models import Loan, LoanStatus
from app.collection.models import Copy
from app.core.audit import acting_as
from app.core.errors import DomainError, ValidationError
from app.core.i18n import format_date, person_sort_key
from app.org.models import OrgUnit, SchoolYear
from app.readers.models import (
    Reader, ReaderCategory, ReaderKind, ReaderStatus, RolloverStatus, YearRollover,
)

# Students who are still in the school and so move up with their class.
IN_SCHOOL = (ReaderStatus.active, ReaderStatus.suspended)
LEAVING = (ReaderStatus.graduated, ReaderStatus.left)
MAX_CLASS_LENGTH = Reader.__table__.c.class_name.type.length
# The grade leads the class name, after words such as "Lớp": "6A1", "10A2", "Lớp 6/1".
_CLASS = re.compile(r"^((?:[^\W\d_]+\s+)*)(\d+)(.*)$", re.S)


class RolloverError(DomainError):
    status = 409


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# --- Class names ----------------------------------------------------------------------------

def final_grade(school):
    """The last grade of the school's highest level (THPT 12, THCS 9, TH 5), or None."""
    if school.teaches_upper_secondary:
        return 12
    if school.teaches_lower_secondary:
        return 9
    if school.teaches_primary:
        return 5
    return None


def parse_class(name):
    """'Lớp 6/1' -> ('Lớp ', 6, '/1'); None when no grade 1–12 leads the name."""
    match = _CLASS.match((name or "").strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        return None
    return match.group(1), int(match.group(2)), match.group(3)


def next_class(name, last_grade):
    """The class after `name` ("" when it is the final grade), None when it cannot be told."""
    parsed = parse_class(name)
    if parsed is None or last_grade is None or parsed[1] > last_grade:
        return None
    prefix, grade, suffix = parsed
    return "" if grade == last_grade else f"{prefix}{grade + 1}{suffix}"


def class_sort_key(name):
    """Natural order: 6A2 before 6A10, grade 9 before grade 10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
            for part in re.split(r"(\d+)", name or "") if part]


def _students(school):
    student_categories = select(ReaderCategory.id).where(
        ReaderCategory.kind == ReaderKind.student)
    return (Reader.school_id == school.id, Reader.status.in_(IN_SCHOOL),
            Reader.category_id.in_(student_categories),
            Reader.class_name.is_not(None), Reader.class_name != "")


def _count_classes(class_names):
    counts = collections.Counter(class_names)
    return dict(sorted(counts.items(), key=lambda item: class_sort_key(item[0])))


def class_counts(session, school):
    """{class name: number of students in school}, in natural class order."""
    return _count_classes(session.execute(
        select(Reader.class_name).where(*_students(school))).scalars())


def propose_mapping(session, school):
    """{class: next class} for every class of the school; "" graduates, None: not guessed
    (the librarian fills it in)."""
    last = final_grade(school)
    return {name: next_class(name, last) for name in class_counts(session, school)}


def clean_mapping(mapping):
    """Targets stripped; a None target means the class is not in the mapping."""
    return {str(source): (None if target is None else str(target).strip())
            for source, target in (mapping or {}).items()}


# --- Preview --------------------------------------------------------------------------------

@dataclasses.dataclass
class ClassLine:
    source: str
    readers: int
    target: Optional[str]  # None: not in the mapping; "": graduates
    proposed: Optional[str]  # what propose_mapping gives; None: could not be guessed

    @property
    def graduates(self):
        return self.readers if self.target == "" else 0


@dataclasses.dataclass
class Leaver:
    reader: Reader
    graduating: bool  # graduates with this rollover (else already graduated or left)
    loans: list  # [(Loan, Copy, Record)]


@dataclasses.dataclass
class Preview:
    classes: list
    leavers: list
    problems: list  # ValidationError: apply refuses until they are fixed
    warnings: list  # str: to check, apply goes ahead

    @property
    def promoted(self):
        return sum(c.readers for c in self.classes if c.target)

    @property
    def graduating(self):
        return sum(c.graduates for c in self.classes)


def mapping_problems(counts, mapping):
    """What makes `apply` refuse the mapping, one error per class (the class is named)."""
    problems = []
    for source in counts:
        target = mapping.get(source)
        if target is None:
            problems.append(ValidationError(
                _l("Class %(cls)s: give its class in the new school year, or tick “graduates”."),
                field=source, cls=source))
        elif len(target) > MAX_CLASS_LENGTH:
            problems.append(ValidationError(
                _l("Class %(cls)s: the new class name “%(target)s” is longer than %(n)d "
                   "characters."), field=source, cls=source, target=target,
                n=MAX_CLASS_LENGTH))
    return problems


def merge_warnings(counts, mapping):
    """Classes that end up mixed: several classes into one, or into a class whose students
    stay where they are."""
    into = {}
    for source in counts:
        target = mapping.get(source)
        if target and target != source:
            into.setdefault(target, []).append(source)
    warnings = []
    for target, sources in into.items():
        if len(sources) > 1:
            warnings.append(str(_l("Classes %(classes)s all move into class %(target)s.")) % {
                "classes": ", ".join(sources), "target": target})
        # The students of the target class stay there unless their own class moves on.
        staying = counts.get(target, 0) if mapping.get(target) in (None, target) else 0
        if staying:
            warnings.append(str(_l(
                "Class %(target)s already has %(n)d students who are not moving: class "
                "%(classes)s will be merged with them.")) % {
                "target": target, "n": staying, "classes": ", ".join(sources)})
    return warnings


def leavers_with_loans(session, school, graduating_classes=()):
    """Readers leaving the school who still hold books: those already graduated or gone and,
    before a rollover, the students of the graduating classes. The list to chase."""
    leaving = Reader.status.in_(LEAVING)
    if graduating_classes:
        leaving = or_(leaving, and_(*_students(school),
                                    Reader.class_name.in_(list(graduating_classes))))
    rows = session.execute(
        select(Reader, Loan, Copy, Record)
        .join(Loan, and_(Loan.reader_id == Reader.id, Loan.school_id == Reader.school_id))
        .join(Copy, Copy.id == Loan.copy_id).join(Record, Record.id == Copy.record_id)
        .where(Reader.school_id == school.id, Loan.status == LoanStatus.active, leaving)
        .order_by(Loan.due_on, Loan.id)).all()
    by_reader = {}
    for reader, loan, copy, record in rows:
        if reader.id not in by_reader:
            by_reader[reader.id] = Leaver(reader, reader.status in IN_SCHOOL, [])
        by_reader[reader.id].loans.append((loan, copy, record))
    return sorted(by_reader.values(), key=lambda x: (
        class_sort_key(x.reader.class_name),
        person_sort_key(family_and_middle=x.reader.family_name, given=x.reader.given_name)))


def preview(session, school, mapping):
    """What `apply` would do with `mapping`, without changing anything."""
    mapping = clean_mapping(mapping)
    counts = class_counts(session, school)
    last = final_grade(school)
    classes = [ClassLine(source, n, mapping.get(source), next_class(source, last))
               for source, n in counts.items()]
    graduating = [c.source for c in classes if c.target == ""]
    return Preview(classes=classes,
                   leavers=leavers_with_loans(session, school, graduating),
                   problems=mapping_problems(counts, mapping),
                   warnings=merge_warnings(counts, mapping))


# --- School years ---------------------------------------------------------------------------

def default_years(session, on=None):
    """(from, to) proposed by the wizard: the current year (or, in the summer, the year that
    has just ended) and the one after it; either may be None."""
    on = on or datetime.date.today()
    years = session.execute(select(SchoolYear).order_by(SchoolYear.starts_on)).scalars().all()
    started = [y for y in years if y.starts_on <= on]
    from_year = started[-1] if started else None
    later = [y for y in years if from_year is not None and y.starts_on > from_year.ends_on]
    return from_year, (later[0] if later else None)


def check_years(session, school, from_year, to_year):
    """Refuse a pair of years the school cannot roll over now (message names the years)."""
    if from_year is None:
        raise ValidationError(_l("Choose the school year that is ending."), field="from_year")
    if to_year is None:
        raise ValidationError(_l("Choose the new school year."), field="to_year")
    if to_year.starts_on <= from_year.ends_on:
        raise ValidationError(
            _l("The new school year %(to_year)s must begin after %(from_year)s ends."),
            field="to_year", to_year=to_year.name, from_year=from_year.name)
    between = session.execute(select(SchoolYear).where(
        SchoolYear.starts_on > from_year.ends_on, SchoolYear.ends_on < to_year.starts_on)
        .order_by(SchoolYear.starts_on)).scalars().first()
    if between is not None:
        raise ValidationError(
            _l("School year %(year)s lies between %(from_year)s and %(to_year)s: move up one "
               "year at a time."), field="to_year", year=between.name, to_year=to_year.name,
            from_year=from_year.name)
    done = session.execute(select(YearRollover).where(
        YearRollover.school_id == school.id,
        YearRollover.status.in_([RolloverStatus.applied, RolloverStatus.confirmed]))
        .order_by(YearRollover.applied_at)).scalars().all()
    for rollover in done:
        if rollover.from_year_id == from_year.id:
            raise RolloverError(
                _l("The readers of school year %(from_year)s were already moved up to "
                   "%(to_year)s on %(date)s."), to_year=rollover.to_year.name,
                date=format_date(rollover.applied_at.date()), from_year=from_year.name)
    for rollover in done:
        if rollover.status == RolloverStatus.applied:
            # Undo restores a snapshot: it is only exact while no later rollover exists.
            raise RolloverError(
                _l("The rollover from %(from_year)s to %(to_year)s is not confirmed yet: "
                   "confirm it or undo it first."), to_year=rollover.to_year.name,
                from_year=rollover.from_year.name)
        if rollover.from_year.starts_on > from_year.starts_on:
            raise RolloverError(
                _l("School year %(year)s has already been rolled over: an earlier school year "
                   "cannot be rolled over after it."), year=rollover.from_year.name)


# --- Apply, undo, confirm -------------------------------------------------------------------

def _lock(session, school):
    """One rollover operation at a time per school (PostgreSQL row lock; SQLite serialises
    writers anyway): two librarians pressing "apply" must not promote twice."""
    session.execute(select(OrgUnit.id).where(OrgUnit.id == school.id).with_for_update())


def _state(reader):
    return {"class_name": reader.class_name, "grade": reader.grade,
            "status": reader.status.name,
            "valid_until": reader.valid_until.isoformat() if reader.valid_until else None}


def apply(session, actor, school, from_year, to_year, mapping):
    """Move the school's students up as `mapping` says; returns the YearRollover (applied)."""
    with acting_as(actor):
        _lock(session, school)
        check_years(session, school, from_year, to_year)
        mapping = clean_mapping(mapping)
        readers = session.execute(select(Reader).where(*_students(school))
                                  .order_by(Reader.id)).scalars().all()
        # Counted from the very readers that move (a class created meanwhile is not missed).
        counts = _count_classes(reader.class_name for reader in readers)
        if not counts:
            raise ValidationError(_l("The school has no student in a class: there is nobody "
                                     "to move up."))
        problems = mapping_problems(counts, mapping)
        if problems:
            raise problems[0]
        snapshot, promoted, graduated = {}, 0, 0
        for reader in readers:
            before = _state(reader)
            target = mapping[reader.class_name]
            if target == "":
                reader.status = ReaderStatus.graduated
            else:
                parsed = parse_class(target)
                reader.class_name = target
                if parsed is not None:
                    reader.grade = parsed[1]
                # Extend the card to the end of the new year; never shorten a longer one.
                if reader.valid_until is None or reader.valid_until < to_year.ends_on:
                    reader.valid_until = to_year.ends_on
            if _state(reader) != before:
                snapshot[str(reader.id)] = before
                if target == "":
                    graduated += 1
                else:
                    promoted += 1
        rollover = YearRollover(
            school=school, school_id=school.id, from_year=from_year, to_year=to_year,
            class_mapping={source: mapping[source] for source in counts}, snapshot=snapshot,
            status=RolloverStatus.applied, applied_at=_now(), readers_promoted=promoted,
            readers_graduated=graduated)
        session.add(rollover)
        session.flush()
    return rollover


def _check_open(session, school, rollover, operation):
    """Refuse `operation` ("undo" or "confirm") unless the rollover is still applied."""
    if rollover.school_id != school.id:
        raise RolloverError(_l("This rollover belongs to another school."))
    _lock(session, school)
    session.refresh(rollover)  # its status as committed by anyone before the lock
    years = {"from_year": rollover.from_year.name, "to_year": rollover.to_year.name}
    if rollover.status == RolloverStatus.confirmed:
        date = format_date(rollover.confirmed_at.date())
        if operation == "undo":
            raise RolloverError(_l("The rollover from %(from_year)s to %(to_year)s was "
                                   "confirmed on %(date)s: it can no longer be undone."),
                                date=date, **years)
        raise RolloverError(_l("The rollover from %(from_year)s to %(to_year)s was already "
                               "confirmed on %(date)s."), date=date, **years)
    if rollover.status == RolloverStatus.undone:
        if operation == "undo":
            raise RolloverError(_l("The rollover from %(from_year)s to %(to_year)s has "
                                   "already been undone."), **years)
        raise RolloverError(_l("The rollover from %(from_year)s to %(to_year)s has been "
                               "undone: it can no longer be confirmed."), **years)


def undo(session, actor, school, rollover):
    """Put every reader back exactly as the snapshot has them (only before confirmation)."""
    with acting_as(actor):
        _check_open(session, school, rollover, "undo")
        snapshot = rollover.snapshot or {}
        ids = [int(key) for key in snapshot]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            # A reader deleted since the rollover has nothing left to restore.
            for reader in session.execute(select(Reader).where(
                    Reader.id.in_(chunk), Reader.school_id == school.id)).scalars():
                before = snapshot[str(reader.id)]
                reader.class_name = before["class_name"]
                reader.grade = before["grade"]
                reader.status = ReaderStatus[before["status"]]
                reader.valid_until = (datetime.date.fromisoformat(before["valid_until"])
                                      if before["valid_until"] else None)
        rollover.status = RolloverStatus.undone
        session.flush()
    return rollover


def confirm(session, actor, school, rollover):
    """The new year is settled: the rollover can no longer be undone."""
    with acting_as(actor):
        _check_open(session, school, rollover, "confirm")
        rollover.status = RolloverStatus.confirmed
        rollover.confirmed_at = _now()
        session.flush()
    return rollover
