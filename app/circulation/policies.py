"""Loan policies: which rule applies, the due date, open days.

Plain functions over the session: the desk, the API, the CLI and the tests all call them.
"""
import datetime

from sqlalchemy import or_, select

from app.circulation.models import CirculationSettings, ClosedDay, LoanRule


def school_rules(session, school_id):
    """The rules that can apply in a school: the city's defaults and the school's own."""
    return session.scalars(select(LoanRule).where(
        or_(LoanRule.school_id.is_(None), LoanRule.school_id == school_id))).all()


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
    settings = session.scalars(select(CirculationSettings).where(
        CirculationSettings.school_id == school_id)).first()
    return settings or CirculationSettings(school_id=school_id, closed_on_sundays=True,
                                           closed_on_saturdays=False, hold_days=3,
                                           fines_enabled=False, fine_per_day=0, undo_minutes=10)


def closed_days(session, school_id, start, end):
    return set(session.scalars(select(ClosedDay.day).where(
        or_(ClosedDay.school_id.is_(None), ClosedDay.school_id == school_id),
        ClosedDay.day >= start, ClosedDay.day <= end)))


def next_open_day(session, school_id, day, settings, max_days=120):
    """`day` itself if the library is open that day, otherwise the next open day."""
    closed = closed_days(session, school_id, day, day + datetime.timedelta(days=max_days))
    for _ in range(max_days):
        if not (day in closed or (settings.closed_on_sundays and day.weekday() == 6)
                or (settings.closed_on_saturdays and day.weekday() == 5)):
            return day
        day += datetime.timedelta(days=1)
    return day


def due_date(session, school_id, rule, settings, today, days=None):
    """The due date of a loan (or renewal) made `today` under `rule`."""
    if rule.until_year_end and days is None:
        from app.org.services import current_school_year  # (org.services imports views)

        year = current_school_year(session, today)
        due = year.ends_on if year is not None else today + datetime.timedelta(days=365)
    else:
        due = today + datetime.timedelta(days=days or rule.loan_days or 14)
    return next_open_day(session, school_id, due, settings)
