"""Bulk inserts for imports of thousands of rows, in the session's transaction.

An ORM object costs more than its INSERT (unit of work, attribute events, the audit diff),
and so does a Core executemany's per-row parameter processing: a MARC import of 20,000
records and 32,000 copies spent most of its time there. Rows written here go to the driver
directly (PostgreSQL: COPY; SQLite: executemany), converted by the columns' own types.

They bypass the flush, so this is the one place that gives them what the flush listeners
give ORM objects: the tenancy rule (`tenancy.guard_rows`, the rule of `guard_flush`) and
the audit entries (`audit.insert_entries`), both in `_prepare`.
"""
import concurrent.futures
import contextlib
import gc
import threading

from sqlalchemy import event, false, func, select, text, update
from sqlalchemy.engine import Connection

from app.core.audit import AuditLog, insert_entries
from app.core.tenancy import guard_rows, is_school_owned


def insert_rows(session, model, rows, return_ids=False):
    """Insert `rows` (dicts with the same keys) into `model`'s table, now.

    Audited models get their new ids written into the rows (the audit entries name them);
    with `return_ids` the ids are returned, in the order of the rows.
    """
    if not rows:
        return []
    ids = []
    if return_ids or getattr(model, "__audited__", False):
        ids = reserve_ids(session, model.__table__, len(rows))
        for row, pk in zip(rows, ids):
            row["id"] = pk
    conn = session.connection()
    for table, table_rows in _prepare(model, rows):
        _write(conn.dialect, conn, table, table_rows)
    return ids if return_ids else []


class BulkWriter:
    """Writes rows for one transaction, batch after batch (`insert`, then `end_batch`).

    On PostgreSQL the writes run in a background thread, in order: the server inserts one
    batch while Python prepares the next (two processes on two CPUs; the thread waits for
    the server without holding the GIL). The caller must not use the session in between
    (take ids and numbers first); `written()` waits for the batches. Use it as a context
    manager: leaving it waits for every write (an error in one is raised there).
    On SQLite, rows are written at once.
    """

    def __init__(self, session):
        conn = self.sa_conn = session.connection()
        self.dialect = conn.dialect
        self.threaded = self.dialect.name == "postgresql"
        # The driver's connection, taken here: SQLAlchemy's objects stay in this thread.
        self.conn = conn.connection.driver_connection if self.threaded else conn
        self.pool = concurrent.futures.ThreadPoolExecutor(1) if self.threaded else None
        if self.threaded:
            # A statement of this thread (a lazy load...) waits for the writes: the driver
            # cannot take a query in the middle of a COPY.
            event.listen(conn, "before_cursor_execute", self._drain)
        self.futures = []  # the background writes, in order
        self.batches = []  # (size, number of writes queued at its end)
        self.checked = 0  # writes known to have succeeded

    def insert(self, model, rows):
        """Insert `rows` (with their ids if the model is audited: see reserve_ids)."""
        if not rows:
            return
        for table, table_rows in _prepare(model, rows):
            if self.threaded:
                self.futures.append(self.pool.submit(_write, self.dialect, self.conn, table,
                                                     table_rows))
            else:
                _write(self.dialect, self.conn, table, table_rows)

    def end_batch(self, size):
        self.batches.append((size, len(self.futures)))

    def written(self, pending=0):
        """How many items of the ended batches are written, once at most `pending` batches
        are still being written (the first error of a write is raised here)."""
        done = self.batches[:max(0, len(self.batches) - pending)]
        if done:
            self._check(done[-1][1])
        return sum(size for size, _writes in done)

    def _check(self, count):
        for future in self.futures[self.checked:count]:
            future.result()
        self.checked = max(self.checked, count)

    def _drain(self, *args):
        self._check(len(self.futures))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            # Every write finished (or failed) before the caller commits or rolls back;
            # after an error, the writes not started are dropped.
            self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
            event.remove(self.sa_conn, "before_cursor_execute", self._drain)
            if exc[0] is None:
                self._check(len(self.futures))
        return False


def _prepare(model, rows):
    """(table, rows) to write for `rows` of `model`: the rows themselves, then their audit
    entries; refused (TenancyError) if the actor may not write one of their schools."""
    if is_school_owned(model):
        guard_rows(model, (row["school_id"] for row in rows))
    out = [(model.__table__, rows)]
    entries = insert_entries(model, rows)
    if entries:
        out.append((AuditLog.__table__, entries))
    return out


def _write(dialect, conn, table, rows):
    """The rows straight to the driver, each value converted as SQLAlchemy would bind it.

    `conn`: a SQLAlchemy connection, or psycopg's on PostgreSQL. Every column with a default
    must be given: no default is applied here.
    """
    names = list(rows[0])
    missing = [c.name for c in table.c if c.default is not None and c.name not in names]
    if missing:
        raise ValueError(f"{table.name}: no value for {', '.join(missing)}")
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
        if isinstance(conn, Connection):  # SQLAlchemy's: psycopg's below it
            conn = conn.connection.driver_connection
        # Rows converted while they are sent: the server inserts the first ones meanwhile.
        with conn.cursor() as cursor:
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
    if count == 0:
        return []
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
