"""A librarian catalogues a book by copying it from another school, then adds 30 copies."""
from sqlalchemy import select


def test_copy_cataloguing_and_thirty_copies(page_as, live_server, db_query):
    from app.catalog.models import Record
    from app.collection.models import Copy
    from app.org.models import OrgUnit

    page = page_as("thuvien2")
    page.goto(f"{live_server}/union/")
    page.fill("input[name=q]", "de men phieu luu")  # typed without accents
    page.click("#union-search button[type=submit]")
    row = page.locator("#union-results tbody tr", has_text="Trường THCS Nguyễn Du").first
    assert "Dế Mèn phiêu lưu ký" in row.inner_text()
    row.locator("form.union-copy button").click()
    # Straight to "add copies" of the new record in the librarian's own school.
    page.wait_for_selector("#add-copies-form")
    assert "Dế Mèn phiêu lưu ký" in page.inner_text("h2")
    page.fill("input[name=count]", "30")
    page.select_option("select[name=series]", label="STN – Sách thiếu nhi")
    page.click("#add-copies-form button[type=submit]")
    page.wait_for_selector(".alert-success")
    assert "Đã thêm 30 bản" in page.inner_text(".alert-success")

    def check(session):
        s2 = session.execute(select(OrgUnit).where(OrgUnit.code == "79000002")).scalar_one()
        record = session.execute(select(Record).where(
            Record.school_id == s2.id, Record.title == "Dế Mèn phiêu lưu ký",
            Record.copied_from_id.is_not(None))).scalar_one()
        copies = session.execute(select(Copy).where(Copy.record_id == record.id)
                                 .order_by(Copy.accession_number)).scalars().all()
        return record.call_number, [c.accession_label for c in copies], {
            c.school_id for c in copies} == {s2.id}

    call_number, labels, same_school = db_query(check)
    assert call_number == "895.9223 / Hoà" and same_school
    assert len(labels) == 30 and labels[0].startswith("STN-")
    numbers = [int(label.split("-")[1]) for label in labels]
    assert numbers == list(range(numbers[0], numbers[0] + 30))
    # The record page lists the copies.
    assert "STN-" in page.inner_text("body")
