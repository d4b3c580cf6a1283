"""Roles in a real browser: what the librarian and the principal of one school see and do.

Assertions rely on data (school names, figures counted here from the database) and on the
page's structure (ids, classes, hrefs), not on translated UI labels: the Vietnamese catalogue
is still being completed. The "Thư viện" menu category is asserted because its translation
already ships in translations/vi.
"""
import datetime
import re

from sqlalchemy import func, select

SCHOOL_CODE = "79000001"
SCHOOL_NAME = "Trường THCS Nguyễn Du"
OTHER_SCHOOL_CODE = "79000002"
OTHER_SCHOOL_NAME = "Trường THCS Nguyễn Văn Trỗi"

LOCATIONS_LIST = "/locationview/list/"
LOCATIONS_ADD = "/locationview/add"

# The controls FAB renders for a user allowed to write (list page).
WRITE_CONTROLS = {
    "add": f'a[href^="{LOCATIONS_ADD}"]',
    "edit": 'a[href^="/locationview/edit/"]',
    "delete": '[id^="btn-delete-"], a[href^="/locationview/delete/"]',
    "action checkbox": "input.action_check, input.action_check_all",
}


# --------------------------------------------------------------------------- database side


def _school_figures(session, code):
    """What the school's dashboard must show, counted independently from the database."""
    from app.catalog.models import Record
    from app.collection.models import Copy, CopyStatus, Location
    from app.core.audit import AuditLog
    from app.circulation.models import Loan, LoanStatus
    from app.org.models import AppUser, OrgUnit, SchoolYear
    from app.readers.models import Reader, ReaderCategory, ReaderKind, ReaderStatus

    school = session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one()
    today = datetime.date.today()
    year_start = (session.execute(select(SchoolYear.starts_on).where(
        SchoolYear.starts_on <= today, SchoolYear.ends_on >= today)).scalar()
        or datetime.date(today.year, 1, 1)).replace(day=1)
    since = datetime.datetime.combine(
        datetime.date.today() - datetime.timedelta(days=29), datetime.time())
    location_ids = set(session.execute(
        select(Location.id).where(Location.school_id == school.id)).scalars())
    figures = {
        "school_id": school.id,
        "name": school.name,
        "location_ids": location_ids,
        # icon of the dashboard card -> figure
        "fa-th": len(location_ids),
        "fa-book": session.execute(select(func.count(Record.id)).where(
            Record.school_id == school.id)).scalar(),
        "fa-barcode": session.execute(select(func.count(Copy.id)).where(
            Copy.school_id == school.id, Copy.status != CopyStatus.withdrawn)).scalar(),
        "fa-users": session.execute(select(func.count(AppUser.id)).where(
            AppUser.unit_id == school.id, AppUser.active.is_(True))).scalar(),
        "fa-pen": session.execute(select(func.count(AuditLog.id)).where(
            AuditLog.school_id == school.id, AuditLog.at >= since)).scalar(),
        # Loans since the school year began, and the active student readers.
        "fa-exchange-alt": session.execute(select(func.count(Loan.id)).where(
            Loan.school_id == school.id, Loan.status != LoanStatus.cancelled,
            Loan.loaned_at >= datetime.datetime.combine(year_start, datetime.time()))).scalar(),
        "fa-user-graduate": session.execute(select(func.count(Reader.id)).join(
            ReaderCategory, ReaderCategory.id == Reader.category_id).where(
            Reader.school_id == school.id, Reader.status == ReaderStatus.active,
            ReaderCategory.kind == ReaderKind.student)).scalar(),
    }
    # Against the standard: copies held per student, professional (SNV) copies per teacher.
    from app.catalog.models import DocumentType

    held = Copy.status.not_in([CopyStatus.withdrawn, CopyStatus.lost])
    copies = session.execute(select(func.count(Copy.id)).where(
        Copy.school_id == school.id, held)).scalar()
    snv = session.execute(select(func.count(Copy.id)).join(
        Record, Record.id == Copy.record_id).join(
        DocumentType, DocumentType.id == Record.document_type_id).where(
        Copy.school_id == school.id, held, DocumentType.code == "SNV")).scalar()
    teachers = session.execute(select(func.count(Reader.id)).join(
        ReaderCategory, ReaderCategory.id == Reader.category_id).where(
        Reader.school_id == school.id, Reader.status == ReaderStatus.active,
        ReaderCategory.kind == ReaderKind.teacher)).scalar()
    figures["fa-balance-scale"] = round(copies / figures["fa-user-graduate"], 2)
    figures["fa-chalkboard-teacher"] = round(snv / teachers, 2)
    return figures


def _location_count(session):
    from app.collection.models import Location

    return session.execute(select(func.count(Location.id))).scalar()


# --------------------------------------------------------------------------- page side


def _figure(text):
    """'1.234' (Vietnamese thousands separator) -> 1234; '0,95' (decimal comma) -> 0.95."""
    digits = text.strip().replace(".", "")
    assert re.fullmatch(r"\d+(,\d+)?", digits), f"not a figure: {text!r}"
    return float(digits.replace(",", ".")) if "," in digits else int(digits)


def _dashboard_cards(page):
    """{icon class: figure} of the dashboard cards."""
    cards = page.eval_on_selector_all(
        "#dashboard-cards .dashboard-card",
        """cards => cards.map(card => {
            const icon = card.querySelector('i.fa');
            const fig = card.querySelector('.dashboard-figure');
            return [icon ? [...icon.classList].filter(c => c !== 'fa')[0] : null,
                    fig ? fig.textContent : null];
        })""",
    )
    return {icon: _figure(fig) for icon, fig in cards}


def _chart_state(page, canvas_id):
    """Data drawn by Chart.js on the canvas, or None when no chart is attached to it."""
    return page.evaluate(
        """id => {
            const el = document.getElementById(id);
            if (!el || !window.Chart) { return null; }
            const chart = Chart.getChart(el);
            if (!chart) { return null; }
            return {type: chart.config.type, width: el.width, height: el.height,
                    values: chart.data.datasets[0].data, labels: chart.data.labels};
        }""",
        canvas_id,
    )


def _check_dashboard(page, live_server, figures, shot_path):
    dashboard = page.locator("#dashboard")
    assert dashboard.is_visible()
    assert page.locator("#dashboard-unit").inner_text().strip() == figures["name"]
    # Dates in Vietnamese form (dd/mm/yyyy).
    assert datetime.date.today().strftime("%d/%m/%Y") in dashboard.inner_text()

    cards = _dashboard_cards(page)
    expected = {k: figures[k] for k in ("fa-book", "fa-barcode", "fa-th", "fa-users", "fa-pen",
                                          "fa-exchange-alt", "fa-user-graduate",
                                          "fa-balance-scale", "fa-chalkboard-teacher")}
    assert cards == expected, f"dashboard cards {cards} != database {expected}"

    # Chart.js comes from the app's own static files and draws both charts.
    assert page.evaluate("typeof window.Chart") == "function"
    assert f"{live_server}/static/vendor/chart.umd.min.js" in page.requests
    page.wait_for_function(
        "() => ['chart-activity', 'chart-locations'].every("
        "id => window.Chart && Chart.getChart(document.getElementById(id)))")
    activity = _chart_state(page, "chart-activity")
    locations = _chart_state(page, "chart-locations")
    assert activity and activity["type"] == "line"
    assert len(activity["values"]) == 30 and sum(activity["values"]) == figures["fa-pen"]
    assert activity["width"] > 0 and activity["height"] > 0
    assert locations and locations["type"] == "doughnut"
    assert sum(locations["values"]) == figures["fa-th"]
    assert locations["width"] > 0 and locations["height"] > 0

    # Screenshot once Chart.js has finished animating (useful when a test fails).
    page.wait_for_function(
        "() => ['chart-activity', 'chart-locations'].every("
        "id => !Chart.animator.running(Chart.getChart(document.getElementById(id))))")
    page.screenshot(path=str(shot_path), full_page=True)
    assert shot_path.stat().st_size > 0
    assert shot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _list_rows(page):
    """(pk, row text) of each row of the list (rows carry a link to their show page)."""
    rows = page.eval_on_selector_all(
        "table tr:has(a[href^='/locationview/show/'])",
        """rows => rows.map(r => [
            r.querySelector("a[href^='/locationview/show/']").getAttribute('href'),
            r.innerText])""",
    )
    return {int(href.rstrip("/").rsplit("/", 1)[1]): text for href, text in rows}


def _open_locations_list(page):
    response = page.goto(LOCATIONS_LIST)
    assert response.status == 200, response.status
    page.wait_for_selector("table.table-bordered")
    return _list_rows(page)


def _check_own_school_rows(rows, figures):
    assert set(rows) == figures["location_ids"], (
        f"list shows rows {sorted(rows)}, the school owns {sorted(figures['location_ids'])}")
    for pk, text in rows.items():
        assert SCHOOL_NAME in text, (pk, text)
        assert OTHER_SCHOOL_NAME not in text, (pk, text)


def _assert_offline(page, live_server):
    prefix = live_server + "/"
    assert page.requests, "no request recorded"
    outside = [u for u in page.requests if not u.startswith(prefix)]
    assert not outside, f"requests to other hosts than {live_server}: {outside}"


# --------------------------------------------------------------------------- tests


def test_librarian_dashboard_menu_and_locations(page_as, live_server, db_query, tmp_path):
    page = page_as("thuvien")
    figures = db_query(lambda s: _school_figures(s, SCHOOL_CODE))
    other = db_query(lambda s: _school_figures(s, OTHER_SCHOOL_CODE))
    assert figures["fa-th"] > 0 and other["fa-th"] > 0  # the demo city is loaded

    _check_dashboard(page, live_server, figures, tmp_path / "dashboard-thuvien.png")

    # The menu: a "Thư viện" category leading to the shelving locations.
    category = page.locator(f"li.dropdown:has(a[href='{LOCATIONS_LIST}'])")
    assert category.count() == 1
    assert category.locator("a.dropdown-toggle").inner_text().strip() == "Thư viện"

    rows = _open_locations_list(page)
    _check_own_school_rows(rows, figures)
    assert not set(rows) & other["location_ids"]
    assert page.locator(WRITE_CONTROLS["add"]).count() >= 1
    assert page.locator(WRITE_CONTROLS["edit"]).count() == len(rows)

    _assert_offline(page, live_server)


def test_principal_reads_without_write_controls(page_as, live_server, db_query, tmp_path):
    page = page_as("hieutruong")
    figures = db_query(lambda s: _school_figures(s, SCHOOL_CODE))

    _check_dashboard(page, live_server, figures, tmp_path / "dashboard-hieutruong.png")

    rows = _open_locations_list(page)
    _check_own_school_rows(rows, figures)
    present = {name: page.locator(css).count() for name, css in WRITE_CONTROLS.items()}
    assert not any(present.values()), f"write controls shown to the principal: {present}"

    # Typing the add URL: refused, nothing created.
    before = db_query(_location_count)
    response = page.goto(LOCATIONS_ADD)
    refused = response.status == 403 or not page.url.startswith(live_server + LOCATIONS_ADD)
    assert refused, f"the principal reached the add form: {response.status} {page.url}"
    assert page.locator("form input[name=code]").count() == 0
    assert db_query(_location_count) == before

    _assert_offline(page, live_server)


def test_principal_add_url_says_access_denied(page_as, live_server):
    page = page_as("hieutruong")
    page.goto(LOCATIONS_ADD)
    body = page.locator("body").inner_text()
    assert "Truy cập bị từ chối" in body, body[:300]
    # Still inside the application (menu, way back), not a bare server page.
    assert page.locator(f"a[href='{LOCATIONS_LIST}']").count() >= 1
    _assert_offline(page, live_server)
