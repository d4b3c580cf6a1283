"""Core statements run on the driver's cursor directly, for the hottest paths (the desk).

On a desk's checkout or return the statements themselves are cheap (index look-ups): what
costs is the Python around them. `Connection.execute` spends about 150 µs of CPU per statement
(cache key, execution context, result metadata built from the cursor's description) on top
of psycopg's 60 µs. `Direct` keeps what matters of it and drops the rest:

- the statement is compiled once per dialect (a statement built once, as the desk's are),
  its constants written into the SQL so that PostgreSQL keeps one generic plan for it (see
  `_constant`);
- values go in through the types' own bind processors and come out through their result
  processors (`TypeEngine.dialect_impl(...).bind_processor / result_processor`), so rows
  hold the same Python values as with `Connection.execute` (enums, decimals, dates);
- listeners of `before_cursor_execute` / `after_cursor_execute` are called, so statement
  counters (the tests', the benchmarks') see these statements;
- a driver error is raised as SQLAlchemy's (`DBAPIError.instance`), and a lost connection is
  invalidated as SQLAlchemy would.

It runs on the SQLAlchemy connection of the caller's transaction (same transaction, same
tenancy guard by the caller). Only for psycopg (PostgreSQL, named `pyformat` parameters);
other drivers (SQLite in the tests and the demo) go through `Connection.execute` with the
same results.
"""
import re
from collections import namedtuple

from sqlalchemy import exc


class Direct:
    """One statement; `rows`, `first`, `scalar` and `run` execute it on a Connection. Rows are
    tuples, or named tuples of the selected columns' keys with `named=True`."""

    __slots__ = ("statement", "_plans", "_row")

    def __init__(self, statement, named=False):
        self.statement = statement
        self._plans = {}  # dialect name -> _Plan, or None: through Connection.execute
        self._row = namedtuple("Row", [c.key for c in statement.selected_columns],
                               rename=True)._make if named else None

    def _plan(self, dialect):
        # Two threads may compile the same plan at once: the same result, the last one kept.
        try:
            return self._plans[dialect.name]
        except KeyError:
            plan = _Plan(self.statement, dialect) if dialect.driver == "psycopg" else None
            self._plans[dialect.name] = plan if plan is not None and plan.usable else None
            return self._plans[dialect.name]

    def _execute(self, conn, params):
        """(rows or None, rowcount)."""
        plan = self._plan(conn.dialect)
        if plan is None:
            result = conn.execute(self.statement, params)
            rows = [tuple(r) for r in result] if result.returns_rows else None
            rowcount = result.rowcount
        else:
            rows, rowcount = plan.execute(conn, params)
        if self._row is not None and rows:
            rows = [self._row(row) for row in rows]
        return rows, rowcount

    def rows(self, conn, params):
        return self._execute(conn, params)[0]

    def first(self, conn, params):
        rows = self._execute(conn, params)[0]
        return rows[0] if rows else None

    def scalar(self, conn, params):
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn, params):
        """For statements without rows: the number of rows they changed."""
        return self._execute(conn, params)[1]


class _Plan:
    """A statement compiled for one dialect, with its bind and result processors."""

    def __init__(self, statement, dialect):
        compiled = statement.compile(dialect=dialect)
        # Expanding (IN) parameters and literal-execute ones are rendered per execution by
        # SQLAlchemy: such statements keep the ordinary path.
        self.usable = not getattr(compiled, "post_compile_params", None) and not getattr(
            compiled, "literal_execute_params", None)
        sql = compiled.string
        escaped = getattr(compiled, "escaped_bind_names", None) or {}
        self.binds = []  # (name in params, name in the SQL, bind processor)
        self.defaults = {}
        for bind, name in compiled.bind_names.items():
            placeholder = escaped.get(name, name)
            if any(known == placeholder for _k, known, _p in self.binds):
                continue  # one parameter used twice (a copy of it in a subquery)
            literal = _constant(bind, name, dialect)
            if literal is not None:
                sql = re.sub(r"(?<!%)%\(" + re.escape(placeholder) + r"\)s",
                             lambda _m: literal.replace("%", "%%"), sql)
                continue
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self.binds.append((bind.key, placeholder, processor))
            if not bind.required:
                self.defaults[bind.key] = bind  # its value (or callable) when not given
        self.sql = sql
        self.types = [column.type for column in getattr(statement, "selected_columns", ())]
        self.result_processors = None  # from the first cursor's description
        self.returns_rows = None
        self.dialect = dialect

    def _parameters(self, params):
        out = {}
        defaults = self.defaults
        for key, name, processor in self.binds:
            value = params[key] if key in params else defaults[key].effective_value
            out[name] = processor(value) if processor is not None else value
        return out

    def _processors(self, description):
        dialect = self.dialect
        processors = []
        for index, column in enumerate(description):
            type_ = self.types[index] if index < len(self.types) else None
            processor = (type_.dialect_impl(dialect).result_processor(dialect, column[1])
                         if type_ is not None else None)
            processors.append(processor)
        return processors if any(p is not None for p in processors) else []

    def execute(self, conn, params):
        parameters = self._parameters(params)
        sql = self.sql
        fairy = conn.connection  # the pool's proxy of the driver's connection
        dbapi_conn = fairy.dbapi_connection
        # One cursor per driver connection, kept with it (a connection serves one thread
        # at a time; the identity check drops a cursor of a connection since replaced).
        kept = fairy.info.get(_CURSOR)
        if kept is not None and kept[0] is dbapi_conn:
            cursor = kept[1]
        else:
            cursor = dbapi_conn.cursor()
            fairy.info[_CURSOR] = (dbapi_conn, cursor)
        dispatch = conn.dispatch
        try:
            for fn in dispatch.before_cursor_execute:
                sql, parameters = fn(conn, cursor, sql, parameters, None, False)
            cursor.execute(sql, parameters)
            if dispatch.after_cursor_execute:
                dispatch.after_cursor_execute(conn, cursor, sql, parameters, None, False)
            rowcount = cursor.rowcount
            if self.result_processors is None:  # the first execution: the shape of its rows
                description = cursor.description
                self.returns_rows = description is not None
                self.result_processors = self._processors(description or ())
            rows = cursor.fetchall() if self.returns_rows else None
        except conn.dialect.loaded_dbapi.Error as error:
            fairy.info.pop(_CURSOR, None)
            if conn.dialect.is_disconnect(error, dbapi_conn, cursor):
                conn.invalidate(error)
            raise exc.DBAPIError.instance(sql, parameters, error,
                                          conn.dialect.loaded_dbapi.Error) from error
        processors = self.result_processors
        if processors and rows:
            pairs = [(i, p) for i, p in enumerate(processors) if p is not None]
            converted = []
            for row in rows:
                row = list(row)
                for i, processor in pairs:
                    row[i] = processor(row[i])
                converted.append(tuple(row))
            rows = converted
        return rows, rowcount


def _constant(bind, name, dialect):
    """The SQL literal of a constant of the statement (`Loan.status == LoanStatus.active`,
    `.limit(1)`: an anonymous parameter with its value), or None for a parameter.

    Written into the SQL, constants let PostgreSQL keep one generic plan for the prepared
    statement (psycopg prepares a statement run 5 times). As parameters they hide what the
    plan depends on (a partial index on the open loans, `WHERE status = 'active'`): the
    generic plan then looks worse than a custom one and the server plans the statement
    again at every execution, which costs it several times the execution itself."""
    if bind.required or bind.callable is not None or bind.key == name:
        return None  # a parameter of the caller (named), or a value computed at each use
    processor = bind.type.dialect_impl(dialect).literal_processor(dialect)
    return None if processor is None else processor(bind.value)


_CURSOR = "_direct_cursor"  # PoolProxiedConnection.info: (driver connection, its cursor)
