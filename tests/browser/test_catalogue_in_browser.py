"""A librarian, in a real browser, catalogues a book by copying it from another school, adds
30 copies, prints their spine and barcode labels, imports MARC files and exports the
catalogue again (selected records from the catalogue list, then the whole catalogue).

Files are checked with independent readers: pypdf for the labels, pymarc and the Library of
Congress MARCXML schema for MARC; counts come from the database.
"""
import functools
import io
import os
import re
import unicodedata

import pymarc
import pypdf
import xmlschema
from sqlalchemy import select

from tests.test_i18n import english_leftovers

SCHOOL_CODE = "79000002"
MARC_DIR = "/work/shared/data/marc"  # real files of other libraries: see its PROVENANCE.md
XSD = os.path.join(MARC_DIR, "MARC21slim.xsd")
# One ISO 2709 and one MARCXML file that import without an error.
CLEAN_FILES = ["evergreen/sample_acq_order.mrc", "pymarc/batch.xml"]
# A truncated slice (its leader announces 99,999 bytes): nothing in it can be imported.
BROKEN_FILE = "marc4j/datos-20161010-slice.mrc"


def test_copy_cataloguing_copies_labels_marc_import_and_export(page_as, live_server,
                                                               db_query):
    page = page_as("thuvien2")
    record_id, labels, barcodes, call_number = _copy_catalogue_with_30_copies(page, db_query)
    _print_labels(page, labels, barcodes, call_number)
    imported = {}
    for name in CLEAN_FILES:
        imported.update(_import_marc(page, db_query, name))
    _import_broken_file(page, db_query)
    _export_selected_records(page, imported)
    _export_the_catalogue(page, db_query, imported, record_id, labels, barcodes)


# --- The flow, step by step ------------------------------------------------------------------

def _copy_catalogue_with_30_copies(page, db_query):
    from app.catalog.models import Record
    from app.collection.models import Copy
    from app.org.models import OrgUnit

    page.goto("/union/")
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
        s2 = session.execute(select(OrgUnit).where(OrgUnit.code == SCHOOL_CODE)).scalar_one()
        record = session.execute(select(Record).where(
            Record.school_id == s2.id, Record.title == "Dế Mèn phiêu lưu ký",
            Record.copied_from_id.is_not(None))).scalar_one()
        copies = session.execute(select(Copy).where(Copy.record_id == record.id)
                                 .order_by(Copy.accession_number)).scalars().all()
        return (record.id, record.call_number, [c.accession_label for c in copies],
                [c.barcode for c in copies], {c.school_id for c in copies} == {s2.id})

    record_id, call_number, labels, barcodes, same_school = db_query(check)
    assert call_number == "895.9223 / Hoà" and same_school
    assert len(labels) == 30 and labels[0].startswith("STN-")
    numbers = [int(label.split("-")[1]) for label in labels]
    assert numbers == list(range(numbers[0], numbers[0] + 30))
    # The record page lists the copies.
    assert "STN-" in page.inner_text("body")
    return record_id, labels, barcodes, call_number


def _print_labels(page, labels, barcodes, call_number):
    """Spine labels, then barcode labels, of the 30 copies chosen by their number range."""
    numbers = [int(label.split("-")[1]) for label in labels]
    page.goto("/labels/")
    form = "#labels-form"
    page.select_option(f"{form} select[name=series]", label="STN – Sách thiếu nhi")
    page.fill(f"{form} input[name=number_from]", str(numbers[0]))
    page.fill(f"{form} input[name=number_to]", str(numbers[-1]))
    for kind in ("spine", "barcode"):
        page.check(f"{form} input[name=kind][value={kind}]")
        filename, data = _download(page, f"{form} button[type=submit]")
        assert filename.endswith(".pdf") and data.startswith(b"%PDF-")
        pages = _pdf_pages(data)
        assert len(pages) == 2  # 30 labels on sheets of 3 × 8
        text = "\n".join(pages)
        # Every copy once, in the order of its accession number.
        assert re.findall(r"STN-\d+", text) == labels, kind
        if kind == "spine":
            for line in call_number.split(" / "):  # 895.9223 over Hoà
                assert text.count(line) == 30, line
        else:
            assert all(barcode in text for barcode in barcodes)


def _import_marc(page, db_query, name):
    """Upload, preview (nothing saved), confirm, report. Returns {id: title} of the new
    records."""
    expected = len(_pymarc_read(name))
    before = db_query(_school_records)
    _upload(page, name)
    created = _figure(page, "#marc-created")
    assert created == _figure(page, "#marc-read") == expected
    assert _figure(page, "#marc-errors") == 0 and not page.locator("#marc-error-list").count()
    assert db_query(_school_records) == before  # the preview saves nothing
    page.click("#marc-import-button")
    # The import runs in the background; the page follows it, then shows the report.
    page.wait_for_selector("#marc-done", timeout=30_000)
    assert _figure(page, "#marc-created") == created
    after = db_query(_school_records)
    new = {pk: title for pk, title in after.items() if pk not in before}
    assert len(after) - len(before) == len(new) == created
    linked = page.eval_on_selector_all(
        "#marc-outcomes a", "links => links.map(a => a.getAttribute('href'))")
    assert sorted(int(href.rsplit("/", 1)[1]) for href in linked) == sorted(new)
    return new


def _import_broken_file(page, db_query):
    before = db_query(_school_records)
    _upload(page, BROKEN_FILE)
    errors = page.inner_text("#marc-error-list")
    # Said in Vietnamese, with the record's position; nothing to import.
    assert "Biểu ghi thứ 1" in errors and "bỏ qua biểu ghi" in errors, errors
    assert english_leftovers(page.content()) == []
    assert _figure(page, "#marc-created") == 0 and _figure(page, "#marc-errors") == 1
    assert page.locator("#marc-import-button").count() == 0
    assert db_query(_school_records) == before


def _export_selected_records(page, imported):
    """Tick the records of the MARCXML file in the catalogue list, "Xuất MARCXML"."""
    chosen = {pk: title for pk, title in imported.items()
              if title in ("The Great Ray Charles", "The White House")}
    assert len(chosen) == 2
    page.goto("/recordview/list/")
    for pk in chosen:
        page.check(f"input.action_check[value='{pk}']")
    page.click(".well .btn-group button.dropdown-toggle")  # the actions menu
    filename, data = _download(page, "a.export_marcxml_menu_item")
    assert filename.startswith(f"marc-{SCHOOL_CODE}-") and filename.endswith(".xml")
    _marcxml_schema().validate(io.BytesIO(data))
    records = pymarc.parse_xml_to_array(io.BytesIO(data))
    assert sorted(_title(r) for r in records) == sorted(chosen.values())


def _export_the_catalogue(page, db_query, imported, record_id, labels, barcodes):
    """From the catalogue list's "Xuất MARC" button: the whole catalogue, in both formats."""
    catalogue = db_query(_school_records)
    page.goto("/recordview/list/")
    page.click("#record-marc-export")
    page.wait_for_selector("#marc-export-all")
    files = {}
    for fmt in ("iso2709", "marcxml"):
        page.check(f"#marc-export-all input[name=format][value={fmt}]")
        files[fmt] = _download(page, "#marc-export-all button[type=submit]")[1]
    _marcxml_schema().validate(io.BytesIO(files["marcxml"]))
    for records in (list(pymarc.MARCReader(files["iso2709"], to_unicode=True)),
                    pymarc.parse_xml_to_array(io.BytesIO(files["marcxml"]))):
        assert len(records) == len(catalogue)
        titles = [_title(r) for r in records]
        assert sorted(titles) == sorted(catalogue.values())
        assert set(imported.values()) <= set(titles)
        # The copied record carries its 30 copies (852: $t accession number, $p barcode).
        copied = [r for r in records if r["001"] and r["001"].data == str(record_id)]
        assert len(copied) == 1
        items = copied[0].get_fields("852")
        assert [f["t"] for f in items] == labels and [f["p"] for f in items] == barcodes
        assert {f["a"] for f in items} == {SCHOOL_CODE}


# --- Helpers -----------------------------------------------------------------------------

def _school_records(session):
    """{id: title} of the records of the librarian's school."""
    from app.catalog.models import Record
    from app.org.models import OrgUnit

    return dict(session.execute(
        select(Record.id, Record.title).join(OrgUnit, OrgUnit.id == Record.school_id)
        .where(OrgUnit.code == SCHOOL_CODE)).all())


def _upload(page, name):
    page.goto("/marc/")
    page.set_input_files("#marc-upload-form input[name=file]", os.path.join(MARC_DIR, name))
    page.click("#marc-upload-form button[type=submit]")
    page.wait_for_selector("#marc-summary")
    assert os.path.basename(name) in page.inner_text("h2")


def _download(page, selector):
    """Click `selector` and return (suggested file name, bytes) of the download."""
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    assert download.failure() is None
    with open(download.path(), "rb") as fh:
        return download.suggested_filename, fh.read()


def _figure(page, selector):
    return int(page.inner_text(selector).replace(".", ""))


def _pdf_pages(data):
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [unicodedata.normalize("NFC", p.extract_text()) for p in reader.pages]


def _pymarc_read(name):
    with open(os.path.join(MARC_DIR, name), "rb") as fh:
        data = fh.read()
    if name.endswith(".xml"):
        return pymarc.parse_xml_to_array(io.BytesIO(data))
    return [r for r in pymarc.MARCReader(data, to_unicode=True) if r is not None]


@functools.lru_cache(maxsize=1)
def _marcxml_schema():
    return xmlschema.XMLSchema(XSD)


def _title(record):
    """245 $a without its ISBD punctuation (" /", " :"), as the catalogue stores titles."""
    return record["245"]["a"].rstrip(" /:;.,=")
