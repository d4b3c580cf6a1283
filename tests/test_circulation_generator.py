"""The readers and loans generators (app.readers.generator, app.circulation.generator).

A tiny generated city with small libraries and a few hundred readers shares the test
database with the other tests: figures are filtered by the generated schools, and every row
is removed at the end of the module.
"""
import collections
import datetime
import functools
import shutil
import tempfile

import pytest
from sqlalchemy import delete, func, select

from app.catalog.generator import generate_catalogue
from app.catalog.models import DocumentType, Record
from app.circulation import generator, services
from app.circulation.generator import generate_circulation
from app.circulation.models import CirculationSettings, Loan, LoanStatus
from app.collection.models import Copy, CopyStatus
from app.core.errors import ValidationError
from app.org.generator import generate_city, plan_city
from app.org.models import OrgUnit
from app.readers import generator as readers_generator
from app.readers.generator import generate_readers, plan_readers, plan_school_readers
from app.readers.models import Reader, ReaderCategory, ReaderStatus
from tests.test_catalog_generator import remove_catalogue
from tests.test_generator import _remove as remove_city

SCALE = 0.002  # 7 schools: 3 MN, 2 TH, 1 THCS, 1 THPT
SEED = 777
VOLUME = 0.03  # libraries and schools at 3 % of their size: about 500 readers, 8,000 loans
UNTIL = generator.YEAR_END
LOCAL = datetime.timedelta(hours=7)


def remove_circulation(session, school_ids):
    ids = list(school_ids)
    for model in (Loan, CirculationSettings, Reader):
        table = model.__table__
        session.execute(delete(table).where(table.c.school_id.in_(ids)))
    session.commit()


@pytest.fixture(scope="module")
def world(app):
    from app.extensions import db

    city = plan_city(SCALE, SEED)
    with app.app_context():
        generate_city(db.session, scale=SCALE, seed=SEED)
        ids = dict(db.session.execute(select(OrgUnit.code, OrgUnit.id).where(
            OrgUnit.code.in_([s["code"] for s in city["schools"]]))).all())
        progress = []
        try:
            generate_catalogue(db.session, scale=SCALE, seed=SEED, volume=VOLUME)
            readers = generate_readers(db.session, scale=SCALE, seed=SEED, volume=VOLUME,
                                       chunk_readers=150)
            # Small chunks: several transactions, as at full scale.
            loans = generate_circulation(db.session, scale=SCALE, seed=SEED, volume=VOLUME,
                                         progress=progress.append, chunk_loans=3000)
        except BaseException:
            db.session.rollback()
            remove_circulation(db.session, ids.values())
            remove_catalogue(db.session, ids.values())
            remove_city(db.session, city)
            raise
    yield {"ids": ids, "readers": readers, "loans": loans, "progress": progress,
           "plan": plan_readers(SCALE, SEED, VOLUME)}
    with app.app_context():
        db.session.rollback()
        remove_circulation(db.session, ids.values())
        remove_catalogue(db.session, ids.values())
        remove_city(db.session, city)


def _count(session, query):
    return session.execute(select(func.count()).select_from(query.subquery())).scalar()


# --- Plans: pure data.


def test_full_scale_plan_is_the_city_of_2025_2026():
    plan = plan_readers(1.0, 1)
    assert len(plan["schools"]) == 3500
    assert 2_450_000 <= plan["students"] <= 2_600_000  # 2,528,789 students in 2025–26
    assert 90_000 <= plan["teachers"] + plan["staff"] <= 150_000  # > 100,000 staff
    by_level = collections.Counter()
    for school in plan["schools"]:
        for level, _key, n in school["groups"]:
            by_level[level] += n
    assert 0.9 < by_level["primary"] / 939_002 < 1.1
    assert 0.9 < by_level["preschool"] / 478_458 < 1.1


def test_a_school_has_classes_of_35_to_40_with_vietnamese_names():
    entry = next(s for s in plan_readers(1.0, 1)["schools"] if s["category"] == "THCS")
    rows = plan_school_readers(entry, 1)
    assert rows == plan_school_readers(entry, 1)  # deterministic
    students = [r for r in rows if r[0] == "HS"]
    assert len(students) == entry["students"]
    assert len(rows) - len(students) == entry["teachers"] + entry["staff"]
    classes = collections.Counter(r[4] for r in students)
    assert all(30 <= n <= 45 for n in classes.values()), classes
    assert {r[5] for r in students} == {6, 7, 8, 9}
    assert all(r[4].startswith(str(r[5])) for r in students)  # 6A1 / 6/1 in grade 6
    family = collections.Counter(r[2].split()[0] for r in rows)
    assert family.most_common(1)[0][0] == "Nguyễn"
    assert 0.3 < family["Nguyễn"] / len(rows) < 0.45
    assert len({r[9] for r in rows}) == len({r[10] for r in rows}) == len(rows)  # cards
    assert all(r[10] == entry["code"] + r[9] for r in rows)
    grade6 = [r for r in students if r[5] == 6]
    assert all(r[6].startswith(("2014", "2013")) for r in grade6)  # born 2014 (a few 2013)


# --- What was written.


def test_readers_match_the_plan(world, db_session):
    ids, plan = world["ids"], world["plan"]
    stats = world["readers"]
    assert stats["schools_done"] == len(plan["schools"]) and stats["skipped"] == 0
    counts = dict(db_session.execute(select(ReaderCategory.code, func.count(Reader.id)).join(
        Reader, Reader.category_id == ReaderCategory.id).where(
        Reader.school_id.in_(ids.values())).group_by(ReaderCategory.code)).all())
    assert counts == {"HS": plan["students"], "GV": plan["teachers"], "CBNV": plan["staff"]}
    assert stats["readers"] == sum(counts.values())
    # Card numbers and barcodes are unique in each school.
    for column in (Reader.card_number, Reader.barcode):
        duplicates = db_session.execute(select(Reader.school_id, column).where(
            Reader.school_id.in_(ids.values())).group_by(Reader.school_id, column).having(
            func.count() > 1)).all()
        assert duplicates == []


def test_loans_figures_and_settings(world, db_session):
    ids, stats = world["ids"], world["loans"]
    settings = db_session.execute(select(func.count()).select_from(CirculationSettings).where(
        CirculationSettings.school_id.in_(ids.values()))).scalar()
    assert settings == stats["settings"] == len(ids)
    by_status = dict(db_session.execute(select(Loan.status, func.count()).where(
        Loan.school_id.in_(ids.values())).group_by(Loan.status)).all())
    assert sum(by_status.values()) == stats["loans"]
    assert by_status[LoanStatus.active] == stats["open"]
    assert by_status[LoanStatus.returned] == stats["returned"]
    students = world["plan"]["students"]
    assert 12 <= stats["loans"] / students <= 24  # about 20 loans per student and year
    assert 0.94 <= by_status[LoanStatus.returned] / stats["loans"] <= 0.99
    assert 0 < stats["overdue"] < stats["open"]
    assert len(world["progress"]) > 1 and world["progress"][-1]["loans"] == stats["loans"]


def test_a_copy_is_never_lent_twice_at_once(world, db_session):
    ids = list(world["ids"].values())
    open_per_copy = db_session.execute(select(Loan.copy_id).where(
        Loan.school_id.in_(ids), Loan.status == LoanStatus.active).group_by(
        Loan.copy_id).having(func.count() > 1)).all()
    assert open_per_copy == []
    # Nor over time: each loan of a copy starts after the previous one ended.
    far = datetime.datetime(2100, 1, 1)
    previous = (None, None)
    for copy_id, loaned_at, returned_at in db_session.execute(select(
            Loan.copy_id, Loan.loaned_at, Loan.returned_at).where(Loan.school_id.in_(ids))
            .order_by(Loan.copy_id, Loan.loaned_at)):
        if copy_id == previous[0]:
            assert loaned_at > previous[1], copy_id
        previous = (copy_id, returned_at or far)


def test_copy_statuses_follow_the_open_loans(world, db_session):
    ids = list(world["ids"].values())
    on_loan = set(db_session.execute(select(Copy.id).where(
        Copy.school_id.in_(ids), Copy.status == CopyStatus.on_loan)).scalars())
    lent = set(db_session.execute(select(Loan.copy_id).where(
        Loan.school_id.in_(ids), Loan.status == LoanStatus.active)).scalars())
    assert on_loan == lent and len(lent) == world["loans"]["copies_on_loan"]
    # Only copies on the shelf were lent; every loan stays in its school.
    lent_any = select(Loan.copy_id).where(Loan.school_id.in_(ids))
    assert _count(db_session, select(Copy.id).where(
        Copy.id.in_(lent_any), Copy.status.not_in([CopyStatus.available,
                                                   CopyStatus.on_loan]))) == 0
    for model, column in ((Copy, Loan.copy_id), (Reader, Loan.reader_id)):
        assert _count(db_session, select(Loan.id).join(model, model.id == column).where(
            Loan.school_id.in_(ids), model.school_id != Loan.school_id)) == 0


def test_due_dates_follow_the_city_rules(world, db_session):
    ids = list(world["ids"].values())
    rows = db_session.execute(select(
        ReaderCategory.code, DocumentType.code, Loan.loaned_at, Loan.due_on, Loan.returned_at,
        Loan.renewals, Loan.status).select_from(Loan).join(
        Reader, Reader.id == Loan.reader_id).join(
        ReaderCategory, ReaderCategory.id == Reader.category_id).join(
        Copy, Copy.id == Loan.copy_id).join(Record, Record.id == Copy.record_id).join(
        DocumentType, DocumentType.id == Record.document_type_id).where(
        Loan.school_id.in_(ids))).all()
    kinds = collections.Counter()
    for category, doc, loaned_at, due_on, returned_at, renewals, status in rows:
        day = (loaned_at + LOCAL).date()
        assert datetime.date(2025, 9, 5) <= day <= UNTIL and day.weekday() != 6
        assert day not in (datetime.date(2026, 2, 17), datetime.date(2025, 9, 2))  # Tết, 2/9
        days = (due_on - day).days
        if doc == "SGK":  # until the end of the year: 31/05/2026 is a Sunday
            assert due_on == datetime.date(2026, 6, 1)
        elif renewals == 0:
            base = {"HS": 10}.get(category, 30)
            # Moved to the next open day: at most past the nine days of Tết.
            assert base <= days <= base + 10, (category, doc, day, due_on)
            kinds[category] += 1
        if status == LoanStatus.returned:
            assert returned_at > loaned_at and (returned_at + LOCAL).date() <= UNTIL
        elif status == LoanStatus.active:
            assert returned_at is None
    assert kinds["HS"] and kinds["GV"]
    assert any(doc == "SGK" for _c, doc, *_rest in rows)  # the year's textbooks


def test_no_reader_is_over_the_limit(world, db_session):
    open_loans = db_session.execute(select(Loan.reader_id, func.count()).join(
        Reader, Reader.id == Loan.reader_id).join(Copy, Copy.id == Loan.copy_id).join(
        Record, Record.id == Copy.record_id).where(
        Loan.school_id.in_(world["ids"].values()), Loan.status == LoanStatus.active,
        Reader.category_id == select(ReaderCategory.id).where(
            ReaderCategory.code == "HS").scalar_subquery(),
        Record.document_type_id != select(DocumentType.id).where(
            DocumentType.code == "SGK").scalar_subquery()).group_by(Loan.reader_id)).all()
    assert open_loans and max(n for _r, n in open_loans) <= 3


def test_the_desk_works_on_generated_loans(world, db_session):
    """A generated open loan comes back and the copy goes out again (services)."""
    ids = list(world["ids"].values())
    loan = db_session.execute(select(Loan).where(
        Loan.school_id.in_(ids), Loan.status == LoanStatus.active).order_by(
        Loan.id).limit(1)).scalar_one()
    copy, school_id = loan.copy, loan.school_id
    returned, _hold = services.checkin(db_session, None, school_id, copy.barcode,
                                       today=UNTIL)
    assert returned.id == loan.id and copy.status == CopyStatus.available
    reader = db_session.execute(select(Reader).where(
        Reader.school_id == school_id, Reader.status == ReaderStatus.active,
        Reader.valid_until > UNTIL, ~Reader.id.in_(select(Loan.reader_id).where(
            Loan.status == LoanStatus.active))).limit(1)).scalar_one()
    again = services.checkout(db_session, None, school_id, reader, copy.barcode, today=UNTIL)
    assert again.copy_id == copy.id and copy.status == CopyStatus.on_loan
    db_session.rollback()


def test_a_second_run_writes_nothing(world, db_session):
    ids = world["ids"].values()
    before = _count(db_session, select(Loan.id).where(Loan.school_id.in_(ids)))
    readers = generate_readers(db_session, scale=SCALE, seed=SEED, volume=VOLUME)
    loans = generate_circulation(db_session, scale=SCALE, seed=SEED, volume=VOLUME)
    assert readers["schools"] == loans["schools"] == 0 and loans["loans"] == 0
    assert readers["skipped"] == loans["skipped"] == len(world["ids"])
    assert _count(db_session, select(Loan.id).where(Loan.school_id.in_(ids))) == before


def test_refused_without_the_generated_city(world, db_session):
    with pytest.raises(ValidationError) as err:
        generate_circulation(db_session, scale=0.05, seed=SEED, volume=VOLUME)
    assert "7910" in str(err.value)  # the city of that scale is not there


def test_the_command_generates_the_circulation_on_request(app, monkeypatch):
    """`flask generate-city --catalogue --circulation` on a fresh database (small volumes)."""
    from app import create_app
    from app.catalog import generator as catalogue_generator
    from app.core.setup import prepare_database
    from app.extensions import db
    from tests.conftest import _database_url

    runner = app.test_cli_runner()
    assert "--circulation / --no-circulation" in runner.invoke(
        args=["generate-city", "--help"]).output
    result = runner.invoke(args=["generate-city", "--scale", "0.002", "--circulation"])
    assert result.exit_code == 2 and "--catalogue" in result.output
    monkeypatch.setattr(catalogue_generator, "generate_catalogue",
                        functools.partial(generate_catalogue, volume=0.01))
    monkeypatch.setattr(readers_generator, "generate_readers",
                        functools.partial(generate_readers, volume=0.01))
    monkeypatch.setattr(generator, "generate_circulation",
                        functools.partial(generate_circulation, volume=0.01))
    tmpdir = tempfile.mkdtemp(prefix="thuvien-circgen-")
    url, pg = _database_url(tmpdir)
    other = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                        "SYNC_ROLES_ON_START": False, "SERVER_NAME": None})
    try:
        with other.app_context():
            prepare_database(load_demo=False)
        result = other.test_cli_runner().invoke(args=[
            "generate-city", "--scale", "0.002", "--seed", "3", "--catalogue", "--circulation"])
        assert result.exit_code == 0, result.output
        with other.app_context():
            loans = db.session.execute(select(func.count()).select_from(Loan)).scalar()
            readers = db.session.execute(select(func.count()).select_from(Reader)).scalar()
        assert readers == sum(plan_readers(0.002, 3, 0.01)[k]
                              for k in ("students", "teachers", "staff"))
        assert loans > readers
        assert f"Đã tạo {loans:,} lượt mượn".replace(",", ".") in result.output
        assert "Traceback" not in result.output
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
        if pg:
            admin, name = pg
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
