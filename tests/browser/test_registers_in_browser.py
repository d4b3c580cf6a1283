"""An office officer, in a real browser, opens the registers page, chooses a school of the
office, types a period that ends before it starts (and is told so), then a right one,
downloads the general register and the loan register of one class, and opens the printed
textbook register.

The files are read with openpyxl; the expected figures come from the database.
"""
import datetime
import io

import openpyxl
from sqlalchemy import func, select

from tests.test_i18n import english_leftovers

SCHOOL_CODE = "79000001"


def type_date(page, selector, value):
    """Type a date key by key, as a user does (the date picker reads what is typed on each
    key; a value set at once is not seen by it and is cleared when the picker closes)."""
    field = page.locator(selector)
    field.fill("")
    field.press_sequentially(value)
    page.keyboard.press("Escape")
    assert field.input_value() == value


def _download(page, selector):
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    assert download.failure() is None
    with open(download.path(), "rb") as fh:
        return download.suggested_filename, openpyxl.load_workbook(io.BytesIO(fh.read()))


def test_officer_chooses_a_school_and_downloads_its_registers(page_as, db_query):
    from app.collection.models import Copy, Intake
    from app.org.models import OrgUnit

    def expected(session):
        school = session.execute(select(OrgUnit).where(OrgUnit.code == SCHOOL_CODE)
                                 ).scalar_one()
        intakes = session.execute(select(Intake.register_number).where(
            Intake.school_id == school.id, Intake.received_on >= datetime.date(2025, 9, 1),
            Intake.received_on <= datetime.date(2025, 11, 30))
            .order_by(Intake.register_number)).scalars().all()
        return intakes

    intakes = db_query(expected)
    assert intakes, "the demo city has intakes in autumn 2025"

    page = page_as("phong")
    page.goto("/registers/")
    assert "Chọn một trường" in page.inner_text("body")
    page.select_option("#registers-filter select[name=school]", SCHOOL_CODE)
    type_date(page, "#from", "30/11/2025")
    type_date(page, "#to", "01/09/2025")
    page.click("#registers-filter button[type=submit]")
    page.wait_for_selector(".period-error")
    assert "trước ngày bắt đầu" in page.inner_text(".period-error")
    assert page.locator("#registers-list").count() == 0

    type_date(page, "#from", "01/09/2025")
    type_date(page, "#to", "30/11/2025")
    page.click("#registers-filter button[type=submit]")
    page.wait_for_selector("#registers-list")
    assert "Từ 01/09/2025 đến 30/11/2025" in page.inner_text("#registers-period")
    assert [m for m in english_leftovers(page.content()) if m != "In"] == []

    row = page.locator("#registers-list tr", has_text="Sổ đăng ký tổng quát")
    name, book = _download(page, "#registers-list tr:has-text('Sổ đăng ký tổng quát') "
                                 "a:has-text('Excel')")
    assert row.count() == 1
    assert name.startswith(f"so-dang-ky-tong-quat-{SCHOOL_CODE}-") and name.endswith(".xlsx")
    ws = book.worksheets[0]
    assert ws["A2"].value == "TRƯỜNG THCS NGUYỄN DU"
    assert ws["A4"].value == "SỔ ĐĂNG KÝ TỔNG QUÁT"
    numbers = [r[1] for r in ws.iter_rows(values_only=True)
               if isinstance(r[0], str) and r[0].endswith(".2025")]
    assert numbers == intakes

    def copies_in_period(session):
        school = session.execute(select(OrgUnit).where(OrgUnit.code == SCHOOL_CODE)
                                 ).scalar_one()
        from app.catalog.models import DocumentType, Record

        return session.execute(
            select(func.count()).select_from(Copy)
            .join(Intake, Intake.id == Copy.intake_id)
            .join(Record, Record.id == Copy.record_id)
            .join(DocumentType, DocumentType.id == Record.document_type_id)
            .where(Copy.school_id == school.id, DocumentType.in_general_register.is_(True),
                   Intake.received_on >= datetime.date(2025, 9, 1),
                   Intake.received_on <= datetime.date(2025, 11, 30))).scalar()

    total = next(r for r in ws.iter_rows(values_only=True) if r[0] == "Tổng cộng")
    assert total[4] == db_query(copies_in_period)

    # The student loan register of one class.
    page.select_option("#students-class select[name=class_name]", "6A1")
    name, book = _download(page, "#students-class button[formaction]")
    assert name.startswith("so-muon-hoc-sinh-")
    assert book.worksheets[0]["A5"].value == "Lớp 6A1"

    # The printed textbook register opens in a new tab.
    with page.context.expect_page() as info:
        page.click("#registers-list tr:has-text('Sổ đăng ký sách giáo khoa') a:has-text('In')")
    printed = info.value
    printed.wait_for_load_state()
    assert printed.inner_text("#register-title").upper() == "SỔ ĐĂNG KÝ SÁCH GIÁO KHOA"
    body = printed.inner_text("body")
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in body and "HIỆU TRƯỞNG" in body
    assert "Toán 6. Tập 1" in body and "01–10" in body
