#!/usr/bin/env python3
"""Benchmark of MARC21 import and export: records per second, with copies.

    python bench/bench_marc.py                           # PostgreSQL thuvien_bench_marc
    python bench/bench_marc.py --database-url sqlite     # a temporary SQLite file
    python bench/bench_marc.py --records 5000 --profile  # cProfile of every timed step

It catalogues N records "in the application" in one new school (the catalogue generator's
books, 1 to 3 copies each), exports them, and imports that file into empty schools, then
exports the imported records. With PostgreSQL the script creates the named database and
drops it at the end (it refuses to touch a database that already exists unless
--drop-existing is given). Results: a table on stdout and
bench/results/<timestamp>-marc-<dialect>.json (git-ignored). Figures: bench/README.md.
"""
import argparse
import cProfile
import datetime
import gc
import io
import json
import os
import platform
import pstats
import random
import secrets
import shutil
import statistics
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
)

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/thuvien_bench_marc"
TARGETS = {"import": 1000, "export": 5000}  # records per second, from the issue
SOURCE, TARGET_ISO, TARGET_XML = "BENCHMARC0", "BENCHMARC1", "BENCHMARC2"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=DEFAULT_URL,
                   help=f"SQLAlchemy URL (default {DEFAULT_URL}); 'sqlite' = a temporary "
                        "SQLite file. A PostgreSQL database is created and dropped by the script.")
    p.add_argument("--records", type=int, default=20_000, help="records in the MARC file")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--export-runs", type=int, default=3,
                   help="runs of each export (the median is reported)")
    p.add_argument("--keep-labels", action="store_true",
                   help="keep the accession labels (852 $t) in the file: the import keeps "
                        "their numbers instead of numbering the copies with the counters")
    p.add_argument("--profile", action="store_true",
                   help="run each timed step under cProfile: .prof files next to the JSON, "
                        "and the top functions printed (slower)")
    p.add_argument("--drop-existing", action="store_true",
                   help="PostgreSQL: drop the database first if it already exists")
    p.add_argument("--keep", action="store_true", help="keep the database at the end")
    return p.parse_args()


class Timer:
    """Times a step; with --profile, runs it under cProfile and keeps the statistics."""

    def __init__(self, profile_dir):
        self.profile_dir = profile_dir
        self.cpu = {}  # step -> CPU seconds of this process (the machine may be shared)

    def run(self, name, fn):
        gc.collect()  # each step starts from the same heap, not the previous step's garbage
        profiler = cProfile.Profile() if self.profile_dir else None
        cpu = time.process_time()
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        try:
            value = fn()
        finally:
            if profiler:
                profiler.disable()
        seconds = time.perf_counter() - started
        self.cpu[name] = round(time.process_time() - cpu, 3)
        if profiler:
            path = os.path.join(self.profile_dir, f"{name}.prof")
            profiler.dump_stats(path)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
            print(f"--- profile of {name} ({seconds:.2f} s), by own time: {path}")
            print("\n".join(out.getvalue().splitlines()[6:]), flush=True)
        return value, seconds


# --- Data ---------------------------------------------------------------------------------


def reference_loop():
    """Seconds of a fixed pure-Python loop: how fast this machine runs Python right now
    (on the shared machine of the figures in bench/README.md it took 0.4 to 1.6 s)."""
    started = time.process_time()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.process_time() - started, 2)


def new_school(db, code, name, locations):
    """A school with its shelving locations (KM, as generate_city gives every school)."""
    from app.catalog.generator import EXTRA_LOCATIONS
    from app.collection.models import Location, LocationKind
    from app.org.models import OrgUnit, UnitKind

    school = OrgUnit(code=code, name=name, kind=UnitKind.school, teaches_lower_secondary=True,
                     teaches_upper_secondary=True)
    db.session.add(school)
    db.session.flush()
    wanted = [("KM", "Kho mở", LocationKind.open_stack)]
    if locations:  # an importing school has the locations the file names
        wanted += EXTRA_LOCATIONS
    db.session.add_all([Location(school_id=school.id, code=c, name=n, kind=k)
                        for c, n, k in wanted])
    db.session.commit()
    return school


def catalogue_in_app(db, school, records, seed):
    """`records` records with their authors and 1 to 3 copies each, written as the catalogue
    generator writes a school (Core bulk inserts, no stored MARC: records catalogued in the
    application)."""
    from sqlalchemy import select

    from app.catalog import generator
    from app.catalog.models import ClassificationScheme, DocumentType

    entry = {"code": school.code, "category": "THPT",
             "levels": ("lower_secondary", "upper_secondary"), "is_public": True,
             "records": records, "copies": int(records * 1.6)}
    plan = generator.plan_school(entry, seed)
    rng = random.Random(f"bench-marc:{seed}")
    for r in plan["records"]:
        want = rng.choices((1, 2, 3), (55, 30, 15))[0]
        copies = [c for c in r["copies"] if c[1] != "withdrawn"] or [r["copies"][0]]
        r["copies"] = [(loc, "available" if status == "withdrawn" else status, None)
                       for loc, status, _n in (copies * 3)[:want]]
    doc_types = dict(db.session.execute(select(DocumentType.code, DocumentType.id)).all())
    scheme_id = db.session.execute(select(ClassificationScheme.id).where(
        ClassificationScheme.code == "DDC")).scalar()
    stats = {k: 0 for k in ("schools_done", "settings", "series", "locations", "intakes",
                            "records", "authors", "copies", "counters")}
    generator._write_chunk(db.session, generator._Writer(db.session), [plan],
                           {school.code: school}, doc_types, scheme_id, stats)
    db.session.commit()
    generator.book.cache_clear()  # the books of the plan: not what a worker holds
    return stats


def import_file_from(export_bytes, keep_labels):
    """The file to import: the in-app export, with its accession labels (852 $t) removed
    unless kept (a file from another program: barcodes, call numbers and locations, but
    numbers in no series of the importing school). Returns (ISO 2709, MARCXML, items)."""
    from app.catalog import marc

    entries, problems = marc.read_marc(export_bytes)
    assert not [p for p in problems if p.level == "error"], problems[:3]
    dicts, items = [], 0
    for entry in entries:
        data = entry.as_dict()
        for field in data["fields"]:
            if "852" in field:
                items += 1
                if not keep_labels:
                    field["852"]["subfields"] = [s for s in field["852"]["subfields"]
                                                 if "t" not in s]
        dicts.append(data)
    return marc.write_iso2709(dicts), marc.write_marcxml(dicts), items


# --- Steps --------------------------------------------------------------------------------


def export(db, timer, school, fmt, runs, label):
    from app.catalog.marc_import import MarcExport

    times, size, count = [], 0, 0
    data = None
    for i in range(runs):
        db.session.expire_all()
        exporter = MarcExport(db.session, school, fmt)
        data, seconds = timer.run(f"export-{label}-{fmt}-{i + 1}", exporter.to_bytes)
        db.session.rollback()
        times.append(seconds)
        size, count = len(data), exporter.count
    median = statistics.median(times)
    cpu = statistics.median(timer.cpu[f"export-{label}-{fmt}-{i + 1}"] for i in range(runs))
    print(f"  export {label} {fmt}: {count:,} records in {median:.2f} s "
          f"({count / median:,.0f} records/s)", flush=True)
    return data, {"records": count, "bytes": size, "runs_s": [round(t, 3) for t in times],
                  "seconds": round(median, 3), "records_per_s": round(count / median),
                  "cpu_records_per_s": round(count / cpu)}


def run_import(db, timer, school, data, label):
    from app.catalog import marc_import
    from app.core.audit import acting_as

    calls = []

    def progress(done, total):
        calls.append((time.perf_counter(), done, total))

    def go():
        with acting_as(name="bench"):
            return marc_import.run_import(db.session, school, data, f"bench.{label}",
                                          marc_import.ImportOptions(duplicates="new"),
                                          on_progress=progress)

    result, seconds = timer.run(f"import-{label}", go)
    counts = result.counts
    print(f"  import {label}: {counts['created']:,} records, {counts['copies']:,} copies in "
          f"{seconds:.2f} s ({counts['created'] / seconds:,.0f} records/s)", flush=True)
    return result, {"records": counts["created"], "copies": counts["copies"],
                    "errors": counts["errors"], "warnings": counts["warnings"],
                    "seconds": round(seconds, 3),
                    "records_per_s": round(counts["created"] / seconds),
                    "cpu_records_per_s": round(counts["created"] / timer.cpu[f"import-{label}"]),
                    "copies_per_s": round(counts["copies"] / seconds),
                    "progress_calls": len(calls),
                    "progress_first_s": round(calls[1][0] - calls[0][0], 3)
                    if len(calls) > 1 else None}


def check_import(db, school, records, items):
    """What the import must have written: every record and copy, gap-free numbers, the
    audit entries."""
    from sqlalchemy import func, select

    from app.catalog.models import Record
    from app.collection.models import AccessionSeries, Copy
    from app.core.audit import AuditLog

    def count(model, *where):
        return db.session.execute(select(func.count()).select_from(model).where(
            model.school_id == school.id, *where)).scalar()

    found = {"records": count(Record), "copies": count(Copy)}
    assert found == {"records": records, "copies": items}, found
    # Gap-free: in each series (each record for textbooks) the numbers are 1..n.
    rows = db.session.execute(select(
        AccessionSeries.code, Copy.sequence_key, func.count(), func.min(Copy.accession_number),
        func.max(Copy.accession_number)).join(AccessionSeries, AccessionSeries.id ==
                                              Copy.series_id).where(
        Copy.school_id == school.id).group_by(AccessionSeries.code, Copy.sequence_key)).all()
    gaps = [r for r in rows if not (r[3] == 1 and r[4] == r[2])]
    assert not gaps, gaps[:5]
    audited = {t: count(AuditLog, AuditLog.table_name == t, AuditLog.action == "insert")
               for t in ("record", "copy")}
    found["audit_entries"] = audited
    found["series"] = {code: n for code, key, n, _a, _b in rows if key == 0}
    found["textbook_records"] = sum(1 for r in rows if r[1] != 0)
    db.session.rollback()
    return found


# --- Main ---------------------------------------------------------------------------------


def main():
    args = parse_args()
    workdir = tempfile.mkdtemp(prefix="thuvien-bench-marc-")
    url = args.database_url
    if url == "sqlite":
        url = "sqlite:///" + os.path.join(workdir, "bench.db")
    url = normalise(url)
    os.environ.update({"INSTANCE_PATH": workdir, "DATABASE_URL": url,
                       "SECRET_KEY": secrets.token_hex(32), "APP_ENV": "development"})
    create_database(url, args.drop_existing)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results = {"started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "records": args.records, "seed": args.seed,
        "keep_labels": args.keep_labels, "profiled": args.profile,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                    "reference_loop_s_at_start": reference_loop()}}
    profile_dir = None
    if args.profile:
        profile_dir = os.path.join(RESULTS_DIR, f"{stamp}-marc-profile")
        os.makedirs(profile_dir, exist_ok=True)
    timer = Timer(profile_dir)
    try:
        from app import create_app
        from app.catalog import marc_import
        from app.core.setup import prepare_database
        from app.extensions import db

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SYNC_ROLES_ON_START": False,
                          "AUTH_RATE_LIMITED": False, "RATELIMIT_ENABLED": False})
        with app.app_context():
            results["database"] = {"dialect": db.engine.dialect.name,
                                   "server_version": server_version(db),
                                   "url": db.engine.url.render_as_string(hide_password=True)}
            t0 = time.perf_counter()
            prepare_database(load_demo=True)
            results["schema_and_demo_s"] = round(time.perf_counter() - t0, 2)

            print(f"Cataloguing {args.records:,} records in the application…", flush=True)
            source = new_school(db, SOURCE, "Trường THPT thử MARC (biên mục trong ứng dụng)",
                                False)
            t0 = time.perf_counter()
            stats = catalogue_in_app(db, source, args.records, args.seed)
            results["in_app"] = {"records": stats["records"], "authors": stats["authors"],
                                 "copies": stats["copies"],
                                 "seconds": round(time.perf_counter() - t0, 2)}

            print("Export of records catalogued in the application:", flush=True)
            iso, results["export_in_app_iso2709"] = export(
                db, timer, source, "iso2709", args.export_runs, "in-app")
            _xml, results["export_in_app_marcxml"] = export(
                db, timer, source, "marcxml", args.export_runs, "in-app")
            iso_file, xml_file, items = import_file_from(iso, args.keep_labels)
            results["file"] = {"records": args.records, "items_852": items,
                               "iso2709_bytes": len(iso_file), "marcxml_bytes": len(xml_file)}
            with open(os.path.join(workdir, "bench.mrc"), "wb") as fh:
                fh.write(iso_file)

            print("Import into empty schools:", flush=True)
            target = new_school(db, TARGET_ISO, "Trường THPT thử MARC (nhập ISO 2709)", True)
            preview, seconds = timer.run("preview-iso2709", lambda: marc_import.preview_import(
                db.session, target, iso_file, "bench.mrc",
                marc_import.ImportOptions(duplicates="new")))
            db.session.rollback()
            results["preview_iso2709"] = {"records": preview.counts["new"],
                                          "seconds": round(seconds, 3),
                                          "records_per_s": round(preview.counts["new"] / seconds)}
            print(f"  preview iso2709: {seconds:.2f} s "
                  f"({preview.counts['new'] / seconds:,.0f} records/s)", flush=True)
            _r, results["import_iso2709"] = run_import(db, timer, target, iso_file, "iso2709")
            results["import_iso2709"]["check"] = check_import(db, target, args.records, items)
            target_xml = new_school(db, TARGET_XML, "Trường THPT thử MARC (nhập MARCXML)", True)
            _r, results["import_marcxml"] = run_import(db, timer, target_xml, xml_file,
                                                       "marcxml")
            results["import_marcxml"]["check"] = check_import(db, target_xml, args.records,
                                                              items)

            print("Export of imported records (stored MARC):", flush=True)
            _d, results["export_imported_iso2709"] = export(
                db, timer, target, "iso2709", args.export_runs, "imported")
            _d, results["export_imported_marcxml"] = export(
                db, timer, target, "marcxml", args.export_runs, "imported")
            db.session.remove()
            db.engine.dispose()
    finally:
        if not args.keep:
            drop_database(url)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"Kept: {url} (work directory {workdir}, the file bench.mrc)")

    results["cpu_s"] = timer.cpu
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["reference_loop_s_at_end"] = reference_loop()
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{stamp}-marc-{results['database']['dialect']}.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2, ensure_ascii=False, default=str)
    print_table(results)
    print(f"\nWritten: {os.path.relpath(path, ROOT)}")


def print_table(r):
    def rate(step, kind):
        s = r[step]
        mark = "ok" if s["records_per_s"] >= TARGETS[kind] else f"below {TARGETS[kind]:,}"
        return (f"{s['records_per_s']:,} records/s ({s['seconds']} s; {mark}); "
                f"CPU of this process {s['cpu_records_per_s']:,} records/s")

    f = r["file"]
    rows = [
        ("Database", f"{r['database']['dialect']} {r['database']['server_version']}"),
        ("Machine", f"{r['machine']['cpus']} CPUs, load average "
                    f"{r['machine']['load_average_at_start'][0]} at start, "
                    f"{r['machine']['load_average_at_end'][0]} at end"
                    + (" (profiled: slower)" if r["profiled"] else "")),
        ("Reference loop (10M additions)", f"{r['machine']['reference_loop_s_at_start']} s "
                                           f"at start, {r['machine']['reference_loop_s_at_end']}"
                                           " s at end"),
        ("File", f"{f['records']:,} records, {f['items_852']:,} items (852), "
                 f"{f['iso2709_bytes'] / 2 ** 20:.1f} MiB ISO 2709, "
                 f"{f['marcxml_bytes'] / 2 ** 20:.1f} MiB MARCXML"
                 + (", accession labels kept" if r["keep_labels"] else "")),
        ("Preview (ISO 2709)", f"{r['preview_iso2709']['records_per_s']:,} records/s "
                               f"({r['preview_iso2709']['seconds']} s)"),
        ("Import ISO 2709, with copies", rate("import_iso2709", "import")),
        ("Import MARCXML, with copies", rate("import_marcxml", "import")),
        ("Export ISO 2709, in-app records", rate("export_in_app_iso2709", "export")),
        ("Export MARCXML, in-app records", rate("export_in_app_marcxml", "export")),
        ("Export ISO 2709, imported records", rate("export_imported_iso2709", "export")),
        ("Export MARCXML, imported records", rate("export_imported_marcxml", "export")),
    ]
    width = max(len(a) for a, _b in rows)
    print()
    for a, b in rows:
        print(f"{a:<{width}}  {b}")


if __name__ == "__main__":
    main()
