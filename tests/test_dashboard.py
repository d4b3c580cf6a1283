"""Each role's home page: real figures of its scope and at least one chart, in Vietnamese."""
import json
import re

from sqlalchemy import func, select

from app.collection.models import Location
from app.extensions import db
from app.org.models import AppUser, OrgUnit, UnitKind
from tests.helpers import text


def cards(page):
    """{card label: figure} as shown on the dashboard."""
    found = re.findall(r'</i>\s*([^<]+?)</div>\s*<div class="dashboard-figure"[^>]*>([\d.]+)<',
                       page)
    return {label.strip(): int(value.replace(".", "")) for label, value in found}


def charts(page):
    match = re.search(r"var charts = (\[.*?\]);\n", page, re.S)
    return json.loads(match.group(1)) if match else []


def school_ids(codes):
    return db.session.execute(select(OrgUnit.id).where(OrgUnit.code.in_(codes))).scalars().all()


def test_department_dashboard_counts_every_school(app, login):
    page = text(login("thanhtra").get("/"))
    with app.app_context():
        schools = db.session.execute(select(func.count()).select_from(OrgUnit).where(
            OrgUnit.kind == UnitKind.school, OrgUnit.valid_to.is_(None))).scalar()
        public = db.session.execute(select(func.count()).select_from(OrgUnit).where(
            OrgUnit.kind == UnitKind.school, OrgUnit.valid_to.is_(None),
            OrgUnit.is_public.is_(True))).scalar()
        thcs = db.session.execute(select(func.count()).select_from(OrgUnit).where(
            OrgUnit.kind == UnitKind.school, OrgUnit.valid_to.is_(None),
            OrgUnit.teaches_lower_secondary.is_(True))).scalar()
    figures = cards(page)
    assert figures["Trường học"] == schools
    assert figures["Trường công lập"] == public
    assert figures["Trường ngoài công lập"] == schools - public
    levels = next(c for c in charts(page) if c["id"] == "chart-levels")
    assert dict(zip(levels["labels"], levels["values"]))["THCS"] == thcs
    assert "Bảng điều khiển" in page and "chart.umd.min.js" in page


def test_office_dashboard_counts_its_schools_only(app, login):
    import datetime

    from app.org.models import OrgLink

    page = text(login("phongvhxh").get("/"))
    today = datetime.date.today()
    with app.app_context():
        office = db.session.execute(select(OrgUnit).where(OrgUnit.code == "VHXH-SG")
                                    ).scalar_one()
        under = db.session.execute(
            select(OrgUnit).join(OrgLink, OrgLink.child_id == OrgUnit.id).where(
                OrgLink.parent_id == office.id, OrgLink.valid_from <= today,
                (OrgLink.valid_to.is_(None)) | (OrgLink.valid_to >= today),
                OrgUnit.kind == UnitKind.school)).scalars().all()
        codes = {u.code for u in under}
        thcs = sum(1 for u in under if u.teaches_lower_secondary)
    # Phòng VH-XH phường Sài Gòn: the Quận 1 schools of the demo city (and any added since).
    assert {"79000001", "79000003"} <= codes
    assert cards(page)["Trường học"] == len(under)
    chart = next(c for c in charts(page) if c["id"] == "chart-levels")
    assert dict(zip(chart["labels"], chart["values"]))["THCS"] == thcs


def test_school_dashboards(app, login):
    with app.app_context():
        (s1,) = school_ids(["79000001"])
        locations = db.session.execute(select(func.count()).select_from(Location).where(
            Location.school_id == s1)).scalar()
        accounts = db.session.execute(select(func.count()).select_from(AppUser).where(
            AppUser.unit_id == s1, AppUser.active.is_(True))).scalar()
        from app.catalog.models import Record
        from app.collection.models import Copy, CopyStatus

        titles = db.session.execute(select(func.count()).select_from(Record).where(
            Record.school_id == s1)).scalar()
        copies = db.session.execute(select(func.count()).select_from(Copy).where(
            Copy.school_id == s1, Copy.status != CopyStatus.withdrawn)).scalar()
    for username in ("thuvien", "hieutruong"):
        page = text(login(username).get("/"))
        assert "Trường THCS Nguyễn Du" in page
        figures = cards(page)
        assert figures["Kho và vị trí xếp giá"] == locations
        assert figures["Tài khoản đang hoạt động"] == accounts
        assert figures["Đầu sách"] == titles and figures["Bản sách"] == copies
        ids = {c["id"] for c in charts(page)}
        assert {"chart-activity", "chart-locations", "chart-doctypes"} <= ids
        doctypes = next(c for c in charts(page) if c["id"] == "chart-doctypes")
        assert sum(doctypes["values"]) == copies
    # A reader sees their school, without the staff figures.
    page = text(login("hocsinh").get("/"))
    assert "Trường THCS Nguyễn Du" in page
    assert "Tài khoản đang hoạt động" not in cards(page)


def test_anonymous_visitors_are_sent_to_login(client):
    resp = client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
