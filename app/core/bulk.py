"""Bulk inserts for imports of thousands of rows, in the session's transaction.

An ORM object costs more than its INSERT (unit of work, attribute events, the audit diff),
and so does a Core executemany's per-row parameter processing: a MARC import of 20,000
records and 32,000 copies spent most of its time there. Rows written here go to the driver
directly (PostgreSQL: COPY; SQLite: executemany), converted by the columns' own types.

They bypass the flush, so this is the one place that gives them what the flush listeners
give ORM objects: the tenancy rule (`tenancy.guard_rows`, the rule of `guard_flush`) and
the audit entries (`audit.insert_entries`).
"""
import contextlib
import gc
import threading

from sqlalchemy import false, func, select, text, update

from app.core.audit import AuditLog, insert_entries
from app.core.tenancy import guard_rows, is_school_owned


def insert_rows(session, model, rows, return_ids=False):
    """Insert `rows` (dicts with the same keys) into `model`'s table.

    Audited models get their new ids written into the rows (the audit entries name them);
    with `return_ids` the ids are returned, in the order of the rows.
    """
    if not rows:
        return []
    if is_school_owned(model):
        guard_rows(model, (row["school_id"] for row in rows))
    table = model.__table__
    ids = []
    if return_ids or getattr(model, "__audited__", False):
        ids = reserve_ids(session, table, len(rows))
        for row, pk in zip(rows, ids):
            row["id"] = pk
    write_rows(session, table, rows)
    entries = insert_entries(model, rows)
    if entries:
        write_rows(session, AuditLog.__table__, entries)
    return ids if return_ids else []


def write_rows(session, table, rows):
    """The rows straight to the driver, each value converted as SQLAlchemy would bind it.

    Every column with a default must be given: no default is applied here.
    """
    names = list(rows[0])
    missing = [c.name for c in table.c if c.default is not None and c.name not in names]
    if missing:
        raise ValueError(f"{table.name}: no value for {', '.join(missing)}")
    conn = session.connection()
    dialect = conn.dialect
    converters = [(i, convert) for i, convert in (
        (i, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for i, name in enumerate(names)) if convert is not None]

    def values():
        for row in rows:
            out = [row[name] for name in names]
            for i, convert in converters:
                out[i] = convert(out[i])
            yield out

    columns = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    quoted = dialect.identifier_preparer.format_table(table)
    if dialect.name == "postgresql":
        # Rows converted while they are sent: the server inserts the first ones while the
        # next are converted (two processes, two CPUs).
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {quoted} ({columns}) FROM STDIN") as copy:
                for out in values():
                    copy.write_row(out)
    else:
        marks = ", ".join("?" for _name in names)
        conn.exec_driver_sql(f"INSERT INTO {quoted} ({columns}) VALUES ({marks})",
                             [tuple(out) for out in values()])


def reserve_ids(session, table, count):
    """`count` new primary keys of `table`, for rows inserted by this transaction (known
    before the INSERT, so that the rows can go in one statement)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return list(session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": count}).scalars())
    if dialect == "sqlite":
        # SQLite gives a new row the largest id + 1. A write (here one that changes nothing)
        # takes the database's write lock until the end of the transaction, so no other
        # connection can insert between reading the largest id and inserting.
        session.execute(update(table).where(false()).values(id=table.c.id))
        start = session.execute(select(func.max(table.c.id))).scalar() or 0
        return list(range(start + 1, start + 1 + count))
    raise NotImplementedError(dialect)



_gc_lock = threading.Lock()
_gc_pauses = [0, False]  # pauses in progress, whether the collector was on before the first


@contextlib.contextmanager
def gc_paused():
    """Turn off Python's cyclic garbage collector for a bulk job (all threads of the process).

    An import holds a few million small objects (the parsed file and its plan) that live to
    its end. The collector walks them all again and again as they accumulate: about a third
    of the import's CPU time. Reference counting still frees everything else; the collector
    is turned back on when the last pause ends.
    """
    with _gc_lock:
        if _gc_pauses[0] == 0:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses[1]:
                gc.enable()
