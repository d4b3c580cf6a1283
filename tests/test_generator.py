"""The city generator (app.org.generator): plan, inserts, dated places, scopes, refusal.

The generated city shares the test database with the other tests: figures are compared as
deltas or filtered by the generated codes, and the rows are removed at the end of the module.
"""
import collections
import datetime
import re
import shutil
import tempfile

import click
import pytest
from sqlalchemy import delete, func, or_, select

from app.core.errors import ValidationError
from app.core.security import ROLE_LIBRARIAN, ROLE_OFFICER, ROLE_PRINCIPAL
from app.core.tenancy import scope_for
from app.org.demo import SCHOOLS as DEMO_SCHOOLS
from app.org.generator import LAST_DISTRICT_DAY, REFORM_DAY, generate_city, plan_city
from app.org.models import AppUser, Hierarchy, OrgLink, OrgUnit, UnitKind
from app.org.services import parent_at
from tests import helpers

SCALE = 0.1  # 350 schools, 2 district offices, 17 ward offices, 2 clusters: fast, not trivial
SEED = 20250701
AFTER_REFORM = datetime.date(2025, 9, 5)


def _counts(session):
    from flask_appbuilder.security.sqla.models import assoc_user_role

    from app.collection.models import Location

    kinds = dict(session.execute(
        select(OrgUnit.kind, func.count()).group_by(OrgUnit.kind)).all())
    out = {kind.name: kinds.get(kind, 0) for kind in UnitKind}
    for name, table in [("users", AppUser.__table__), ("user_roles", assoc_user_role),
                        ("links", OrgLink.__table__), ("locations", Location.__table__)]:
        out[name] = session.execute(select(func.count()).select_from(table)).scalar()
    return out


def _delta(after, before):
    return {k: after[k] - before[k] for k in after}


def _codes(plan):
    return [u["code"] for key in ("districts", "wards", "clusters", "schools")
            for u in plan[key]]


def _remove(session, plan):
    """Delete a generated city (Core deletes, like the inserts)."""
    from flask_appbuilder.security.sqla.models import assoc_user_role

    from app.collection.models import Location

    unit_ids = set(session.execute(
        select(OrgUnit.id).where(OrgUnit.code.in_(_codes(plan)))).scalars())
    user_ids = set(session.execute(select(AppUser.id).where(
        AppUser.username.in_([u["username"] for u in plan["users"]]))).scalars())
    if user_ids:
        session.execute(delete(assoc_user_role).where(assoc_user_role.c.user_id.in_(user_ids)))
        session.execute(delete(AppUser.__table__).where(AppUser.__table__.c.id.in_(user_ids)))
    if unit_ids:
        session.execute(delete(Location.__table__).where(
            Location.__table__.c.school_id.in_(unit_ids)))
        session.execute(delete(OrgLink.__table__).where(or_(
            OrgLink.__table__.c.child_id.in_(unit_ids),
            OrgLink.__table__.c.parent_id.in_(unit_ids))))
        session.execute(delete(OrgUnit.__table__).where(OrgUnit.__table__.c.id.in_(unit_ids)))
    session.commit()


@pytest.fixture(scope="module")
def city(app):
    """The generated city, written once for the module next to the demo city."""
    from app.extensions import db

    plan = plan_city(SCALE, SEED)
    with app.app_context():
        before = _counts(db.session)
        stats = generate_city(db.session, scale=SCALE, seed=SEED)
        after = _counts(db.session)
        ids = dict(db.session.execute(
            select(OrgUnit.code, OrgUnit.id).where(OrgUnit.code.in_(_codes(plan)))).all())
    yield {"plan": plan, "stats": stats, "before": before, "after": after, "ids": ids}
    with app.app_context():
        db.session.rollback()
        _remove(db.session, plan)


def _user(session, username):
    return session.execute(select(AppUser).where(AppUser.username == username)).scalar_one()


def _department(session):
    return session.execute(
        select(OrgUnit).where(OrgUnit.kind == UnitKind.department).order_by(OrgUnit.id)
    ).scalars().first()


# --- The plan: pure data, deterministic.


def test_plan_is_deterministic_and_depends_on_the_seed():
    assert plan_city(SCALE, SEED) == plan_city(SCALE, SEED)
    one, two = plan_city(0.05, 1), plan_city(0.05, 2)
    names = lambda plan: [s["name"] for s in plan["schools"]]  # noqa: E731
    assert names(one) != names(two)
    assert [u["last_name"] for u in one["users"]] != [u["last_name"] for u in two["users"]]
    # Codes do not depend on the seed: one generated city per database.
    assert [s["code"] for s in one["schools"]] == [s["code"] for s in two["schools"]]


def test_full_scale_plan_looks_like_the_city():
    plan = plan_city(1.0, 1)
    schools = plan["schools"]
    assert (len(plan["districts"]), len(plan["wards"]), len(plan["clusters"])) == (22, 168, 16)
    assert 3400 <= len(schools) <= 3600
    per_cat = collections.Counter(s["category"] for s in schools)
    assert per_cat == {"MN": 1700, "TH": 900, "THCS": 560, "THPT": 290, "MULTI": 50}
    multi_thpt = [s for s in schools if s["category"] == "MULTI"
                  and "upper_secondary" in s["levels"]]
    assert 0 < len(multi_thpt) < 50
    non_public = sum(not s["is_public"] for s in schools) / len(schools)
    assert 0.28 <= non_public <= 0.38
    wards = collections.Counter(w["ward"].split()[0] for w in plan["wards"])
    assert wards == {"Phường": 113, "Xã": 54, "Đặc": 1}
    assert all(w["name"].startswith("Phòng Văn hóa – Xã hội ") for w in plan["wards"])
    assert {c["name"] for c in plan["clusters"]} == {f"Cụm trường số {i}" for i in range(1, 17)}
    assert "Phòng Giáo dục và Đào tạo huyện Củ Chi" in {d["name"] for d in plan["districts"]}

    codes = [s["code"] for s in schools]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"79\d{6}", c) and c >= "79100000" for c in codes)
    assert not set(codes) & {row[0] for row in DEMO_SCHOOLS}
    for key in ("username", "email"):
        values = [u[key] for u in plan["users"]]
        assert len(set(values)) == len(values)
    assert len(plan["users"]) == 2 * len(schools) + 22 + 168 + 16
    names = [s["name"] for s in schools]
    assert len(set(names)) == len(names)
    assert not set(names) & {row[1] for row in DEMO_SCHOOLS}
    assert all(n.startswith("Trường ") for n in names)
    # Each ward office takes its schools from one district office.
    districts_of_ward = collections.defaultdict(set)
    for s in schools:
        if s["under_department"]:
            assert s["ward_office"] is s["district_office"] is s["cluster"] is None
        else:
            districts_of_ward[s["ward_office"]].add(s["district_office"])
    assert all(len(d) == 1 for d in districts_of_ward.values())
    assert len(districts_of_ward) == 168


def test_tiny_scale_still_has_every_kind():
    plan = plan_city(0.001, 7)
    assert len(plan["schools"]) >= 6
    assert {s["category"] for s in plan["schools"]} == {"MN", "TH", "THCS", "THPT", "MULTI"}
    assert (len(plan["districts"]), len(plan["wards"]), len(plan["clusters"])) == (1, 1, 1)


def test_scale_must_be_positive():
    with pytest.raises(ValidationError):
        plan_city(0, 1)


# --- The inserts.


def test_counts_by_kind_match_the_returned_figures(city):
    stats, plan = city["stats"], city["plan"]
    delta = _delta(city["after"], city["before"])
    assert delta["school"] == stats["schools"] == len(plan["schools"])
    assert delta["district_office"] == stats["districts"] == 2
    assert delta["ward_office"] == stats["wards"] == 17
    assert delta["cluster"] == stats["clusters"] == 2
    assert (delta["district_office"] + delta["ward_office"] + delta["cluster"]
            == stats["offices"])
    assert delta["department"] == 0 and stats["department_created"] is False
    assert delta["users"] == delta["user_roles"] == stats["users"]
    assert stats["users"] == 2 * stats["schools"] + stats["offices"]
    assert delta["locations"] == stats["schools"]
    assert delta["links"] == stats["links"]


def test_database_holds_the_plan(city, db_session):
    plan = city["plan"]
    rows = dict(db_session.execute(
        select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(_codes(plan)))).all())
    assert rows == {u["code"]: u["name"] for key in ("districts", "wards", "clusters", "schools")
                    for u in plan[key]}
    school = plan["schools"][0]
    unit = db_session.get(OrgUnit, city["ids"][school["code"]])
    assert unit.kind == UnitKind.school
    assert unit.is_public == school["is_public"] and unit.ward == school["ward"]
    assert {f"teaches_{lvl}" for lvl in school["levels"]} == {
        f for f, _label in OrgUnit.LEVEL_FIELDS if getattr(unit, f)}
    district = db_session.get(OrgUnit, city["ids"][plan["districts"][0]["code"]])
    assert district.valid_to == LAST_DISTRICT_DAY
    ward = db_session.get(OrgUnit, city["ids"][plan["wards"][0]["code"]])
    assert ward.valid_from == REFORM_DAY and ward.valid_to is None


def test_local_schools_move_from_district_to_ward_office_on_reform_day(city, db_session):
    plan, ids = city["plan"], city["ids"]
    local = [s for s in plan["schools"] if not s["under_department"]]
    assert local
    for s in local:
        sid = ids[s["code"]]
        before = parent_at(db_session, sid, LAST_DISTRICT_DAY)
        after = parent_at(db_session, sid, REFORM_DAY)
        assert before.kind == UnitKind.district_office and before.code == s["district_office"]
        assert after.kind == UnitKind.ward_office and after.code == s["ward_office"]
        cluster = parent_at(db_session, sid, REFORM_DAY, Hierarchy.professional)
        assert cluster.kind == UnitKind.cluster and cluster.code == s["cluster"]
        assert parent_at(db_session, sid, LAST_DISTRICT_DAY, Hierarchy.professional) is None
    # Exactly one administrative parent on each side of the reform, for every local school.
    for day in (LAST_DISTRICT_DAY, REFORM_DAY):
        per_child = db_session.execute(
            select(OrgLink.child_id, func.count()).where(
                OrgLink.child_id.in_([ids[s["code"]] for s in local]),
                OrgLink.hierarchy == Hierarchy.administrative,
                OrgLink.valid_from <= day,
                or_(OrgLink.valid_to.is_(None), OrgLink.valid_to >= day),
            ).group_by(OrgLink.child_id)).all()
        assert len(per_child) == len(local) and {n for _c, n in per_child} == {1}


def test_thpt_schools_sit_directly_under_the_department(city, db_session):
    dept = _department(db_session)
    thpt = [s for s in city["plan"]["schools"] if s["under_department"]]
    assert thpt and all("upper_secondary" in s["levels"] for s in thpt)
    for s in thpt:
        for day in (LAST_DISTRICT_DAY, REFORM_DAY, AFTER_REFORM):
            assert parent_at(db_session, city["ids"][s["code"]], day).id == dept.id


def test_offices_and_clusters_sit_under_the_department(city, db_session):
    dept = _department(db_session)
    plan, ids = city["plan"], city["ids"]
    for d in plan["districts"]:
        assert parent_at(db_session, ids[d["code"]], LAST_DISTRICT_DAY).id == dept.id
        assert parent_at(db_session, ids[d["code"]], REFORM_DAY) is None
    for w in plan["wards"]:
        assert parent_at(db_session, ids[w["code"]], REFORM_DAY).id == dept.id
        assert parent_at(db_session, ids[w["code"]], LAST_DISTRICT_DAY) is None
    for c in plan["clusters"]:
        assert parent_at(db_session, ids[c["code"]], REFORM_DAY,
                         Hierarchy.professional).id == dept.id


def test_accounts_have_their_role_unit_and_name(city, db_session):
    school = city["plan"]["schools"][0]
    librarian = _user(db_session, "tv" + school["code"])
    principal = _user(db_session, "ht" + school["code"])
    assert [r.name for r in librarian.roles] == [ROLE_LIBRARIAN]
    assert [r.name for r in principal.roles] == [ROLE_PRINCIPAL]
    assert librarian.unit_id == principal.unit_id == city["ids"][school["code"]]
    assert librarian.active and librarian.email == f"tv{school['code']}@gen.thuvien.edu.vn"
    planned = next(u for u in city["plan"]["users"] if u["username"] == librarian.username)
    assert (librarian.first_name, librarian.last_name) == (
        planned["first_name"], planned["last_name"])
    officer = _user(db_session, "cb" + city["plan"]["wards"][0]["code"].lower())
    assert [r.name for r in officer.roles] == [ROLE_OFFICER]


def test_librarian_scope_is_exactly_their_school(city, db_session):
    for school in city["plan"]["schools"][:3] + city["plan"]["schools"][-3:]:
        sid = city["ids"][school["code"]]
        scope = scope_for(db_session, _user(db_session, "tv" + school["code"]))
        assert not scope.all_schools
        assert scope.school_ids == {sid} and scope.write_school_id == sid
        principal = scope_for(db_session, _user(db_session, "ht" + school["code"]))
        assert principal.school_ids == {sid} and principal.write_school_id is None


@pytest.mark.parametrize("key,plan_field", [
    ("wards", "ward_office"), ("districts", "district_office"), ("clusters", "cluster")])
def test_officer_scope_is_the_schools_under_their_office(city, db_session, key, plan_field):
    plan, ids = city["plan"], city["ids"]
    for unit in plan[key]:
        officer = _user(db_session, "cb" + unit["code"].lower())
        # A district office closed on 30/06/2025 keeps the schools of its last day.
        scope = scope_for(db_session, officer, on=AFTER_REFORM)
        expected = {ids[s["code"]] for s in plan["schools"] if s[plan_field] == unit["code"]}
        assert expected and scope.school_ids == expected
        assert not scope.all_schools and scope.write_school_id is None


def test_generated_accounts_log_in_with_the_shared_password(city, login):
    school = city["plan"]["schools"][0]
    resp = login("tv" + school["code"]).get("/")
    assert resp.status_code == 200
    assert school["name"] in helpers.text(resp)
    officer = "cb" + city["plan"]["wards"][0]["code"].lower()
    assert login(officer).get("/").status_code == 200


def test_a_second_run_is_refused_and_saves_nothing(city, db_session):
    before = _counts(db_session)
    for seed in (SEED, SEED + 1):
        with pytest.raises(ValidationError) as err:
            generate_city(db_session, scale=SCALE, seed=seed)
        assert "79100000" in str(err.value)
        assert isinstance(err.value, click.ClickException)  # `flask generate-city`: no traceback
        assert _counts(db_session) == before


def test_the_command_refuses_a_second_run_in_vietnamese(city, app, db_session):
    before = _counts(db_session)
    result = app.test_cli_runner().invoke(
        args=["generate-city", "--scale", str(SCALE), "--seed", str(SEED)])
    assert result.exit_code == 1
    assert "79100000" in result.output and "Traceback" not in result.output
    assert "This database already holds" not in result.output  # translated
    assert _counts(db_session) == before


def test_generates_on_an_empty_database_and_creates_the_department(app):
    """A second application on a fresh database without the demo city."""
    from app import create_app
    from app.core.setup import prepare_database
    from app.extensions import db
    from tests.conftest import _database_url

    tmpdir = tempfile.mkdtemp(prefix="thuvien-gen-")
    url, pg = _database_url(tmpdir)
    other = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                        "SYNC_ROLES_ON_START": False, "SERVER_NAME": None})
    try:
        with other.app_context():
            prepare_database(load_demo=False)
            assert _department(db.session) is None
            # An account of the plan already taken: refused before anything is written.
            db.session.execute(AppUser.__table__.insert().values(
                username="tv79100000", email="someone@example.org", first_name="A",
                last_name="B", active=True))
            db.session.commit()
            before = _counts(db.session)
            with pytest.raises(ValidationError) as err:
                generate_city(db.session, scale=0.005, seed=SEED)
            assert "tv79100000" in str(err.value)
            assert _counts(db.session) == before
            db.session.execute(AppUser.__table__.delete())
            db.session.commit()

            stats = generate_city(db.session, scale=0.005, seed=SEED)
            assert stats["department_created"] is True
            dept = _department(db.session)
            assert (dept.code, dept.name) == (
                "SGD79", "Sở Giáo dục và Đào tạo Thành phố Hồ Chí Minh")
            counts = _counts(db.session)
            assert counts["school"] == stats["schools"] and counts["department"] == 1
            assert counts["users"] == stats["users"]
            thpt = next(s for s in plan_city(0.005, SEED)["schools"] if s["under_department"])
            tid = db.session.execute(
                select(OrgUnit.id).where(OrgUnit.code == thpt["code"])).scalar_one()
            assert parent_at(db.session, tid, AFTER_REFORM).id == dept.id
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
        if pg:
            admin, name = pg
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
