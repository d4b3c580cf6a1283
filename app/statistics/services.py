"""Statistics for a period and a scope: one school, an office or cluster, the whole city.

A table has one row per key (a document type, a grade, a class…) and one column per unit of
the scope (the school itself; an office's schools; the city's offices), then the total; a
report with several measures (titles, copies, value) has them side by side for each unit.
One school's figures are computed live from its tables with the exact dates; many schools'
come from the aggregates (app.statistics.refresh), whose months cover the period: the page
says so and shows when they were refreshed.
"""
import dataclasses
import datetime
from collections import defaultdict
from typing import List, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, func, or_, select, text

from app.catalog.models import DocumentType
from app.collection.models import CopyStatus, Funding
from app.core.errors import ValidationError
from app.core.i18n import DATE_FORMAT, collation_key, local_today
from app.core.tenancy import ids_in
from app.org.models import OrgLink, OrgUnit, SchoolYear, UnitKind
from app.readers.models import ReaderCategory
from app.statistics import sources
from app.statistics.models import StatMonthly, StatSnapshot
from app.statistics.refresh import refreshed_at

# --- Period -----------------------------------------------------------------------------


@dataclasses.dataclass
class Period:
    start: datetime.date
    end: datetime.date
    label: str = ""

    @property
    def months(self):
        """(first month, last month) as first days: the aggregates' granularity."""
        return self.start.replace(day=1), self.end.replace(day=1)

    @property
    def month_aligned(self):
        nxt = (self.end.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
        return self.start.day == 1 and self.end == nxt - datetime.timedelta(days=1)


def _parse_date(text, field):
    try:
        return datetime.datetime.strptime(text.strip(), DATE_FORMAT).date()
    except ValueError:
        raise ValidationError(_l("%(field)s: \"%(value)s\" is not a date (dd/mm/yyyy).",
                                 field=field, value=text), field=field)


def school_years(session):
    return session.execute(select(SchoolYear).order_by(SchoolYear.starts_on.desc())).scalars().all()


def month_end(day):
    return (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1) - \
        datetime.timedelta(days=1)


def parse_period(session, args, today=None):
    """The period of a request: `from`/`to` (dd/mm/yyyy) if given, else the school year
    `year` (id; default the current one) whole or one part of it: `part` = s1, s2 or a
    month "2025-10". Raises ValidationError (Vietnamese message) on bad input."""
    today = today or local_today()
    date_from, date_to = (args.get("from") or "").strip(), (args.get("to") or "").strip()
    if date_from or date_to:
        if not (date_from and date_to):
            raise ValidationError(_l("Give both the first and the last day of the period."),
                                  field="from")
        start = _parse_date(date_from, str(_l("From")))
        end = _parse_date(date_to, str(_l("To")))
        if end < start:
            raise ValidationError(_l("The period ends (%(end)s) before it starts (%(start)s).",
                                     end=end.strftime(DATE_FORMAT),
                                     start=start.strftime(DATE_FORMAT)), field="to")
        return Period(start, end, f"{start.strftime(DATE_FORMAT)} – {end.strftime(DATE_FORMAT)}")
    year = None
    year_id = (args.get("year") or "").strip()
    if year_id:
        year = session.get(SchoolYear, int(year_id)) if year_id.isdigit() else None
        if year is None:
            raise ValidationError(_l("Unknown school year."), field="year")
    else:
        year = session.execute(select(SchoolYear).where(
            SchoolYear.starts_on <= today, SchoolYear.ends_on >= today)).scalars().first()
        if year is None:
            year = session.execute(select(SchoolYear).where(SchoolYear.starts_on <= today)
                                   .order_by(SchoolYear.starts_on.desc())).scalars().first()
    if year is None:
        start = datetime.date(today.year, 1, 1)
        return Period(start, today, f"{start.strftime(DATE_FORMAT)} – "
                                    f"{today.strftime(DATE_FORMAT)}")
    part = (args.get("part") or "").strip()
    name = str(_l("school year %(name)s", name=year.name))
    if part == "s1":
        return Period(year.starts_on, year.semester1_ends_on,
                      f"{_l('Semester I')}, {name}")
    if part == "s2":
        return Period(year.semester2_starts_on, year.ends_on, f"{_l('Semester II')}, {name}")
    if part:
        try:
            month = datetime.datetime.strptime(part, "%Y-%m").date()
        except ValueError:
            raise ValidationError(_l("Unknown part of the school year."), field="part")
        if not (year.starts_on.replace(day=1) <= month <= year.ends_on):
            raise ValidationError(_l("That month is not in the school year."), field="part")
        return Period(month, month_end(month), str(_l("month %(month)s", month=month.strftime("%m/%Y"))))
    return Period(year.starts_on, year.ends_on, name.capitalize())


def year_months(year):
    """(value, label) of the months of a school year, for the period picker."""
    months, day = [], year.starts_on.replace(day=1)
    while day <= year.ends_on:
        months.append((day.strftime("%Y-%m"), day.strftime("%m/%Y")))
        day = (day + datetime.timedelta(days=32)).replace(day=1)
    return months


# --- Scope ------------------------------------------------------------------------------


@dataclasses.dataclass
class Column:
    unit_id: int
    code: str
    name: str
    school_ids: frozenset
    is_school: bool


@dataclasses.dataclass
class StatScope:
    unit: Optional[OrgUnit]  # None: the whole city
    school_ids: Optional[frozenset]  # None: every school of the city
    columns: List[Column]
    is_school: bool
    parents: list = dataclasses.field(default_factory=list)  # visible units above, top first
    uncovered: bool = False  # the city: some school outside every column

    @property
    def name(self):
        return self.unit.name if self.unit is not None else str(_l("The whole city"))


def _links(session, on):
    # Core rows (session.connection()), not ORM ones: thousands of links in a city.
    rows = session.connection().execute(select(OrgLink.parent_id, OrgLink.child_id,
                                               OrgLink.hierarchy).where(
        OrgLink.valid_from <= on, or_(OrgLink.valid_to.is_(None), OrgLink.valid_to >= on))).all()
    return rows


def _children(links, parent_id):
    by_hierarchy = defaultdict(list)
    for parent, child, hierarchy in links:
        if parent == parent_id:
            by_hierarchy[getattr(hierarchy, "name", hierarchy)].append(child)
    # Offices (administrative) first; a cluster's schools otherwise.
    return by_hierarchy.get("administrative") or next(iter(by_hierarchy.values()), [])


def _children_map(links):
    children = defaultdict(list)
    for parent, child, _h in links:
        children[parent].append(child)
    return children


def _schools_below(children, root, kinds):
    seen, stack = {root}, [root]
    while stack:
        for child in children[stack.pop()]:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return frozenset(u for u in seen if kinds.get(u) == UnitKind.school)


def resolve_scope(session, user_scope, user_unit_id, unit_code=None, on=None):
    """The scope of a statistics page: the unit `unit_code` (404 via LookupError when the
    user may not see it), else the user's own unit (the city for the department)."""
    on = on or local_today()
    unit = None
    if unit_code:
        unit = session.execute(select(OrgUnit).where(
            OrgUnit.code == unit_code.strip())).scalar_one_or_none()
        if unit is None or not user_scope.can_see_unit(unit.id):
            raise LookupError(unit_code)
    elif user_unit_id is not None:
        unit = session.get(OrgUnit, user_unit_id)
    if unit is not None and unit.kind == UnitKind.department:
        unit = None
    if unit is not None and unit.valid_to is not None and unit.valid_to < on:
        on = unit.valid_to  # a closed office: its schools on its last day (as its scope)
    if unit is None and not user_scope.all_schools:
        raise LookupError(unit_code)
    parents = _visible_parents(session, user_scope, unit, on)
    if unit is not None and unit.kind == UnitKind.school:
        ids = frozenset({unit.id})
        return StatScope(unit, ids, [Column(unit.id, unit.code, unit.name, ids, True)], True,
                         parents)
    units = {u.id: u for u in session.connection().execute(select(
        OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.kind).where(
        OrgUnit.valid_from <= on, or_(OrgUnit.valid_to.is_(None), OrgUnit.valid_to >= on))).all()}
    kinds = {uid: u.kind for uid, u in units.items()}
    links = _links(session, on)
    children = _children_map(links)
    if unit is None:
        root_children = [u.id for u in units.values()
                         if u.kind == UnitKind.department]
        child_ids = [c for d in root_children for c in _children(links, d)]
        all_ids = frozenset(uid for uid, k in kinds.items() if k == UnitKind.school)
        school_ids = None
    else:
        child_ids = _children(links, unit.id)
        all_ids = _schools_below(children, unit.id, kinds)
        if not user_scope.all_schools:
            all_ids = all_ids & user_scope.school_ids
        school_ids = all_ids
    columns = []
    for cid in child_ids:
        child = units.get(cid)
        if child is None:
            continue
        ids = (frozenset({cid}) if child.kind == UnitKind.school
               else _schools_below(children, cid, kinds))
        ids = ids & all_ids
        if ids:
            columns.append(Column(cid, child.code, child.name, ids,
                                  child.kind == UnitKind.school))
    columns.sort(key=lambda c: (not c.is_school, collation_key(c.name)) if unit is not None
                 else (c.is_school, collation_key(c.name)))
    covered = set().union(*(c.school_ids for c in columns)) if columns else set()
    return StatScope(unit, school_ids, columns, False, parents,
                     uncovered=school_ids is None and covered != all_ids)


def _visible_parents(session, user_scope, unit, on):
    """The offices above `unit` (administrative, else cluster) the user may open."""
    from app.org.models import Hierarchy
    from app.org.services import parent_at

    chain, current = [], unit
    while current is not None and len(chain) < 5:
        parent = (parent_at(session, current.id, on)
                  or parent_at(session, current.id, on, Hierarchy.professional))
        if parent is None or parent.kind == UnitKind.department:
            break
        if user_scope.can_see_unit(parent.id):
            chain.append(parent)
        current = parent
    return list(reversed(chain))


# --- Reports ----------------------------------------------------------------------------

MEASURES = {
    "count": _l("Number"),
    "titles": _l("Titles"),
    "copies": _l("Copies"),
    "amount": _l("Value (VND)"),
    "share": _l("Share (%)"),
}

DDC_MAIN = {
    "0": _l("0 – General works"), "1": _l("1 – Philosophy, psychology"),
    "2": _l("2 – Religion"), "3": _l("3 – Social sciences"), "4": _l("4 – Language"),
    "5": _l("5 – Natural sciences, mathematics"), "6": _l("6 – Technology"),
    "7": _l("7 – Arts, sports"), "8": _l("8 – Literature"),
    "9": _l("9 – History, geography"),
}
LANGUAGES = {"vie": _l("Vietnamese"), "eng": _l("English"), "fre": _l("French"),
             "fra": _l("French"), "chi": _l("Chinese"), "zho": _l("Chinese"),
             "rus": _l("Russian"), "jpn": _l("Japanese"), "kor": _l("Korean"),
             "ger": _l("German"), "deu": _l("German")}


@dataclasses.dataclass
class Report:
    code: str
    group: str  # collection, readers, use
    title: object
    key_title: object
    kind: str  # "snapshot", "use" or "standard" (app.statistics.standard: rows are schools)
    metrics: tuple  # (measure, metric name, take "count" or "amount")
    dimension: str  # how keys are labelled
    by_month: bool = False


REPORTS = [
    Report("collection_doctype", "collection", _l("Holdings by document type"), _l("Document type"),
       "snapshot", (("titles", "titles.doctype", "count"), ("copies", "copies.doctype", "count"),
                    ("amount", "copies.doctype", "amount")), "doctype"),
    Report("collection_class", "collection", _l("Holdings by classification class"),
       _l("Class"), "snapshot", (("titles", "titles.classmain", "count"),
                                 ("copies", "copies.classmain", "count")), "classmain"),
    Report("collection_language", "collection", _l("Holdings by language"), _l("Language"),
       "snapshot", (("copies", "copies.language", "count"),
                    ("amount", "copies.language", "amount")), "language"),
    Report("collection_decade", "collection", _l("Holdings by year of publication"),
       _l("Published in"), "snapshot", (("copies", "copies.decade", "count"),), "decade"),
    Report("collection_location", "collection", _l("Holdings by location"), _l("Location"),
       "snapshot", (("copies", "copies.location", "count"),), "text"),
    Report("collection_funding", "collection", _l("Holdings by funding source"),
       _l("Funding"), "snapshot", (("copies", "copies.funding", "count"),
                                   ("amount", "copies.funding", "amount")), "funding"),
    Report("collection_status", "collection", _l("Copies by status"), _l("Status"), "snapshot",
       (("copies", "copies.status", "count"),), "status"),
    Report("collection_standard", "collection", _l("Collection against the standard"),
       _l("School"), "standard", (), "school"),
    Report("acquired_doctype", "collection", _l("Acquisitions in the period by document type"),
       _l("Document type"), "use", (("copies", "acquired.doctype", "count"),
                                    ("amount", "acquired.doctype", "amount")), "doctype"),
    Report("acquired_funding", "collection", _l("Acquisitions in the period by funding source"),
       _l("Funding"), "use", (("copies", "acquired.funding", "count"),
                              ("amount", "acquired.funding", "amount")), "funding"),
    Report("withdrawn_doctype", "collection", _l("Withdrawals in the period by document type"),
       _l("Document type"), "use", (("copies", "withdrawn.doctype", "count"),
                                    ("amount", "withdrawn.doctype", "amount")), "doctype"),
    Report("readers_category", "readers", _l("Registered readers by category"), _l("Category"),
       "snapshot", (("count", "readers.category", "count"),), "category"),
    Report("readers_grade", "readers", _l("Registered readers by grade"), _l("Grade"),
       "snapshot", (("count", "readers.grade", "count"),), "grade"),
    Report("readers_class", "readers", _l("Registered readers by class"), _l("Class"),
       "snapshot", (("count", "readers.class", "count"),), "text"),
    Report("readers_new", "readers", _l("New readers in the period"), _l("Category"), "use",
       (("count", "readers_new.category", "count"),), "category"),
    Report("loans_month", "use", _l("Loans by month"), _l("Month"), "use",
       (("count", "loans.category", "count"),), "month", by_month=True),
    Report("loans_category", "use", _l("Loans by reader category"), _l("Category"), "use",
       (("count", "loans.category", "count"),), "category"),
    Report("loans_grade", "use", _l("Loans by grade"), _l("Grade"), "use",
       (("count", "loans.grade", "count"),), "grade"),
    Report("loans_class", "use", _l("Loans by class"), _l("Class"), "use",
       (("count", "loans.class", "count"),), "text"),
    Report("loans_doctype", "use", _l("Loans by document type"), _l("Document type"), "use",
       (("count", "loans.doctype", "count"),), "doctype"),
    Report("loans_classmain", "use", _l("Loans by classification class"), _l("Class"), "use",
       (("count", "loans.classmain", "count"),), "classmain"),
    Report("reads_month", "use", _l("In-library reads by month"), _l("Month"), "use",
       (("count", "reads.category", "count"),), "month", by_month=True),
    Report("reads_doctype", "use", _l("In-library reads by document type"), _l("Document type"),
       "use", (("count", "reads.doctype", "count"),), "doctype"),
    Report("visits_month", "use", _l("Library visits by month"), _l("Month"), "use",
       (("count", "visits.category", "count"),), "month", by_month=True),
    Report("visits_category", "use", _l("Library visits by reader category"), _l("Category"),
       "use", (("count", "visits.category", "count"),), "category"),
    Report("overdue_class", "use", _l("Overdue loans now, by class"), _l("Class"), "snapshot",
       (("count", "overdue.class", "count"),), "text"),
]
REPORTS_BY_CODE = {r.code: r for r in REPORTS}
GROUPS = [("collection", _l("Collection")), ("readers", _l("Readers")), ("use", _l("Use"))]


@dataclasses.dataclass
class Table:
    report: Report
    scope: StatScope
    period: Period
    measures: list  # (code, label)
    columns: list  # Column
    rows: list  # (key label, [value per column × measure], [total per measure])
    totals: list  # [total per column × measure]
    grand: list  # [total per measure]
    source: str  # "live" or "aggregates"
    refreshed_at: Optional[datetime.datetime] = None
    note: str = ""


def _column_map(scope):
    """{school_id: column index}, and whether the columns split the scope exactly (then
    the totals are the sums of the columns)."""
    mapping = {}
    for i, column in enumerate(scope.columns):
        for sid in column.school_ids:
            mapping.setdefault(sid, i)
    exact = sum(len(c.school_ids) for c in scope.columns) == len(mapping) and (
        scope.school_ids is not None and set(mapping) == set(scope.school_ids)
        or scope.school_ids is None and not scope.uncovered)
    return mapping, exact


def _aggregate_query(report, metric, scope, period, group_column):
    """The aggregate rows of `metric` grouped by `group_column` and the key (or month)."""
    if report.kind == "snapshot":
        table, where = StatSnapshot, [StatSnapshot.metric == metric]
        key = StatSnapshot.key
    else:
        first, last = period.months
        table = StatMonthly
        where = [StatMonthly.metric == metric, StatMonthly.month >= first,
                 StatMonthly.month <= last]
        key = StatMonthly.month if report.by_month else StatMonthly.key
    columns = [key, func.sum(table.count), func.sum(table.amount)]
    if group_column is not None:
        columns.insert(0, group_column)
    query = select(*columns).where(*where).group_by(*columns[:-2])
    return table, query


def _fetch(session, report, scope, period, today):
    """({(column index, key, metric, take): value}, {(key, metric, take): total})."""
    cells, totals = defaultdict(int), defaultdict(int)
    ids = scope.school_ids

    def add(col, key, metric, take, count, amount):
        value = int((count if take == "count" else amount) or 0)
        if col is not None:
            cells[(col, key, metric, take)] += value
        totals[(key, metric, take)] += value

    if scope.is_school:  # live, exact dates
        for _measure, metric, take in report.metrics:
            if report.kind == "snapshot":
                for r in session.execute(sources.snapshot_select(metric, list(ids), today)):
                    add(0, r.key, metric, take, r.count, r.amount)
            else:
                for r in session.execute(sources.use_select(metric, list(ids), period.start,
                                                            period.end)):
                    add(0, _month_key(r.month) if report.by_month else r.key, metric, take,
                        r.count, r.amount)
        return cells, totals
    mapping, exact = _column_map(scope)
    pg = session.get_bind().dialect.name == "postgresql"
    for metric in dict.fromkeys(m for _measure, m, _take in report.metrics):
        takes = [t for _measure, m, t in report.metrics if m == metric]
        if pg and mapping:
            # PostgreSQL sums per column itself: (school, column) pairs as a VALUES list,
            # a few hundred rows back instead of one per school and key.
            # Two array parameters, not thousands of bound values (slow to compile and send).
            items = sorted(mapping.items())
            pairs = text(
                "SELECT * FROM unnest(CAST(:school_ids AS integer[]), "
                "CAST(:cols AS integer[])) AS unit_of_school(school_id, col)"
            ).bindparams(school_ids=[sid for sid, _c in items], cols=[c for _s, c in items]
                         ).columns(school_id=Integer, col=Integer).subquery("unit_of_school")
            table, query = _aggregate_query(report, metric, scope, period, pairs.c.col)
            query = query.join(pairs, pairs.c.school_id == table.school_id)
            # Core rows: an office's widest report is 15,000 of them.
            for col, key, count, amount in session.connection().execute(query).all():
                key = _month_key(key) if report.by_month else key
                for take in takes:
                    value = int((count if take == "count" else amount) or 0)
                    cells[(col, key, metric, take)] += value
                    if exact:
                        totals[(key, metric, take)] += value
            if not exact:
                table, query = _aggregate_query(report, metric, scope, period, None)
                if ids is not None:
                    query = query.where(ids_in(table.school_id, ids))
                for key, count, amount in session.connection().execute(query).all():
                    key = _month_key(key) if report.by_month else key
                    for take in takes:
                        totals[(key, metric, take)] += int(
                            (count if take == "count" else amount) or 0)
            continue
        table, query = _aggregate_query(report, metric, scope, period, table_school(report))
        if ids is not None:
            query = query.where(ids_in(table.school_id, ids))
        for sid, key, count, amount in session.connection().execute(query).all():
            key = _month_key(key) if report.by_month else key
            for take in takes:
                add(mapping.get(sid), key, metric, take, count, amount)
    return cells, totals


def table_school(report):
    return StatSnapshot.school_id if report.kind == "snapshot" else StatMonthly.school_id


def _month_key(value):
    if isinstance(value, str):
        return value[:7]
    return value.strftime("%Y-%m")


def _key_labels(session, dimension, keys):
    labels = {}
    if dimension == "doctype":
        names = dict(session.execute(select(DocumentType.id, DocumentType.name)).all())
        labels = {k: names.get(int(k), k) if k.isdigit() else str(_l("No document type"))
                  for k in keys}
    elif dimension == "category":
        names = dict(session.execute(select(ReaderCategory.id, ReaderCategory.name)).all())
        labels = {k: names.get(int(k), k) if k.isdigit() else str(_l("No category"))
                  for k in keys}
    elif dimension == "classmain":
        labels = {k: str(DDC_MAIN[k]) if k in DDC_MAIN else (k or str(_l("Not classified")))
                  for k in keys}
    elif dimension == "grade":
        labels = {k: str(_l("Grade %(n)s", n=k)) if k else str(_l("Teachers and staff"))
                  for k in keys}
    elif dimension == "language":
        labels = {k: str(LANGUAGES.get(k, k or _l("Unknown"))) for k in keys}
    elif dimension == "decade":
        labels = {k: (f"{k}–{int(k) + 9}" if k.lstrip("-").isdigit() else str(_l("Unknown")))
                  for k in keys}
    elif dimension == "funding":
        labels = {k: str(Funding[k].label) if k in Funding.__members__
                  else str(_l("Not recorded")) for k in keys}
    elif dimension == "status":
        labels = {k: str(CopyStatus[k].label) if k in CopyStatus.__members__ else k
                  for k in keys}
    elif dimension == "month":
        labels = {k: f"{k[5:7]}/{k[:4]}" for k in keys}
    else:
        labels = {k: k or str(_l("(none)")) for k in keys}
    return labels


def _sort_keys(dimension, keys, labels):
    if dimension in ("month", "decade", "grade", "classmain"):
        return sorted(keys, key=lambda k: (k == "", int(k) if k.lstrip("-").isdigit() else k))
    return sorted(keys, key=lambda k: (k == "", collation_key(labels[k])))


def build_table(session, report, scope, period, today=None):
    """The table of `report` for `scope` and `period`."""
    today = today or local_today()
    cells_by, key_totals = _fetch(session, report, scope, period, today)
    keys = {key for (key, _m, _t) in key_totals}
    labels = _key_labels(session, report.dimension, keys)
    if report.by_month:  # every month of the period, also those without a figure
        day = period.start.replace(day=1)
        while day <= period.end:
            keys.add(day.strftime("%Y-%m"))
            labels[day.strftime("%Y-%m")] = day.strftime("%m/%Y")
            day = (day + datetime.timedelta(days=32)).replace(day=1)
    ordered = _sort_keys(report.dimension, keys, labels)
    measures = [(m, MEASURES[m]) for m, _metric, _take in report.metrics]
    columns = scope.columns
    rows = []
    totals = [0] * (len(columns) * len(measures))
    grand = [0] * len(measures)
    for key in ordered:
        cells = [cells_by.get((i, key, metric, take), 0)
                 for i in range(len(columns)) for _m, metric, take in report.metrics]
        row_total = [key_totals.get((key, metric, take), 0)
                     for _m, metric, take in report.metrics]
        for i, value in enumerate(cells):
            totals[i] += value
        for i, value in enumerate(row_total):
            grand[i] += value
        rows.append((labels[key], cells, row_total))
    table = Table(report, scope, period, measures, columns, rows, totals, grand,
                  "live" if scope.is_school else "aggregates")
    if not scope.is_school:
        table.refreshed_at = refreshed_at(session, scope.school_ids)
        if report.kind == "use" and not period.month_aligned:
            first, last = period.months
            table.note = str(_l("Figures of many schools are counted by whole months: "
                                "%(start)s – %(end)s.", start=first.strftime(DATE_FORMAT),
                                end=month_end(last).strftime(DATE_FORMAT)))
    return table


# --- School-only lists ------------------------------------------------------------------

def top_titles(session, school_id, period, limit=10):
    """(title, loans) most borrowed in the period at one school."""
    from app.catalog.models import Record
    from app.circulation.models import Loan, LoanStatus
    from app.collection.models import Copy

    start = datetime.datetime.combine(period.start, datetime.time())
    end = datetime.datetime.combine(period.end + datetime.timedelta(days=1), datetime.time())
    return session.execute(
        select(Record.title, func.count())
        .select_from(Loan).join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_id)
        .where(Loan.school_id == school_id, Loan.status != LoanStatus.cancelled,
               Loan.loaned_at >= start, Loan.loaned_at < end)
        .group_by(Record.id, Record.title).order_by(func.count().desc(), Record.title)
        .limit(limit)).all()


def top_readers(session, school_id, period, limit=10):
    """(reader full name, class, loans) of the readers who borrowed most in the period."""
    from app.circulation.models import Loan, LoanStatus
    from app.readers.models import Reader

    start = datetime.datetime.combine(period.start, datetime.time())
    end = datetime.datetime.combine(period.end + datetime.timedelta(days=1), datetime.time())
    rows = session.execute(
        select(Reader.family_name, Reader.given_name, Reader.class_name, func.count())
        .select_from(Loan).join(Reader, Reader.id == Loan.reader_id)
        .where(Loan.school_id == school_id, Loan.status != LoanStatus.cancelled,
               Loan.loaned_at >= start, Loan.loaned_at < end)
        .group_by(Reader.id, Reader.family_name, Reader.given_name, Reader.class_name)
        .order_by(func.count().desc()).limit(limit)).all()
    return [(f"{f} {g}", c or "", n) for f, g, c, n in rows]


def classes_without_use(session, school_id, period):
    """Classes with registered students but no loan, read or visit in the period."""
    from app.circulation.models import Loan, LoanStatus, ReadingRoomUse
    from app.readers.models import Reader, ReaderStatus

    classes = set(session.execute(select(Reader.class_name).where(
        Reader.school_id == school_id, Reader.status == ReaderStatus.active,
        Reader.class_name.is_not(None), Reader.class_name != "").distinct()).scalars())
    start = datetime.datetime.combine(period.start, datetime.time())
    end = datetime.datetime.combine(period.end + datetime.timedelta(days=1), datetime.time())
    used = set(session.execute(select(Loan.class_name).where(
        Loan.school_id == school_id, Loan.status != LoanStatus.cancelled,
        Loan.loaned_at >= start, Loan.loaned_at < end).distinct()).scalars())
    used |= set(session.execute(select(ReadingRoomUse.class_name).where(
        ReadingRoomUse.school_id == school_id, ReadingRoomUse.used_on >= period.start,
        ReadingRoomUse.used_on <= period.end).distinct()).scalars())
    return sorted(classes - used, key=collation_key)


def borrowers_share(session, school_id, period):
    """(category name, registered, borrowed in the period, share %) at one school."""
    from app.readers.models import Reader, ReaderStatus

    registered = dict(session.execute(
        select(Reader.category_id, func.count()).where(
            Reader.school_id == school_id, Reader.status == ReaderStatus.active)
        .group_by(Reader.category_id)).all())
    borrowed = {int(k) if k.isdigit() else None: n for _sid, k, n in session.execute(
        sources.borrowers_select([school_id], period.start, period.end)).all()}
    names = dict(session.execute(select(ReaderCategory.id, ReaderCategory.name)).all())
    rows = []
    for cid in sorted(set(registered) | {k for k in borrowed if k is not None},
                      key=lambda c: collation_key(names.get(c, ""))):
        reg, bor = registered.get(cid, 0), borrowed.get(cid, 0)
        rows.append((names.get(cid, "?"), reg, bor, round(100 * bor / reg, 1) if reg else None))
    return rows


def class_readers(session, school_id, class_name, period):
    """(reader name, loans, in-library reads) of each reader of a class in the period: the
    last step of the drill-down (city → office → school → class)."""
    from app.circulation.models import Loan, LoanStatus, ReadingRoomUse
    from app.readers.models import Reader

    start = datetime.datetime.combine(period.start, datetime.time())
    end = datetime.datetime.combine(period.end + datetime.timedelta(days=1), datetime.time())
    readers = session.execute(select(Reader.id, Reader.family_name, Reader.given_name).where(
        Reader.school_id == school_id, Reader.class_name == class_name)).all()
    loans = dict(session.execute(select(Loan.reader_id, func.count()).where(
        Loan.school_id == school_id, Loan.class_name == class_name,
        Loan.status != LoanStatus.cancelled, Loan.loaned_at >= start, Loan.loaned_at < end)
        .group_by(Loan.reader_id)).all())
    reads = dict(session.execute(select(ReadingRoomUse.reader_id, func.count()).where(
        ReadingRoomUse.school_id == school_id, ReadingRoomUse.class_name == class_name,
        ReadingRoomUse.reader_id.is_not(None), ReadingRoomUse.used_on >= period.start,
        ReadingRoomUse.used_on <= period.end).group_by(ReadingRoomUse.reader_id)).all())
    rows = [(f"{family} {given}", loans.get(rid, 0), reads.get(rid, 0), (given, family))
            for rid, family, given in readers]
    rows.sort(key=lambda r: (collation_key(r[3][0]), collation_key(r[3][1])))
    return [(name, n_loans, n_reads) for name, n_loans, n_reads, _k in rows]
