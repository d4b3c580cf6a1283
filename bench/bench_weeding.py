#!/usr/bin/env python3
"""Benchmark of a large weeding round: 5,000 worn-out copies from proposal to withdrawal.

    python bench/bench_weeding.py                       # SQLite, then PostgreSQL
    python bench/bench_weeding.py --database-url sqlite
    python bench/bench_weeding.py --copies 10000

For each database (a temporary SQLite file; a temporary PostgreSQL database that the script
creates and drops), in a process of its own: schema and demo city, then `--copies` copies of
`--copies / 10` titles added to the demo school 79000001 and marked damaged. Then the round
goes through every step over HTTP (Flask test client), as the browser does it:

- the librarian `thuvien` creates the round, proposes every worn-out copy (the criterion),
  opens the round's page (one line per copy), draws up the list, downloads Form 04 (.xlsx),
  records the committee;
- the principal `hieutruong` approves it;
- the public display is moved 15 days into the past (SQL, as the tests do);
- the librarian withdraws the copies (one transaction: every copy annotated, the Part II line,
  the records hidden, the audit log) and opens the general register's Part II.

Each step: wall-clock time, CPU time of the process (the application, not the database
server), SQL statements and their time. Results: a table on stdout and
bench/results/<timestamp>-weeding-<dialect>.json (git-ignored). Figures: bench/README.md.
"""
import argparse
import datetime
import os
import platform
import re
import secrets
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_foundation import (  # noqa: E402
    create_database, drop_database, normalise, run_per_database, server_version,
)
from bench_readers_import import Statements, login  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/thuvien_bench_weeding"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=None,
                   help="one database: 'sqlite' (a temporary file) or a PostgreSQL URL "
                        f"(created and dropped). Default: sqlite, then {DEFAULT_PG}.")
    p.add_argument("--copies", type=int, default=5000)
    p.add_argument("--drop-existing", action="store_true")
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    return p.parse_args()


def build(db, copies):
    """`copies` damaged copies (10 per title) in the demo school 79000001."""
    from sqlalchemy import select, update

    from app.catalog.models import DocumentType, Record
    from app.collection import services as collection
    from app.collection.models import AccessionSeries, Copy, CopyStatus
    from app.core.audit import acting_as
    from app.org.models import OrgUnit

    session = db.session
    school = session.scalar(select(OrgUnit).where(OrgUnit.code == "79000001"))
    series = session.scalar(select(AccessionSeries).where(
        AccessionSeries.school_id == school.id, AccessionSeries.code == "STK"))
    stk = session.scalar(select(DocumentType).where(DocumentType.code == "STK"))
    with acting_as(name="bench"):
        for n in range(copies // 10):
            record = Record(school=school, school_id=school.id, title=f"Sách cũ số {n}",
                            year=2005, price=30000, document_type=stk)
            record.authors_text = "Nguyễn Văn An"
            session.add(record)
            session.flush()
            new = collection.add_copies(session, school, record, series, 10)
            session.execute(update(Copy).where(Copy.id.in_([c.id for c in new]))
                            .values(status=CopyStatus.damaged))
        session.commit()
    return school.id


def step(results, name, statements, work):
    n, sql_s = statements.count, statements.seconds
    started, cpu = time.perf_counter(), time.process_time()
    out = work()
    results[name] = {"s": round(time.perf_counter() - started, 3),
                     "cpu_s": round(time.process_time() - cpu, 3),
                     "sql": statements.count - n,
                     "sql_s": round(statements.seconds - sql_s, 3)}
    print(f"  {name}: {results[name]['s']:.2f} s ({results[name]['sql']} statements)",
          flush=True)
    return out


def flashes(client):
    with client.session_transaction() as sess:
        return [m for _c, m in sess.pop("_flashes", [])]


def run_one(url, args):
    workdir = tempfile.mkdtemp(prefix="thuvien-bench-weeding-")
    if url == "sqlite":
        url = "sqlite:///" + os.path.join(workdir, "bench.db")
    url = normalise(url)
    os.environ.update({"INSTANCE_PATH": workdir, "DATABASE_URL": url,
                       "SECRET_KEY": secrets.token_hex(32), "APP_ENV": "development"})
    create_database(url, args.drop_existing)
    results = {"started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "copies": args.copies,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}}
    print(f"  load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    try:
        from sqlalchemy import func, select, update

        from app import create_app
        from app.collection.models import Copy, CopyStatus
        from app.core.i18n import local_today
        from app.core.setup import prepare_database
        from app.extensions import db
        from app.weeding.models import WeedingRound

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SYNC_ROLES_ON_START": False,
                          "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False})
        with app.app_context():
            prepare_database(load_demo=True)
            results["database"] = {"dialect": db.engine.dialect.name,
                                   "server_version": server_version(db)}
            t0 = time.perf_counter()
            school_id = build(db, args.copies)
            results["build_s"] = round(time.perf_counter() - t0, 2)
            engine = db.engine
            db.session.remove()
        statements = Statements(engine)
        steps = results["steps"] = {}
        lib, boss = app.test_client(), app.test_client()
        login(lib, "thuvien")
        login(boss, "hieutruong")
        token = TOKEN.search(lib.get("/weeding/").get_data(as_text=True)).group(1)

        def post(client, url, **data):
            resp = client.post(url, data={"csrf_token": token if client is lib else
                                          boss_token, **data})
            assert resp.status_code == 302, (url, resp.status_code)
            return resp

        resp = step(steps, "create", statements,
                    lambda: post(lib, "/weeding/create", name="Thanh lọc lớn"))
        pk = int(resp.headers["Location"].rstrip("/").split("/")[-1])
        step(steps, "propose by criterion", statements,
             lambda: post(lib, f"/weeding/add/{pk}", mode="criterion", reason="worn_out"))
        print("   ", flashes(lib), flush=True)
        page = step(steps, "round page", statements,
                    lambda: lib.get(f"/weeding/show/{pk}").get_data(as_text=True))
        steps["round page"]["rows"] = page.count('class="weeding-item"')
        steps["round page"]["kb"] = round(len(page.encode()) / 1024)
        step(steps, "draw up the list", statements,
             lambda: post(lib, f"/weeding/propose/{pk}"))
        xlsx = step(steps, "Form 04 (.xlsx)", statements,
                    lambda: lib.get(f"/weeding/form/{pk}/04.xlsx").get_data())
        steps["Form 04 (.xlsx)"]["kb"] = round(len(xlsx) / 1024)
        today = local_today()
        step(steps, "committee", statements, lambda: post(
            lib, f"/weeding/committee/{pk}", committee_decision_number="12/QĐ",
            committee_decision_date=(today - datetime.timedelta(days=2)).strftime("%d/%m/%Y"),
            appraisal_date=(today - datetime.timedelta(days=1)).strftime("%d/%m/%Y"),
            committee_members="Võ Minh Tuấn; Chủ tịch Hội đồng"))
        boss_token = TOKEN.search(boss.get(f"/weeding/show/{pk}").get_data(as_text=True)
                                  ).group(1)
        step(steps, "approve (principal)", statements, lambda: post(
            boss, f"/weeding-approval/approve/{pk}", decision_number="15/QĐ",
            decision_date=today.strftime("%d/%m/%Y"), disposal_method="liquidate"))
        with app.app_context():
            db.session.execute(update(WeedingRound).where(WeedingRound.id == pk).values(
                display_from=today - datetime.timedelta(days=15)))
            db.session.commit()
            db.session.remove()
        step(steps, "withdraw", statements, lambda: post(lib, f"/weeding/withdraw/{pk}"))
        print("   ", flashes(lib), flush=True)
        step(steps, "register Part II", statements,
             lambda: lib.get("/weeding/register").get_data(as_text=True))
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        with app.app_context():
            results["withdrawn"] = db.session.scalar(select(func.count()).select_from(Copy)
                                                     .where(Copy.school_id == school_id,
                                                            Copy.status ==
                                                            CopyStatus.withdrawn))
            db.session.remove()
            db.engine.dispose()
    finally:
        drop_database(url)
    return results


def print_table(all_results):
    print()
    names = list(all_results[0]["steps"])
    print("| Step | " + " | ".join(
        f"{r['database']['dialect']} {r['database']['server_version']}: wall / CPU / "
        "statements / SQL time" for r in all_results) + " |")
    print("|---|" + "---|" * len(all_results))
    for name in names:
        cells = []
        for r in all_results:
            s = r["steps"][name]
            cells.append(f"{s['s']:.2f} s / {s['cpu_s']:.2f} s / {s['sql']} / "
                         f"{s['sql_s']:.2f} s")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for r in all_results:
        print(f"{r['database']['dialect']}: {r['withdrawn']} copies withdrawn, load "
              f"{r['machine']['load_average_at_start'][0]} → "
              f"{r['machine']['load_average_at_end'][0]}")




def main():
    args = parse_args()
    run_per_database(args, __file__, "weeding", run_one, print_table, DEFAULT_PG,
                     ["--copies", args.copies], quiet=False)


if __name__ == "__main__":
    main()
