"""The catalogue generator (app.catalog.generator): plan, inserts, numbering, counters, search.

The generated city and its catalogue share the test database with the other tests: they are
written once for the module, figures are filtered by the generated schools (never global
counts), and every row is removed at the end of the module.
"""
import collections
import functools
import re
import shutil
import tempfile

import pytest
from sqlalchemy import case, delete, func, select
from sqlalchemy.exc import IntegrityError
from stdnum import isbn as stdnum_isbn

from app.catalog import generator
from app.catalog.generator import generate_catalogue, isbn13, plan_catalogue, plan_school
from app.catalog.models import Record, RecordAuthor
from app.catalog.services import compute_call_number, search_records
from app.collection import services as collection
from app.collection.models import (
    AccessionSeries,
    Copy,
    CopyStatus,
    Counter,
    Intake,
    LibrarySettings,
    Location,
)
from app.core.audit import AuditLog
from app.core.errors import ValidationError
from app.core.i18n import fold
from app.org.generator import generate_city, plan_city
from app.org.models import OrgUnit
from tests.helpers import post_form, text
from tests.test_generator import _remove as remove_city

SCALE = 0.002  # 7 schools: 3 MN, 2 TH, 1 THCS, 1 THPT
SEED = 4242
VOLUME = 0.03  # libraries at 3 % of their real size: about 1,600 records, 2,500 copies
CATALOGUE_TABLES = (Copy, RecordAuthor, Record, Counter, Intake, AccessionSeries,
                    LibrarySettings)


def remove_catalogue(session, school_ids):
    """Delete every catalogue row of these schools (Core deletes, like the inserts)."""
    ids = list(school_ids)
    for model in CATALOGUE_TABLES:
        table = model.__table__
        session.execute(delete(table).where(table.c.school_id.in_(ids)))
    session.execute(delete(Location.__table__).where(
        Location.__table__.c.school_id.in_(ids), Location.__table__.c.code != "KM"))
    session.execute(delete(AuditLog.__table__).where(AuditLog.__table__.c.school_id.in_(ids)))
    session.commit()


def _school_counts(session, ids):
    out = {}
    for model in CATALOGUE_TABLES + (Location,):
        out[model.__tablename__] = session.execute(select(func.count()).select_from(
            model.__table__).where(model.__table__.c.school_id.in_(ids))).scalar()
    return out


@pytest.fixture(scope="module")
def catalogue(app):
    from app.extensions import db

    city = plan_city(SCALE, SEED)
    plan = plan_catalogue(SCALE, SEED, VOLUME)
    progress = []
    with app.app_context():
        generate_city(db.session, scale=SCALE, seed=SEED)
        ids = dict(db.session.execute(select(OrgUnit.code, OrgUnit.id).where(
            OrgUnit.code.in_([s["code"] for s in city["schools"]]))).all())
        try:
            # Small chunks: several transactions, as at full scale.
            stats = generate_catalogue(db.session, scale=SCALE, seed=SEED, volume=VOLUME,
                                       progress=progress.append, chunk_records=400)
        except BaseException:
            remove_catalogue(db.session, ids.values())
            remove_city(db.session, city)
            raise
    yield {"city": city, "plan": plan, "stats": stats, "ids": ids, "progress": progress,
           "big": ids[plan["big_school"]]}
    with app.app_context():
        db.session.rollback()
        remove_catalogue(db.session, ids.values())
        remove_city(db.session, city)


def _series(session, school_id, code):
    return session.execute(select(AccessionSeries).where(
        AccessionSeries.school_id == school_id, AccessionSeries.code == code)).scalar_one()


# --- The plan: pure data, deterministic.


def test_isbn13_check_digit():
    assert isbn13("978604100012") == "9786041000124"  # a real Vietnamese ISBN (NXB Trẻ)
    assert isbn13("978030640615") == "9780306406157"
    assert all(stdnum_isbn.is_valid(isbn13(f"978604{n:06d}")) for n in range(0, 999_999, 9973))


def test_plan_is_deterministic_and_depends_on_the_seed():
    plan = plan_catalogue(SCALE, SEED, VOLUME)
    assert plan == plan_catalogue(SCALE, SEED, VOLUME)
    entry = plan["schools"][3]
    one = plan_school(entry, SEED)
    assert one == plan_school(entry, SEED)
    other = plan_school(entry, SEED + 1)
    assert [r["book"]["title"] for r in one["records"]] != [
        r["book"]["title"] for r in other["records"]]
    assert len(one["records"]) == entry["records"]
    assert abs(sum(len(r["copies"]) for r in one["records"]) - entry["copies"]) \
        <= 0.1 * entry["copies"]
    # The generated schools only, never the demo schools.
    assert [s["code"] for s in plan["schools"]] == [
        s["code"] for s in plan_city(SCALE, SEED)["schools"]]


def test_full_scale_plan_is_the_size_of_the_city():
    plan = plan_catalogue(1.0, 1)
    assert len(plan["schools"]) == 3500
    assert 9_500_000 <= plan["records"] <= 10_500_000
    assert 14_000_000 <= plan["copies"] <= 16_000_000
    mean = {cat: sum(s["records"] for s in plan["schools"] if s["category"] == cat)
            / sum(1 for s in plan["schools"] if s["category"] == cat)
            for cat in ("MN", "TH", "THCS", "THPT")}
    assert mean["MN"] < mean["TH"] < mean["THCS"] < mean["THPT"]
    big = next(s for s in plan["schools"] if s["code"] == plan["big_school"])
    assert big["category"] == "THPT" and big["copies"] >= 50_000
    assert big["copies"] == max(s["copies"] for s in plan["schools"])


def test_a_school_plan_looks_like_a_school_library():
    plan = plan_catalogue(1.0, 1, volume=0.2)
    entry = next(s for s in plan["schools"] if s["category"] == "THCS")
    school = plan_school(entry, 1)
    records = school["records"]
    docs = collections.Counter(r["doc"] for r in records)
    assert set(docs) == {"SGK", "SNV", "STK", "STN"}
    textbook = next(r for r in records if r["doc"] == "SGK")
    assert textbook["book"]["publisher"] in {p for _s, p, _pl in generator.TEXTBOOK_SERIES}
    assert any(r["book"]["title"] == "Toán 6. Tập 1" for r in records if r["doc"] == "SGK")
    assert len(textbook["copies"]) > 3  # a class set
    isbns = [r["book"]["isbn"] for r in records if r["book"]["isbn"]]
    assert 0.05 <= len(isbns) / len(records) <= 0.16
    assert all(stdnum_isbn.is_valid(i) and i.startswith("978604") for i in isbns)
    assert all(1 <= len(r["book"]["authors"]) <= 2 for r in records)
    # Intakes are numbered 1, 2, 3... in date order, and a book arrives after it is printed.
    numbers = [i["register_number"] for i in school["intakes"]]
    assert numbers == list(range(1, len(numbers) + 1))
    dates = [i["received_on"] for i in school["intakes"]]
    assert dates == sorted(dates)
    assert all(school["intakes"][r["intake"]]["received_on"].year >= r["book"]["year"]
               for r in records)
    statuses = collections.Counter(s for r in records for _l, s, _n in r["copies"])
    assert statuses["available"] / sum(statuses.values()) > 0.9
    # The same book is catalogued the same way in every school.
    assert generator.book(1, textbook["key"]) is textbook["book"]


# --- The inserts.


def test_counts_match_the_plan_and_the_returned_figures(catalogue, db_session):
    stats, plan, ids = catalogue["stats"], catalogue["plan"], catalogue["ids"]
    counts = _school_counts(db_session, ids.values())
    n = len(plan["schools"])
    assert stats["schools"] == stats["schools_done"] == n and stats["skipped"] == 0
    assert counts["record"] == stats["records"] == plan["records"]
    assert abs(counts["copy"] - plan["copies"]) <= 0.1 * plan["copies"]
    assert counts["copy"] == stats["copies"]
    assert counts["record_author"] == stats["authors"]
    assert stats["records"] <= stats["authors"] <= 2 * stats["records"]
    assert counts["intake"] == stats["intakes"]
    assert counts["accession_series"] == stats["series"] == 4 * n
    assert counts["library_settings"] == stats["settings"] == n
    assert counts["location"] == n + stats["locations"]  # "KM" comes with the city
    assert counts["counter"] == stats["counters"]
    assert len(catalogue["progress"]) > 1 and catalogue["progress"][-1]["records"] == \
        stats["records"]
    big = db_session.execute(select(func.count()).select_from(Copy).where(
        Copy.school_id == catalogue["big"])).scalar()
    assert big >= 0.9 * 50_000 * VOLUME


def test_settings_and_series_are_the_defaults(catalogue, db_session):
    sid = catalogue["big"]
    settings = db_session.execute(select(LibrarySettings).where(
        LibrarySettings.school_id == sid)).scalar_one()
    assert settings.scheme.code == "DDC" and settings.barcode_prefix == \
        catalogue["plan"]["big_school"]
    series = db_session.execute(select(AccessionSeries).where(
        AccessionSeries.school_id == sid).order_by(AccessionSeries.code)).scalars().all()
    assert [(s.code, s.is_textbook) for s in series] == [
        (code, textbook) for code, _n, _p, textbook in collection.DEFAULT_SERIES]
    # ensure_library finds everything in place.
    collection.ensure_library(db_session, db_session.get(OrgUnit, sid))
    assert db_session.execute(select(func.count()).select_from(AccessionSeries).where(
        AccessionSeries.school_id == sid)).scalar() == 4


def test_accession_numbers_are_gap_free(catalogue, db_session):
    ids = list(catalogue["ids"].values())
    groups = db_session.execute(select(
        Copy.school_id, Copy.series_id, Copy.sequence_key, func.count(),
        func.count(func.distinct(Copy.accession_number)), func.min(Copy.accession_number),
        func.max(Copy.accession_number)).where(Copy.school_id.in_(ids)).group_by(
        Copy.school_id, Copy.series_id, Copy.sequence_key)).all()
    assert groups
    for _school, _series, _key, n, distinct, low, high in groups:
        assert n == distinct == high and low == 1
    textbook = {s.id for s in db_session.execute(select(AccessionSeries).where(
        AccessionSeries.school_id.in_(ids), AccessionSeries.is_textbook.is_(True))).scalars()}
    rows = db_session.execute(select(Copy).where(Copy.school_id == catalogue["big"])).scalars()
    codes = {v: k for k, v in catalogue["ids"].items()}
    barcodes = set()
    for c in rows:
        if c.series_id in textbook:  # numbered per title and volume
            assert c.sequence_key == c.record_id
            assert c.accession_label == f"SGK-{c.record_id}.{c.accession_number:03d}"
        else:
            assert c.sequence_key == 0
            assert c.accession_label == f"{c.series.code}-{c.accession_number:05d}"
        assert c.barcode == codes[c.school_id] + c.accession_label.replace("-", "")
        barcodes.add(c.barcode)
    counted = db_session.execute(select(func.count()).select_from(Copy).where(
        Copy.school_id == catalogue["big"])).scalar()
    assert len(barcodes) == counted


def test_intakes_are_numbered_and_feed_the_copies(catalogue, db_session):
    ids = list(catalogue["ids"].values())
    for sid in ids:
        numbers = db_session.execute(select(Intake.register_number).where(
            Intake.school_id == sid).order_by(Intake.register_number)).scalars().all()
        assert numbers == list(range(1, len(numbers) + 1))
    wrong = db_session.execute(select(func.count()).select_from(Copy).join(
        Intake, Intake.id == Copy.intake_id).join(Record, Record.id == Copy.record_id).where(
        Copy.school_id.in_(ids), (Copy.funding != Intake.funding)
        | (Copy.acquisition_source != Intake.source)
        | (func.extract("year", Intake.received_on) < Record.year))).scalar()
    assert wrong == 0


def test_counters_hold_the_last_numbers(catalogue, db_session):
    ids = list(catalogue["ids"].values())
    counters = dict(((c.school_id, c.key), c.last_value) for c in db_session.execute(
        select(Counter).where(Counter.school_id.in_(ids))).scalars())
    expected = {}
    series = {s.id: s for s in db_session.execute(select(AccessionSeries).where(
        AccessionSeries.school_id.in_(ids))).scalars()}
    for school_id, series_id, key, high in db_session.execute(select(
            Copy.school_id, Copy.series_id, Copy.sequence_key,
            func.max(Copy.accession_number)).where(Copy.school_id.in_(ids)).group_by(
            Copy.school_id, Copy.series_id, Copy.sequence_key)).all():
        s = series[series_id]
        expected[(school_id, f"series:{series_id}:{key if s.is_textbook else 0}")] = high
    for school_id, high in db_session.execute(select(
            Intake.school_id, func.max(Intake.register_number)).where(
            Intake.school_id.in_(ids)).group_by(Intake.school_id)).all():
        expected[(school_id, "intake")] = high
    assert counters == expected


def test_adding_copies_continues_the_numbering(catalogue, db_session):
    sid = catalogue["big"]
    school = db_session.get(OrgUnit, sid)
    for code in ("STK", "SGK"):
        series = _series(db_session, sid, code)
        record = db_session.execute(select(Record).join(Copy, Copy.record_id == Record.id).where(
            Copy.series_id == series.id).order_by(Record.id.desc()).limit(1)).scalar_one()
        query = select(func.max(Copy.accession_number)).where(Copy.series_id == series.id)
        if series.is_textbook:
            query = query.where(Copy.record_id == record.id)
        high = db_session.execute(query).scalar()
        copies = collection.add_copies(db_session, school, record, series, 3)
        db_session.commit()  # no IntegrityError: the counters continue after the generated rows
        assert [c.accession_number for c in copies] == [high + 1, high + 2, high + 3]
    intake = collection.create_intake(db_session, school, None, "Nhà sách Fahasa")
    db_session.commit()
    assert intake.register_number == db_session.execute(select(func.count()).select_from(
        Intake).where(Intake.school_id == sid)).scalar()


def test_the_generated_librarian_adds_copies_in_the_browser(catalogue, login, db_session):
    code = catalogue["plan"]["big_school"]
    sid = catalogue["big"]
    series = _series(db_session, sid, "STN")
    record = db_session.execute(select(Record).where(
        Record.school_id == sid, Record.document_type.has(code="STN")).order_by(
        Record.id).limit(1)).scalar_one()
    high = db_session.execute(select(func.max(Copy.accession_number)).where(
        Copy.series_id == series.id)).scalar()
    c = login("tv" + code)
    resp = post_form(c, f"/recordview/copies/{record.id}",
                     {"count": "20", "series": str(series.id), "location": "", "intake": ""})
    assert resp.status_code == 302, text(resp)[:2000]
    db_session.expire_all()
    assert db_session.execute(select(func.max(Copy.accession_number)).where(
        Copy.series_id == series.id)).scalar() == high + 20


def test_a_generated_title_is_found_without_accents(catalogue, db_session, login):
    sid = catalogue["big"]
    record = next(r for r in db_session.execute(select(Record).where(
        Record.school_id == sid, Record.is_hidden.is_(False)).order_by(Record.id)).scalars()
        if re.fullmatch(r"[\w ]+", r.title) and fold(r.title) != r.title.lower())
    typed = fold(record.title)  # "toan 10" for "Toán 10"
    total, rows = search_records(db_session, typed, school_ids={sid}, limit=1000)
    assert record in rows and total >= 1
    total, rows = search_records(db_session, typed.upper(), school_ids=None, limit=1000)
    assert record in rows  # the union catalogue: every school
    page = text(login("tv" + catalogue["plan"]["big_school"]).get(
        "/union/", query_string={"q": typed}))
    assert record.title in page


def test_records_follow_the_cataloguing_rules(catalogue, db_session):
    records = db_session.execute(select(Record).where(
        Record.school_id == catalogue["big"]).order_by(Record.id).limit(300)).scalars().all()
    for r in records:
        assert 1 <= len(r.authors) <= 2 and r.authors[0].is_main
        assert [a.position for a in r.authors] == list(range(len(r.authors)))
        twin = Record(title=r.title, subtitle=r.subtitle, class_number=r.class_number)
        twin.authors_text = r.authors_text
        assert twin.title_folded == r.title_folded and twin.authors_folded == r.authors_folded
        assert compute_call_number(twin) == r.call_number and twin.author_mark == r.author_mark
        assert r.scheme.code == "DDC" and r.document_type.code in {"SGK", "SNV", "STK", "STN"}
        if r.isbn:
            assert stdnum_isbn.is_valid(r.isbn)
    # A record is hidden exactly when all its copies are withdrawn.
    ids = list(catalogue["ids"].values())
    per_record = db_session.execute(select(
        Record.id, Record.is_hidden, func.count(Copy.id),
        func.sum(case((Copy.status == CopyStatus.withdrawn, 1), else_=0)))
        .join(Copy, Copy.record_id == Record.id).where(Record.school_id.in_(ids))
        .group_by(Record.id, Record.is_hidden)).all()
    assert all(hidden == (n == withdrawn) for _id, hidden, n, withdrawn in per_record)
    statuses = dict(db_session.execute(select(Copy.status, func.count()).where(
        Copy.school_id.in_(ids)).group_by(Copy.status)).all())
    assert statuses[CopyStatus.available] / sum(statuses.values()) > 0.85


def test_composite_keys_keep_rows_in_their_school(catalogue, db_session):
    ids = list(catalogue["ids"].values())
    for model, column in ((Record, Copy.record_id), (AccessionSeries, Copy.series_id),
                          (Location, Copy.location_id), (Intake, Copy.intake_id)):
        crossed = db_session.execute(select(func.count()).select_from(Copy).join(
            model, model.id == column).where(
            Copy.school_id.in_(ids), model.school_id != Copy.school_id)).scalar()
        assert crossed == 0
    crossed = db_session.execute(select(func.count()).select_from(RecordAuthor).join(
        Record, Record.id == RecordAuthor.record_id).where(
        RecordAuthor.school_id.in_(ids), Record.school_id != RecordAuthor.school_id)).scalar()
    assert crossed == 0
    # The database refuses a copy of another school's record.
    other = next(i for i in ids if i != catalogue["big"])
    record_id = db_session.execute(select(Record.id).where(
        Record.school_id == other).limit(1)).scalar()
    series = _series(db_session, catalogue["big"], "STK")
    with pytest.raises(IntegrityError):
        db_session.execute(Copy.__table__.insert().values(
            school_id=catalogue["big"], record_id=record_id, series_id=series.id,
            sequence_key=0, accession_number=999_999, accession_label="STK-999999",
            barcode="x-999999", status="available"))
    db_session.rollback()


def test_a_second_run_writes_nothing(catalogue, db_session):
    ids = catalogue["ids"].values()
    before = _school_counts(db_session, ids)
    stats = generate_catalogue(db_session, scale=SCALE, seed=SEED, volume=VOLUME)
    assert stats["schools"] == 0 and stats["skipped"] == len(catalogue["plan"]["schools"])
    assert stats["records"] == stats["copies"] == 0
    assert _school_counts(db_session, ids) == before


def test_refused_without_the_generated_city(catalogue, db_session):
    with pytest.raises(ValidationError) as err:
        generate_catalogue(db_session, scale=0.05, seed=SEED, volume=VOLUME)
    assert "7910" in str(err.value)
    with pytest.raises(ValidationError):
        plan_catalogue(SCALE, SEED, volume=0)


def test_the_command_generates_the_catalogue_on_request(app, monkeypatch):
    """`flask generate-city --catalogue` on a fresh database (small libraries)."""
    from app import create_app
    from app.core.setup import prepare_database
    from app.extensions import db
    from tests.conftest import _database_url

    help_text = app.test_cli_runner().invoke(args=["generate-city", "--help"]).output
    assert "--catalogue / --no-catalogue" in help_text
    monkeypatch.setattr(generator, "generate_catalogue",
                        functools.partial(generate_catalogue, volume=0.01))
    tmpdir = tempfile.mkdtemp(prefix="thuvien-catgen-")
    url, pg = _database_url(tmpdir)
    other = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                        "SYNC_ROLES_ON_START": False, "SERVER_NAME": None})
    try:
        with other.app_context():
            prepare_database(load_demo=False)
        result = other.test_cli_runner().invoke(
            args=["generate-city", "--scale", "0.002", "--seed", "3"])
        assert result.exit_code == 0, result.output
        with other.app_context():
            assert db.session.execute(select(func.count()).select_from(Record)).scalar() == 0
        result = other.test_cli_runner().invoke(
            args=["generate-city", "--scale", "0.002", "--seed", "3", "--catalogue"])
        assert result.exit_code == 1 and "79100000" in result.output  # the city exists
        with other.app_context():
            remove_city(db.session, plan_city(0.002, 3))
        result = other.test_cli_runner().invoke(
            args=["generate-city", "--scale", "0.002", "--seed", "3", "--catalogue"])
        assert result.exit_code == 0, result.output
        with other.app_context():
            records = db.session.execute(select(func.count()).select_from(Record)).scalar()
            copies = db.session.execute(select(func.count()).select_from(Copy)).scalar()
        assert records == plan_catalogue(0.002, 3, 0.01)["records"] and copies > records
        assert f"Đã tạo {records:,} biểu ghi".replace(",", ".") in result.output
        assert "bản sách" in result.output and "Traceback" not in result.output
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
        if pg:
            admin, name = pg
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
