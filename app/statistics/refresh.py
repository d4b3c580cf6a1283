"""Rebuilding the aggregates: `flask stats-refresh` (nightly) and on demand.

A refresh replaces, for the schools given, the snapshot rows and the monthly rows from a
month on (by default the school year's first month: older months no longer change), each
as one INSERT … SELECT of the statements in app.statistics.sources, in one transaction.
"""
import datetime

from sqlalchemy import Date, Integer, String, delete, insert, literal, select, text

from app.core.i18n import local_today
from app.core.tenancy import ids_in
from app.org.models import OrgUnit, SchoolYear, UnitKind
from app.statistics import sources
from app.statistics.models import StatMonthly, StatRefresh, StatSnapshot

MONTHLY_COLUMNS = ["school_id", "month", "metric", "key", "count", "amount"]
SNAPSHOT_COLUMNS = ["school_id", "metric", "key", "count", "amount"]


def default_since(session, today=None):
    """The first day of the current school year (or of the calendar year without one)."""
    today = today or local_today()
    start = session.execute(select(SchoolYear.starts_on).where(
        SchoolYear.starts_on <= today, SchoolYear.ends_on >= today)).scalar()
    start = start or datetime.date(today.year, 1, 1)
    return start.replace(day=1)


def refresh(session, school_ids=None, since=None, today=None, now=None):
    """Rebuild the aggregates of `school_ids` (None: every school) from the month of `since`.

    Returns the number of schools refreshed. The caller commits.
    """
    today = today or local_today()
    year_start = default_since(session, today)
    since = (since or year_start).replace(day=1)
    now = now or datetime.datetime.now()
    ids = school_ids
    if ids is None:
        ids = session.execute(select(OrgUnit.id).where(
            OrgUnit.kind == UnitKind.school)).scalars().all()
    ids = list(ids)
    if not ids:
        return 0
    # Every school (the nightly run): each statement once over the whole tables, no IN list
    # (at 3,500 schools, chunks of 500 made every statement read the loans 7 times). Given
    # schools: in chunks, as an IN list of thousands of ids in every statement is slow to plan.
    chunks = [None] if school_ids is None else [ids[i:i + 500] for i in range(0, len(ids), 500)]
    for chunk in chunks:
        def of(column):
            return True if chunk is None else ids_in(column, chunk)

        session.execute(delete(StatSnapshot).where(of(StatSnapshot.school_id)))
        session.execute(delete(StatMonthly).where(of(StatMonthly.school_id),
                                                  StatMonthly.month >= since))
        for metric in sources.SNAPSHOT_FACTS:
            session.execute(insert(StatSnapshot).from_select(
                SNAPSHOT_COLUMNS, sources.snapshot_select(metric, chunk, today)))
        for metric in sources.USE_FACTS:
            session.execute(insert(StatMonthly).from_select(
                MONTHLY_COLUMNS, sources.use_select(metric, chunk, since, today)))
        # Readers who borrowed since the school year began (distinct: not a sum of months),
        # filed under the year's first month.
        session.execute(delete(StatMonthly).where(
            of(StatMonthly.school_id), StatMonthly.month == year_start,
            StatMonthly.metric.in_(["borrowers_year.category", "borrowers_year.grade"])))
        for by in ("category", "grade"):
            borrowers = sources.borrowers_select(chunk, year_start, today, by).subquery()
            session.execute(insert(StatMonthly).from_select(MONTHLY_COLUMNS, select(
                borrowers.c[0], literal(year_start, Date), literal(f"borrowers_year.{by}",
                                                                   String),
                borrowers.c[1], borrowers.c[2], literal(None, Integer))))
        session.execute(delete(StatRefresh).where(of(StatRefresh.school_id)))
        session.execute(insert(StatRefresh), [{"school_id": sid, "refreshed_at": now}
                                              for sid in (ids if chunk is None else chunk)])
    return len(ids)


def vacuum(engine):
    """After a large refresh (and its commit), on PostgreSQL: VACUUM ANALYZE the aggregates,
    so that the pages read them by index-only scans (the visibility map) with fresh
    statistics, without waiting for autovacuum. Nothing on other databases."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) stat_monthly, stat_snapshot, stat_refresh"))
    return True


def refreshed_at(session, school_ids):
    """The oldest refresh time of the schools (None if one was never refreshed)."""
    query = select(StatRefresh.school_id, StatRefresh.refreshed_at)
    if school_ids is not None:
        query = query.where(ids_in(StatRefresh.school_id, school_ids))
    times = dict(session.connection().execute(query).all())  # Core rows: 3,500 schools
    if school_ids is not None and any(sid not in times for sid in school_ids):
        return None
    return min(times.values()) if times else None
