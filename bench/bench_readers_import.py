#!/usr/bin/env python3
"""Benchmark of the readers' import: a 2,000-row class list, previewed then imported.

    python bench/bench_readers_import.py           # SQLite, then PostgreSQL
    python bench/bench_readers_import.py --database-url sqlite
    python bench/bench_readers_import.py --rows 5000 --runs 5

For each database (a temporary SQLite file; a temporary PostgreSQL database that the script
creates and drops), in a process of its own: schema and demo city, then a class list of
`--rows` students with Vietnamese names (title rows above the header, as exported by
school-management software) is imported as the librarian `thuvien`, through the Flask test
client, exactly as the browser does it:

- preview = POST /readers-import/upload (read, guess the columns) + GET the preview page
  (every row checked and listed);
- apply = POST /readers-import/confirm (checked again, then written in one transaction).

Run 1 creates every reader (card numbers allocated); the next runs import the same list with
10 % of the rows changed (class, phone): updates and unchanged rows. Results: a table on
stdout and bench/results/<timestamp>-readers-<dialect>.json (git-ignored).
"""
import argparse
import datetime
import io
import os
import platform
import random
import re
import secrets
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_foundation import (  # noqa: E402
    CSRF, PASSWORD, create_database, drop_database, normalise, run_per_database, server_version,
)

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/thuvien_bench_readers"
TARGET_S = 5.0
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
          "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Gia", "Hoàng", "Thanh", "Quốc", "Bảo", "Anh",
          "Thị Thu", "Văn Đức", "Ngọc Bảo", "Hữu"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Đạt", "Giang", "Hà", "Hải", "Hạnh", "Khánh",
         "Khoa", "Linh", "Long", "Mai", "Minh", "Nam", "Ngân", "Phúc", "Quân", "Sơn",
         "Thảo", "Trâm", "Tuấn", "Uyên", "Vy", "Yến", "Ánh", "Ân", "Đức", "Ý"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=None,
                   help="run one database: 'sqlite' (a temporary file) or a PostgreSQL URL "
                        f"(created and dropped). Default: sqlite, then {DEFAULT_PG}.")
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--runs", type=int, default=3, help="imports of the list (1 = creation)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drop-existing", action="store_true",
                   help="PostgreSQL: drop the database first if it already exists")
    p.add_argument("--json-out", help=argparse.SUPPRESS)  # used by the parent process
    return p.parse_args()


def class_list(rows, seed, changed=0.0):
    """An .xlsx class list as school-management software exports it, and its row count."""
    import openpyxl

    rng = random.Random(seed)
    change = random.Random(seed + 1000)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Danh sách học sinh"
    sheet.append(["SỞ GIÁO DỤC VÀ ĐÀO TẠO THÀNH PHỐ HỒ CHÍ MINH"])
    sheet.append(["DANH SÁCH HỌC SINH NĂM HỌC 2025-2026"])
    sheet.append([])
    sheet.append(["STT", "Mã học sinh", "Họ và tên", "Ngày sinh", "Giới tính", "Lớp",
                  "Số điện thoại", "Ghi chú"])
    for n in range(rows):
        grade = 6 + (n // 40) % 4
        klass = f"{grade}A{n // 160 + 1}"
        given = rng.choice(GIVEN)
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {given}"
        born = datetime.date(2025 - 5 - grade, rng.randint(1, 12), rng.randint(1, 28))
        phone = f"09{rng.randint(0, 99_999_999):08d}"
        if changed and change.random() < changed:  # its own generator: names stay the same
            klass = f"{grade + 1}A{n // 160 + 1}" if grade < 9 else klass
            phone = f"08{change.randint(0, 99_999_999):08d}"
        sheet.append([n + 1, f"BENCH{n:06d}", name,
                      born.strftime("%d/%m/%Y") if n % 2 else born,  # text or date cells
                      "Nữ" if given in ("Hà", "Hạnh", "Linh", "Mai", "Ngân", "Thảo", "Trâm",
                                        "Uyên", "Vy", "Yến", "Ánh", "Ý") else "Nam",
                      klass, phone, ""])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def login(client, username):
    page = client.get("/login/").get_data(as_text=True)
    token = CSRF.search(page).group(1)
    resp = client.post("/login/", data={"username": username, "password": PASSWORD,
                                        "csrf_token": token})
    assert resp.status_code == 302, resp.status_code


def csrf(client, url):
    return CSRF.search(client.get(url).get_data(as_text=True)).group(1)


class Statements:
    """Counts the SQL statements sent, and the time spent in them (driver included)."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.count, self.seconds, self._started = 0, 0.0, None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *args):
        self.count += 1
        self._started = time.perf_counter()

    def _after(self, *args):
        self.seconds += time.perf_counter() - self._started


def import_once(client, data, statements):
    """(preview seconds, apply seconds, statements of each, totals shown, flashed)"""
    token = csrf(client, "/readers-import/")
    upload_started, cpu_started = time.perf_counter(), time.process_time()
    n_upload, preview_sql_started = statements.count, statements.seconds
    resp = client.post("/readers-import/upload", data={
        "csrf_token": token, "file": (io.BytesIO(data), "danh-sach-lop.xlsx")},
        content_type="multipart/form-data")
    assert resp.status_code == 302 and "/preview/" in resp.headers["Location"], resp.headers
    preview_url = resp.headers["Location"]
    page = client.get(preview_url).get_data(as_text=True)
    preview_s = time.perf_counter() - upload_started
    preview_cpu = time.process_time() - cpu_started
    preview_sql = statements.count - n_upload
    preview_sql_s = statements.seconds - preview_sql_started
    totals = {k: int(re.search(rf'id="total-{k}">(\d+)<', page).group(1))
              for k in ("new", "update", "unchanged", "error")}
    token = CSRF.search(page).group(1)
    n_apply, sql_started = statements.count, statements.seconds
    started, cpu_started = time.perf_counter(), time.process_time()
    resp = client.post(preview_url.replace("/preview/", "/confirm/"),
                       data={"csrf_token": token})
    apply_s = time.perf_counter() - started
    apply_cpu = time.process_time() - cpu_started
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/readerview/list/"), \
        resp.headers.get("Location")
    with client.session_transaction() as sess:
        flashed = [m for _c, m in sess.pop("_flashes", [])]
    return {"preview_s": round(preview_s, 3), "apply_s": round(apply_s, 3),
            "total_s": round(preview_s + apply_s, 3),
            # CPU time of this process (the application; not the PostgreSQL server): what the
            # steps cost when the machine is busy with other work.
            "preview_cpu_s": round(preview_cpu, 3), "apply_cpu_s": round(apply_cpu, 3),
            "preview_sql": preview_sql, "preview_sql_s": round(preview_sql_s, 3),
            "apply_sql": statements.count - n_apply,
            "apply_sql_s": round(statements.seconds - sql_started, 3), "totals": totals,
            "page_kb": round(len(page.encode()) / 1024), "flashed": flashed}


def run_one(url, args):
    workdir = tempfile.mkdtemp(prefix="thuvien-bench-readers-")
    if url == "sqlite":
        url = "sqlite:///" + os.path.join(workdir, "bench.db")
    url = normalise(url)
    os.environ.update({"INSTANCE_PATH": workdir, "DATABASE_URL": url,
                       "SECRET_KEY": secrets.token_hex(32), "APP_ENV": "development"})
    create_database(url, args.drop_existing)
    results = {"started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "rows": args.rows, "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}}
    print(f"  load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    try:
        from sqlalchemy import func, select

        from app import create_app
        from app.core.setup import prepare_database
        from app.extensions import db
        from app.readers.models import Reader

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SYNC_ROLES_ON_START": False,
                          "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False})
        with app.app_context():
            t0 = time.perf_counter()
            prepare_database(load_demo=True)
            results["schema_and_demo_s"] = round(time.perf_counter() - t0, 2)
            results["database"] = {"dialect": db.engine.dialect.name,
                                   "server_version": server_version(db)}
            engine = db.engine
            db.session.remove()
        statements = Statements(engine)
        files = {"first": class_list(args.rows, args.seed),
                 "changed": class_list(args.rows, args.seed, changed=0.1)}
        results["file_kb"] = {k: round(len(v) / 1024) for k, v in files.items()}
        client = app.test_client()
        login(client, "thuvien")
        results["runs"] = []
        for run in range(args.runs):
            data = files["first" if run == 0 else "changed"]
            outcome = import_once(client, data, statements)
            outcome["run"] = run + 1
            results["runs"].append(outcome)
            print(f"  run {run + 1}: preview {outcome['preview_s']:.2f} s, apply "
                  f"{outcome['apply_s']:.2f} s, totals {outcome['totals']}", flush=True)
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        with app.app_context():
            results["readers_imported"] = db.session.execute(
                select(func.count()).select_from(Reader).where(
                    Reader.code.like("BENCH%"))).scalar()
            db.session.remove()
            db.engine.dispose()
    finally:
        drop_database(url)
    return results


def print_table(all_results):
    print()
    print("| Database | Run | Rows new / updated / unchanged | Preview | Apply | Total | CPU "
          "(app process) | SQL statements (preview / apply) | SQL time (preview / apply) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in all_results:
        name = f"{r['database']['dialect']} {r['database']['server_version']}"
        for run in r["runs"]:
            t = run["totals"]
            mark = "" if run["total_s"] < TARGET_S else " (over 5 s)"
            print(f"| {name} | {run['run']} | {t['new']} / {t['update']} / {t['unchanged']} | "
                  f"{run['preview_s']:.2f} s | {run['apply_s']:.2f} s | "
                  f"**{run['total_s']:.2f} s**{mark} | "
                  f"{run['preview_cpu_s'] + run['apply_cpu_s']:.2f} s | {run['preview_sql']} / "
                  f"{run['apply_sql']} | {run['preview_sql_s']:.2f} s / "
                  f"{run['apply_sql_s']:.2f} s |")


def main():
    args = parse_args()
    run_per_database(args, __file__, "readers", run_one, print_table, DEFAULT_PG,
                     ["--rows", args.rows, "--runs", args.runs, "--seed", args.seed])


if __name__ == "__main__":
    main()
