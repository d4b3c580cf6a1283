"""Importing readers from Excel class lists: header row and mapping (guessed, remembered),
create and update by student code, row errors (nothing saved), valid rows only, bad files,
the template, roles and isolation."""
import datetime
import io
import re
import uuid

import openpyxl
import pytest
from sqlalchemy import delete, func, select

from app.extensions import db
from app.org.models import OrgUnit
from app.readers import importer, services
from app.readers.models import Gender, Reader, ReaderImportMapping
from tests.helpers import csrf_token, session_csrf, text

HEADERS = ["STT", "Mã học sinh", "Họ và tên", "Ngày sinh", "Giới tính", "Lớp",
           "Số điện thoại"]


# --- Helpers ----------------------------------------------------------------------------

def tag():
    return uuid.uuid4().hex[:6].upper()


def workbook(headers, rows, title_rows=(), sheet_title="DSHS"):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = sheet_title
    for line in title_rows:
        sheet.append(line)
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, data, filename="lop.xlsx"):
    token = csrf_token(client, "/readers-import/")
    return client.post("/readers-import/upload", data={
        "csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data")


def confirm(client, preview_url, valid_only=False):
    form = {"csrf_token": csrf_token(client, preview_url)}
    if valid_only:
        form["valid_only"] = "y"
    return client.post(preview_url.replace("/preview/", "/confirm/"), data=form)


def flashes(client):
    with client.session_transaction() as sess:
        return [m for _c, m in sess.pop("_flashes", [])]


def totals(page):
    return {k: int(re.search(rf'id="total-{k}">(\d+)<', page).group(1))
            for k in ("new", "update", "unchanged", "error")}


def school_id(code):
    return db.session.execute(select(OrgUnit.id).where(OrgUnit.code == code)).scalar_one()


def readers_with_codes(codes):
    db.session.expire_all()
    return {r.code: r for r in db.session.execute(
        select(Reader).where(Reader.code.in_(codes))).scalars()}


@pytest.fixture
def cleanup(app):
    """Codes created by a test, removed afterwards (and the school's saved mapping)."""
    codes = []
    yield codes
    with app.app_context():
        db.session.execute(delete(Reader).where(Reader.code.in_(codes)))
        db.session.execute(delete(ReaderImportMapping))
        db.session.commit()


def class_list(t, n=3):
    rows = [
        [1, f"{t}01", "Nguyễn Thị Minh Khai", "15/03/2013", "Nữ", "6A9", "0901234567"],
        [2, f"{t}02", "Trần   Văn  Bình", datetime.datetime(2012, 1, 2), "Nam", "7A9",
         912345678],
        [3, f"{t}03", "Lê Hoàng Anh Đức", None, "nam", "10C2", None],
    ]
    return rows[:n]


# --- Header row and mapping -------------------------------------------------------------

def test_mapping_is_guessed_from_headers_without_accents():
    mapping = importer.guess_mapping(["STT", "MA HOC SINH", "Ho va ten", "Ngày tháng năm sinh",
                                      "Giới Tính", "Lớp", "SĐT phụ huynh", "Ghi chú"])
    assert mapping["code"] == "MA HOC SINH" and mapping["full_name"] == "Ho va ten"
    assert mapping["date_of_birth"] == "Ngày tháng năm sinh"
    assert mapping["gender"] == "Giới Tính" and mapping["class_name"] == "Lớp"
    assert mapping["phone"] == "SĐT phụ huynh" and mapping["email"] is None
    split = importer.guess_mapping(["Mã định danh", "Họ", "Tên", "Tên lớp",
                                    "Ngày sinh (dd/mm/yyyy)"])
    assert (split["code"], split["family_name"], split["given_name"], split["class_name"],
            split["date_of_birth"]) == ("Mã định danh", "Họ", "Tên", "Tên lớp",
                                        "Ngày sinh (dd/mm/yyyy)")
    assert split["full_name"] is None


def test_class_list_with_title_rows_creates_readers(app, login, cleanup):
    c = login("thuvien")
    t = tag()
    cleanup.extend(f"{t}0{i}" for i in range(1, 4))
    data = workbook(HEADERS, class_list(t), title_rows=[
        ["SỞ GIÁO DỤC VÀ ĐÀO TẠO"], ["DANH SÁCH HỌC SINH NĂM HỌC 2025-2026"], []])
    resp = upload(c, data)
    assert resp.status_code == 302 and "/preview/" in resp.headers["Location"], flashes(c)
    preview = resp.headers["Location"]
    page = text(c.get(preview))
    assert totals(page) == {"new": 3, "update": 0, "unchanged": 0, "error": 0}
    assert 'value="Mã học sinh" selected' in page  # the guessed mapping, shown
    resp = confirm(c, preview)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/readerview/list/")
    with app.app_context():
        found = readers_with_codes(cleanup)
        assert len(found) == 3
        khai, binh, duc = (found[f"{t}0{i}"] for i in range(1, 4))
        assert (khai.family_name, khai.given_name, khai.class_name, khai.grade) == (
            "Nguyễn Thị Minh", "Khai", "6A9", 6)
        assert khai.date_of_birth == datetime.date(2013, 3, 15)
        assert khai.gender == Gender.female and khai.phone == "0901234567"
        assert (binh.family_name, binh.given_name, binh.grade) == ("Trần Văn", "Bình", 7)
        assert binh.date_of_birth == datetime.date(2012, 1, 2) and binh.gender == Gender.male
        assert binh.phone == "0912345678"  # the leading 0 a number cell had lost
        assert (duc.given_name, duc.grade, duc.date_of_birth) == ("Đức", 10, None)
        assert all(r.category.code == "HS" for r in found.values())
        assert all(r.school_id == school_id("79000001") for r in found.values())
        numbers = sorted(r.card_number for r in found.values())
        assert len(set(numbers)) == 3 and all(re.fullmatch(r"HS\d{5}", n) for n in numbers)
        assert all(r.barcode.endswith(r.card_number) for r in found.values())
        # The mapping used is remembered for the school.
        saved = importer.load_mapping(db.session, school_id("79000001"))
        assert saved["code"] == "Mã học sinh" and saved["full_name"] == "Họ và tên"
    # The upload is forgotten once imported.
    resp = c.get(preview)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/readers-import/")
    assert flashes(c)


def test_existing_readers_are_updated_by_their_code(app, login, cleanup):
    c = login("thuvien")
    t = tag()
    cleanup.extend(f"{t}0{i}" for i in range(1, 4))
    confirm(c, upload(c, workbook(HEADERS, class_list(t))).headers["Location"])
    with app.app_context():
        before = readers_with_codes(cleanup)
    rows = class_list(t)
    rows[0][5] = "7A9"  # promoted
    rows[1][6] = None  # an empty cell does not erase the phone number
    rows[2][2] = "Lê Hoàng Anh Đức"
    preview = upload(c, workbook(HEADERS, rows)).headers["Location"]
    page = text(c.get(preview))
    assert totals(page) == {"new": 0, "update": 1, "unchanged": 2, "error": 0}
    assert re.search(r"6A9\s*→\s*7A9", page)
    confirm(c, preview)
    with app.app_context():
        after = readers_with_codes(cleanup)
        khai = after[f"{t}01"]
        assert (khai.class_name, khai.grade) == ("7A9", 7)
        assert khai.card_number == before[f"{t}01"].card_number and khai.id == before[
            f"{t}01"].id
        assert after[f"{t}02"].phone == "0912345678"
        assert db.session.execute(select(func.count()).select_from(Reader).where(
            Reader.code.in_(cleanup))).scalar() == 3


def test_the_chosen_mapping_is_remembered(app, login, cleanup):
    c = login("thuvien")
    t = tag()
    cleanup.append(f"{t}01")
    headers = ["Số báo danh", "Học sinh", "Lớp"]  # nothing guessable for code and name
    data = workbook(headers, [[f"{t}01", "Phạm Gia Hân", "8A1"]])
    preview = upload(c, data).headers["Location"]
    page = text(c.get(preview))
    assert 'class="alert alert-danger import-error"' in page  # choose code and name first
    assert 'id="mapping-remembered"' not in page
    assert 'id="import-confirm"' not in page
    token = csrf_token(c, preview)
    form = {"csrf_token": token, "map_code": "Số báo danh", "map_full_name": "Học sinh",
            "map_class_name": "Lớp"}
    resp = c.post(preview.replace("/preview/", "/mapping/"), data=form)
    assert resp.status_code == 302
    page = text(c.get(preview))
    assert totals(page)["new"] == 1
    # A column cannot go to two fields; a column the file lacks is refused.
    resp = c.post(preview.replace("/preview/", "/mapping/"), data={
        **form, "map_given_name": "Học sinh"})
    assert flashes(c)
    assert c.post(preview.replace("/preview/", "/mapping/"), data={
        **form, "map_email": "Không có"}).status_code == 400
    # The next file with these headers is mapped as chosen.
    second = upload(c, data).headers["Location"]
    page = text(c.get(second))
    assert 'value="Số báo danh" selected' in page and totals(page)["new"] == 1
    assert 'id="mapping-remembered"' in page
    confirm(c, second)
    with app.app_context():
        reader = readers_with_codes(cleanup)[f"{t}01"]
        assert (reader.family_name, reader.given_name, reader.grade) == ("Phạm Gia", "Hân", 8)
        saved = db.session.execute(select(ReaderImportMapping)).scalar_one()
        assert saved.mapping["code"] == "Số báo danh" and saved.mapping["email"] is None


def test_row_errors_name_the_row_and_column_and_nothing_is_saved(app, login, cleanup):
    c = login("thuvien")
    t = tag()
    codes = [f"{t}{i:02d}" for i in range(1, 9)]
    cleanup.extend(codes)
    rows = [
        [1, codes[0], "Nguyễn Văn An", "15/03/2013", "Nam", "6A1", "0901234567"],  # valid
        [2, codes[1], "Trần Bình", "31/02/2013", "Nam", "6A1", None],  # no such date
        [3, codes[2], "Lê Châu", "01/01/2013", "Không rõ", "6A1", None],  # gender
        [4, None, "Phạm Dũng", None, None, "6A1", None],  # no code
        [5, codes[4], "Hà", None, None, "6A1", None],  # one word
        [6, codes[5], "Võ Giang", None, None, "6A1", "gọi mẹ"],  # phone
        [7, codes[6], "Bùi Hạnh", None, None, "6A1", None],  # same code twice
        [8, codes[6], "Đỗ Khánh", None, None, "6A1", None],
    ]
    preview = upload(c, workbook(HEADERS, rows)).headers["Location"]
    page = text(c.get(preview))
    assert totals(page) == {"new": 1, "update": 0, "unchanged": 0, "error": 7}
    problems = re.findall(r'<tr class="danger"><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>',
                          page)
    by_row = {(int(n), column) for n, column, _m in problems}
    # Excel row numbers (the header is row 1) and the file's own column headers.
    assert {(3, "Ngày sinh"), (4, "Giới tính"), (5, "Mã học sinh"), (6, "Họ và tên"),
            (7, "Số điện thoại"), (8, "Mã học sinh"), (9, "Mã học sinh")} <= by_row, problems
    messages = {int(n): m for n, _c, m in problems}
    assert "31/02/2013" in messages[3] and "Không rõ" in messages[4]
    assert "9" in messages[8] and "8" in messages[9]  # each names the other row
    with app.app_context():
        before = db.session.execute(select(func.count()).select_from(Reader)).scalar()
    resp = confirm(c, preview)
    assert resp.status_code == 302 and "/preview/" in resp.headers["Location"]
    assert any("7" in m for m in flashes(c))
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Reader)).scalar() == before
    # The librarian may import the valid rows only.
    resp = confirm(c, preview, valid_only=True)
    assert resp.headers["Location"].endswith("/readerview/list/")
    assert any("7" in m for m in flashes(c))
    with app.app_context():
        assert set(readers_with_codes(codes)) == {codes[0]}


def test_a_failure_while_writing_saves_nothing(app, login, cleanup, monkeypatch):
    c = login("thuvien")
    t = tag()
    cleanup.extend(f"{t}0{i}" for i in range(1, 4))
    confirm(c, upload(c, workbook(HEADERS, class_list(t, 1))).headers["Location"])
    rows = class_list(t)
    rows[0][5] = "9A9"
    preview = upload(c, workbook(HEADERS, rows)).headers["Location"]

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer, "save_mapping", broken)  # after readers were added
    with pytest.raises(RuntimeError):
        confirm(c, preview)
    monkeypatch.undo()
    with app.app_context():
        found = readers_with_codes(cleanup)
        assert set(found) == {f"{t}01"} and found[f"{t}01"].class_name == "6A9"
    assert c.get(preview).status_code == 200  # the file is still there to retry


@pytest.mark.parametrize("data, words", [
    (b"just some text", "xlsx"),
    (b"\xd0\xcf\x11\xe0" + b"\0" * 100, ".xls"),
    (b"PK\x03\x04broken zip", "xlsx"),
])
def test_a_file_that_is_not_a_workbook_is_refused_in_words(login, data, words):
    c = login("thuvien")
    resp = upload(c, data)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/readers-import/")
    assert any(words in m for m in flashes(c))


def test_an_empty_list_is_refused(login):
    c = login("thuvien")
    upload(c, workbook(HEADERS, []))
    assert any("1" in m for m in flashes(c))  # names the header row
    book = openpyxl.Workbook()
    out = io.BytesIO()
    book.save(out)
    upload(c, out.getvalue())
    assert flashes(c)


def test_the_template_is_mapped_without_help(app, login, cleanup):
    c = login("thuvien")
    resp = c.get("/readers-import/template.xlsx")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(resp.data))
    headers = [cell.value for cell in book.worksheets[0][1] if cell.value]
    mapping = importer.guess_mapping(headers)
    keys = {k for k, v in mapping.items() if v}
    assert keys == {"code", "full_name", "class_name", "date_of_birth", "gender", "phone",
                    "email", "category"}
    t = tag()
    cleanup.append(f"{t}01")
    row = {"code": f"{t}01", "full_name": "Cao Văn Sơn", "category": "GV", "gender": "Nam"}
    sheet = book.worksheets[0]
    for index, header in enumerate(headers, start=1):
        key = next(k for k, v in mapping.items() if v == header)
        sheet.cell(row=2, column=index, value=row.get(key))
    out = io.BytesIO()
    book.save(out)
    confirm(c, upload(c, out.getvalue()).headers["Location"])
    with app.app_context():
        teacher = readers_with_codes([f"{t}01"])[f"{t}01"]
        assert teacher.category.code == "GV" and teacher.card_number.startswith("GV")


def test_only_the_librarian_imports_into_their_own_school(app, login, cleanup):
    t = tag()
    cleanup.append(f"{t}01")
    c = login("thuvien")
    preview = upload(c, workbook(HEADERS, class_list(t, 1))).headers["Location"]
    other = login("thuvien2")
    assert other.get(preview).status_code == 404
    resp = other.post(preview.replace("/preview/", "/confirm/"),
                      data={"csrf_token": session_csrf(other)})
    assert resp.status_code == 404
    for username in ("hieutruong", "admin", "hocsinh"):
        user = login(username)
        assert user.get("/readers-import/").status_code in (302, 403)
        assert user.get(preview).status_code in (302, 403)
        assert user.post("/readers-import/upload", data={
            "csrf_token": session_csrf(user)}).status_code in (302, 403)
    with app.app_context():
        assert readers_with_codes([f"{t}01"]) == {}
    confirm(c, preview)
    with app.app_context():
        assert readers_with_codes([f"{t}01"])[f"{t}01"].school_id == school_id("79000001")


def test_importing_to_a_school_where_the_code_exists_twice_is_an_error(app, login, cleanup):
    """Two readers already share a code (typed by hand long ago): the row says so."""
    t = tag()
    cleanup.append(f"{t}01")
    with app.app_context():
        from app.readers.models import ReaderCategory

        hs = db.session.execute(select(ReaderCategory).where(ReaderCategory.code == "HS")
                                ).scalar_one()
        for i in range(2):
            db.session.add(Reader(school_id=school_id("79000001"), category=hs,
                                  code=f"{t}01", family_name="Đoàn", given_name=f"Mai{i}",
                                  card_number=f"D{t}{i}", barcode=f"D{t}{i}"))
        db.session.commit()
    c = login("thuvien")
    page = text(c.get(upload(c, workbook(HEADERS, class_list(t, 1))).headers["Location"]))
    assert totals(page)["error"] == 1 and "Mai0" in page and "Mai1" in page


def test_card_numbers_skip_numbers_already_taken(app):
    with app.app_context():
        own = db.session.get(OrgUnit, school_id("79000001"))
        hs = services.default_category(db.session)
        taken, _ = services.taken_numbers(db.session, own.id)
        numbers = services.allocate_cards(db.session, own, [hs] * 50)
        cards = [n for n, _b in numbers]
        assert len(set(cards)) == 50 and not set(cards) & taken
        db.session.rollback()
