"""app.core.direct: statements run on the driver's cursor give what Connection.execute gives
(Python values through the types' processors), are seen by statement listeners, raise
SQLAlchemy's errors and leave nothing behind on an error. On PostgreSQL they really bypass
Connection.execute; on SQLite they go through it."""
import datetime
import decimal

import pytest
from sqlalchemy import bindparam, event, func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError

from app.catalog.models import Record
from app.circulation.models import Loan, LoanKind, LoanStatus
from app.collection.models import Copy, CopyStatus
from app.core.direct import Direct
from app.org.models import OrgUnit
from app.readers.models import Reader
from tests.helpers import statements_during


@pytest.fixture
def school(db_session):
    db_session.rollback()
    return db_session.scalar(select(OrgUnit.id).where(OrgUnit.code == "79000001"))


def _copies_statement():
    return (select(Copy.id, Copy.status, Copy.accession_label, Record.title,
                   Record.document_type_id, Copy.price)
            .join(Record, Record.id == Copy.record_id)
            .where(Copy.school_id == bindparam("school_id"),
                   Copy.status == CopyStatus.available)  # a literal value: a default bind
            .order_by(Copy.id).limit(5))


def test_rows_are_those_of_connection_execute(db_session, school):
    statement = _copies_statement()
    conn = db_session.connection()
    expected = [tuple(row) for row in conn.execute(statement, {"school_id": school})]
    direct = Direct(statement)
    assert expected, "the demo school has copies on the shelf"
    assert direct.rows(conn, {"school_id": school}) == expected
    row = direct.first(conn, {"school_id": school})
    assert row == expected[0]
    assert row[1] is CopyStatus.available  # the enum, not its name
    assert row[5] is None or isinstance(row[5], decimal.Decimal)
    assert direct.scalar(conn, {"school_id": school}) == expected[0][0]
    assert direct.first(conn, {"school_id": -1}) is None
    assert direct.rows(conn, {"school_id": -1}) == []
    # The real thing on PostgreSQL; SQLAlchemy's execution elsewhere.
    assert (direct._plan(conn.dialect) is not None) == (conn.dialect.name == "postgresql")


def test_values_go_in_through_the_types(db_session, school):
    """Enums, dates and None as parameters; a statement changing rows gives its count."""
    conn = db_session.connection()
    reader = db_session.scalar(select(Reader.id).where(Reader.school_id == school).limit(1))
    copy_id = db_session.scalar(select(Copy.id).where(
        Copy.school_id == school, Copy.status == CopyStatus.available).limit(1))
    loaned_at = datetime.datetime(2026, 3, 2, 8, 15)
    new_loan = Direct(insert(Loan).values(
        school_id=bindparam("school_id"), copy_id=bindparam("copy_id"),
        reader_id=bindparam("reader_id"), kind=bindparam("kind"), status=bindparam("status"),
        loaned_at=bindparam("loaned_at"), due_on=bindparam("due_on"),
        renewals=literal_column("0"), note=bindparam("note")).returning(Loan.id))
    loan_id = new_loan.scalar(conn, {
        "school_id": school, "copy_id": copy_id, "reader_id": reader, "kind": LoanKind.home,
        "status": LoanStatus.active, "loaned_at": loaned_at,
        "due_on": datetime.date(2026, 3, 12), "note": None})
    stored = db_session.execute(select(Loan.kind, Loan.status, Loan.loaned_at, Loan.due_on,
                                       Loan.note).where(Loan.id == loan_id)).one()
    assert tuple(stored) == (LoanKind.home, LoanStatus.active, loaned_at,
                             datetime.date(2026, 3, 12), None)
    close = Direct(update(Loan).where(Loan.id == bindparam("b_id"),
                                      Loan.status == LoanStatus.active)
                   .values(status=bindparam("b_status")))
    assert close.run(conn, {"b_id": loan_id, "b_status": LoanStatus.returned}) == 1
    assert close.run(conn, {"b_id": loan_id, "b_status": LoanStatus.returned}) == 0
    assert db_session.scalar(select(Loan.status).where(Loan.id == loan_id)) == \
        LoanStatus.returned
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(Loan)
                             .where(Loan.id == loan_id)) == 0


def test_listeners_see_each_statement_once(app, db_session, school):
    direct = Direct(_copies_statement())
    conn = db_session.connection()
    direct.rows(conn, {"school_id": school})
    rows, statements = statements_during(lambda: direct.rows(conn, {"school_id": school}))
    assert len(statements) == 1 and statements[0].startswith("SELECT copy.id"), statements
    assert rows
    after = []

    def log(conn, cursor, statement, parameters, context, executemany):
        after.append(statement)

    event.listen(conn.engine, "after_cursor_execute", log)
    try:
        direct.rows(conn, {"school_id": school})
    finally:
        event.remove(conn.engine, "after_cursor_execute", log)
    assert len(after) == 1


def test_a_database_error_is_sqlalchemys_and_changes_nothing(db_session, school):
    """The partial unique index (one open loan per copy) refuses a second open loan: the
    error is SQLAlchemy's IntegrityError, and after the rollback nothing is left."""
    conn = db_session.connection()
    reader = db_session.scalar(select(Reader.id).where(Reader.school_id == school).limit(1))
    copy_id = db_session.scalar(select(Copy.id).where(
        Copy.school_id == school, Copy.status == CopyStatus.available).limit(1))
    before = db_session.scalar(select(func.count()).select_from(Loan))
    lend = Direct(insert(Loan).values(
        school_id=school, copy_id=bindparam("copy_id"), reader_id=reader,
        kind=LoanKind.home, status=LoanStatus.active,
        loaned_at=datetime.datetime(2026, 3, 2, 8, 0), due_on=datetime.date(2026, 3, 12),
        renewals=0))
    assert lend.run(conn, {"copy_id": copy_id}) == 1
    with pytest.raises(IntegrityError):
        lend.run(conn, {"copy_id": copy_id})
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(Loan)) == before
    # The connection serves again after the error.
    conn = db_session.connection()
    assert Direct(_copies_statement()).rows(conn, {"school_id": school})


def test_constants_are_written_into_the_sql_for_one_generic_plan(db_session, school):
    """The statement's constants (a status, a limit) are literals of its SQL, its parameters
    stay parameters. On PostgreSQL the desk's return statement (the open loan of a copy: a
    partial index, `WHERE status = 'active'`) then gets a generic plan instead of being
    planned again at every execution. (With the status as a parameter, the city-scale data
    of bench/bench_circulation.py got 0 generic plans in 25 executions.)"""
    from app.circulation.services import _desk_statements

    direct = _desk_statements()["return_copy"]["barcode"]
    conn = db_session.connection()
    barcode = db_session.scalar(select(Copy.barcode).where(Copy.school_id == school).limit(1))
    params = {"school_id": school, "code": barcode}
    expected = [tuple(row) for row in conn.execute(direct.statement, params)]
    assert direct.rows(conn, params) == expected and expected
    plan = direct._plan(conn.dialect)
    if conn.dialect.name != "postgresql":
        assert plan is None
        return
    assert "loan.status = 'active'" in plan.sql and "LIMIT 1" in plan.sql, plan.sql
    assert sorted(b[0] for b in plan.binds) == ["code", "school_id"]
    for _ in range(12):  # psycopg prepares at the 5th, PostgreSQL decides after 5 more
        assert direct.rows(conn, params) == expected
    # The server's text has $n for the parameters; the constants are there as written.
    server_sql = plan.sql
    for n, (name, placeholder, _p) in enumerate(plan.binds, 1):
        server_sql = server_sql.replace(f"%({placeholder})s", f"${n}")
    generic, custom = conn.connection.driver_connection.execute(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
        "WHERE statement = %s", [server_sql]).fetchone()
    assert generic > 0, (generic, custom)
