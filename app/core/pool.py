"""Pool pre-ping only for connections that have been idle: a cheap liveness check.

SQLAlchemy's `pool_pre_ping` sends `SELECT 1` (one round trip to the database) before every
request's first statement, to find connections the server closed (a restart, an idle
timeout, a network cut). A connection that was in use a moment ago is almost never dead, and
at the desk the same few connections go out and back all day. Here a connection is pinged only
when it has sat in the pool for more than `PING_AFTER_IDLE_S` seconds (config
`SQLALCHEMY_PING_AFTER_IDLE_S`); a dead one is then thrown away and another taken, as with
`pool_pre_ping` (SQLAlchemy's "pessimistic disconnect handling", custom form).

A server restart within those seconds of a connection's last use makes that request's first
statement fail; SQLAlchemy then recognises the disconnect and invalidates every connection of
the pool, so only that request fails (it answers 500) and the next ones reconnect.
"""
import time

from sqlalchemy import event, exc

PING_AFTER_IDLE_S = 10.0
_CHECKED_IN = "_checked_in_at"
stats = {"pings": 0, "skipped": 0}  # for the tests and the benchmark


def install(engine, ping_after_idle_s=PING_AFTER_IDLE_S):
    """Listen on `engine`'s pool (its own `pool_pre_ping` must be off)."""
    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection, record):
        if record is not None:
            record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, proxy):
        since = record.info.get(_CHECKED_IN)
        if since is not None and time.monotonic() - since < ping_after_idle_s:
            stats["skipped"] += 1
            return
        # New connections have no check-in time: they were just opened, nothing to check.
        if since is None:
            return
        stats["pings"] += 1
        try:
            engine.dialect.do_ping(dbapi_connection)  # what pool_pre_ping sends
        except Exception as error:
            # The pool discards this connection and checks out another (up to three times).
            raise exc.DisconnectionError() from error
