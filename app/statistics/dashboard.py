"""The library figures of the home dashboards (charts and cards), per role.

A school's come live from its tables; an office's and the city's from the aggregates
(app.statistics.refresh), per unit of the scope (StatScope columns).
"""
import datetime
from collections import defaultdict

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.org.models import OrgUnit
from app.readers.models import ReaderCategory, ReaderKind
from app.statistics import sources
from app.statistics.models import StatMonthly, StatSnapshot
from app.statistics.refresh import default_since, refreshed_at

# Minimum copies per pupil of the standard (Circular 16/2022, Decree 93; standards.md §3.3),
# by the highest level a school teaches.
MIN_COPIES_PER_STUDENT = [("teaches_upper_secondary", 5), ("teaches_lower_secondary", 4),
                          ("teaches_primary", 3), ("teaches_preschool", 2)]


def minimum_for(school):
    for flag, minimum in MIN_COPIES_PER_STUDENT:
        if getattr(school, flag, False):
            return minimum
    return None


def _student_categories(session):
    return {str(cid) for cid in session.execute(select(ReaderCategory.id).where(
        ReaderCategory.kind == ReaderKind.student)).scalars()}


def _month_label(value):
    if isinstance(value, str):
        return f"{value[5:7]}/{value[:4]}"
    return value.strftime("%m/%Y")


def school_figures(session, school_id, today):
    """Cards and charts of one school's library for the school year so far."""
    start = default_since(session, today)
    students = _student_categories(session)
    months = defaultdict(int)
    for row in session.execute(sources.use_select("loans.category", [school_id], start, today)):
        months[_month_label(row.month)] += row.count
    labels, day = [], start
    while day <= today:
        labels.append(day.strftime("%m/%Y"))
        day = (day + datetime.timedelta(days=32)).replace(day=1)
    registered = defaultdict(int)
    for row in session.execute(sources.snapshot_select("readers.grade", [school_id], today)):
        registered[row.key] += row.count
    borrowed = {key: n for _sid, key, n in session.execute(
        sources.borrowers_select([school_id], start, today, by="grade"))}
    grades = sorted((k for k in registered if k), key=int)
    loans_year = sum(months.values())
    student_count = sum(row.count for row in session.execute(
        sources.snapshot_select("readers.category", [school_id], today)) if row.key in students)
    cards = [(_l("Loans this school year"), loans_year, "fa-exchange-alt"),
             (_l("Registered students"), student_count, "fa-user-graduate")]
    charts = [
        {"id": "chart-loans-month", "type": "line", "title": _l("Loans per month"),
         "labels": labels, "values": [months.get(m, 0) for m in labels]},
        {"id": "chart-participation-grade", "type": "bar",
         "title": _l("Students who borrowed this school year, by grade (%)"),
         "labels": [str(_l("Grade %(n)s", n=g)) for g in grades],
         "values": [round(100 * borrowed.get(g, 0) / registered[g], 1) if registered[g] else 0
                    for g in grades]},
    ]
    return cards, charts


def area_figures(session, stat_scope, today):
    """Cards, charts and the schools below the standard for an office or the city."""
    start = default_since(session, today).replace(day=1)
    students = _student_categories(session)
    ids = stat_scope.school_ids

    def per_school(query):
        if ids is not None:
            query = query.where(query.selected_columns[0].in_(ids))
        return session.execute(query).all()

    student_rows = per_school(select(StatSnapshot.school_id, StatSnapshot.key,
                                     StatSnapshot.count)
                              .where(StatSnapshot.metric == "readers.category"))
    pupils = defaultdict(int)
    for sid, key, n in student_rows:
        if key in students:
            pupils[sid] += n
    copies = defaultdict(int)
    for sid, n in per_school(select(StatSnapshot.school_id, func.sum(StatSnapshot.count))
                             .where(StatSnapshot.metric == "copies.doctype")
                             .group_by(StatSnapshot.school_id)):
        copies[sid] = int(n or 0)
    loans = defaultdict(int)
    for sid, n in per_school(select(StatMonthly.school_id, func.sum(StatMonthly.count))
                             .where(StatMonthly.metric == "loans.category",
                                    StatMonthly.month >= start)
                             .group_by(StatMonthly.school_id)):
        loans[sid] = int(n or 0)
    borrowers = defaultdict(int)
    for sid, key, n in per_school(select(StatMonthly.school_id, StatMonthly.key,
                                         StatMonthly.count)
                                  .where(StatMonthly.metric == "borrowers_year.category",
                                         StatMonthly.month == start)):
        if key in students:
            borrowers[sid] += n

    columns = stat_scope.columns
    participation, loans_per_pupil, copies_per_pupil = [], [], []
    for column in columns:
        p = sum(pupils[s] for s in column.school_ids)
        participation.append(round(100 * sum(borrowers[s] for s in column.school_ids) / p, 1)
                             if p else 0)
        loans_per_pupil.append(round(sum(loans[s] for s in column.school_ids) / p, 2)
                               if p else 0)
        copies_per_pupil.append(round(sum(copies[s] for s in column.school_ids) / p, 2)
                                if p else 0)
    school_ids = set(pupils) | set(copies)
    schools = {u.id: u for u in session.execute(select(OrgUnit).where(
        OrgUnit.id.in_(school_ids or {-1}))).scalars()} if school_ids else {}
    below = []
    for sid, school in schools.items():
        minimum = minimum_for(school)
        if minimum is None or not pupils[sid]:
            continue
        ratio = copies[sid] / pupils[sid]
        if ratio < minimum:
            below.append((school, round(ratio, 2), minimum))
    below.sort(key=lambda item: item[1] / item[2])
    total_pupils = sum(pupils.values())
    cards = [
        (_l("Loans this school year"), sum(loans.values()), "fa-exchange-alt"),
        (_l("Registered students"), total_pupils, "fa-user-graduate"),
        (_l("Schools below the minimum copies per student"), len(below),
         "fa-exclamation-triangle"),
    ]
    labels = [c.name for c in columns]
    charts = [
        {"id": "chart-participation", "type": "bar", "horizontal": True,
         "title": _l("Students who borrowed this school year (%)"),
         "labels": labels, "values": participation},
        {"id": "chart-loans-per-student", "type": "bar", "horizontal": True,
         "title": _l("Loans per student this school year"),
         "labels": labels, "values": loans_per_pupil},
        {"id": "chart-copies-per-student", "type": "bar", "horizontal": True,
         "title": _l("Copies per student (the standard asks 3 to 5 by level)"),
         "labels": labels, "values": copies_per_pupil},
    ]
    return cards, charts, below, refreshed_at(session, ids)
