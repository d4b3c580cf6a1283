#!/usr/bin/env python3
"""Benchmark of the foundation at city scale: generation, start-up, home page, worker memory.

    python bench/bench_foundation.py                       # temporary SQLite file, scale 1.0
    python bench/bench_foundation.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/thuvien_bench

With PostgreSQL the script creates the named database and drops it at the end (it refuses
to touch a database that already exists unless --drop-existing is given). Everything runs
on loopback. Results: a table on stdout and bench/results/<timestamp>.json (git-ignored).
See bench/README.md for the figures measured so far.
"""
import argparse
import datetime
import http.cookiejar
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "bench", "results")
PASSWORD = "thuvien2025"  # demo and generated accounts
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", help="SQLAlchemy URL (default: a temporary SQLite file). "
                   "A PostgreSQL database is created and dropped by the script.")
    p.add_argument("--scale", type=float, default=1.0, help="1.0 = the whole city")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--requests", type=int, default=30, help="timed GET / per account")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--worker-requests", type=int, default=50,
                   help="GET / sent to the gunicorn worker before reading its memory")
    p.add_argument("--startup-runs", type=int, default=3)
    p.add_argument("--drop-existing", action="store_true",
                   help="PostgreSQL: drop the database first if it already exists")
    p.add_argument("--keep", action="store_true", help="keep the database at the end")
    return p.parse_args()


# --- Database ---------------------------------------------------------------------------


def normalise(url):
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _pg_admin(url):
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432,
                           user=u.username or "postgres", password=u.password,
                           dbname="postgres", autocommit=True)
    return conn, u.database


def create_database(url, drop_existing):
    if not url.startswith("postgresql"):
        return
    conn, name = _pg_admin(url)
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not drop_existing:
            sys.exit(f"The database {name!r} already exists: choose another name or pass "
                     "--drop-existing (it will be dropped).")
        if exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url):
    if not url.startswith("postgresql"):
        return
    conn, name = _pg_admin(url)
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version(db):
    from sqlalchemy import text

    if db.engine.dialect.name == "postgresql":
        return db.session.execute(text("SHOW server_version")).scalar()
    if db.engine.dialect.name == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version
    return ""


# --- Measures ---------------------------------------------------------------------------


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary_ms(seconds):
    ms = [s * 1000 for s in seconds]
    return {"median_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 95), 1),
            "min_ms": round(min(ms), 1), "max_ms": round(max(ms), 1), "n": len(ms)}


def startup(env, code, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 2),
            "runs_s": [round(t, 2) for t in times]}


def home_latency(app, username, warmup, n):
    """Log in with the test client (CSRF token from the form), then time GET /."""
    from sqlalchemy import event

    from app.extensions import db

    client = app.test_client()
    page = client.get("/login/").get_data(as_text=True)
    token = CSRF.search(page).group(1)
    resp = client.post("/login/", data={"username": username, "password": PASSWORD,
                                        "csrf_token": token})
    if resp.status_code != 302 or "/login" in resp.headers.get("Location", ""):
        raise SystemExit(f"Login failed for {username}: {resp.status_code}")
    for _ in range(warmup):
        assert client.get("/").status_code == 200
    queries = []

    def count(*_a, **_k):
        queries[-1] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    times = []
    try:
        for _ in range(n):
            queries.append(0)
            started = time.perf_counter()
            resp = client.get("/")
            times.append(time.perf_counter() - started)
            if resp.status_code != 200:
                raise SystemExit(f"GET / as {username}: {resp.status_code}")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    out = summary_ms(times)
    out["sql_queries_per_request"] = statistics.median(queries)
    out["bytes"] = len(resp.get_data())
    return out


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)  # kB -> MiB
    return out


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces, split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            kids.append(int(entry))
    return kids


def worker_memory(env, n, workdir):
    """One gunicorn worker: log in as thanhtra over HTTP, GET / n times, read its RSS."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(workdir, "gunicorn.log"), "w")
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
         "app:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        started = time.perf_counter()
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        while True:
            try:
                with opener.open(base + "/login/", timeout=5) as resp:
                    page = resp.read().decode()
                break
            except OSError:
                if master.poll() is not None or time.perf_counter() - started > 120:
                    raise SystemExit(f"gunicorn did not start, see {log.name}")
                time.sleep(0.2)
        ready_s = time.perf_counter() - started
        workers = children_of(master.pid)
        if len(workers) != 1:
            raise SystemExit(f"expected one gunicorn worker, found {workers}")
        worker = workers[0]
        after_boot = proc_status(worker)
        token = CSRF.search(page).group(1)
        data = urllib.parse.urlencode({"username": "thanhtra", "password": PASSWORD,
                                       "csrf_token": token}).encode()
        # Read and close every response: a single sync worker otherwise waits for the
        # keep-alive timeout of the connection left open before serving the next request.
        with opener.open(base + "/login/", data=data, timeout=30) as resp:
            resp.read()
        if urllib.parse.urlparse(resp.geturl()).path.startswith("/login"):
            raise SystemExit("HTTP login as thanhtra failed")
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            with opener.open(base + "/", timeout=30) as resp:
                resp.read()
            times.append(time.perf_counter() - t0)
            if resp.status != 200 or urllib.parse.urlparse(resp.geturl()).path != "/":
                raise SystemExit(f"GET / over HTTP: {resp.status} {resp.geturl()}")
        after = proc_status(worker)
        return {"ready_s": round(ready_s, 2), "worker_pid": worker,
                "rss_after_boot_mib": after_boot.get("VmRSS"),
                "rss_after_requests_mib": after.get("VmRSS"),
                "peak_rss_mib": after.get("VmHWM"),
                "master_rss_mib": proc_status(master.pid).get("VmRSS"),
                "http_home": summary_ms(times)}
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
        log.close()


# --- Main -------------------------------------------------------------------------------


def main():
    args = parse_args()
    workdir = tempfile.mkdtemp(prefix="thuvien-bench-")
    url = normalise(args.database_url or "sqlite:///" + os.path.join(workdir, "bench.db"))
    # Same settings for this process, the start-up subprocesses and gunicorn.
    os.environ.update({"INSTANCE_PATH": workdir, "DATABASE_URL": url,
                       "SECRET_KEY": secrets.token_hex(32), "APP_ENV": "development"})
    env = dict(os.environ, PYTHONPATH=ROOT)
    sys.path.insert(0, ROOT)
    create_database(url, args.drop_existing)
    results = {"started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "scale": args.scale, "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}}
    try:
        from sqlalchemy import func, select

        from app import create_app
        from app.core.setup import prepare_database
        from app.extensions import db
        from app.org.generator import generate_city, plan_city
        from app.org.models import AppUser, OrgLink, OrgUnit

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SYNC_ROLES_ON_START": False,
                          "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False})
        with app.app_context():
            results["database"] = {"dialect": db.engine.dialect.name,
                                   "server_version": server_version(db),
                                   "url": db.engine.url.render_as_string(hide_password=True)}
            t0 = time.perf_counter()
            prepare_database(load_demo=True)
            results["schema_and_demo_s"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            stats = generate_city(db.session, scale=args.scale, seed=args.seed)
            results["generation_s"] = round(time.perf_counter() - t0, 2)
            results["generated"] = {k: v for k, v in stats.items()}
            results["rows"] = {
                "org_unit": db.session.execute(select(func.count(OrgUnit.id))).scalar(),
                "org_link": db.session.execute(select(func.count(OrgLink.id))).scalar(),
                "ab_user": db.session.execute(select(func.count(AppUser.id))).scalar(),
            }
            db.session.remove()

        results["startup"] = {
            "create_app_s": startup(env, "from app import create_app; create_app()",
                                    args.startup_runs),
            "create_app_without_role_sync_s": startup(
                env, "from app import create_app; create_app({'SYNC_ROLES_ON_START': False})",
                args.startup_runs),
            "import_only_s": startup(env, "import app, app.core.registry", args.startup_runs),
        }

        plan = plan_city(args.scale, args.seed)
        accounts = {
            "librarian (generated, " + plan["schools"][0]["code"] + ")":
                "tv" + plan["schools"][0]["code"],
            "ward officer (generated, " + plan["wards"][0]["code"] + ")":
                "cb" + plan["wards"][0]["code"].lower(),
            "district officer (generated, closed office)": "cb" + plan["districts"][0][
                "code"].lower(),
            "department inspector (thanhtra)": "thanhtra",
        }
        results["home_page"] = {}
        for label, username in accounts.items():
            results["home_page"][label] = dict(
                username=username, **home_latency(app, username, args.warmup, args.requests))
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

        results["gunicorn_worker"] = worker_memory(env, args.worker_requests, workdir)
    finally:
        if not args.keep:
            drop_database(url)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"Kept: {url} (work directory {workdir})")

    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(RESULTS_DIR, f"{stamp}-{results['database']['dialect']}.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2, ensure_ascii=False)
    print_table(results)
    print(f"\nWritten: {os.path.relpath(path, ROOT)}")


def print_table(r):
    g = r["generated"]
    rows = [
        ("Database", f"{r['database']['dialect']} {r['database']['server_version']}"),
        ("Scale / seed", f"{r['scale']} / {r['seed']}"),
        ("Machine", f"{r['machine']['cpus']} CPUs, load average "
                    f"{r['machine']['load_average_at_start'][0]} at start, "
                    f"{r['machine']['load_average_at_end'][0]} at end"),
        ("Generated", f"{g['schools']} schools, {g['offices']} offices+clusters, "
                      f"{g['users']} accounts, {g['links']} links"),
        ("Schema + roles + demo city", f"{r['schema_and_demo_s']} s"),
        ("Generation", f"{r['generation_s']} s"),
        ("Worker start (create_app), median", f"{r['startup']['create_app_s']['median_s']} s"),
        ("  without role sync", f"{r['startup']['create_app_without_role_sync_s']['median_s']} s"),
        ("  imports only", f"{r['startup']['import_only_s']['median_s']} s"),
    ]
    for label, h in r["home_page"].items():
        rows.append((f"GET / {label}",
                     f"median {h['median_ms']} ms, p95 {h['p95_ms']} ms, "
                     f"{h['sql_queries_per_request']:g} SQL"))
    w = r["gunicorn_worker"]
    rows += [
        ("gunicorn worker RSS after boot", f"{w['rss_after_boot_mib']} MiB"),
        (f"  after login + {w['http_home']['n']} GET / (thanhtra)",
         f"{w['rss_after_requests_mib']} MiB (peak {w['peak_rss_mib']} MiB)"),
        ("  GET / over HTTP", f"median {w['http_home']['median_ms']} ms, "
                              f"p95 {w['http_home']['p95_ms']} ms"),
    ]
    width = max(len(a) for a, _b in rows)
    print()
    for a, b in rows:
        print(f"{a:<{width}}  {b}")


if __name__ == "__main__":
    main()


# --- Shared driver of the per-database benches ---------------------------------------------


def save_results(results, kind):
    """Each run's JSON as bench/results/<utc stamp>-<kind>-<dialect>.json."""

    os.makedirs(RESULTS_DIR, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for r in results:
        path = os.path.join(RESULTS_DIR, f"{stamp}-{kind}-{r['database']['dialect']}.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(r, fh, ensure_ascii=False, indent=1, default=str)
        print(f"results: {os.path.relpath(path, ROOT)}")


def run_per_database(args, script, kind, run_one, print_table, default_pg, passed_args,
                     quiet=True):
    """A bench's main(): with --database-url, one run (its JSON to --json-out, or saved and
    printed); without, the script again for SQLite then PostgreSQL, each in its own process
    (each builds its own application), then one table of both. `passed_args`: the options
    given again to each run."""
    if args.database_url:
        results = run_one(args.database_url, args)
        if args.json_out:
            with open(args.json_out, "w", encoding="utf-8") as fh:
                json.dump(results, fh, ensure_ascii=False)
        else:
            save_results([results], kind)
            print_table([results])
        return
    collected = []
    for url in ("sqlite", default_pg):
        print(f"{url}:", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, os.path.abspath(script), "--database-url", url,
                   *[str(a) for a in passed_args], "--json-out", out.name]
            if args.drop_existing:
                cmd.append("--drop-existing")
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL if quiet else None)
            with open(out.name, encoding="utf-8") as fh:
                collected.append(json.load(fh))
    save_results(collected, kind)
    print_table(collected)
