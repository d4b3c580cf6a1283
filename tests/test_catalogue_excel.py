"""The catalogue in Excel: template round trip, row checks, valid rows only, exports, roles."""
import io
import re
import uuid

import openpyxl
import pytest
from sqlalchemy import select
from stdnum import ean

from app.catalog import excel
from app.catalog.models import Record
from app.collection.models import AccessionSeries, Copy, Location
from app.collection.services import add_copies, ensure_library
from app.extensions import db
from app.org.models import OrgUnit
from tests.helpers import csrf_token, session_csrf, text


# --- Helpers ----------------------------------------------------------------------------

def unique():
    return uuid.uuid4().hex[:8]


def new_isbn():
    body = "978604" + str(uuid.uuid4().int)[:6]
    return body + ean.calc_check_digit(body)


def template(client):
    resp = client.get("/catalogue-excel/template.xlsx")
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    return openpyxl.load_workbook(io.BytesIO(resp.data))


def headers(sheet):
    return [c.value for c in sheet[1] if c.value is not None]


def header_names(sheet):
    """{column key: header as written in the sheet} (the template is in the user's language)."""
    keys = excel.header_keys()
    return {keys[excel.normalise_header(h)]: h for h in headers(sheet)
            if excel.normalise_header(h) in keys}


def column_of(sheet, key):
    """1-based column of a template column (by key), whatever the language of the header."""
    return headers(sheet).index(header_names(sheet)[key]) + 1


def fill(book, rows):
    """Replace the example row by `rows` ({key: value}) and return the .xlsx bytes."""
    sheet = book.worksheets[0]
    sheet.delete_rows(2, sheet.max_row)
    for r, values in enumerate(rows, start=2):
        for key, value in values.items():
            sheet.cell(row=r, column=column_of(sheet, key), value=value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, data, filename="muc-luc.xlsx"):
    token = csrf_token(client, "/catalogue-excel/")
    return client.post("/catalogue-excel/upload", data={
        "csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data")


def confirm(client, preview_url, valid_only=False):
    token = csrf_token(client, preview_url)
    form = {"csrf_token": token, "intake": ""}
    if valid_only:
        form["valid_only"] = "y"
    return client.post(preview_url.replace("/preview/", "/confirm/"), data=form)


def flashes(client):
    with client.session_transaction() as sess:
        return [m for _c, m in sess.pop("_flashes", [])]


def records_titled(app, *titles):
    with app.app_context():
        return {r.title: r for r in db.session.execute(
            select(Record).where(Record.title.in_(titles))).scalars()}


def good_row(tag, **extra):
    row = {"title": f"Tuổi thơ dữ dội {tag}", "authors": "Phùng Quán", "publisher": "Kim Đồng",
           "place": "Hà Nội", "year": 2019, "pages": "812 tr.", "size_cm": 19,
           "isbn": new_isbn(), "price": 150000, "language": "vie", "document_type": "STN",
           "class_number": "895.9223", "count": 2, "location": "KM"}
    row.update(extra)
    return row


# --- Import -----------------------------------------------------------------------------

def test_template_round_trip_creates_records_and_copies(app, login):
    c = login("thuvien")
    book = template(c)
    sheet, notes = book.worksheets
    assert len(headers(sheet)) == len(excel.COLUMNS)
    assert sheet.cell(row=2, column=1).value  # the example row
    assert notes.max_row > len(excel.COLUMNS)  # every column explained, and the code lists
    assert any(row[0] == "KM" for row in notes.iter_rows(values_only=True))
    tag = unique()
    isbn = new_isbn()
    rows = [
        good_row(tag, isbn=f"{isbn[:3]}-{isbn[3:6]}-{isbn[6:12]}-{isbn[12]}",
                 authors="Nguyễn Nhật Ánh; Lê Văn Bình; dịch", count=3, series="STN",
                 subjects="tuổi thơ; làng quê", summary="Truyện dài."),
        good_row(tag, title=f"Toán học vui {tag}", authors="Trần Văn A\nPhạm B; chủ biên",
                 document_type="Sách tham khảo", class_number="510", count=None, isbn=None,
                 price="45.000 đ", location=None),
    ]
    resp = upload(c, fill(book, rows))
    assert resp.status_code == 302 and "/preview/" in resp.headers["Location"], flashes(c)
    preview = resp.headers["Location"]
    page = text(c.get(preview))
    assert re.search(r'id="rows-ok">2<', page) and re.search(r'id="rows-bad">0<', page)
    resp = confirm(c, preview)
    assert resp.status_code == 302
    found = records_titled(app, rows[0]["title"], rows[1]["title"])
    assert set(found) == {rows[0]["title"], rows[1]["title"]}
    with app.app_context():
        first = db.session.get(Record, found[rows[0]["title"]].id)
        assert [(a.name, a.role.name, a.is_main) for a in first.authors] == [
            ("Nguyễn Nhật Ánh", "author", True), ("Lê Văn Bình", "translator", False)]
        assert (first.publisher, first.place, first.year, first.pages, first.size_cm) == (
            "Kim Đồng", "Hà Nội", 2019, "812 tr.", 19)
        assert first.isbn == isbn and first.price == 150000 and first.language == "vie"
        assert first.document_type.code == "STN" and first.subjects == "tuổi thơ; làng quê"
        assert first.call_number == "895.9223 / Ánh" and first.summary == "Truyện dài."
        assert first.school.code == "79000001" and first.scheme_id is not None
        copies = db.session.execute(select(Copy).where(Copy.record_id == first.id)
                                    .order_by(Copy.accession_number)).scalars().all()
        assert len(copies) == 3
        numbers = [cp.accession_number for cp in copies]
        assert numbers == list(range(numbers[0], numbers[0] + 3))
        assert all(cp.series.code == "STN" and cp.location.code == "KM" for cp in copies)
        assert [cp.accession_label for cp in copies] == [cp.series.format(n) for cp, n in
                                                         zip(copies, numbers)]
        assert all(cp.price == 150000 for cp in copies)
        second = db.session.get(Record, found[rows[1]["title"]].id)
        assert second.document_type.code == "STK" and second.price == 45000
        assert [a.role.name for a in second.authors] == ["author", "editor"]
        assert second.call_number == "510 / A" and not second.copies
    # The upload is forgotten once imported: a second confirmation imports nothing.
    assert c.get(preview).status_code == 404
    resp = c.post(preview.replace("/preview/", "/confirm/"),
                  data={"csrf_token": session_csrf(c), "intake": ""})
    assert resp.status_code == 302
    assert len(records_titled(app, rows[0]["title"])) == 1


def test_one_bad_row_saves_nothing_and_names_the_row_and_column(app, login):
    c = login("thuvien")
    book = template(c)
    names = header_names(book.worksheets[0])
    tag = unique()
    rows = [good_row(tag), good_row(tag, title=f"Hai {tag}", isbn="978-604-1-00012-5"),
            good_row(tag, title=f"Ba {tag}")]
    resp = upload(c, fill(book, rows))
    preview = resp.headers["Location"]
    page = text(c.get(preview))
    isbn_header = names["isbn"]
    assert re.search(rf'<tr class="danger"><td>3</td><td>{isbn_header}</td><td>[^<]*'
                     r'978-604-1-00012-5', page), page[:3000]
    resp = confirm(c, preview)
    assert resp.status_code == 302 and "/preview/" in resp.headers["Location"]
    assert any("1" in m for m in flashes(c))
    assert records_titled(app, *(r["title"] for r in rows)) == {}


def test_row_problems_are_each_reported(app, login):
    c = login("thuvien")
    tag = unique()
    rows = [
        good_row(tag, title=None),
        good_row(tag, title=f"B {tag}", year="năm ngoái"),
        good_row(tag, title=f"C {tag}", document_type="XYZ"),
        good_row(tag, title=f"D {tag}", series="NOPE"),
        good_row(tag, title=f"E {tag}", location="NOWHERE"),
        good_row(tag, title=f"F {tag}", count=0),
        good_row(tag, title=f"G {tag}", count="hai"),
        good_row(tag, title=f"H {tag}", document_type="BC", count=1),  # no usual register
    ]
    book = template(c)
    h = header_names(book.worksheets[0])
    data = fill(book, rows)
    with app.test_request_context():  # the default language, as the template above
        school = db.session.execute(select(OrgUnit).where(OrgUnit.code == "79000001")
                                    ).scalar_one()
        result = excel.parse_import(data, db.session, school)
        db.session.rollback()
    assert not result.errors
    problems = {row.number: {p.column for p in row.problems} for row in result.rows}
    assert problems == {2: {h["title"]}, 3: {h["year"]}, 4: {h["document_type"]},
                        5: {h["series"]}, 6: {h["location"]}, 7: {h["count"]},
                        8: {h["count"]}, 9: {h["series"]}}


def test_valid_rows_only_and_the_rejected_rows_file(app, login):
    c = login("thuvien")
    book = template(c)
    names = header_names(book.worksheets[0])
    tag = unique()
    rows = [good_row(tag), good_row(tag, title=f"Hỏng {tag}", year="2O19"),
            good_row(tag, title=f"Tốt {tag}")]
    resp = upload(c, fill(book, rows))
    preview = resp.headers["Location"]
    resp = confirm(c, preview, valid_only=True)
    assert resp.status_code == 302
    messages = flashes(c)
    link = next(re.search(r'href="([^"]+)"', str(m)).group(1) for m in messages
                if "rejected-rows" in str(m))
    saved = records_titled(app, *(r["title"] for r in rows))
    assert set(saved) == {rows[0]["title"], rows[2]["title"]}
    resp = c.get(link)
    assert resp.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(resp.data)).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][-1] in ("Lý do", "Reason")
    assert len(values) == 2 and values[1][0] == rows[1]["title"]
    assert f"“{names['year']}”" in values[1][-1] and "2O19" in values[1][-1]
    # The rejected rows' file is the librarian's own: not another librarian's.
    assert login("thuvien2").get(link).status_code == 404
    # Once corrected, the file imports as it is (the reason column is ignored).
    book = openpyxl.load_workbook(io.BytesIO(resp.data))
    book.worksheets[0].cell(row=2, column=column_of(book.worksheets[0], "year"), value=2019)
    out = io.BytesIO()
    book.save(out)
    resp = upload(c, out.getvalue())
    assert "/preview/" in resp.headers["Location"]
    confirm(c, resp.headers["Location"])
    assert rows[1]["title"] in records_titled(app, rows[1]["title"])


def test_missing_columns_and_files_that_are_not_excel(app, login):
    c = login("thuvien")
    title = header_names(template(c).worksheets[0])["title"]
    book = openpyxl.Workbook()
    book.active.append(["Tác giả", "Năm xuất bản"])
    book.active.append(["Tô Hoài", 1941])
    out = io.BytesIO()
    book.save(out)
    resp = upload(c, out.getvalue())
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/catalogue-excel/")
    [message] = flashes(c)
    assert title in message
    # A Vietnamese header row (without the template) is understood, accents or not.
    book = openpyxl.Workbook()
    book.active.append(["Nhan de*", "Tác giả", "Năm xuất bản", "Cột lạ"])
    book.active.append([f"Dế Mèn {unique()}", "Tô Hoài", 1941, "x"])
    out = io.BytesIO()
    book.save(out)
    resp = upload(c, out.getvalue())
    assert "/preview/" in resp.headers["Location"], flashes(c)
    assert "Cột lạ" in text(c.get(resp.headers["Location"]))  # ignored, with a warning
    for data, name in ((b"Nhan de;Tac gia\nA;B\n", "muc-luc.xlsx"),
                       (b"PK\x03\x04 not really a zip", "muc-luc.xlsx"),
                       (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "muc-luc.xls")):
        resp = upload(c, data, name)
        assert resp.status_code == 302 and resp.headers["Location"].endswith(
            "/catalogue-excel/")
        [message] = flashes(c)
        assert ".xlsx" in message
    resp = c.post("/catalogue-excel/upload", data={"csrf_token": csrf_token(
        c, "/catalogue-excel/")}, content_type="multipart/form-data")
    assert resp.status_code == 302 and flashes(c)


def test_uploads_are_bound_to_their_librarian(app, login):
    c = login("thuvien")
    resp = upload(c, fill(template(c), [good_row(unique())]))
    preview = resp.headers["Location"]
    assert login("thuvien2").get(preview).status_code == 404
    assert login("hieutruong").get(preview).status_code == 403
    assert c.get("/catalogue-excel/preview/../../secret_key").status_code == 404
    assert c.get("/catalogue-excel/preview/" + "A" * 32).status_code == 404


# --- Exports ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_school_record(app):
    """A record with a copy in school 79000002 (must never appear in 79000001's files)."""
    tag = unique()
    with app.app_context():
        school = db.session.execute(select(OrgUnit).where(OrgUnit.code == "79000002")
                                    ).scalar_one()
        ensure_library(db.session, school)
        record = Record(school=school, school_id=school.id, title=f"Chỉ trường 2 {tag}",
                        language="vie")
        record.refresh_search_fields()
        db.session.add(record)
        db.session.flush()
        series = db.session.execute(select(AccessionSeries).where(
            AccessionSeries.school_id == school.id, AccessionSeries.code == "STK")).scalar_one()
        copy = add_copies(db.session, school, record, series, 1)[0]
        db.session.commit()
        return record.title, copy.accession_label


def _school_rows(app, code):
    with app.app_context():
        school_id = db.session.execute(select(OrgUnit.id).where(OrgUnit.code == code)
                                       ).scalar_one()
        titles = db.session.execute(select(Record.title).where(
            Record.school_id == school_id)).scalars().all()
        labels = db.session.execute(select(Copy.accession_label).where(
            Copy.school_id == school_id)).scalars().all()
        prices = db.session.execute(select(Copy.price).where(
            Copy.school_id == school_id)).scalars().all()
        return titles, labels, sum(p or 0 for p in prices)


def _sheet(resp):
    assert resp.status_code == 200, text(resp)[:300]
    assert "attachment" in resp.headers["Content-Disposition"]
    return openpyxl.load_workbook(io.BytesIO(resp.data)).worksheets[0]


@pytest.mark.parametrize("username", ["thuvien", "hieutruong"])
def test_exports_hold_exactly_the_schools_rows(app, login, username, other_school_record):
    c = login(username)
    records = _sheet(c.get("/catalogue-excel/records.xlsx"))
    copies = _sheet(c.get("/catalogue-excel/copies.xlsx"))
    titles, labels, total_price = _school_rows(app, "79000001")
    rows = list(records.iter_rows(values_only=True))
    header, body, total = rows[0], rows[1:-1], rows[-1]
    assert len(header) == 8 and records.freeze_panes == "A2"
    assert sorted(r[0] for r in body) == sorted(titles)
    assert other_school_record[0] not in {r[0] for r in body}
    assert str(total[7]).startswith("=SUM(") and str(total[0]).startswith("=COUNTA(")
    rows = list(copies.iter_rows(values_only=True))
    header, body, total = rows[0], rows[1:-1], rows[-1]
    assert len(header) == 9
    assert sorted(r[0] for r in body) == sorted(labels)
    assert other_school_record[0] not in {r[2] for r in body}
    # Cached values of the totals' formulas, as Excel shows them before recalculating.
    cached = openpyxl.load_workbook(io.BytesIO(c.get("/catalogue-excel/copies.xlsx").data),
                                    data_only=True).worksheets[0]
    last = list(cached.iter_rows(values_only=True))[-1]
    assert last[0] == len(labels) and last[6] == total_price
    dated = [i for i, r in enumerate(body, start=2) if r[8] is not None]
    assert dated and all(hasattr(body[i - 2][8], "year") for i in dated)
    assert copies.cell(row=dated[0], column=9).number_format == "dd/mm/yyyy"


def test_export_of_another_school_is_not_found(app, login, other_school_record):
    assert login("thuvien").get("/catalogue-excel/records.xlsx?school=79000002"
                                ).status_code == 404
    assert login("phong").get("/catalogue-excel/copies.xlsx?school=79000002").status_code == 404
    # The department reads every school: it names the school.
    dept = login("thanhtra")
    resp = dept.get("/catalogue-excel/records.xlsx")
    assert resp.status_code == 302  # choose a school first
    sheet = _sheet(dept.get("/catalogue-excel/records.xlsx?school=79000002"))
    assert other_school_record[0] in {r[0] for r in sheet.iter_rows(values_only=True)}


def test_principal_downloads_but_cannot_import(app, login):
    c = login("hieutruong")
    page = text(c.get("/catalogue-excel/"))
    assert 'id="export-records"' in page and 'id="excel-upload"' not in page
    assert c.get("/catalogue-excel/template.xlsx").status_code == 200
    token = csrf_token(c, "/resetmypassword/form")
    resp = c.post("/catalogue-excel/upload", data={
        "csrf_token": token, "file": (io.BytesIO(b"x"), "x.xlsx")},
        content_type="multipart/form-data")
    assert resp.status_code == 403
    assert c.post("/catalogue-excel/confirm/" + "A" * 32,
                  data={"csrf_token": token}).status_code == 403
    for reader in ("giaovien", "hocsinh"):
        assert login(reader).get("/catalogue-excel/records.xlsx").status_code == 403


def test_template_without_request_context_and_its_codes(app):
    """The pure builder works outside a request (CLI): headers in the default language."""
    with app.app_context():
        school = db.session.execute(select(OrgUnit).where(OrgUnit.code == "79000001")
                                    ).scalar_one()
        data = excel.build_template(excel.Reference(db.session, school))
        locations = db.session.execute(select(Location.code).where(
            Location.school_id == school.id, Location.is_active.is_(True))).scalars().all()
    book = openpyxl.load_workbook(io.BytesIO(data))
    codes = {row[0] for row in book.worksheets[1].iter_rows(values_only=True)}
    assert set(locations) <= codes
