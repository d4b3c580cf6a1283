"""The definition of every statistic, once: SELECT statements over the source tables.

Each use fact is a statement giving (school_id, month, metric, key, count, amount) for the
loans, reads, visits, acquisitions and new readers of a date range; each snapshot fact gives
(school_id, metric, key, count, amount) for the state now. One school's page runs them live
(exact dates); `app.statistics.refresh` stores them for the pages of many schools.

Metric names are "<fact>.<dimension>"; keys are strings: an id (reader category, document
type), a grade, a class name, the main class of the classification ("8" for 895.922), an
enum name (funding, copy status) or a decade ("2010").
"""
import datetime

from sqlalchemy import (
    Date, Integer, String, and_, cast, func, literal, literal_column, not_, select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from app.catalog.models import Record
from app.circulation.models import Loan, LoanStatus, ReadingRoomUse
from app.collection.models import Copy, CopyStatus, Intake, Location
from app.core.tenancy import ids_in
from app.readers.models import Reader, ReaderStatus
from app.weeding.models import StockWithdrawal


class month_start(FunctionElement):
    """The first day of the month of a date or timestamp, as a date."""

    type = Date()
    name = "month_start"
    inherit_cache = True


@compiles(month_start)
def _month_default(element, compiler, **kw):
    return f"date({compiler.process(element.clauses, **kw)}, 'start of month')"


@compiles(month_start, "postgresql")
def _month_pg(element, compiler, **kw):
    return f"CAST(date_trunc('month', {compiler.process(element.clauses, **kw)}) AS DATE)"


def _key(expr):
    # A literal '' (not a bound parameter): PostgreSQL must see the same expression in the
    # SELECT list and in the GROUP BY.
    return func.coalesce(cast(expr, String), literal_column("''"))


# Holdings: copies on the shelves or lent out (not withdrawn, not lost).
HOLDING = not_(Copy.status.in_([CopyStatus.withdrawn, CopyStatus.lost]))
CLASS_MAIN = func.substr(func.coalesce(Record.class_number, literal_column("''")), 1, 1)
DECADE = cast(Record.year / literal_column("10"), Integer) * literal_column("10")


# A loan always has its reader and its copy (NOT NULL, foreign keys), so a loan fact joins
# only the tables its key needs: the same counts, and the nightly refresh does not join
# 50 million loans to their copies and records for the facts by reader or by class.
def _loans_readers():
    return Loan.__table__.join(Reader.__table__, Reader.id == Loan.reader_id)


def _loans_only():
    return Loan.__table__


def _loans_records():
    return (Loan.__table__.join(Copy.__table__, Copy.id == Loan.copy_id)
            .join(Record.__table__, Record.id == Copy.record_id))


def _reads_base():
    return (ReadingRoomUse.__table__.join(Copy.__table__, Copy.id == ReadingRoomUse.copy_id)
            .join(Record.__table__, Record.id == Copy.record_id))


def _withdrawn_base():
    return (Copy.__table__.join(StockWithdrawal.__table__,
                                StockWithdrawal.id == Copy.withdrawal_id)
            .join(Record.__table__, Record.id == Copy.record_id))


def _acquired_base():
    return (Copy.__table__.join(Intake.__table__, Intake.id == Copy.intake_id)
            .join(Record.__table__, Record.id == Copy.record_id))


LOANS = (Loan.status != LoanStatus.cancelled,)
# metric -> (from clause, date column, key, count, amount, extra conditions)
USE_FACTS = {
    "loans.category": (_loans_readers, Loan.loaned_at, Reader.category_id, func.count(), None,
                       LOANS),
    "loans.grade": (_loans_readers, Loan.loaned_at, Reader.grade, func.count(), None, LOANS),
    "loans.class": (_loans_only, Loan.loaned_at, Loan.class_name, func.count(), None, LOANS),
    "loans.doctype": (_loans_records, Loan.loaned_at, Record.document_type_id, func.count(),
                      None, LOANS),
    "loans.classmain": (_loans_records, Loan.loaned_at, CLASS_MAIN, func.count(), None,
                        LOANS),
    # Readers who borrowed in the month (distinct: not summable over months, see services).
    "borrowers.category": (_loans_readers, Loan.loaned_at, Reader.category_id,
                           func.count(func.distinct(Loan.reader_id)), None, LOANS),
    "reads.category": (_reads_base, ReadingRoomUse.used_on, ReadingRoomUse.category_id,
                       func.count(), None, ()),
    "reads.doctype": (_reads_base, ReadingRoomUse.used_on, Record.document_type_id,
                      func.count(), None, ()),
    "reads.classmain": (_reads_base, ReadingRoomUse.used_on, CLASS_MAIN, func.count(), None,
                        ()),
    "visits.category": (lambda: ReadingRoomUse.__table__, ReadingRoomUse.used_on,
                        ReadingRoomUse.category_id, func.sum(ReadingRoomUse.visits), None, ()),
    "visits.class": (lambda: ReadingRoomUse.__table__, ReadingRoomUse.used_on,
                     ReadingRoomUse.class_name, func.sum(ReadingRoomUse.visits), None, ()),
    "acquired.doctype": (_acquired_base, Intake.received_on, Record.document_type_id,
                         func.count(), func.sum(Copy.price), ()),
    "acquired.funding": (_acquired_base, Intake.received_on, Copy.funding, func.count(),
                         func.sum(Copy.price), ()),
    # Copies withdrawn by a weeding round (general register Part II), by the day of the line.
    "withdrawn.doctype": (_withdrawn_base, StockWithdrawal.withdrawn_on,
                          Record.document_type_id,
                          func.count(), func.sum(Copy.price), ()),
    "readers_new.category": (lambda: Reader.__table__, Reader.registered_on,
                             Reader.category_id, func.count(), None, ()),
}


def _school_of(metric):
    base = USE_FACTS[metric][0]
    if base in (_loans_readers, _loans_only, _loans_records):
        return Loan.school_id
    if metric.startswith(("reads.", "visits.")):
        return ReadingRoomUse.school_id
    if base in (_acquired_base, _withdrawn_base):
        return Copy.school_id
    return Reader.school_id


def _in_schools(column, school_ids):
    return True if school_ids is None else ids_in(column, school_ids)


def use_select(metric, school_ids, start, end):
    """(school_id, month, metric, key, count, amount) of `metric` from `start` to `end`
    (dates, both included); school_ids None = every school."""
    base, day, key, count, amount, conditions = USE_FACTS[metric]
    school = _school_of(metric)
    if isinstance(day.type, Date):
        period = and_(day >= start, day <= end)
    else:  # a timestamp: the whole last day
        period = and_(day >= datetime.datetime.combine(start, datetime.time()),
                      day < datetime.datetime.combine(end + datetime.timedelta(days=1),
                                                      datetime.time()))
    month = month_start(day)
    return (select(school.label("school_id"), month.label("month"),
                   literal(metric, String).label("metric"), _key(key).label("key"),
                   count.label("count"),
                   (amount if amount is not None else literal(None, Integer)).label("amount"))
            .select_from(base())
            .where(_in_schools(school, school_ids), period, *conditions)
            .group_by(school, month, _key(key)))


def borrowers_select(school_ids, start, end, by="category"):
    """(school_id, key, distinct readers who borrowed) over the whole range, by reader
    category or grade."""
    column = Reader.category_id if by == "category" else Reader.grade
    return (select(Loan.school_id, _key(column),
                   func.count(func.distinct(Loan.reader_id)))
            .select_from(_loans_readers())
            .where(_in_schools(Loan.school_id, school_ids), *LOANS,
                   Loan.loaned_at >= datetime.datetime.combine(start, datetime.time()),
                   Loan.loaned_at < datetime.datetime.combine(
                       end + datetime.timedelta(days=1), datetime.time()))
            .group_by(Loan.school_id, _key(column)))


def _copies_base():
    return (Copy.__table__.join(Record.__table__, Record.id == Copy.record_id)
            .outerjoin(Location.__table__, Location.id == Copy.location_id))


def _overdue_base():
    return Loan.__table__.join(Reader.__table__, Reader.id == Loan.reader_id)


# metric -> (from clause, school column, key, count, amount, conditions(today))
SNAPSHOT_FACTS = {
    "copies.doctype": (_copies_base, Copy.school_id, Record.document_type_id, func.count(),
                       func.sum(Copy.price), lambda today: (HOLDING,)),
    "titles.doctype": (_copies_base, Copy.school_id, Record.document_type_id,
                       func.count(func.distinct(Copy.record_id)), None,
                       lambda today: (HOLDING,)),
    "copies.classmain": (_copies_base, Copy.school_id, CLASS_MAIN, func.count(),
                         func.sum(Copy.price), lambda today: (HOLDING,)),
    "titles.classmain": (_copies_base, Copy.school_id, CLASS_MAIN,
                         func.count(func.distinct(Copy.record_id)), None,
                         lambda today: (HOLDING,)),
    "copies.language": (_copies_base, Copy.school_id, Record.language, func.count(),
                        func.sum(Copy.price), lambda today: (HOLDING,)),
    "copies.decade": (_copies_base, Copy.school_id, DECADE, func.count(), func.sum(Copy.price),
                      lambda today: (HOLDING,)),
    "copies.location": (_copies_base, Copy.school_id, Location.name, func.count(),
                        func.sum(Copy.price), lambda today: (HOLDING,)),
    "copies.funding": (_copies_base, Copy.school_id, Copy.funding, func.count(),
                       func.sum(Copy.price), lambda today: (HOLDING,)),
    "copies.status": (lambda: Copy.__table__, Copy.school_id, Copy.status, func.count(),
                      func.sum(Copy.price), lambda today: ()),
    "readers.category": (lambda: Reader.__table__, Reader.school_id, Reader.category_id,
                         func.count(), None,
                         lambda today: (Reader.status == ReaderStatus.active,)),
    "readers.grade": (lambda: Reader.__table__, Reader.school_id, Reader.grade, func.count(),
                      None, lambda today: (Reader.status == ReaderStatus.active,)),
    "readers.class": (lambda: Reader.__table__, Reader.school_id, Reader.class_name,
                      func.count(), None,
                      lambda today: (Reader.status == ReaderStatus.active,)),
    "overdue.category": (_overdue_base, Loan.school_id, Reader.category_id, func.count(), None,
                         lambda today: (Loan.status == LoanStatus.active, Loan.due_on < today)),
    "overdue.class": (_overdue_base, Loan.school_id, Reader.class_name, func.count(), None,
                      lambda today: (Loan.status == LoanStatus.active, Loan.due_on < today)),
}


def snapshot_select(metric, school_ids, today):
    base, school, key, count, amount, conditions = SNAPSHOT_FACTS[metric]
    return (select(school.label("school_id"), literal(metric, String).label("metric"),
                   _key(key).label("key"), count.label("count"),
                   (amount if amount is not None else literal(None, Integer)).label("amount"))
            .select_from(base())
            .where(_in_schools(school, school_ids), *conditions(today))
            .group_by(school, _key(key)))
