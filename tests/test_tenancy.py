"""Tenancy and read-only roles, swept over every registered view route for every role.

The expectations are written here independently of app.core.security: who may read and
who may write what, and that another school's row is never reachable.
"""
import re

import pytest
from flask_login import login_user
from sqlalchemy import func, select

from app.collection.models import Location, LocationKind
from app.core.errors import TenancyError
from app.core.views import SchoolScopedModelView
from app.extensions import db
from app.org.models import AppUser, OrgLink, OrgUnit, SchoolYear
from tests.helpers import post_form, session_csrf, text

ROLES = {
    "admin": "dept_admin",
    "thanhtra": "inspector",
    "phong": "officer",
    "phongvhxh": "officer",
    "thuvien": "librarian",
    "hieutruong": "principal",
    "thuvien2": "librarian",
    "giaovien": "reader",
    "hocsinh": "reader",
}
READ_ONLY = {"thanhtra", "phong", "phongvhxh", "hieutruong"}
READERS = {"giaovien", "hocsinh"}
# Schools each demo account may see (codes), from the demo city's dated tree.
VISIBLE = {
    "admin": None,  # every school
    "thanhtra": None,
    # District office closed on 30/06/2025: its schools on its last day.
    "phong": {"79000001", "79000003"},
    "phongvhxh": {"79000001", "79000003"},
    "thuvien": {"79000001"},
    "hieutruong": {"79000001"},
    "thuvien2": {"79000002"},
}
WRITE_ENDPOINTS = {"add", "edit", "delete", "action", "action_post", "this_form_post"}
SELF_SERVICE = {"UserInfoEditView", "ResetMyPasswordView", "LocaleView", "UtilView",
                "AuthDBView", "HomeView", "SecurityApi"}


def school_id(code):
    return db.session.execute(select(OrgUnit.id).where(OrgUnit.code == code)).scalar_one()


def fingerprint():
    """Row counts of every table a write could touch (nothing may change on a refusal)."""
    db.session.rollback()
    return tuple(db.session.execute(select(func.count()).select_from(m)).scalar()
                 for m in (Location, OrgUnit, OrgLink, SchoolYear, AppUser))


def view_routes(app):
    """(view instance, endpoint method, rule) of every registered application view."""
    views = {v.endpoint: v for v in app.appbuilder.baseviews}
    for rule in app.url_map.iter_rules():
        if "." not in rule.endpoint:
            continue
        blueprint, method = rule.endpoint.split(".", 1)
        if blueprint in views:
            yield views[blueprint], method, rule


def sample_pk(app, view, code=None):
    """The first row of the view's model (of school `code` when given)."""
    model = getattr(getattr(view, "datamodel", None), "obj", None)
    if model is None:
        return 1
    query = select(model.id)
    if code and hasattr(model, "school_id"):
        query = query.where(model.school_id == school_id(code))
    return db.session.execute(query.order_by(model.id)).scalars().first() or 1


# The principal's one write: approving a weeding round of their own school (its rules, and
# that nobody else may approve, are tested in tests/test_weeding.py).
PRINCIPAL_WRITES = {("WeedingApprovalView", "approve")}
SELF_SERVICE_ACTIONS = {"resetmypassword", "userinfoedit"}
# Actions that only read (view class, action): read-only roles may run them on the rows of
# their scope (POST, as the list page sends them); readers may not.
READ_ACTIONS = {("RecordView", "export_marc"), ("RecordView", "export_marcxml"),
                ("ReaderView", "print_cards")}
# Writes an office officer may do on their own office's rows (not school data): starting a
# stocktake campaign for the office's schools (tests/test_stocktake.py::test_campaigns checks
# it, and that a closed office is refused).
OFFICE_WRITES = {("StocktakeCampaignView", "create")}
OFFICERS = {"phong", "phongvhxh"}


def action_names(view, default=None):
    return [n for n in (getattr(view, "actions", None) or default or {})
            if n not in SELF_SERVICE_ACTIONS]


def build_requests(app, view, method, rule, pk, own_pk):
    """(url, extra form data, action name or None) of every concrete request of a rule: one
    per action for action routes, on a row of the user's scope for a read action."""
    name = type(view).__name__

    def pk_for(action):
        return own_pk if (name, action) in READ_ACTIONS else pk

    if "name" in rule.arguments:
        return [(build_url(app, view, method, rule, pk_for(n), n), {}, n)
                for n in action_names(view, {"x": None})]
    if method == "action_post":
        url = build_url(app, view, method, rule, pk)
        return [(url, {"action": n, "rowid": str(pk_for(n))}, n) for n in action_names(view)]
    return [(build_url(app, view, method, rule, pk), {}, None)]


def build_url(app, view, method, rule, pk, action_name="x"):
    values = {}
    for arg in rule.arguments:
        if arg == "pk":
            values[arg] = pk
        elif arg == "name":
            values[arg] = action_name
        elif arg == "filename":
            values[arg] = "x"
        elif arg == "table":
            values[arg] = "location"
        elif arg == "row_id":
            values[arg] = pk
        elif arg == "locale":
            values[arg] = "vi"
        else:
            values[arg] = "1"
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


@pytest.mark.parametrize("username", sorted(READ_ONLY | READERS))
def test_read_only_and_reader_roles_cannot_write_anything(app, login, username):
    c = login(username)
    # A school the user sees (for read actions); None: any school.
    own_code = min(VISIBLE[username]) if VISIBLE.get(username) else None
    with app.app_context():
        before = fingerprint()
        token = session_csrf(c)
        checked = 0
        reads_run = set()
        for view, method, rule in view_routes(app):
            name = type(view).__name__
            if name in SELF_SERVICE or rule.endpoint.startswith("AuthDBView"):
                continue
            if method not in WRITE_ENDPOINTS and "POST" not in rule.methods:
                continue
            if name == "AppUserDBModelView" and method in ("userinfo",):
                continue
            if username in OFFICERS and (name, method) in OFFICE_WRITES:
                continue
            if (name, method) in PRINCIPAL_WRITES and ROLES[username] == "principal":
                continue
            pk = sample_pk(app, view)
            own_pk = sample_pk(app, view, own_code)
            for url, extra, action in build_requests(app, view, method, rule, pk, own_pk):
                for verb in ("get", "post"):
                    if verb.upper() not in rule.methods:
                        continue
                    resp = getattr(c, verb)(url, data={"name": "x", "code": "HACK",
                                                       "csrf_token": token, **extra})
                    if (name, action) in READ_ACTIONS and username in READ_ONLY \
                            and verb == "post":
                        # A read: the file of the user's own row.
                        assert resp.status_code == 200, (username, url, resp.status_code)
                        assert "attachment" in resp.headers["Content-Disposition"], url
                        assert resp.get_data(), url  # (and the stream is consumed)
                        reads_run.add((name, action))
                        checked += 1
                        continue
                    assert resp.status_code in (302, 401, 403, 404, 405), (
                        username, verb, url, resp.status_code)
                    if resp.status_code == 302 and "/login" not in resp.headers["Location"]:
                        # FAB refuses actions by redirecting back with a flash message.
                        with c.session_transaction() as sess:
                            flashes = [m for _cat, m in sess.pop("_flashes", [])]
                        assert "Truy cập bị từ chối" in flashes, (username, url, flashes)
                    checked += 1
        assert checked > 20
        assert reads_run == (READ_ACTIONS if username in READ_ONLY else set())
        assert fingerprint() == before


@pytest.mark.parametrize("username", sorted(READERS))
def test_readers_see_no_management_screen(app, login, username):
    c = login(username)
    with app.app_context():
        for view, method, rule in view_routes(app):
            if type(view).__name__ in SELF_SERVICE or method in ("userinfo",):
                continue
            if "GET" not in rule.methods or rule.arguments - {"pk"}:
                continue
            url = build_url(app, view, method, rule, sample_pk(app, view))
            resp = c.get(url)
            assert resp.status_code in (302, 403, 404, 405), (username, url, resp.status_code)


def _scoped_views(app):
    return [v for v in app.appbuilder.baseviews if isinstance(v, SchoolScopedModelView)]


@pytest.mark.parametrize("username", sorted(VISIBLE))
def test_every_scoped_view_hides_other_schools(app, login, username):
    c = login(username)
    visible = VISIBLE[username]
    with app.app_context():
        assert _scoped_views(app), "no school-scoped view registered"
        all_codes = set(db.session.execute(
            select(OrgUnit.code).where(OrgUnit.kind == "school")).scalars())
        token = session_csrf(c)
        for view in _scoped_views(app):
            model = view.datamodel.obj
            base = f"/{view.route_base.strip('/')}"
            # The list shows exactly the rows of the user's schools.
            codes = all_codes if visible is None else visible
            ids = [school_id(code) for code in codes]
            expected = db.session.execute(
                select(func.count()).select_from(model).where(model.school_id.in_(ids))
            ).scalar()
            page = text(c.get(f"{base}/list/?psize_{view.__class__.__name__}=100"))
            count = re.search(r"Số bản ghi:</strong>\s*(\d+)", page)
            assert count and int(count.group(1)) == expected, (username, model)
            for code in all_codes:
                row = db.session.execute(
                    select(model.id).where(model.school_id == school_id(code))
                ).scalars().first()
                if row is None:
                    continue
                show = c.get(f"{base}/show/{row}")
                if visible is None or code in visible:
                    assert show.status_code == 200, (username, code)
                else:
                    # Another school's row by URL: not found, for reading and for writing.
                    assert show.status_code == 404, (username, code)
                    for action in ("edit", "delete"):
                        resp = c.post(f"{base}/{action}/{row}",
                                      data={"name": "x", "csrf_token": token})
                        assert resp.status_code in (403, 404), (username, action, code)


def test_librarian_cannot_plant_a_row_in_another_school(app, login):
    c = login("thuvien")
    with app.app_context():
        own, other = school_id("79000001"), school_id("79000002")
        resp = post_form(c, "/locationview/add", {
            "code": "T-PLANT", "name": "Tủ thử", "kind": "open_stack", "is_active": "y",
            "school": str(other), "school_id": str(other)})
        assert resp.status_code == 302
        row = db.session.execute(select(Location).where(Location.code == "T-PLANT")).scalar_one()
        assert row.school_id == own
        # Editing it with another school's id in the form keeps it in its school.
        resp = post_form(c, f"/locationview/edit/{row.id}", {
            "code": "T-PLANT", "name": "Tủ thử 2", "kind": "open_stack",
            "school_id": str(other), "school": str(other)})
        assert resp.status_code == 302, re.findall(r"alert-(?:danger|warning)[^>]*>(.*?)</div>", text(resp), re.S)
        db.session.expire_all()
        row = db.session.get(Location, row.id)
        assert row.school_id == own and row.name == "Tủ thử 2"
        db.session.delete(row)
        db.session.commit()


def test_flush_guard_refuses_foreign_school_writes_from_any_code_path(app):
    """Even code that forgets the view's checks cannot write another school's data."""
    with app.app_context():
        librarian = db.session.execute(
            select(AppUser).where(AppUser.username == "thuvien")).scalar_one()
        principal = db.session.execute(
            select(AppUser).where(AppUser.username == "hieutruong")).scalar_one()
        other = school_id("79000002")
        own = school_id("79000001")
        before = fingerprint()
        for user, school in ((librarian, other), (principal, own)):
            with app.test_request_context():
                login_user(user)
                db.session.add(Location(school_id=school, code="X-GUARD", name="x",
                                        kind=LocationKind.other))
                with pytest.raises(TenancyError):
                    db.session.flush()
                db.session.rollback()
        assert fingerprint() == before



def test_long_id_lists_select_exactly_the_same_rows(app):
    """ids_in: a short list stays IN (…); a long one is one array parameter on PostgreSQL
    (an office's hundreds of schools). Same rows either way, none outside the list."""
    from app.core.tenancy import ARRAY_IN_ABOVE, ids_in

    with app.app_context():
        all_ids = sorted(db.session.execute(select(OrgUnit.id)).scalars())
        wanted = set(all_ids[::2]) | {10**9 + n for n in range(ARRAY_IN_ABOVE + 5)}
        for ids in (wanted, set(all_ids[:3]), {-1}):
            clause = ids_in(OrgUnit.id, ids)
            got = set(db.session.execute(select(OrgUnit.id).where(clause)).scalars())
            assert got == ids & set(all_ids)
            compiled = str(clause.compile(dialect=db.engine.dialect))
            uses_array = len(ids) > ARRAY_IN_ABOVE and db.engine.dialect.name == "postgresql"
            assert ("ANY" in compiled) == uses_array, compiled
