#!/usr/bin/env python3
"""Benchmark of the circulation desk: checkout and return over HTTP, against bare SQL.

    python bench/bench_circulation.py                      # PostgreSQL, scale 0.05
    python bench/bench_circulation.py --scale 0.1 --keep   # keep the database afterwards
    python bench/bench_circulation.py --scale 0.1 --reuse  # measure a kept database again
    python bench/bench_circulation.py --build-only --keep  # generate, measure later

It builds the city, its catalogue, readers and a school year of loans (or reuses a kept
database), runs VACUUM ANALYZE, then for each configuration (gunicorn workers × client
processes) starts gunicorn on a loopback port and lets each client, logged in as the
librarian of its own generated school, loop: scan a reader card, lend N copies, take them
back (the desk's JSON API, /desk/api/reader and /desk/api/scan). Then the same loop as bare
SQL statements through psycopg (the statements the services issue, one transaction per
operation), with as many client processes. Last, one checkout and one return in-process
with cProfile and the SQL statements logged: where the time of a request goes.

Results: a table on stdout and bench/results/<timestamp>-circulation.json (git-ignored).
Figures: bench/README.md. PostgreSQL only; everything runs on loopback.
"""
import argparse
import cProfile
import datetime
import http.client
import io
import json
import multiprocessing
import os
import platform
import pstats
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_catalog import StatementLog, database_exists, login  # noqa: E402
from bench_marc import reference_loop  # noqa: E402
from bench_foundation import (  # noqa: E402  (same conventions as the other benches)
    CSRF,
    PASSWORD,
    RESULTS_DIR,
    create_database,
    drop_database,
    free_port,
    normalise,
    percentile,
    server_version,
)

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/thuvien_bench_circulation"
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
TARGET_P95_MS, TARGET_OPS, TARGET_RATIO = 25, 300, 3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--scale", type=float, default=0.05, help="1.0 = the whole city")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--configs", default="2x4,4x8",
                   help="gunicorn workers x client processes, comma-separated ('none': only "
                        "the in-process breakdown)")
    p.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"),
                   help="gunicorn workers: gthread keeps the clients' connections open "
                        "(README.md's production command); sync closes them")
    p.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    p.add_argument("--keep-alive", type=int, default=30, help="seconds a gthread worker "
                   "keeps an idle connection")
    p.add_argument("--worker-tmp-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else "",
                   help="gunicorn's --worker-tmp-dir: the heartbeat file each worker touches "
                        "at every turn of its loop (a RAM disk; '' = gunicorn's default, "
                        "the system's temporary folder)")
    p.add_argument("--duration", type=float, default=60, help="seconds measured per config")
    p.add_argument("--warmup", type=float, default=5, help="seconds before measuring")
    p.add_argument("--items", type=int, default=3, help="copies lent per reader and loop "
                   "(students may hold 3)")
    p.add_argument("--profile-ops", type=int, default=100,
                   help="checkouts and returns profiled in-process (0 = skip)")
    p.add_argument("--drop-existing", action="store_true")
    p.add_argument("--reuse", action="store_true",
                   help="measure an existing database kept by an earlier run (same scale and "
                        "seed); implies --keep")
    p.add_argument("--keep", action="store_true", help="keep the database at the end")
    p.add_argument("--build-only", action="store_true", help="generate, then stop (use "
                   "with --keep)")
    return p.parse_args()


def n(value):
    return f"{value:,}"


# --- Build ------------------------------------------------------------------------------


def build(db, args, results):
    from sqlalchemy import text

    from app.catalog.generator import generate_catalogue
    from app.circulation.generator import generate_circulation
    from app.core.setup import prepare_database
    from app.org.generator import generate_city
    from app.readers.generator import generate_readers

    def step(name, fn, **kw):
        t0 = time.perf_counter()

        def progress(s):
            figures = ", ".join(f"{k} {n(v)}" for k, v in s.items()
                                if k in ("records", "copies", "readers", "loans"))
            print(f"  {name}: {s['schools_done']}/{s['schools']} schools, {figures}, "
                  f"{s['seconds']:.0f} s", flush=True)

        out = fn(db.session, scale=args.scale, seed=args.seed, progress=progress, **kw)
        out = dict(out, seconds=round(time.perf_counter() - t0, 1))
        print(f"{name}: {out['seconds']} s", flush=True)
        return out

    t0 = time.perf_counter()
    prepare_database(load_demo=True)
    results["schema_and_demo_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    results["city"] = generate_city(db.session, scale=args.scale, seed=args.seed)
    results["city"]["seconds"] = round(time.perf_counter() - t0, 1)
    results["catalogue"] = step("catalogue", generate_catalogue)
    results["readers"] = step("readers", generate_readers)
    loans = results["loans"] = step("loans", generate_circulation)
    loans["loans_per_s"] = round(loans["loans"] / loans["seconds"])
    db.session.remove()
    t0 = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    results["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)


def row_counts(db):
    from sqlalchemy import text

    out = {t: db.session.execute(text(f'SELECT count(*) FROM "{t}"')).scalar()
           for t in ("org_unit", "record", "copy", "reader", "loan")}
    out["loans_open"] = db.session.execute(text(
        "SELECT count(*) FROM loan WHERE status = 'active'")).scalar()
    out["database_size_mb"] = round(db.session.execute(text(
        "SELECT pg_database_size(current_database())")).scalar() / 2 ** 20)
    out["table_size_mb"] = {t: round(db.session.execute(text(
        "SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": t}).scalar() / 2 ** 20)
        for t in ("copy", "reader", "loan")}
    return out


# --- What each client works on ----------------------------------------------------------


def desk_fixtures(db, args, count, per_client_readers=40):
    """`count` generated schools, busiest first, each with students who may borrow (active,
    valid card, nothing on loan) and copies on the shelf that students may take home."""
    from sqlalchemy import text

    rows = db.session.execute(text("""
        SELECT o.id, o.code, count(*) AS readers FROM org_unit o
        JOIN reader r ON r.school_id = o.id
        WHERE o.code LIKE '791%' AND r.category_id = 1 GROUP BY o.id, o.code
        ORDER BY count(*) DESC, o.code LIMIT :n"""), {"n": count}).all()
    today = datetime.date.today()
    need = args.items * 60
    out = []
    for school_id, code, _readers in rows:
        readers = db.session.execute(text("""
            SELECT r.id, r.barcode FROM reader r
            WHERE r.school_id = :s AND r.category_id = 1 AND r.status = 'active'
              AND r.valid_until >= :today AND NOT EXISTS (
                SELECT 1 FROM loan l WHERE l.reader_id = r.id AND l.status = 'active')
            ORDER BY r.id LIMIT :n"""), {"s": school_id, "today": today,
                                          "n": per_client_readers}).all()
        copies = db.session.execute(text("""
            SELECT c.barcode FROM copy c JOIN record r ON r.id = c.record_id
            JOIN document_type d ON d.id = r.document_type_id
            WHERE c.school_id = :s AND c.status = 'available' AND d.code IN ('STK', 'STN')
              AND NOT EXISTS (SELECT 1 FROM hold h WHERE h.copy_id = c.id)
            ORDER BY c.id LIMIT :n"""), {"s": school_id, "n": need}).scalars().all()
        out.append({"school_id": school_id, "code": code, "username": "tv" + code,
                    "readers": [tuple(r) for r in readers], "copies": list(copies)})
    return out


# --- HTTP clients -----------------------------------------------------------------------


class Http:
    """A minimal client that keeps its connection open between requests (HTTP/1.1
    keep-alive, as a desk's browser does), opens a new one when the server closed it (sync
    workers close every connection), and keeps the session cookie by hand."""

    RETRY = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

    def __init__(self, port):
        self.port, self.cookies, self.conn = port, {}, None
        self.connections = 0  # opened, for the results
        self.requests = 0  # sent, warm-up and log-in included (CPU per request)

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            reused = self.conn is not None and self.conn.sock is not None
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            if not reused:
                self.connections += 1
            self.requests += 1
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except self.RETRY:
                # The server closed an idle kept-alive connection before reading the request
                # (nothing was done): once more on a new one, as browsers do.
                self.conn.close()
                if not reused or attempt == 2:
                    raise
        if resp.will_close:
            self.conn.close()  # the next request opens a new connection
        for header, value in resp.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return resp.status, resp.getheader("Location"), data

    def login(self, username):
        _s, _l, page = self.request("GET", "/login/")
        token = CSRF.search(page.decode()).group(1)
        body = urllib.parse.urlencode({"username": username, "password": PASSWORD,
                                       "csrf_token": token})
        status, location, _d = self.request(
            "POST", "/login/", body, {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302 or "/login" in (location or ""):
            raise RuntimeError(f"login failed for {username}: {status} {location}")
        status, _l, page = self.request("GET", "/desk/")
        if status != 200:
            raise RuntimeError(f"GET /desk/ as {username}: {status}")
        self.token = META_CSRF.search(page.decode()).group(1)

    def api(self, path, payload):
        status, _l, data = self.request("POST", path, json.dumps(payload), {
            "Content-Type": "application/json", "X-CSRFToken": self.token})
        return status, json.loads(data) if data[:1] == b"{" else {"raw": data[:300]}


def desk_loop(ops, start_at, stop_at, items, fixture, do_reader, do_checkout, do_return):
    """The librarian's loop: reader card, `items` checkouts, the same copies back.

    Appends (operation, start time, seconds, ok) to `ops`; starts timing at `start_at`."""
    readers, copies = fixture["readers"], fixture["copies"]
    k = 0
    while time.time() < stop_at:
        reader_id, card = readers[k % len(readers)]
        batch = [copies[(k * items + i) % len(copies)] for i in range(items)]
        k += 1
        for name, fn, arg in ([("reader", do_reader, card)]
                              + [("checkout", do_checkout, (reader_id, b)) for b in batch]
                              + [("return", do_return, b) for b in batch]):
            t0 = time.time()
            ok = fn(arg)
            if t0 >= start_at:
                ops.append((name, t0, time.time() - t0, ok))


def http_client(port, fixture, items, start_at, stop_at, queue):
    errors = []
    try:
        client = Http(port)
        client.login(fixture["username"])

        def reader(card):
            status, data = client.api("/desk/api/reader", {"card": card})
            ok = status == 200 and data.get("ok")
            if not ok and len(errors) < 5:
                errors.append(data)
            return ok

        def checkout(arg):
            reader_id, barcode = arg
            status, data = client.api("/desk/api/scan", {"barcode": barcode,
                                                         "reader_id": reader_id,
                                                         "action": "auto"})
            ok = status == 200 and data.get("kind") == "checkout"
            if not ok and len(errors) < 5:
                errors.append(data)
            return ok

        def checkin(barcode):
            status, data = client.api("/desk/api/scan", {"barcode": barcode,
                                                         "reader_id": None, "action": "auto"})
            ok = status == 200 and data.get("kind") == "return"
            if not ok and len(errors) < 5:
                errors.append(data)
            return ok

        ops = []
        desk_loop(ops, start_at, stop_at, items, fixture, reader, checkout, checkin)
        queue.put({"ops": ops, "errors": errors, "connections": client.connections,
                   "requests": client.requests, "cpu_s": time.process_time()})
    except Exception as error:  # reported, not hidden
        queue.put({"ops": [], "errors": [repr(error)] + errors})


# --- Bare SQL -----------------------------------------------------------------------------

# The statements app.circulation.services and the desk issue, written by hand; the same
# columns are read. One transaction per operation, as the desk does.
BARE = {
    "reader_by_card": "SELECT r.*, c.* FROM reader r JOIN reader_category c ON c.id = "
                      "r.category_id WHERE r.school_id = %s AND (r.barcode = %s OR "
                      "r.card_number = %s) LIMIT 1",
    "holds_to_expire": "SELECT * FROM hold WHERE school_id = %s AND status = 'ready' AND "
                       "expires_on < %s",
    "open_loans": "SELECT l.*, c.*, r.* FROM loan l JOIN copy c ON c.id = l.copy_id JOIN "
                  "record r ON r.id = c.record_id WHERE l.reader_id = %s AND l.status = "
                  "'active' ORDER BY l.due_on, l.id",
    "rules": "SELECT * FROM loan_rule WHERE school_id IS NULL OR school_id = %s",
    "reader_holds": "SELECT h.*, r.* FROM hold h JOIN record r ON r.id = h.record_id WHERE "
                    "h.reader_id = %s AND h.status IN ('waiting', 'ready') ORDER BY "
                    "h.placed_at",
    "reader_by_id": "SELECT r.*, c.* FROM reader r JOIN reader_category c ON c.id = "
                    "r.category_id WHERE r.id = %s",
    "copy_by_barcode": "SELECT c.*, r.* FROM copy c JOIN record r ON r.id = c.record_id "
                       "WHERE c.school_id = %s AND c.barcode = %s",
    "hold_on_copy": "SELECT * FROM hold WHERE copy_id = %s AND status = 'ready' LIMIT 1",
    "settings": "SELECT * FROM circulation_settings WHERE school_id = %s LIMIT 1",
    "closed_days": "SELECT day FROM closed_day WHERE (school_id IS NULL OR school_id = %s) "
                   "AND day >= %s AND day <= %s",
    "insert_loan": "INSERT INTO loan (school_id, copy_id, reader_id, kind, status, class_name, "
                   "loaned_at, due_on, renewals, loaned_by_id) VALUES (%s, %s, %s, 'home', "
                   "'active', %s, now() AT TIME ZONE 'utc', %s, 0, %s) RETURNING id",
    "copy_status": "UPDATE copy SET status = %s WHERE id = %s",
    "open_loan_of_copy": "SELECT * FROM loan WHERE copy_id = %s AND status = 'active' LIMIT 1",
    "close_loan": "UPDATE loan SET status = 'returned', returned_at = now() AT TIME ZONE "
                  "'utc', returned_by_id = %s WHERE id = %s",
    "next_hold": "SELECT * FROM hold WHERE school_id = %s AND record_id = %s AND status = "
                 "'waiting' ORDER BY placed_at, id LIMIT 1",
}


class BareDesk:
    """The desk's operations as bare statements on one psycopg connection."""

    def __init__(self, dsn, fixture, librarian_id):
        import psycopg

        self.conn = psycopg.connect(dsn)
        self.school, self.librarian = fixture["school_id"], librarian_id
        self.today = datetime.date.today()
        self.errors = []
        self.operations = 0  # warm-up included (CPU per operation)

    def q(self, name, *params):
        return self.conn.execute(BARE[name], params)

    def reader(self, card):
        q, school = self.q, self.school
        with self.conn.transaction():
            row = q("reader_by_card", school, card, card).fetchone()
            q("holds_to_expire", school, self.today).fetchall()
            q("open_loans", row[0]).fetchall()
            q("rules", school).fetchall()
            q("reader_holds", row[0]).fetchall()
        return True

    def checkout(self, arg):
        q, school = self.q, self.school
        reader_id, barcode = arg
        with self.conn.transaction():
            reader = q("reader_by_id", reader_id).fetchone()
            copy = q("copy_by_barcode", school, barcode).fetchone()
            q("rules", school).fetchall()
            q("open_loans", reader_id).fetchall()
            q("hold_on_copy", copy[0]).fetchone()
            q("settings", school).fetchone()
            due = self.today + datetime.timedelta(days=10)
            q("closed_days", school, due, due + datetime.timedelta(days=120)).fetchall()
            with self.conn.transaction():  # the service's savepoint around the insert
                q("insert_loan", school, copy[0], reader_id, reader[5], due, self.librarian)
            q("copy_status", "on_loan", copy[0])
        return True

    def checkin(self, barcode):
        q, school = self.q, self.school
        with self.conn.transaction():
            copy = q("copy_by_barcode", school, barcode).fetchone()
            loan = q("open_loan_of_copy", copy[0]).fetchone()
            if loan is None:
                self.errors.append(f"no open loan for {barcode}")
                return False
            q("settings", school).fetchone()
            q("close_loan", self.librarian, loan[0])
            q("copy_status", "available", copy[0])
            q("next_hold", school, copy[1]).fetchone()  # copy[1]: record_id
        return True

    def guarded(self, fn):
        def run(arg):
            self.operations += 1
            try:
                return fn(arg)
            except Exception as error:
                if len(self.errors) < 5:
                    self.errors.append(repr(error))
                return False
        return run


def bare_client(dsn, fixture, items, start_at, stop_at, librarian_id, queue):
    desk = BareDesk(dsn, fixture, librarian_id)
    ops = []
    desk_loop(ops, start_at, stop_at, items, fixture, desk.guarded(desk.reader),
              desk.guarded(desk.checkout), desk.guarded(desk.checkin))
    desk.conn.close()
    queue.put({"ops": ops, "errors": desk.errors, "requests": desk.operations,
               "cpu_s": time.process_time()})


def process_cpu(pids):
    """CPU seconds (user + system) used so far by these processes and their threads."""
    return backend_cpu(pids)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def run_clients(target, fixtures, args, extra=(), server=None):
    """Start one process per fixture, wait for them; returns the merged operations, and the
    CPU per request of the clients and of the `server` (gunicorn's pid: its workers), warm-up
    and log-in included."""
    ctx = multiprocessing.get_context("fork")
    workers = children(server) if server else []
    server_cpu = process_cpu(workers)
    queue = ctx.Queue()
    start_at = time.time() + 2 + args.warmup  # time to log in, then the warm-up
    stop_at = start_at + args.duration
    procs = [ctx.Process(target=target, args=(*extra, f, args.items, start_at, stop_at, queue))
             for f in fixtures]
    for p in procs:
        p.start()
    outs = [queue.get(timeout=args.duration + args.warmup + 300) for _p in procs]
    for p in procs:
        p.join()
    ops = [op for o in outs for op in o["ops"]]
    errors = [e for o in outs for e in o["errors"]]
    out = summarise(ops, args.duration, errors)
    if any("connections" in o for o in outs):
        out["http_connections_opened"] = sum(o.get("connections", 0) for o in outs)
    requests = sum(o.get("requests", 0) for o in outs)
    if requests:
        out["requests_all"] = requests
        out["client_cpu_ms_per_request"] = round(
            sum(o.get("cpu_s", 0) for o in outs) / requests * 1000, 3)
        if workers:
            out["gunicorn_workers_cpu_ms_per_request"] = round(
                (process_cpu(workers) - server_cpu) / requests * 1000, 3)
    return out


def summarise(ops, duration, errors):
    out = {"errors": errors[:10], "failed_ops": sum(1 for op in ops if not op[3])}
    for name in ("reader", "checkout", "return"):
        times = [op[2] * 1000 for op in ops if op[0] == name and op[3]]
        if times:
            out[name] = {"n": len(times), "p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(percentile(times, 95), 1),
                         "p99_ms": round(percentile(times, 99), 1),
                         "max_ms": round(max(times), 1),
                         "per_s": round(len(times) / duration, 1)}
    done = sum(out[k]["n"] for k in ("checkout", "return") if k in out)
    out["checkout_return_per_s"] = round(done / duration, 1)
    out["requests_per_s"] = round(sum(1 for op in ops if op[3]) / duration, 1)
    return out


# --- gunicorn ---------------------------------------------------------------------------


def gunicorn_options(args):
    """The worker class and its options, as in README.md's production command."""
    tmp = ["--worker-tmp-dir", args.worker_tmp_dir] if args.worker_tmp_dir else []
    if args.worker_class == "sync":
        return ["-k", "sync", *tmp]
    return ["-k", args.worker_class, "--threads", str(args.threads),
            "--keep-alive", str(args.keep_alive), *tmp]


def start_gunicorn(workers, env, workdir, options=()):
    port = free_port()
    log = open(os.path.join(workdir, f"gunicorn-{workers}.log"), "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), *options,
         "-b", f"127.0.0.1:{port}", "--timeout", "120", "app:create_app()"], cwd=ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT)
    started = time.perf_counter()
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/login/")
            conn.getresponse().read()
            conn.close()
            break
        except OSError:
            if proc.poll() is not None or time.perf_counter() - started > 180:
                raise SystemExit(f"gunicorn did not start, see {log.name}")
            time.sleep(0.3)
    time.sleep(1 + 0.5 * workers)  # every worker up, not only the first
    return proc, port, log


def stop_gunicorn(proc, log):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


# --- Where the time goes ------------------------------------------------------------------


def backend_cpu(pids):
    """CPU seconds (user + system) used so far by these PostgreSQL backends (/proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


class PidLog(StatementLog):
    """StatementLog that also notes the backends the statements ran on."""

    pids = set()

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self.pids.add(conn.connection.driver_connection.info.backend_pid)
        super()._before(conn, cursor, statement, parameters, context, executemany)


def cpu_pairs(checkout, checkin, copies, pairs, pids_of):
    """Checkout + return pairs, one after the other: wall and process CPU per operation,
    and the CPU of the PostgreSQL backends per pair (they cannot be told apart)."""
    wall = {"checkout": [], "return": []}
    cpu = {"checkout": [], "return": []}
    pids = pids_of()
    pg0 = backend_cpu(pids)
    for i in range(pairs):
        barcode = copies[i % len(copies)]
        for name, fn in (("checkout", checkout), ("return", checkin)):
            c0, t0 = time.process_time(), time.perf_counter()
            fn(barcode)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    pg = backend_cpu(pids_of() | pids) - pg0
    out = {name: {"p50_ms": round(statistics.median(wall[name]) * 1000, 2),
                  "cpu_ms": round(sum(cpu[name]) / pairs * 1000, 2)} for name in wall}
    out["postgres_cpu_ms_per_pair"] = round(pg / pairs * 1000, 2)
    out["cpu_ms_per_pair"] = round(out["checkout"]["cpu_ms"] + out["return"]["cpu_ms"]
                                   + out["postgres_cpu_ms_per_pair"], 2)
    # Two cores busy with nothing else: the ceiling of checkouts + returns per second.
    out["ceiling_ops_per_s_on_2_cores"] = round(2 * 2 / (out["cpu_ms_per_pair"] / 1000))
    return out


def breakdown(app, db, fixture, ops_count, dsn, librarian_id):
    """Where the time of a checkout and a return goes, in-process (Flask test client, no
    HTTP server): SQL statements and their time, process and PostgreSQL CPU per operation,
    cProfile; and the CPU of the same operations as bare SQL."""
    client = login(app, fixture["username"])
    page = client.get("/desk/").get_data(as_text=True)
    headers = {"X-CSRFToken": META_CSRF.search(page).group(1)}
    reader_id, _card = fixture["readers"][0]
    copies = fixture["copies"][:3]
    with app.app_context():
        engine = db.engine

    def checkout(barcode):
        resp = client.post("/desk/api/scan", json={"barcode": barcode, "reader_id": reader_id,
                                                   "action": "auto"}, headers=headers)
        assert resp.get_json()["kind"] == "checkout", resp.get_json()
        return resp

    def checkin(barcode):
        resp = client.post("/desk/api/scan", json={"barcode": barcode, "reader_id": None,
                                                   "action": "auto"}, headers=headers)
        assert resp.get_json()["kind"] == "return", resp.get_json()
        return resp

    out = {}
    with PidLog(engine) as log:
        for barcode in copies:  # warm-up (and the backends' pids)
            checkout(barcode)
            checkin(barcode)
        out["app_cpu"] = cpu_pairs(checkout, checkin, copies, ops_count, lambda: set(log.pids))
        for name, fn in (("checkout", checkout), ("return", checkin)):
            times, sql_n, sql_t, statements = [], [], [], {}
            profile = cProfile.Profile()
            for i in range(ops_count):
                barcode = copies[i % len(copies)]
                if name == "return":  # lend it first, outside the measure
                    checkout(barcode)
                log.start()
                t0 = time.perf_counter()
                profile.enable()
                fn(barcode)
                profile.disable()
                times.append(time.perf_counter() - t0)
                sql_n.append(len(log.current))
                sql_t.append(sum(t for t, _s, _p in log.current))
                for seconds, sql, _p in log.current:
                    key = " ".join(sql.split())[:160]
                    entry = statements.setdefault(key, [0, 0.0])
                    entry[0] += 1
                    entry[1] += seconds
                log.current = None
                if name == "checkout":
                    checkin(barcode)
            stream = io.StringIO()
            pstats.Stats(profile, stream=stream).sort_stats("cumulative").print_stats(40)
            tottime = io.StringIO()
            pstats.Stats(profile, stream=tottime).sort_stats("tottime").print_stats(25)
            total = statistics.median(times) * 1000
            sql = statistics.median(sql_t) * 1000
            out[name] = {
                "requests": ops_count, "p50_ms_profiled": round(total, 2),
                "sql_statements": statistics.median(sql_n), "sql_ms": round(sql, 2),
                "statements": sorted(
                    ({"sql": k, "per_request": round(c / ops_count, 2),
                      "ms_per_request": round(t / ops_count * 1000, 3)}
                     for k, (c, t) in statements.items()), key=lambda s: -s["ms_per_request"]),
                "profile_cumulative": stream.getvalue().splitlines()[:70],
                "profile_tottime": tottime.getvalue().splitlines()[:50],
            }
    desk = BareDesk(dsn, fixture, librarian_id)
    desk.reader(_card)
    bare_pid = desk.conn.info.backend_pid
    out["bare_cpu"] = cpu_pairs(lambda b: desk.checkout((reader_id, b)), desk.checkin, copies,
                                ops_count, lambda: {bare_pid})
    desk.conn.close()
    out["bare_statements"] = {"checkout": 10, "return": 6}  # BareDesk, plus the savepoint
    out["reference_loop_s"] = reference_loop()
    a, b = out["app_cpu"], out["bare_cpu"]
    print(f"  in-process: checkout {out['checkout']['sql_statements']:g} SQL, return "
          f"{out['return']['sql_statements']:g} SQL; CPU per checkout+return: app "
          f"{a['checkout']['cpu_ms']} + {a['return']['cpu_ms']} ms, PostgreSQL "
          f"{a['postgres_cpu_ms_per_pair']} ms; bare {b['checkout']['cpu_ms']} + "
          f"{b['return']['cpu_ms']} ms, PostgreSQL {b['postgres_cpu_ms_per_pair']} ms; "
          f"ceiling on 2 cores {a['ceiling_ops_per_s_on_2_cores']} vs "
          f"{b['ceiling_ops_per_s_on_2_cores']} ops/s", flush=True)
    return out


# --- Main ---------------------------------------------------------------------------------


def main():
    args = parse_args()
    if args.reuse:
        args.keep = True
    url = normalise(args.database_url)
    if not url.startswith("postgresql"):
        sys.exit("PostgreSQL only (the target of the measure).")
    if args.reuse and not database_exists(url):
        sys.exit("--reuse: the database does not exist (run once with --keep first).")
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")
               if c not in ("", "none")]
    workdir = tempfile.mkdtemp(prefix="thuvien-bench-circulation-")
    os.environ.update({"INSTANCE_PATH": workdir, "DATABASE_URL": url,
                       "SECRET_KEY": secrets.token_hex(32), "APP_ENV": "development"})
    # gunicorn: the roles were synchronised when the schema was built; many librarians log in
    # from one address, which the login rate limit would refuse.
    env = dict(os.environ, PYTHONPATH=ROOT, SYNC_ROLES_ON_START="0", AUTH_RATE_LIMITED="0")
    if not args.reuse:
        create_database(url, args.drop_existing)
    results = {"started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "scale": args.scale, "seed": args.seed, "reused": args.reuse,
        "items_per_loop": args.items, "duration_s": args.duration,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                    "reference_loop_s_at_start": reference_loop()}}
    try:
        from sqlalchemy import text

        from app import create_app
        from app.extensions import db

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SYNC_ROLES_ON_START": False,
                          "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False})
        with app.app_context():
            results["database"] = {"dialect": db.engine.dialect.name,
                                   "server_version": server_version(db),
                                   "url": db.engine.url.render_as_string(hide_password=True)}
            if not args.reuse:
                build(db, args, results)
            results["rows"] = row_counts(db)
            print("rows:", results["rows"], flush=True)
            if args.build_only:
                return
            fixtures = desk_fixtures(db, args, max([c for _w, c in configs] + [1]))
            librarians = dict(db.session.execute(text(
                "SELECT username, id FROM ab_user WHERE username = ANY(:u)"),
                {"u": [f["username"] for f in fixtures]}).all())
            db.session.remove()
            db.engine.dispose()  # no pooled connection inherited by the client processes
        for f in fixtures:
            if len(f["readers"]) < 5 or len(f["copies"]) < args.items * 10:
                raise SystemExit(f"school {f['code']}: too few readers or copies for the desk")
        results["schools"] = [{"code": f["code"], "readers": len(f["readers"]),
                               "copies": len(f["copies"])} for f in fixtures]
        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        results["runs"] = []
        for workers, clients in configs:
            print(f"gunicorn {workers} workers x {clients} clients, {args.duration:g} s ...",
                  flush=True)
            reference = reference_loop()  # how fast Python runs right now (shared machine)
            load_before = [round(x, 2) for x in os.getloadavg()]
            proc, port, log = start_gunicorn(workers, env, workdir, gunicorn_options(args))
            try:
                app_run = run_clients(http_client, fixtures[:clients], args, extra=(port,),
                                      server=proc.pid)
            finally:
                stop_gunicorn(proc, log)
            load_after_app = [round(x, 2) for x in os.getloadavg()]
            print(f"  bare SQL x {clients} clients ...", flush=True)
            bare_run = run_clients(
                lambda f, *a: bare_client(dsn, f, *a[:3], librarians[f["username"]], a[3]),
                fixtures[:clients], args)
            run = {"workers": workers, "clients": clients, "app": app_run, "bare": bare_run,
                   "gunicorn": gunicorn_options(args),
                   "reference_loop_s": reference, "load_average_before": load_before,
                   "load_average_after_app": load_after_app,
                   "load_average": [round(x, 2) for x in os.getloadavg()]}
            run["ratio"] = {
                f"{op}_{m}": round(app_run[op][m] / bare_run[op][m], 2)
                for op in ("checkout", "return") for m in ("p50_ms", "p95_ms")
                if op in app_run and op in bare_run}
            if bare_run.get("checkout_return_per_s"):
                run["ratio"]["ops_per_s_bare_over_app"] = round(
                    bare_run["checkout_return_per_s"] / max(app_run["checkout_return_per_s"],
                                                            0.1), 2)
            results["runs"].append(run)
            print_run(run)
        if args.profile_ops:
            print("where the time goes (in-process, cProfile) ...", flush=True)
            results["breakdown"] = breakdown(app, db, fixtures[0], args.profile_ops, dsn,
                                             librarians[fixtures[0]["username"]])
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        if not args.keep:
            drop_database(url)
        else:
            print(f"Kept: {url}")
        shutil.rmtree(workdir, ignore_errors=True)
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results["machine"]["reference_loop_s_at_end"] = reference_loop()
        os.makedirs(RESULTS_DIR, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = os.path.join(RESULTS_DIR, f"{stamp}-circulation.json")
        with open(path, "w") as fh:
            json.dump(results, fh, indent=2, ensure_ascii=False, default=str)
        print(f"\nWritten: {os.path.relpath(path, ROOT)}")


def print_run(run):
    def line(label, r):
        parts = []
        for op in ("reader", "checkout", "return"):
            if op in r:
                parts.append(f"{op} p50 {r[op]['p50_ms']} / p95 {r[op]['p95_ms']} / "
                             f"p99 {r[op]['p99_ms']} ms")
        print(f"  {label}: {'; '.join(parts)}; {r['checkout_return_per_s']} checkouts+returns/s, "
              f"{r['failed_ops']} failed {r['errors'][:2] if r['errors'] else ''}", flush=True)

    print(f"  load average before / after the app / after bare SQL: "
          f"{run['load_average_before'][0]} / {run['load_average_after_app'][0]} / "
          f"{run['load_average'][0]}; reference loop {run['reference_loop_s']} s; gunicorn "
          f"{' '.join(run.get('gunicorn', []))}, {run['app'].get('http_connections_opened')} "
          f"connections opened", flush=True)
    line(f"app  {run['workers']}w x {run['clients']}c", run["app"])
    line(f"bare {run['clients']}c", run["bare"])
    print(f"  CPU per request (warm-up included): gunicorn workers "
          f"{run['app'].get('gunicorn_workers_cpu_ms_per_request')} ms, HTTP clients "
          f"{run['app'].get('client_cpu_ms_per_request')} ms; bare clients "
          f"{run['bare'].get('client_cpu_ms_per_request')} ms", flush=True)
    app = run["app"]
    verdict = ("met" if all(app.get(op, {}).get("p95_ms", 1e9) < TARGET_P95_MS
                            for op in ("checkout", "return"))
               and app["checkout_return_per_s"] >= TARGET_OPS else "missed")
    print(f"  ratio app/bare: {run['ratio']}; targets (p95 < {TARGET_P95_MS} ms, "
          f">= {TARGET_OPS}/s): {verdict}", flush=True)


if __name__ == "__main__":
    main()
