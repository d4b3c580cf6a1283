#!/usr/bin/env python3
"""Benchmark of the registers (sổ sách): the Sổ đăng ký cá biệt of a 50,000-copy school in
Excel (time and peak memory) and the registers pages.

    python bench/bench_registers.py                       # SQLite (temporary file)
    python bench/bench_registers.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/thuvien_bench_registers
    python bench/bench_registers.py --copies 100000 --keep

It builds the demo city (migrations, demo data), then gives the demo school 79000002 (its
librarian: thuvien2) a collection of --copies copies of the reference series (STK), with
their records, main authors and intakes, written with bulk inserts (Core executemany, no
ORM objects, no audit rows: this is generated data). Then:

1. the Excel export of that register, in a fresh subprocess each run (so its peak resident
   memory, VmHWM, is the export's and not this script's): the provider and the
   constant_memory writer, into a file; the subprocess also reports its resident memory
   before the export (the application alone) and, in a separate run, the peak of Python
   allocations during the export (tracemalloc, which slows it: not used for the time);
   The copies have the history the stocktake and weeding modules leave: one Part II line
   withdrawing the weeded 1 %, and two closed stocktakes (2024, 2025) with a C / M mark for
   every copy held (two tick columns, the weeding notes);
2. the same download over the Flask test client (GET /registers/download/individual), in
   this process;
3. the registers page (/registers/) and printed pages, as the librarian, median and p95.

Results: a table on stdout and bench/results/<timestamp>-registers.json (git-ignored).
Figures: bench/README.md. The machine is shared: the load average is recorded.
"""
import argparse
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_foundation import (  # noqa: E402  (same conventions as the other benches)
    RESULTS_DIR,
    create_database,
    drop_database,
    normalise,
    server_version,
    summary_ms,
)

SCHOOL = "79000002"
USERNAME = "thuvien2"
PASSWORD = "thuvien2025"
TARGET_EXPORT_S, TARGET_MEMORY_MB, TARGET_PAGE_MS = 5.0, 150, 300


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    p.add_argument("--copies", type=int, default=50000)
    p.add_argument("--per-record", type=int, default=4, help="copies per title")
    p.add_argument("--runs", type=int, default=3, help="export runs (subprocesses)")
    p.add_argument("--requests", type=int, default=20, help="timed requests per page")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--drop-existing", action="store_true")
    p.add_argument("--export-child", nargs=3, metavar=("URL", "OUT", "MODE"),
                   help=argparse.SUPPRESS)
    return p.parse_args()


def make_app(url):
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SYNC_ROLES_ON_START": False,
                       "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False,
                       "TESTING": True})


def rss_mb(field="VmRSS"):
    """Resident memory of this process (VmRSS), or its peak (VmHWM), in MiB. Not ru_maxrss:
    Linux keeps the parent's peak across fork and exec, so a subprocess started by a big
    parent would report the parent's."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


# --- Generated collection ----------------------------------------------------------------

DDC = ["895.9223", "895.9221", "959.7", "510", "530", "540", "570", "020", "030", "370",
       "400", "495.922", "600", "700", "800", "910"]
WORDS = ["Lịch sử", "Khoa học", "Truyện", "Tuyển tập", "Thơ", "Toán học", "Vật lý", "Địa lý",
         "Tiếng Việt", "Hóa học", "Sinh học", "Văn học", "Nghệ thuật", "Âm nhạc", "Kỹ năng"]
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Minh Châu", "Phạm Quốc Dũng", "Hoàng Thu Hà",
         "Võ Thanh Khánh", "Đặng Ngọc Linh", "Bùi Gia Minh", "Đỗ Thị Ngọc", "Hồ Anh Phúc"]


def generate(app, copies, per_record, seed=1):
    """Records, authors, intakes and `copies` copies of series STK in school 79000002."""
    from sqlalchemy import func, insert, select, update

    from app.catalog.models import DocumentType, Record, RecordAuthor
    from app.collection.models import AccessionSeries, Copy, CopyStatus, Counter, Intake
    from app.collection.services import series_key
    from app.core.i18n import fold
    from app.extensions import db
    from app.org.models import OrgUnit

    rnd = random.Random(seed)
    with app.app_context():
        s = db.session
        school = s.scalar(select(OrgUnit).where(OrgUnit.code == SCHOOL))
        series = s.scalar(select(AccessionSeries).where(AccessionSeries.school_id == school.id,
                                                        AccessionSeries.code == "STK"))
        stk = s.scalar(select(DocumentType).where(DocumentType.code == "STK"))
        first_number = (s.scalar(select(func.max(Copy.accession_number)).where(
            Copy.school_id == school.id, Copy.series_id == series.id)) or 0) + 1
        first_intake = (s.scalar(select(func.max(Intake.register_number)).where(
            Intake.school_id == school.id)) or 0) + 1
        next_id = {m: (s.scalar(select(func.max(m.id))) or 0) + 1
                   for m in (Record, RecordAuthor, Intake, Copy)}
        n_records = -(-copies // per_record)
        n_intakes = max(1, copies // 200)
        start_day = datetime.date(2015, 9, 1)
        intakes = [dict(id=next_id[Intake] + i, school_id=school.id,
                        register_number=first_intake + i,
                        received_on=start_day + datetime.timedelta(days=i * 3650 // n_intakes),
                        source=rnd.choice(["Công ty Fahasa", "Nhà sách Phương Nam",
                                           "Hội cha mẹ học sinh tặng"]),
                        document_number=f"HĐ {i + 1:05d}", funding="state_budget")
                   for i in range(n_intakes)]
        records, authors = [], []
        for i in range(n_records):
            title = f"{rnd.choice(WORDS)} {rnd.choice(WORDS).lower()} – tập {i + 1}"
            name = rnd.choice(NAMES)
            klass = rnd.choice(DDC)
            rid = next_id[Record] + i
            records.append(dict(id=rid, school_id=school.id, title=title,
                                publisher="Nhà xuất bản Giáo dục Việt Nam", place="Hà Nội",
                                year=rnd.randint(1995, 2025), price=rnd.randint(2, 30) * 5000,
                                language="vie", document_type_id=stk.id, scheme_id=1,
                                class_number=klass, call_number=f"{klass} {fold(name)[:3].upper()}",
                                call_number_is_manual=False, is_hidden=False,
                                title_folded=fold(title), authors_folded=fold(name)))
            authors.append(dict(id=next_id[RecordAuthor] + i, school_id=school.id,
                                record_id=rid, name=name, role="author", is_main=True,
                                position=0))
        rows = []
        for i in range(copies):
            number = first_number + i
            status, note = "available", None
            roll = rnd.random()
            if roll < 0.01:
                status, note = "withdrawn", "QĐ 12/QĐ-THCS"
            elif roll < 0.015:
                status = "lost"
            rows.append(dict(id=next_id[Copy] + i, school_id=school.id,
                             record_id=next_id[Record] + i // per_record, series_id=series.id,
                             sequence_key=0, accession_number=number,
                             accession_label=series.format(number),
                             barcode=f"B{SCHOOL}{number:07d}",
                             intake_id=next_id[Intake] + min(i // 200, n_intakes - 1),
                             status=status, price=records[i // per_record]["price"],
                             funding="state_budget", note=note))
        assert CopyStatus.withdrawn.name == "withdrawn"
        started = time.perf_counter()
        for model, values in ((Intake, intakes), (Record, records), (RecordAuthor, authors),
                              (Copy, rows)):
            for k in range(0, len(values), 5000):
                s.execute(insert(model.__table__), values[k:k + 5000])
        key = series_key(series, 0)
        last = first_number + copies - 1
        updated = s.execute(update(Counter.__table__).where(
            Counter.__table__.c.school_id == school.id, Counter.__table__.c.key == key)
            .values(last_value=last)).rowcount
        if not updated:
            s.execute(insert(Counter.__table__).values(school_id=school.id, key=key,
                                                       last_value=last))
        s.commit()
        history = stock_history(s, school, [r for r in rows], rnd)
        seconds = time.perf_counter() - started
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
        total = s.scalar(select(func.count()).select_from(Copy).where(
            Copy.school_id == school.id, Copy.series_id == series.id))
        return {"records": n_records, "copies": copies, "intakes": n_intakes,
                "insert_s": round(seconds, 1), "stk_copies_in_school": total, **history}


STOCKTAKE_YEARS = (2024, 2025)


def stock_history(s, school, rows, rnd):
    """What the stocktake and weeding modules leave behind, written directly: the weeded
    copies (1 %) withdrawn by one Part II line (decision, Copy.withdrawal_id, the note), and
    two closed stocktakes of the whole collection (2024, 2025) with a result (C / M mark)
    for every copy on the register (2 % missing each time): the individual register then
    has two tick columns and the weeding notes to read."""
    from sqlalchemy import func, insert, select, update

    from app.collection.models import Copy
    from app.stocktake.models import StocktakeResult, StocktakeSession
    from app.weeding.models import StockWithdrawal, WeedingRound

    now = datetime.datetime(2025, 12, 1, 3)
    next_round = (s.scalar(select(func.max(WeedingRound.number)).where(
        WeedingRound.school_id == school.id)) or 0) + 1
    round_id = s.execute(insert(WeedingRound.__table__).values(
        school_id=school.id, number=next_round, name="Thanh lọc 2024", status="withdrawn",
        created_at=now, decision_number="12/QĐ-THCS", decision_date=datetime.date(2024, 5, 15),
        disposal_method="liquidate", withdrawn_on=datetime.date(2024, 6, 1))
        .returning(WeedingRound.__table__.c.id)).scalar()
    weeded = [r for r in rows if r["status"] == "withdrawn"]
    next_line = (s.scalar(select(func.max(StockWithdrawal.register_number)).where(
        StockWithdrawal.school_id == school.id)) or 0) + 1
    line_id = s.execute(insert(StockWithdrawal.__table__).values(
        school_id=school.id, register_number=next_line, withdrawn_on=datetime.date(2024, 6, 1),
        document_number="12/QĐ-THCS", document_date=datetime.date(2024, 5, 15),
        round_id=round_id, copies_count=len(weeded),
        total_value=sum(r["price"] for r in weeded), note="Thanh lý")
        .returning(StockWithdrawal.__table__.c.id)).scalar()
    ids = [r["id"] for r in weeded]
    for k in range(0, len(ids), 5000):
        s.execute(update(Copy.__table__).where(Copy.__table__.c.id.in_(ids[k:k + 5000]))
                  .values(withdrawal_id=line_id,
                          note="đã thanh lọc, QĐ số 12/QĐ-THCS ngày 15/05/2024"))
    held = [r for r in rows if r["status"] != "withdrawn"]
    results = 0
    for year in STOCKTAKE_YEARS:
        closed = datetime.datetime(year, 11, 20, 3)
        st_id = s.execute(insert(StocktakeSession.__table__).values(
            school_id=school.id, name=f"Kiểm kê năm {year}", started_on=closed.date(),
            status="closed", location_ids=[], series_ids=[], document_type_ids=[],
            expected_count=len(held), created_at=closed, closed_at=closed,
            missing_action="leave").returning(StocktakeSession.__table__.c.id)).scalar()
        values = []
        for r in held:
            missing = rnd.random() < 0.02
            values.append(dict(school_id=school.id, session_id=st_id, copy_id=r["id"],
                               outcome="missing" if missing else "found",
                               mark="M" if missing else "C", marked_lost=False,
                               price=r["price"]))
        for k in range(0, len(values), 5000):
            s.execute(insert(StocktakeResult.__table__), values[k:k + 5000])
        results += len(values)
    s.commit()
    return {"weeded_copies": len(weeded), "stocktake_results": results}


# --- The export, in a subprocess -----------------------------------------------------------

def export_child(url, out, mode):
    """Runs in a fresh interpreter: build the SĐKCB (STK) of the school into `out`."""
    import tracemalloc

    app = make_app(url)
    from flask_babel import force_locale
    from sqlalchemy import select

    from app.extensions import db
    from app.org.models import OrgUnit
    from app.registers import layout, providers

    with app.test_request_context(), force_locale("vi"):
        school = db.session.scalar(select(OrgUnit).where(OrgUnit.code == SCHOOL))
        head = layout.letterhead(db.session, school)
        before = rss_mb()
        if mode == "tracemalloc":
            tracemalloc.start()
        started, cpu = time.perf_counter(), time.process_time()
        register = providers.build(db.session, school, "individual", layout.Period(),
                                   series="STK")
        with open(out, "wb") as fh:
            layout.write_excel(register, head, target=fh)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        peak_python = None
        if mode == "tracemalloc":
            peak_python = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        rows = register.sheets[0].sections[0].count
    print(json.dumps({"seconds": seconds, "cpu_s": cpu, "rows": rows, "bytes": os.path.getsize(out),
                      "rss_before_mb": before, "rss_after_mb": rss_mb(),
                      "peak_rss_mb": rss_mb("VmHWM"),
                      "peak_python_alloc_mb": peak_python}))


def run_export(url, workdir, runs):
    env = {**os.environ, "INSTANCE_PATH": workdir, "SECRET_KEY": "bench-registers"}
    results = []
    for mode in ["plain"] * runs + ["tracemalloc"]:
        out = os.path.join(workdir, f"stk-{mode}.xlsx")
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--export-child",
                               url, out, mode], cwd=ROOT, env=env, capture_output=True,
                              text=True)
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        results.append(dict(json.loads(proc.stdout.strip().splitlines()[-1]), mode=mode))
    plain = [r for r in results if r["mode"] == "plain"]
    traced = [r for r in results if r["mode"] == "tracemalloc"][0]
    check = verify(os.path.join(workdir, "stk-plain.xlsx"))
    return {
        "runs_s": [round(r["seconds"], 2) for r in plain],
        "median_s": round(statistics.median(r["seconds"] for r in plain), 2),
        "cpu_s": [round(r["cpu_s"], 2) for r in plain],
        "rows": plain[0]["rows"], "file_mb": round(plain[0]["bytes"] / 2**20, 1),
        "rss_before_export_mb": round(max(r["rss_before_mb"] for r in plain), 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in plain), 1),
        "peak_python_alloc_during_export_mb": round(traced["peak_python_alloc_mb"], 1),
        "tracemalloc_run_s": round(traced["seconds"], 2), "file_check": check}


def verify(path):
    """Read the produced file back (openpyxl, read-only): its rows and last number."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    ws = book.worksheets[0]
    rows = marked = weeded = 0
    last = None
    for row in ws.iter_rows(values_only=True):
        if row and isinstance(row[1], str) and row[1].startswith("STK-"):
            rows += 1
            last = row[1]
            marked += sum(1 for v in row[9:-1] if v in ("C", "M"))
            weeded += isinstance(row[-1], str) and row[-1].startswith("đã thanh lọc, QĐ số")
    return {"copy_rows": rows, "last_accession": last, "stocktake_marks": marked,
            "weeding_notes": weeded}


# --- Pages --------------------------------------------------------------------------------

def login(client):
    import re

    page = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    resp = client.post("/login/", data={"username": USERNAME, "password": PASSWORD,
                                        "csrf_token": token})
    if resp.status_code != 302:
        raise SystemExit(f"login failed: {resp.status_code}")


def time_get(client, url, n, warmup=2):
    for _ in range(warmup):
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        resp.get_data()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        resp = client.get(url)
        size = len(resp.get_data())
        times.append(time.perf_counter() - started)
        assert resp.status_code == 200, (url, resp.status_code)
    return dict(summary_ms(times), url=url, bytes=size)


def pages(app, n):
    client = app.test_client()
    login(client)
    out = [time_get(client, url, n) for url in (
        "/registers/", "/registers/?from=01/01/2024&to=31/12/2024",
        "/registers/print/general", "/registers/print/textbooks",
        "/registers/print/loans-students", "/registers/print/reading")]
    # Big pages: the first 3,000 lines of the SĐKCB, the catalogue (every title sorted).
    out += [time_get(client, url, max(3, n // 5), warmup=1) for url in (
        "/registers/print/individual?series=STK", "/registers/print/catalogue-title")]
    download = time_get(client, "/registers/download/individual?series=STK", 3, warmup=1)
    return out, download


# --- Main ---------------------------------------------------------------------------------

def main():
    args = parse_args()
    if args.export_child:
        url, out, mode = args.export_child
        export_child(url, out, mode)
        return
    workdir = tempfile.mkdtemp(prefix="bench-registers-")
    os.environ["INSTANCE_PATH"] = workdir
    os.environ.setdefault("SECRET_KEY", "bench-registers")
    url = normalise(args.database_url or f"sqlite:///{workdir}/bench.db")
    create_database(url, args.drop_existing)
    results = {"started": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z",
               "load_average_start": os.getloadavg(), "cpus": os.cpu_count(),
               "python": platform.python_version(), "copies": args.copies}
    try:
        app = make_app(url)
        from app.core.setup import prepare_database
        from app.extensions import db

        with app.app_context():
            prepare_database(load_demo=True)
            results["database"] = f"{db.engine.dialect.name} {server_version(db)}"
        results["generated"] = generate(app, args.copies, args.per_record)
        print("generated:", results["generated"], flush=True)
        results["export"] = run_export(url, workdir, args.runs)
        print("export:", results["export"], flush=True)
        results["pages"], results["download_http"] = pages(app, args.requests)
        results["load_average_end"] = os.getloadavg()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        if not args.keep:
            drop_database(url)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("kept:", url, workdir)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(RESULTS_DIR, f"{stamp}-registers.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2, ensure_ascii=False)
    print_table(results)
    print("results:", path)


def print_table(r):
    e = r["export"]
    print(f"\n{r['database']}, {r['copies']:,} copies, load average "
          f"{r['load_average_start']} -> {r['load_average_end']} ({r['cpus']} CPUs, shared)")
    ok = "OK" if e["median_s"] < TARGET_EXPORT_S else "OVER"
    print(f"SĐKCB (STK) to Excel: median {e['median_s']} s (runs {e['runs_s']}), "
          f"{e['rows']:,} lines, {e['file_mb']} MB  [{ok} < {TARGET_EXPORT_S} s]")
    print(f"  CPU time of the export (this process, not the database server): {e['cpu_s']} s")
    ok = "OK" if e["peak_rss_mb"] < TARGET_MEMORY_MB else "OVER"
    print(f"  peak RSS of the exporting process {e['peak_rss_mb']} MB (application alone "
          f"{e['rss_before_export_mb']} MB); Python allocations during the export peak "
          f"{e['peak_python_alloc_during_export_mb']} MB  [{ok} < {TARGET_MEMORY_MB} MB]")
    d = r["download_http"]
    print(f"  over HTTP (test client): median {d['median_ms']} ms")
    print("pages (median / p95 ms):")
    for p in r["pages"]:
        flag = "" if p["median_ms"] < TARGET_PAGE_MS else "  (over 300 ms)"
        print(f"  {p['url']:<55} {p['median_ms']:>8} / {p['p95_ms']:<8}{flag}")


if __name__ == "__main__":
    main()
