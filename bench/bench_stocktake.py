#!/usr/bin/env python3
"""Benchmark of the stocktake: a school of 50,000 copies scanned, uploaded, closed.

    python bench/bench_stocktake.py                          # SQLite, then PostgreSQL
    python bench/bench_stocktake.py --database-url sqlite    # one database
    python bench/bench_stocktake.py --copies 50000 --scans 500

For each database (a temporary SQLite file; a temporary PostgreSQL database, created and
dropped), in a process of its own: schema and demo city, then `--copies` copies added to the
demo school 79000001 with bulk inserts (app.core.bulk: records, copies and their audit rows,
spread over three shelving locations and four accession series, a fifth of them textbooks),
VACUUM ANALYZE. Then, as the librarian `thuvien`, through the Flask test client (the whole
HTTP stack in-process: routing, login, permissions, CSRF, JSON):

- a stocktake of the whole collection is started (POST /stocktake/create);
- `--scans` copies are scanned one by one (POST /stocktake/api/scan/<id>): p50 / p95 / max;
- a file of barcodes of the other copies, minus 2 % (missing), with the scanned ones again
  and a header line, is uploaded (POST upload, GET the check page, POST confirm);
- the live results page (GET /stocktake/show/<id>) and the summary API;
- the stocktake is closed with the missing copies marked lost (POST /stocktake/close/<id>);
- the minutes are downloaded as Excel.

Targets (issue): a scan under 100 ms, a close of 50,000 copies under 10 s, a file of 50,000
barcodes under 20 s. Results: a table on stdout and bench/results/<timestamp>-stocktake-
<dialect>.json (git-ignored). The load average is printed: the machine is shared.
"""
import argparse
import datetime
import os
import platform
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_foundation import (  # noqa: E402
    CSRF, PASSWORD, create_database, drop_database, normalise, run_per_database, server_version,
)

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/thuvien_bench_stocktake"
META_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
TARGET_SCAN_MS, TARGET_CLOSE_S, TARGET_UPLOAD_S = 100, 10, 20


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=None,
                   help="'sqlite' (a temporary file) or a PostgreSQL URL (created and "
                        f"dropped). Default: sqlite, then {DEFAULT_PG}.")
    p.add_argument("--copies", type=int, default=50_000)
    p.add_argument("--scans", type=int, default=500, help="copies scanned one by one")
    p.add_argument("--missing", type=float, default=0.02, help="share of copies not found")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drop-existing", action="store_true")
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    return p.parse_args()


def with_defaults(table, row):
    """Give every column with a scalar default its value (bulk inserts apply none)."""
    for column in table.c:
        if column.name not in row and column.default is not None:
            arg = column.default.arg
            row[column.name] = arg(None) if callable(arg) else arg
    return row


def generate_copies(session, count, seed):
    """`count` copies (and count/10 records) for the demo school, with bulk inserts."""
    from sqlalchemy import select

    from app.catalog.models import DocumentType, Record
    from app.collection.models import AccessionSeries, Copy, Location
    from app.core.bulk import insert_rows
    from app.core.i18n import fold
    from app.org.models import OrgUnit

    rng = random.Random(seed)
    school = session.scalar(select(OrgUnit).where(OrgUnit.code == "79000001"))
    locations = session.scalars(select(Location.id).where(
        Location.school_id == school.id, Location.code.in_(["KM", "KD", "PD"]))).all()
    series = {s.code: s for s in session.scalars(select(AccessionSeries).where(
        AccessionSeries.school_id == school.id))}
    types = {t.code: t.id for t in session.scalars(select(DocumentType))}
    kinds = [("STK", "STK"), ("STN", "STN"), ("SNV", "SNV"), ("SGK", "SGK"), ("STK", "STK")]
    records, plan = [], []
    per_record = 10
    for n in range(count // per_record):
        kind, doc = kinds[n % len(kinds)]
        title = f"Sách thử nghiệm kiểm kê số {n + 1}"
        records.append(with_defaults(Record.__table__, {
            "school_id": school.id, "title": title, "title_folded": fold(title),
            "authors_folded": "", "language": "vie", "document_type_id": types.get(doc),
            "class_number": rng.choice(["510", "895.9223", "959.7", "020", "530"]),
            "price": Decimal(rng.choice([22000, 45000, 60000, 125000])),
            "call_number_is_manual": False, "is_hidden": False}))
        plan.append(kind)
    record_ids = insert_rows(session, Record, records, return_ids=True)
    copies, running = [], {}
    for record_id, record, kind in zip(record_ids, records, plan):
        s = series[kind]
        for i in range(per_record):
            if s.is_textbook:
                number, key = i + 1, record_id
                label = f"{s.prefix}{s.separator}{record_id}.{number:03d}"
            else:
                running[kind] = running.get(kind, 100_000) + 1
                number, key = running[kind], 0
                label = s.format(number)
            copies.append(with_defaults(Copy.__table__, {
                "school_id": school.id, "record_id": record_id, "series_id": s.id,
                "sequence_key": key, "accession_number": number, "accession_label": label,
                "barcode": f"79000001B{len(copies):07d}", "location_id": rng.choice(locations),
                "intake_id": None, "status": "available", "price": record["price"],
                "funding": None, "acquisition_source": None, "note": None}))
    for start in range(0, len(copies), 10_000):
        insert_rows(session, Copy, copies[start:start + 10_000])
    session.commit()
    return school.id, [c["barcode"] for c in copies]


def login(client, username):
    page = client.get("/login/").get_data(as_text=True)
    resp = client.post("/login/", data={"username": username, "password": PASSWORD,
                                        "csrf_token": CSRF.search(page).group(1)})
    assert resp.status_code == 302, resp.status_code


def csrf(client, url):
    return CSRF.search(client.get(url).get_data(as_text=True)).group(1)


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_one(url, args):
    workdir = tempfile.mkdtemp(prefix="thuvien-bench-stocktake-")
    if url == "sqlite":
        url = "sqlite:///" + os.path.join(workdir, "bench.db")
    url = normalise(url)
    os.environ.update({"INSTANCE_PATH": workdir, "DATABASE_URL": url,
                       "SECRET_KEY": secrets.token_hex(32), "APP_ENV": "development"})
    create_database(url, args.drop_existing)
    r = {"started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "copies": args.copies, "scans": args.scans, "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}}
    print(f"  load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    try:
        from sqlalchemy import func, select, text

        from app import create_app
        from app.collection.models import Copy, CopyStatus
        from app.core.setup import prepare_database
        from app.extensions import db
        from app.stocktake.models import StocktakeResult, StocktakeScan

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SYNC_ROLES_ON_START": False,
                          "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False})
        with app.app_context():
            prepare_database(load_demo=True)
            r["database"] = {"dialect": db.engine.dialect.name,
                             "server_version": server_version(db)}
            (school_id, barcodes), gen_s, _cpu = timed(
                lambda: generate_copies(db.session, args.copies, args.seed))
            r["generate_s"] = round(gen_s, 2)
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            else:
                db.session.execute(text("ANALYZE"))
                db.session.commit()
            r["school_copies"] = db.session.scalar(select(func.count()).select_from(Copy).where(
                Copy.school_id == school_id))
            db.session.remove()
        print(f"  {r['school_copies']} copies in the school, generated in {gen_s:.1f} s",
              flush=True)
        rng = random.Random(args.seed)
        client = app.test_client()
        login(client, "thuvien")
        token = csrf(client, "/stocktake/new")
        resp = client.post("/stocktake/create", data={
            "name": "Kiểm kê toàn bộ kho", "started_on": "25/11/2026", "csrf_token": token})
        st_id = int(re.search(r"/show/(\d+)", resp.headers["Location"]).group(1))
        page = client.get(f"/stocktake/scan/{st_id}").get_data(as_text=True)
        json_token = META_CSRF.search(page).group(1)

        # 1. Scans one by one, through the whole stack.
        order = barcodes[:]
        rng.shuffle(order)
        missing = set(order[:int(len(order) * args.missing)])
        present = [b for b in order if b not in missing]
        scanned = present[:args.scans]
        times = []
        for barcode in scanned[:20]:  # warm-up (first requests load templates, caches)
            client.post(f"/stocktake/api/scan/{st_id}", json={"barcode": barcode + "-x"},
                        headers={"X-CSRFToken": json_token})
        for barcode in scanned:
            t0 = time.perf_counter()
            resp = client.post(f"/stocktake/api/scan/{st_id}", json={"barcode": barcode},
                               headers={"X-CSRFToken": json_token})
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200 and resp.get_json()["kind"] == "found", resp.data
        times.sort()
        r["scan_ms"] = {"n": len(times), "p50": round(statistics.median(times), 1),
                        "p95": round(times[int(len(times) * 0.95) - 1], 1),
                        "max": round(times[-1], 1)}
        print(f"  scan: p50 {r['scan_ms']['p50']} ms, p95 {r['scan_ms']['p95']} ms", flush=True)

        # 2. A file of the other copies found (scanned ones again, and a header line).
        lines = ["barcode"] + present
        data = ("\r\n".join(lines) + "\r\n").encode()
        r["file_lines"] = len(present)
        import io

        def upload():
            resp = client.post(f"/stocktake/upload/{st_id}", data={
                "file": (io.BytesIO(data), "may-quet.txt"),
                "csrf_token": csrf(client, f"/stocktake/show/{st_id}")},
                content_type="multipart/form-data")
            assert resp.status_code == 302, resp.status_code
            return resp.headers["Location"]
        location, up_s, up_cpu = timed(upload)
        preview, pre_s, pre_cpu = timed(lambda: client.get(location))
        assert preview.status_code == 200 and "upload-confirm" in preview.get_data(as_text=True)
        confirm_token = CSRF.search(preview.get_data(as_text=True)).group(1)
        resp, conf_s, conf_cpu = timed(lambda: client.post(
            location + "/confirm", data={"csrf_token": confirm_token}))
        assert resp.status_code == 302, resp.status_code
        r["upload_s"] = {"upload": round(up_s, 2), "check_page": round(pre_s, 2),
                         "confirm": round(conf_s, 2), "total": round(up_s + pre_s + conf_s, 2),
                         "cpu": round(up_cpu + pre_cpu + conf_cpu, 2)}
        print(f"  file of {len(present)} barcodes: {r['upload_s']}", flush=True)

        # 3. Live results.
        _resp, show_s, _c = timed(lambda: client.get(f"/stocktake/show/{st_id}"))
        _resp, sum_s, _c = timed(lambda: client.get(f"/stocktake/api/summary/{st_id}"))
        r["results_page_s"] = round(show_s, 2)
        r["summary_api_s"] = round(sum_s, 2)

        # 4. Close, missing copies marked lost.
        token = csrf(client, f"/stocktake/show/{st_id}")
        resp, close_s, close_cpu = timed(lambda: client.post(
            f"/stocktake/close/{st_id}", data={"missing_action": "mark_lost",
                                              "csrf_token": token}))
        assert resp.status_code == 302
        r["close_s"] = round(close_s, 2)
        r["close_cpu_s"] = round(close_cpu, 2)
        resp, xlsx_s, _c = timed(lambda: client.get(f"/stocktake/minutes/{st_id}/xlsx"))
        assert resp.status_code == 200
        r["minutes_xlsx_s"] = round(xlsx_s, 2)
        r["minutes_kb"] = round(len(resp.data) / 1024)
        with app.app_context():
            r["check"] = {
                "scans": db.session.scalar(select(func.count()).select_from(StocktakeScan)
                                           .where(StocktakeScan.session_id == st_id)),
                "results": db.session.scalar(select(func.count()).select_from(StocktakeResult)
                                             .where(StocktakeResult.session_id == st_id)),
                "lost": db.session.scalar(select(func.count()).select_from(Copy).where(
                    Copy.school_id == school_id, Copy.status == CopyStatus.lost)),
                "missing_expected": len(missing)}
            db.session.remove()
            db.engine.dispose()
        print(f"  close: {close_s:.2f} s; {r['check']}", flush=True)
        r["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        drop_database(url)
    return r


def print_table(results):
    print()
    print("| Database | Copies | Scan p50 / p95 / max | File of barcodes (upload + check + "
          "confirm) | Results page | Close | Minutes .xlsx | Load avg start → end |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        s, u = r["scan_ms"], r["upload_s"]
        print(f"| {r['database']['dialect']} {r['database']['server_version']} | "
              f"{r['school_copies']:,} | {s['p50']} / {s['p95']} / {s['max']} ms | "
              f"{u['upload']} + {u['check_page']} + {u['confirm']} = **{u['total']} s** | "
              f"{r['results_page_s']} s | **{r['close_s']} s** | {r['minutes_xlsx_s']} s | "
              f"{r['machine']['load_average_at_start'][0]} → "
              f"{r['machine']['load_average_at_end'][0]} |")




def main():
    args = parse_args()
    run_per_database(args, __file__, "stocktake", run_one, print_table, DEFAULT_PG,
                     ["--copies", args.copies, "--scans", args.scans, "--missing", args.missing,
                      "--seed", args.seed])


if __name__ == "__main__":
    main()
