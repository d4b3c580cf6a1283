#!/usr/bin/env python3
"""Benchmark of the statistics pages and dashboards of many schools (issue 7's targets:
city-wide under 1 s, an office's under 500 ms).

    python bench/bench_statistics.py                    # PostgreSQL thuvien_bench_stats, scale 1.0
    python bench/bench_statistics.py --scale 0.1 --keep
    python bench/bench_statistics.py --refresh --keep   # flask stats-refresh on generated loans

The organisation tree comes from the city generator (3,500 schools at scale 1.0). The pages
of many schools read only the aggregate tables (stat_monthly, stat_snapshot), so these are
filled directly with the row counts the refresh gives a school with a school year of loans
(every metric and key of app.statistics.sources, 15 months, random figures); generating 50
million loans first would not change what these pages read. Requests go through the Flask
test client (the whole application: login, permissions, tenancy, templates), with the SQL
statements counted. A second part times `refresh` itself on a school of the demo city.
Results: a table on stdout and bench/results/<timestamp>-statistics-<dialect>.json.
"""
import argparse
import datetime
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_catalog import StatementLog, login  # noqa: E402
from bench_foundation import (  # noqa: E402
    create_database, drop_database, normalise, save_results, server_version,
)

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/thuvien_bench_stats"
TARGETS_MS = {"city": 1000, "office": 500, "school": 300}
# Keys per metric of a typical lower-secondary school (30 classes, 4 grades, 10 classes of
# the classification, 3 reader categories, the document types of the city).
KEYS = {"grade": 5, "class": 30, "classmain": 10, "language": 3, "decade": 6, "location": 4,
        "funding": 4, "status": 6}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--scale", type=float, default=1.0, help="1.0 = the whole city")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--requests", type=int, default=10, help="timed requests per page")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--drop-existing", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the database at the end")
    p.add_argument("--reuse", action="store_true",
                   help="measure a database kept by an earlier --keep run (no generation)")
    p.add_argument("--refresh", action="store_true",
                   help="time `flask stats-refresh` on generated loans instead (a city with "
                        "catalogue, readers and a school year of loans, built as "
                        "bench_circulation does; default scale 0.05)")
    p.add_argument("--since", default="01/09/2025",
                   help="--refresh: first month of the full recount (the generated year)")
    p.add_argument("--incremental-since", default="01/05/2026",
                   help="--refresh: first month of the incremental recount")
    args = p.parse_args()
    if args.refresh and "--scale" not in sys.argv:
        args.scale = 0.05
    return args


def fill_aggregates(db, months):
    """Aggregate rows for every school as the refresh would write them."""
    from sqlalchemy import delete, insert, select

    from app.catalog.models import DocumentType
    from app.org.models import OrgUnit, UnitKind
    from app.readers.models import ReaderCategory
    from app.statistics import sources
    from app.statistics.models import StatMonthly, StatRefresh, StatSnapshot

    import random

    rng = random.Random(1)
    session = db.session
    categories = [str(i) for i in session.execute(select(ReaderCategory.id)).scalars()]
    doctypes = [str(i) for i in session.execute(select(DocumentType.id)).scalars()]

    def keys(metric):
        dimension = metric.split(".", 1)[1]
        if dimension == "category":
            return categories
        if dimension == "doctype":
            return doctypes
        if dimension == "grade":
            return ["6", "7", "8", "9", ""]
        return [str(i) for i in range(KEYS.get(dimension, 5))]

    schools = session.execute(select(OrgUnit.id).where(
        OrgUnit.kind == UnitKind.school)).scalars().all()
    for model in (StatMonthly, StatSnapshot, StatRefresh):
        session.execute(delete(model))
    now = datetime.datetime.now()
    monthly = snapshot = 0
    if db.engine.dialect.name == "postgresql":
        return fill_aggregates_pg(session, schools, months, keys, now)
    for start in range(0, len(schools), 100):
        rows_m, rows_s = [], []
        for sid in schools[start:start + 100]:
            for metric in sources.SNAPSHOT_FACTS:
                for key in keys(metric):
                    rows_s.append({"school_id": sid, "metric": metric, "key": key,
                                   "count": rng.randint(0, 400),
                                   "amount": rng.randint(0, 9_000_000)})
            for month in months:
                for metric in list(sources.USE_FACTS) + ["borrowers_year.category",
                                                         "borrowers_year.grade"]:
                    for key in keys(metric):
                        rows_m.append({"school_id": sid, "month": month, "metric": metric,
                                       "key": key, "count": rng.randint(0, 120),
                                       "amount": None})
        session.execute(insert(StatSnapshot), rows_s)
        session.execute(insert(StatMonthly), rows_m)
        monthly += len(rows_m)
        snapshot += len(rows_s)
    session.execute(insert(StatRefresh), [{"school_id": sid, "refreshed_at": now}
                                          for sid in schools])
    session.commit()
    return {"schools": len(schools), "stat_monthly": monthly, "stat_snapshot": snapshot}


def fill_aggregates_pg(session, schools, months, keys, now):
    """The same rows written by PostgreSQL itself (generate_series): seconds, not minutes."""
    from sqlalchemy import text

    from app.statistics import sources

    def pairs(metrics):
        return [(m, k) for m in metrics for k in keys(m)]

    snap = pairs(sources.SNAPSHOT_FACTS)
    month_pairs = pairs(list(sources.USE_FACTS) + ["borrowers_year.category",
                                                   "borrowers_year.grade"])
    session.execute(text(
        "INSERT INTO stat_snapshot (school_id, metric, key, count, amount) "
        "SELECT s.id, p.metric, p.key, (random() * 400)::int, (random() * 9000000)::int "
        "FROM org_unit s CROSS JOIN unnest(CAST(:metrics AS text[]), CAST(:keys AS text[])) "
        "AS p(metric, key) WHERE s.kind = 'school'"),
        {"metrics": [m for m, _k in snap], "keys": [k for _m, k in snap]})
    session.execute(text(
        "INSERT INTO stat_monthly (school_id, month, metric, key, count, amount) "
        "SELECT s.id, m.month, p.metric, p.key, (random() * 120)::int, NULL "
        "FROM org_unit s CROSS JOIN unnest(CAST(:months AS date[])) AS m(month) "
        "CROSS JOIN unnest(CAST(:metrics AS text[]), CAST(:keys AS text[])) AS p(metric, key) "
        "WHERE s.kind = 'school'"),
        {"months": months, "metrics": [m for m, _k in month_pairs],
         "keys": [k for _m, k in month_pairs]})
    session.execute(text("INSERT INTO stat_refresh (school_id, refreshed_at) "
                         "SELECT id, :now FROM org_unit WHERE kind = 'school'"), {"now": now})
    session.commit()
    return {"schools": len(schools), "stat_monthly": len(schools) * len(months) *
            len(month_pairs), "stat_snapshot": len(schools) * len(snap)}


def summary(times):
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"p50_ms": round(statistics.median(times) * 1000, 1),
            "p95_ms": round(p95 * 1000, 1), "max_ms": round(times[-1] * 1000, 1)}


def time_url(client, log, url, warmup, n):
    for _ in range(warmup):
        resp = client.get(url)
        if resp.status_code != 200:
            raise SystemExit(f"GET {url}: {resp.status_code} {resp.get_data(as_text=True)[:300]}")
    times, counts = [], []
    for _ in range(n):
        log.start()
        started = time.perf_counter()
        resp = client.get(url)
        times.append(time.perf_counter() - started)
        counts.append(len(log.current))
        log.current = None
        if resp.status_code != 200:
            raise SystemExit(f"GET {url}: {resp.status_code}")
    out = summary(times)
    out["sql_statements"] = statistics.median(counts)
    return out


def refresh_bench(args):
    """Time the real command, `flask stats-refresh`, on generated loans: the full recount of
    the school year, then an incremental one (--since the last month), each followed by the
    VACUUM ANALYZE the nightly run does. Extrapolated to scale 1.0 only as an estimate."""
    import subprocess

    import bench_circulation

    url = normalise(args.database_url if args.database_url != DEFAULT_URL else
                    DEFAULT_URL.rsplit("/", 1)[0] + "/thuvien_bench_stats_refresh")
    workdir = tempfile.mkdtemp(prefix="thuvien-bench-refresh-")
    env = dict(os.environ, INSTANCE_PATH=workdir, DATABASE_URL=url,
               SECRET_KEY=secrets.token_hex(32), APP_ENV="development")
    os.environ.update(env)
    results = {"mode": "refresh", "started_at": datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec="seconds"), "scale": args.scale,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}}
    if args.reuse:
        args.keep = True
    else:
        create_database(url, args.drop_existing)
    try:
        from sqlalchemy import text

        from app import create_app
        from app.extensions import db

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SYNC_ROLES_ON_START": False})
        with app.app_context():
            results["database"] = {"dialect": db.engine.dialect.name,
                                   "server_version": server_version(db)}
            if not args.reuse:
                bench_circulation.build(db, args, results)
            results["rows"] = bench_circulation.row_counts(db)
            results["rows"]["loans_since"] = db.session.execute(text(
                "SELECT count(*) FROM loan WHERE loaned_at >= :d"), {
                "d": datetime.datetime.strptime(args.since, "%d/%m/%Y")}).scalar()
            results["rows"]["loans_incremental"] = db.session.execute(text(
                "SELECT count(*) FROM loan WHERE loaned_at >= :d"), {
                "d": datetime.datetime.strptime(args.incremental_since, "%d/%m/%Y")}).scalar()
            db.session.remove()

        def run(since):
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "flask", "--app", "run",
                                  "stats-refresh", "--since", since], cwd=ROOT, env=env,
                                 capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if out.returncode != 0:
                raise SystemExit(f"stats-refresh --since {since}: {out.stderr[-2000:]}")
            line = out.stdout.strip().splitlines()[-1]
            return {"since": since, "wall_s": round(seconds, 1), "output": line,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]}

        results["full"] = run(args.since)
        results["incremental"] = run(args.incremental_since)
        results["full_again"] = run(args.since)
        with app.app_context():
            results["aggregates"] = {t: db.session.execute(text(
                f"SELECT count(*) FROM {t}")).scalar() for t in ("stat_monthly", "stat_snapshot")}
            db.session.remove()
        # An estimate, not a measurement: the work grows with the loans and copies, which
        # grow linearly with the scale.
        factor = 1.0 / args.scale
        results["estimate_scale_1_0_s"] = {
            "full": round(min(results["full"]["wall_s"], results["full_again"]["wall_s"])
                          * factor),
            "incremental": round(results["incremental"]["wall_s"] * factor),
            "note": f"linear extrapolation x{factor:g} of the wall times at scale {args.scale}"}
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if not args.keep:
            drop_database(url)
    save_results([results], "statistics-refresh")
    print(json.dumps(results, indent=1, default=str))


def main():
    args = parse_args()
    if args.refresh:
        return refresh_bench(args)
    workdir = tempfile.mkdtemp(prefix="thuvien-bench-stats-")
    url = args.database_url
    if url == "sqlite":
        url = "sqlite:///" + os.path.join(workdir, "bench.db")
    url = normalise(url)
    os.environ.update({"INSTANCE_PATH": workdir, "DATABASE_URL": url,
                       "SECRET_KEY": secrets.token_hex(32), "APP_ENV": "development"})
    if args.reuse:
        args.keep = True
    else:
        create_database(url, args.drop_existing)
    results = {"started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "scale": args.scale,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}}
    try:
        from sqlalchemy import select, text

        from app import create_app
        from app.core.i18n import local_today
        from app.core.setup import prepare_database
        from app.extensions import db
        from app.org.generator import generate_city
        from app.org.models import AppUser, OrgUnit
        from app.statistics import services
        from app.statistics.refresh import default_since, refresh

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SYNC_ROLES_ON_START": False,
                          "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False})
        with app.app_context():
            results["database"] = {"dialect": db.engine.dialect.name,
                                   "server_version": server_version(db)}
            if not args.reuse:
                t0 = time.perf_counter()
                prepare_database(load_demo=True)
                results["schema_and_demo_s"] = round(time.perf_counter() - t0, 1)
                # The refresh of one real school of the demo city (its loans, copies, readers).
                school = db.session.execute(select(OrgUnit).where(
                    OrgUnit.code == "79000001")).scalar_one()
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    refresh(db.session, [school.id], since=datetime.date(2025, 9, 1))
                    db.session.commit()
                    times.append(time.perf_counter() - t0)
                results["refresh_one_demo_school"] = summary(times)
                t0 = time.perf_counter()
                results["city"] = generate_city(db.session, scale=args.scale, seed=args.seed)
                results["city_s"] = round(time.perf_counter() - t0, 1)
                today = local_today()
                first = default_since(db.session, today)
                months, day = [], (first - datetime.timedelta(days=360)).replace(day=1)
                while day <= today:
                    months.append(day)
                    day = (day + datetime.timedelta(days=32)).replace(day=1)
                t0 = time.perf_counter()
                results["aggregates"] = fill_aggregates(db, months)
                results["aggregates"]["months"] = len(months)
                results["aggregates_s"] = round(time.perf_counter() - t0, 1)
                db.session.remove()
                if db.engine.dialect.name == "postgresql":
                    with db.engine.connect().execution_options(
                            isolation_level="AUTOCOMMIT") as conn:
                        conn.execute(text("VACUUM ANALYZE"))
            # The generated accounts: the largest district office, a ward office, a school.
            users = {}
            for role, prefix in (("office", "cb79pgd"), ("ward", "cb79vh"),
                                 ("school", "tv79")):
                users[role] = db.session.execute(select(AppUser.username).where(
                    AppUser.username.like(f"{prefix}%")).order_by(AppUser.username)
                ).scalars().first()
            db.session.remove()
            engine = db.engine

        log = StatementLog(engine)
        accounts = {"city": "thanhtra", "office": users["office"], "ward": users["ward"],
                    "school": users["school"]}
        results["accounts"] = accounts
        pages = {}
        with log:
            for scope, username in accounts.items():
                client = login(app, username)
                pages[f"{scope}: dashboard /"] = time_url(client, log, "/", args.warmup,
                                                          args.requests)
                for report in services.REPORTS:
                    pages[f"{scope}: {report.code}"] = time_url(
                        client, log, f"/statistics/?report={report.code}", args.warmup,
                        args.requests)
                pages[f"{scope}: xlsx loans_class"] = time_url(
                    client, log, "/statistics/xlsx?report=loans_class", 1, 3)
                pages[f"{scope}: xlsx collection_standard"] = time_url(
                    client, log, "/statistics/xlsx?report=collection_standard", 1, 3)
        results["pages"] = pages
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if not args.keep:
            drop_database(url)
    save_results([results], "statistics")
    print(json.dumps({k: v for k, v in results.items() if k != "pages"}, indent=1, default=str))
    worst = {}
    for name, figures in pages.items():
        scope = name.split(":", 1)[0]
        print(f"{name:<40} p50 {figures['p50_ms']:>7} ms  p95 {figures['p95_ms']:>7} ms  "
              f"SQL {figures['sql_statements']}")
        if "xlsx" not in name and figures["p95_ms"] > worst.get(scope, (0, ""))[0]:
            worst[scope] = (figures["p95_ms"], name)
    for scope, (p95, name) in worst.items():
        target = TARGETS_MS.get(scope if scope != "ward" else "office")
        print(f"slowest {scope}: {name} p95 {p95} ms (target {target} ms)")


if __name__ == "__main__":
    main()
