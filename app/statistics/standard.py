"""The collection against the minimums of the standard (Decree 93/2020 Art. 17, Circular
16/2022 Standard 1; reference/standards.md §3.3 and §7.4), per school.

Two measured criteria, each with the minimum of the highest level the school teaches:

- copies per student (metric `copies_per_student`): copies held (neither withdrawn nor lost)
  ÷ active student readers; at least 2 (preschool), 3 (primary), 4 (lower secondary),
  5 (upper secondary);
- teacher books per teacher (metric `teacher_sets`, an estimate): copies held of the
  professional books (document type SNV: sách nghiệp vụ, the teachers' editions of the
  textbooks included) ÷ active teacher readers; at least 1 (one set per teacher), 3 in a
  preschool (3 copies per teacher). Neither records nor readers say which grade or subject a
  book or a teacher is for, so the figure cannot check that every teacher has the books of
  their own grade or subject: below the minimum a school surely lacks sets, at or above it
  it may still lack some.

And one figure shown for reference, not judged (metric `snv_copies_per_title`): copies per
professional title, which the 2003 standard's guide asked to be 3 (đạt chuẩn) or 4.

A school's figures are counted live; an office's and the city's come from the aggregates
(`stat_snapshot`: readers.category, copies.doctype, titles.doctype), so the pages of many
schools stay fast.
"""
import dataclasses
import datetime
from collections import defaultdict
from typing import List, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, literal_column, or_, select

from app.catalog.models import DocumentType
from app.core.i18n import collation_key, local_today
from app.core.tenancy import ids_in
from app.org.models import OrgUnit, UnitKind
from app.readers.models import ReaderCategory, ReaderKind
from app.statistics import sources
from app.statistics.models import StatSnapshot
from app.statistics.refresh import refreshed_at

# Minimum copies per student, by the highest level a school teaches (standards.md §3.3).
MIN_COPIES_PER_STUDENT = [("teaches_upper_secondary", 5), ("teaches_lower_secondary", 4),
                          ("teaches_primary", 3), ("teaches_preschool", 2)]
# Minimum teacher books per teacher: one set per teacher (TH, THCS, THPT), 3 copies per
# teacher in a preschool.
MIN_TEACHER_BOOKS = [("teaches_upper_secondary", 1), ("teaches_lower_secondary", 1),
                     ("teaches_primary", 1), ("teaches_preschool", 3)]
# The document types whose copies are the teachers' books (sách nghiệp vụ).
TEACHER_BOOK_TYPES = ("SNV",)
# Copies per professional title the 2003 guide asked (đạt chuẩn): for reference only.
SNV_COPIES_PER_TITLE_2003 = 3

PARTS = ("students", "teachers", "copies", "snv_copies", "snv_titles")


def _minimum(school, table):
    for flag, minimum in table:
        if getattr(school, flag, False):
            return minimum
    return None


def min_copies_per_student(school):
    return _minimum(school, MIN_COPIES_PER_STUDENT)


def min_teacher_books(school):
    return _minimum(school, MIN_TEACHER_BOOKS)


def _ratio(numerator, denominator):
    return round(numerator / denominator, 2) if denominator else None


@dataclasses.dataclass
class SchoolStandard:
    """One school's figures against the standard (None: cannot be measured)."""

    school_id: int
    code: str
    name: str
    unit_name: str = ""  # the office (or cluster) column it falls in, at the city's scope
    students: int = 0
    copies: int = 0
    teachers: int = 0
    snv_copies: int = 0
    snv_titles: int = 0
    min_copies: Optional[int] = None
    min_teacher_books: Optional[int] = None

    @property
    def copies_per_student(self):
        return _ratio(self.copies, self.students)

    @property
    def teacher_books_per_teacher(self):
        return _ratio(self.snv_copies, self.teachers)

    @property
    def snv_copies_per_title(self):
        return _ratio(self.snv_copies, self.snv_titles)

    @property
    def copies_ok(self):
        """True / False against the minimum; None without students or a level."""
        if self.min_copies is None or not self.students:
            return None
        return self.copies >= self.min_copies * self.students

    @property
    def teacher_books_ok(self):
        if self.min_teacher_books is None or not self.teachers:
            return None
        return self.snv_copies >= self.min_teacher_books * self.teachers

    @property
    def below(self):
        return self.copies_ok is False or self.teacher_books_ok is False


def _keys(session):
    """(student category keys, teacher category keys, teacher-book document type keys)."""
    kinds = session.execute(select(ReaderCategory.id, ReaderCategory.kind)).all()
    students = {str(i) for i, kind in kinds if kind == ReaderKind.student}
    teachers = {str(i) for i, kind in kinds if kind == ReaderKind.teacher}
    snv = {str(i) for i in session.execute(select(DocumentType.id).where(
        DocumentType.code.in_(TEACHER_BOOK_TYPES))).scalars()}
    return students, teachers, snv


def _part(metric, key, students, teachers, snv):
    """Which parts (PARTS) a snapshot row counts in."""
    if metric == "readers.category":
        return ("students",) if key in students else ("teachers",) if key in teachers else ()
    if metric == "copies.doctype":
        return ("copies", "snv_copies") if key in snv else ("copies",)
    if metric == "titles.doctype" and key in snv:
        return ("snv_titles",)
    return ()


METRICS = ("readers.category", "copies.doctype", "titles.doctype")


def live_counts(session, school_ids, today=None):
    """{school id: {part: count}} counted now from the schools' tables."""
    today = today or local_today()
    students, teachers, snv = _keys(session)
    counts = defaultdict(lambda: dict.fromkeys(PARTS, 0))
    for metric in METRICS:
        for row in session.execute(sources.snapshot_select(metric, list(school_ids), today)):
            for part in _part(metric, row.key, students, teachers, snv):
                counts[row.school_id][part] += int(row.count or 0)
    return counts


def aggregate_counts(session, school_ids):
    """{school id: {part: count}} from the aggregates (school_ids None: every school): one
    row per school and part comes back."""
    students, teachers, snv = _keys(session)
    metric, key = StatSnapshot.metric, StatSnapshot.key
    none = literal_column("''")
    part = case(
        (and_(metric == "readers.category", key.in_(students or {"-"})),
         literal_column("'students'")),
        (and_(metric == "readers.category", key.in_(teachers or {"-"})),
         literal_column("'teachers'")),
        (and_(metric == "copies.doctype", key.in_(snv or {"-"})), literal_column("'snv'")),
        (metric == "copies.doctype", literal_column("'copies'")),
        (and_(metric == "titles.doctype", key.in_(snv or {"-"})),
         literal_column("'snv_titles'")),
        else_=none)
    inner = select(StatSnapshot.school_id.label("school_id"), part.label("part"),
                   StatSnapshot.count.label("count")).where(metric.in_(METRICS))
    if school_ids is not None:
        inner = inner.where(ids_in(StatSnapshot.school_id, school_ids or {-1}))
    inner = inner.subquery()
    counts = defaultdict(lambda: dict.fromkeys(PARTS, 0))
    for sid, name, n in session.execute(
            select(inner.c.school_id, inner.c.part, func.sum(inner.c.count))
            .where(inner.c.part != "").group_by(inner.c.school_id, inner.c.part)):
        n = int(n or 0)
        if name == "snv":  # teacher books are copies too
            counts[sid]["snv_copies"] += n
            counts[sid]["copies"] += n
        else:
            counts[sid][name] += n
    return counts


def school_row(session, school, today=None):
    """One school's figures, counted live."""
    counts = live_counts(session, [school.id], today).get(school.id, dict.fromkeys(PARTS, 0))
    return SchoolStandard(school.id, school.code, school.name, **counts,
                          min_copies=min_copies_per_student(school),
                          min_teacher_books=min_teacher_books(school))


def area_rows(session, school_ids, today=None):
    """The figures of many schools (school_ids None: every school open today), from the
    aggregates, in no particular order."""
    today = today or local_today()
    # Columns, not entities: thousands of OrgUnit objects take longer to build than the sums.
    query = select(OrgUnit.id, OrgUnit.code, OrgUnit.name, *[
        getattr(OrgUnit, flag) for flag, _n in MIN_COPIES_PER_STUDENT]).where(
        OrgUnit.kind == UnitKind.school)
    if school_ids is None:
        query = query.where(OrgUnit.valid_from <= today,
                            or_(OrgUnit.valid_to.is_(None), OrgUnit.valid_to >= today))
    else:
        query = query.where(ids_in(OrgUnit.id, school_ids or {-1}))
    schools = session.execute(query).all()
    counts = aggregate_counts(session, school_ids)
    empty = dict.fromkeys(PARTS, 0)
    return [SchoolStandard(s.id, s.code, s.name, **counts.get(s.id, empty),
                           min_copies=min_copies_per_student(s),
                           min_teacher_books=min_teacher_books(s)) for s in schools]


# --- The statistics report "Collection against the standard" --------------------------

@dataclasses.dataclass
class UnitStandard:
    """The schools of one office (or cluster) of the city: their sums and how many are below
    each minimum."""

    code: str
    name: str
    total: SchoolStandard
    schools: int
    below_copies: int
    below_teacher_books: int


@dataclasses.dataclass
class StandardTable:
    scope: object  # services.StatScope
    rows: List[SchoolStandard]
    total: SchoolStandard
    source: str  # "live" or "aggregates"
    refreshed_at: Optional[datetime.datetime] = None
    note: str = ""
    by_unit: bool = False  # rows carry the office they fall in (the city's scope)
    # The city's page: one line per office (thousands of school lines would be megabytes of
    # page); the Excel file has every school.
    units: List[UnitStandard] = dataclasses.field(default_factory=list)

    @property
    def below_copies(self):
        return sum(1 for r in self.rows if r.copies_ok is False)

    @property
    def below_teacher_books(self):
        return sum(1 for r in self.rows if r.teacher_books_ok is False)

    @property
    def measured(self):
        return sum(1 for r in self.rows if r.copies_ok is not None)


def definition():
    """The definition shown under the table and in the Excel file (one paragraph each)."""
    return [
        str(_l("Copies per student: copies held (neither withdrawn nor lost) divided by the "
               "active student readers; the minimum is that of the highest level the school "
               "teaches: preschool 2, primary 3, lower secondary 4, upper secondary 5 (Decree "
               "93/2020 Art. 17, Circular 16/2022).")),
        str(_l("Teacher books per teacher: copies held of the professional books (document "
               "type \"Sách nghiệp vụ\", SNV, teachers' editions of the textbooks included) "
               "divided by the active teacher readers; the minimum is 1 (one set per "
               "teacher), 3 in a preschool. It is an estimate: records do not say which grade "
               "or subject a book is for, nor readers what a teacher teaches, so a school "
               "below the minimum surely lacks sets, one above it may still lack some.")),
        str(_l("Copies per professional title: teacher-book copies divided by their titles; "
               "the 2003 standard's guide asked %(n)d in stock. Shown for reference, not "
               "judged.", n=SNV_COPIES_PER_TITLE_2003)),
    ]


def _total(rows):
    total = SchoolStandard(0, "", str(_l("Total")))
    for r in rows:
        for part in PARTS:
            setattr(total, part, getattr(total, part) + getattr(r, part))
    return total


def build_table(session, scope, today=None):
    """The report for a statistics scope (app.statistics.services.StatScope)."""
    today = today or local_today()
    if scope.is_school:
        rows = [school_row(session, scope.unit, today)]
        return StandardTable(scope, rows, _total(rows), "live", note="")
    rows = area_rows(session, scope.school_ids, today)
    by_unit = not all(c.is_school for c in scope.columns)
    units = []
    if by_unit:
        unit_of = {}
        for column in scope.columns:
            for sid in column.school_ids:
                unit_of.setdefault(sid, column)
        members = defaultdict(list)
        for r in rows:
            column = unit_of.get(r.school_id)
            r.unit_name = column.name if column is not None else ""
            members[column.code if column is not None else ""].append(r)
        for column in scope.columns:
            if column.code in members:
                units.append(_unit(column.code, column.name, members[column.code]))
        if members.get(""):  # schools outside every office (directly under the department)
            units.append(_unit("", str(_l("Other schools")), members[""]))
    rows.sort(key=lambda r: (collation_key(r.unit_name), collation_key(r.name)))
    return StandardTable(scope, rows, _total(rows), "aggregates",
                         refreshed_at=refreshed_at(session, scope.school_ids), by_unit=by_unit,
                         units=units)


def _unit(code, name, rows):
    return UnitStandard(code, name, _total(rows), len(rows),
                        sum(1 for r in rows if r.copies_ok is False),
                        sum(1 for r in rows if r.teacher_books_ok is False))
