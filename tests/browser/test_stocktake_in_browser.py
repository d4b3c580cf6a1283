"""A partial stocktake of the open stacks, in a real browser, by two librarians scanning at
once (one at a desk, one on a phone-sized screen), closed with the missing copies marked
lost; the minutes are downloaded and read back with openpyxl, and the general register's
Part III shows the result."""
import openpyxl
from sqlalchemy import delete, select, update

SCHOOL_CODE = "79000001"
SECOND_LIBRARIAN = "thuvien_kiemke"


def _reset(session):
    from app.collection.models import Copy, CopyStatus, Location
    from app.org.models import OrgUnit
    from app.stocktake.models import (
        StocktakeCampaign, StocktakeRegisterLine, StocktakeResult, StocktakeScan,
        StocktakeSession, StocktakeUnknown)

    for model in (StocktakeResult, StocktakeRegisterLine, StocktakeScan, StocktakeUnknown,
                  StocktakeSession, StocktakeCampaign):
        session.execute(delete(model))
    school = session.scalar(select(OrgUnit).where(OrgUnit.code == SCHOOL_CODE))
    km = session.scalar(select(Location).where(Location.school_id == school.id,
                                               Location.code == "KM"))
    session.execute(update(Copy).where(Copy.school_id == school.id).values(
        status=CopyStatus.available, location_id=km.id, note=None))
    session.commit()
    return school, km


def _setup(session):
    from flask import current_app
    from werkzeug.security import generate_password_hash

    from app.collection.models import Copy, CopyStatus, Location
    from app.org.models import AppUser
    from tests.helpers import DEMO_PASSWORD

    school, km = _reset(session)
    pd = session.scalar(select(Location).where(Location.school_id == school.id,
                                               Location.code == "PD"))
    copies = session.scalars(select(Copy).where(Copy.school_id == school.id)
                             .order_by(Copy.id)).all()
    # Six copies are shelved in the reading room (outside the part counted); one of the open
    # stacks is on loan.
    for copy in copies[-6:]:
        copy.location_id = pd.id
    copies[0].status = CopyStatus.on_loan
    if session.scalar(select(AppUser).where(AppUser.username == SECOND_LIBRARIAN)) is None:
        user = AppUser(username=SECOND_LIBRARIAN, first_name="Mai", last_name="Trần Thị",
                       email="kiemke@demo.thuvien.edu.vn", active=True, unit_id=school.id,
                       roles=[current_app.appbuilder.sm.find_role("librarian")])
        user.password = generate_password_hash(DEMO_PASSWORD)
        session.add(user)
    session.commit()
    km_copies = [(c.id, c.barcode, c.accession_label) for c in copies[1:-6]]
    return {"km_id": km.id, "km": km_copies, "pd": [(c.id, c.barcode, c.accession_label)
                                                    for c in copies[-6:]],
            "on_loan": copies[0].accession_label}


def _scan(page, code):
    box = page.locator("#scan-input")
    box.fill(code)
    with page.expect_response(lambda r: "/stocktake/api/scan/" in r.url):
        box.press("Enter")


def test_two_librarians_count_the_open_stacks(page_as, db_query, tmp_path):
    data = db_query(_setup)
    try:
        _stocktake(page_as, db_query, data, tmp_path)
    finally:
        db_query(_reset)


def _stocktake(page_as, db_query, data, tmp_path):
    from app.collection.models import Copy, CopyStatus
    from app.stocktake.models import StocktakeScan, StocktakeSession

    km, pd = data["km"], data["pd"]
    missing, present = km[-2:], km[:-2]
    first = page_as("thuvien")
    first.goto("/stocktake/")
    first.click("#stocktake-new")
    first.fill("#name", "Kiểm kê kho mở học kỳ I")
    first.check(f"input[name=location_ids][value='{data['km_id']}']")
    first.fill("#committee", "Võ Minh Tuấn – Hiệu trưởng, Chủ tịch\nNguyễn Thị Lan – Thư ký")
    with first.expect_navigation():
        first.click("#stocktake-start")
    assert "Kho mở" in first.locator("#stocktake-scope").inner_text()
    st_id = int(first.url.rstrip("/").rsplit("/", 1)[1])
    assert first.locator("#t-expected").inner_text() == str(len(km) + 1)  # + the one on loan
    first.click("#stocktake-scan-link")
    first.wait_for_selector("#scan-input:focus")

    # The second librarian counts on a phone-sized screen; no camera in a headless browser,
    # so the page says so and the typed input is the way in.
    second = page_as(SECOND_LIBRARIAN)
    second.set_viewport_size({"width": 390, "height": 844})
    second.goto(f"/stocktake/scan/{st_id}")
    second.wait_for_selector("#scan-input")
    assert second.locator("#scan-camera").is_visible() or \
        second.locator("#scan-no-camera").is_visible()
    box = second.locator("#scan-input").bounding_box()
    assert box["width"] <= 390

    half = len(present) // 2
    for (_id, barcode, _label), page in [(c, first) for c in present[:half]] + \
            [(c, second) for c in present[half:]]:
        _scan(page, barcode)
    first.wait_for_selector("#scan-flash.ok")
    # The same copy scanned by the other librarian: counted once.
    _scan(first, present[-1][1])
    first.wait_for_selector("#scan-flash.dup")
    assert "Đã đếm rồi" in first.locator("#scan-flash").inner_text()
    # A copy of the reading room found among the open stacks, and an unknown label.
    _scan(second, pd[0][1])
    second.wait_for_selector("#scan-flash.warn")
    assert "Phòng đọc" in second.locator("#scan-flash").inner_text()
    _scan(first, "NHAN-LA-404")
    first.wait_for_selector("#scan-flash.warn")
    # Another school's barcode: refused in red, nothing counted.
    _scan(second, "79000002STN00001")
    second.wait_for_selector("#scan-flash.err")
    assert "trường khác" in second.locator("#scan-flash").inner_text()
    assert second.locator("#scan-total").inner_text() == str(len(present) + 1)

    scans = db_query(lambda s: s.execute(
        select(StocktakeScan.scanned_by_id, StocktakeScan.copy_id)
        .where(StocktakeScan.session_id == st_id)).all())
    assert len(scans) == len(present) + 1 and len({by for by, _c in scans}) == 2

    # Live results, then close: the two copies not found are marked lost.
    first.goto(f"/stocktake/show/{st_id}")
    assert first.locator("#t-found").inner_text() == str(len(present))
    assert first.locator("#t-missing").inner_text() == "2"
    assert first.locator("#t-on_loan").inner_text() == "1"
    assert first.locator("#t-misplaced").inner_text() == "1"
    assert "thuvien_kiemke" in first.locator("#stocktake-by-user").inner_text()
    assert missing[0][2] in first.locator("#list-missing").inner_text()
    first.check("input[name=missing_action][value=mark_lost]")
    first.fill("#proposals", "Đề nghị bồi thường 2 bản sách mất")
    with first.expect_navigation():
        first.click("#stocktake-close-button")
    assert "Đợt kiểm kê đã kết thúc" in first.locator(".alert-success").first.inner_text()
    first.wait_for_selector("#stocktake-closed")
    assert db_query(lambda s: s.get(StocktakeSession, st_id).missing_count) == 2
    statuses = db_query(lambda s: [s.get(Copy, c[0]).status for c in missing])
    assert statuses == [CopyStatus.lost, CopyStatus.lost]

    # The minutes, downloaded as .xlsx and read back.
    with first.expect_download() as info:
        first.click("#minutes-xlsx")
    path = tmp_path / "bien-ban.xlsx"
    info.value.save_as(path)
    sheet = openpyxl.load_workbook(path).active
    cells = {(c.row, c.column): c.value for row in sheet.iter_rows() for c in row
             if c.value is not None}
    values = list(cells.values())
    assert cells[(1, 6)] == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    assert cells[(2, 1)] == "TRƯỜNG THCS NGUYỄN DU"
    assert cells[(6, 1)] == "BIÊN BẢN KIỂM KÊ THƯ VIỆN"
    assert cells[(7, 1)] == "Kiểm kê kho mở học kỳ I"
    assert "1. Võ Minh Tuấn – Hiệu trưởng, Chủ tịch" in values
    total = [r for (r, c), v in cells.items() if v == "Tổng cộng"][0]
    assert cells[(total, 2)] == len(km) + 1  # copies in the part
    assert cells[(total, 4)] == 2  # out: the two lost now
    assert cells[(total, 8)] == len(present)  # found
    assert cells[(total, 9)] == 1  # on loan
    assert cells[(total, 10)] == 2  # missing
    assert missing[0][2] in values and missing[1][2] in values
    assert "Đề nghị bồi thường 2 bản sách mất" in values

    # The printable minutes and the register's Part III.
    first.click("#minutes-page")
    first.wait_for_selector("#minutes")
    assert "BIÊN BẢN KIỂM KÊ THƯ VIỆN" in first.inner_text("body")
    first.goto("/stocktake/register")
    register = first.locator("#register-part3").inner_text()
    assert "Kiểm kê kho mở học kỳ I" in register and "Tổng cộng" in register
    assert "Hiện còn đến" in register and str(len(km) + 1 - 2) in register
    # The principal sees the same register (read-only).
    principal = page_as("hieutruong")
    principal.goto("/stocktake/register")
    assert "Kiểm kê kho mở học kỳ I" in principal.locator("#register-part3").inner_text()
