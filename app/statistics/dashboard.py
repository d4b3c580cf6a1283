"""The library figures of the home dashboards (charts and cards), per role.

A school's come live from its tables; an office's and the city's from the aggregates
(app.statistics.refresh), per unit of the scope (StatScope columns).
"""
import datetime
from collections import defaultdict

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.core.tenancy import ids_in
from app.org.models import OrgUnit
from app.readers.models import ReaderCategory, ReaderKind
from app.statistics import sources, standard
from app.statistics.models import StatMonthly
from app.statistics.refresh import default_since, refreshed_at

# Minimum copies per pupil of the standard, by the highest level a school teaches
# (app.statistics.standard).
minimum_for = standard.min_copies_per_student
STANDARD_NOTE = _l("Copies per student: copies held ÷ active students (minimum 2 to 5 by "
                   "level). Teacher books per teacher: copies of professional books (SNV) ÷ "
                   "active teachers (minimum 1 set, 3 copies in a preschool), an estimate: "
                   "records and readers carry no grade or subject.")


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
    school = session.get(OrgUnit, school_id)
    row = standard.school_row(session, school, today)
    if row.min_copies is not None:
        cards.append((_l("Copies per student (minimum %(n)d)", n=row.min_copies),
                      row.copies_per_student if row.students else "–", "fa-balance-scale"))
    if row.min_teacher_books is not None:
        cards.append((_l("Teacher books per teacher (minimum %(n)d)", n=row.min_teacher_books),
                      row.teacher_books_per_teacher if row.teachers else "–",
                      "fa-chalkboard-teacher"))
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
            query = query.where(ids_in(query.selected_columns[0], ids))
        return session.execute(query).all()

    rows = standard.area_rows(session, ids, today)
    pupils = defaultdict(int, {r.school_id: r.students for r in rows})
    copies = defaultdict(int, {r.school_id: r.copies for r in rows})
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
    # Schools below either minimum: the one most below first (the smaller share of its
    # minimum, over the two criteria).
    below = [r for r in rows if r.below]
    below.sort(key=lambda r: min(
        r.copies / (r.min_copies * r.students) if r.copies_ok is False else 2,
        r.snv_copies / (r.min_teacher_books * r.teachers) if r.teacher_books_ok is False
        else 2))
    total_pupils = sum(pupils.values())
    cards = [
        (_l("Loans this school year"), sum(loans.values()), "fa-exchange-alt"),
        (_l("Registered students"), total_pupils, "fa-user-graduate"),
        (_l("Schools below the minimum copies per student"),
         sum(1 for r in below if r.copies_ok is False), "fa-exclamation-triangle"),
        (_l("Schools below the minimum teacher books per teacher"),
         sum(1 for r in below if r.teacher_books_ok is False), "fa-chalkboard-teacher"),
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
