"""The principal, a ward-office officer and the department inspector, each in a real
browser, open their dashboard (charts drawn from the app's own Chart.js), open the
statistics of their scope, go down to a school, and download the table as Excel.

The expected figures are counted from the database in the test (holdings: copies neither
withdrawn nor lost), independently of app.statistics.
"""
import io

import openpyxl
from sqlalchemy import func, select

from tests.test_i18n import english_leftovers


def _holdings(session, codes=None):
    from app.collection.models import Copy, CopyStatus
    from app.org.models import OrgUnit

    query = select(func.count(Copy.id)).join(OrgUnit, OrgUnit.id == Copy.school_id).where(
        Copy.status.not_in([CopyStatus.withdrawn, CopyStatus.lost]))
    if codes is not None:
        query = query.where(OrgUnit.code.in_(codes))
    return session.execute(query).scalar()


def _codes_under(session, office_code):
    from app.org.models import OrgUnit
    from app.org.services import schools_under

    office = session.execute(select(OrgUnit).where(OrgUnit.code == office_code)).scalar_one()
    ids = schools_under(session, office.id)
    return list(session.execute(select(OrgUnit.code).where(OrgUnit.id.in_(ids))).scalars())


def _refresh(session):
    """The offices' and the city's figures as the nightly job leaves them."""
    from app.statistics.refresh import refresh

    refresh(session)
    session.commit()


def _download(page):
    with page.expect_download() as info:
        page.click("#stat-xlsx")
    download = info.value
    assert download.failure() is None
    with open(download.path(), "rb") as fh:
        return openpyxl.load_workbook(io.BytesIO(fh.read()), data_only=True).active


def _total_row(sheet):
    return next(row for row in sheet.iter_rows(values_only=True) if row[0] == "Tổng cộng")


def _charts_drawn(page, ids):
    page.wait_for_function(
        "ids => ids.every(id => window.Chart && document.getElementById(id) && "
        "Chart.getChart(document.getElementById(id)))", arg=ids)


def test_principal_sees_the_school_dashboard_and_statistics(page_as, db_query):
    expected = db_query(lambda s: _holdings(s, ["79000001"]))
    page = page_as("hieutruong")
    _charts_drawn(page, ["chart-loans-month", "chart-participation-grade"])
    page.click("text=Báo cáo")
    page.click("a:has-text('Thống kê')")
    page.wait_for_selector("#stat-table")
    assert page.inner_text("#stat-scope") == "Trường THCS Nguyễn Du"
    _charts_drawn(page, ["stat-chart"])
    sheet = _download(page)
    assert sheet["A1"].value == "VỐN TÀI LIỆU THEO LOẠI TÀI LIỆU"
    total = _total_row(sheet)
    assert total[2] == expected  # titles, copies, value
    assert not english_leftovers(page.inner_text("body"))


def test_officer_compares_schools_and_goes_down_to_one(page_as, db_query):
    db_query(_refresh)
    page = page_as("phongvhxh")
    _charts_drawn(page, ["chart-participation", "chart-copies-per-student"])
    assert "Số liệu tính lúc" in page.inner_text("#dashboard-freshness")
    page.goto("/statistics/?report=collection_doctype")
    heads = page.locator("#stat-table thead tr").first.inner_text()
    assert "Trường THCS Nguyễn Du" in heads and "Tổng cộng" in heads
    assert "Trường THCS Nguyễn Văn Trỗi" not in heads  # another ward
    sheet = _download(page)
    expected = db_query(lambda s: _holdings(s, _codes_under(s, "VHXH-SG")))
    total = _total_row(sheet)
    # Columns: the unit name, then (titles, copies, value) per school, then the totals.
    assert total[-2] == expected
    page.click("#stat-table thead a:has-text('Trường THCS Nguyễn Du')")
    page.wait_for_selector("#stat-breadcrumb")
    assert page.inner_text("#stat-scope") == "Trường THCS Nguyễn Du"
    assert "Phòng Văn hóa – Xã hội phường Sài Gòn" in page.inner_text("#stat-breadcrumb")
    assert not english_leftovers(page.inner_text("body"))


def test_inspector_sees_the_city_and_the_schools_below_the_standard(page_as, db_query):
    db_query(_refresh)
    expected = db_query(_holdings)
    page = page_as("thanhtra")
    assert page.locator("#dashboard-below-standard tr.danger").count() > 0
    _charts_drawn(page, ["chart-participation", "chart-loans-per-student"])
    page.goto("/statistics/?report=collection_doctype")
    assert page.inner_text("#stat-scope") == "Toàn thành phố"
    sheet = _download(page)
    assert _total_row(sheet)[-2] == expected
    # A period that ends before it starts is refused with a message, not an error page.
    page.goto("/statistics/?report=loans_grade&from=30/11/2025&to=01/09/2025")
    assert "trước khi bắt đầu" in page.inner_text("#stat-error")
    assert not english_leftovers(page.inner_text("body"))
