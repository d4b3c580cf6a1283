"""Stocktake (kiểm kê): sessions, scanning, files of barcodes, closing, minutes, registers,
campaigns; bad input, isolation between schools, concurrent scans and closes (PostgreSQL)."""
import datetime
import io
import re
import threading

import openpyxl
import pytest
from sqlalchemy import delete, func, select, update

from app.collection.models import Copy, CopyStatus, Location
from app.core.audit import AuditLog
from app.extensions import db
from app.org.models import OrgUnit
from app.stocktake import services
from app.stocktake.models import (
    Outcome, SessionStatus, StocktakeCampaign, StocktakeRegisterLine, StocktakeResult,
    StocktakeScan, StocktakeSession, StocktakeUnknown,
)
from tests.helpers import csrf_token, session_csrf, text

_META = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture
def school1(db_session):
    return db_session.scalar(select(OrgUnit).where(OrgUnit.code == "79000001"))


@pytest.fixture
def school2(db_session):
    return db_session.scalar(select(OrgUnit).where(OrgUnit.code == "79000002"))


def reset_stocktake(session):
    """No stocktake anywhere, every copy of the demo schools on its shelf in the open stacks."""
    session.rollback()
    for model in (StocktakeResult, StocktakeRegisterLine, StocktakeScan, StocktakeUnknown,
                  StocktakeSession, StocktakeCampaign):
        session.execute(delete(model))
    for code in ("79000001", "79000002"):
        school_id = session.scalar(select(OrgUnit.id).where(OrgUnit.code == code))
        km = session.scalar(select(Location.id).where(Location.school_id == school_id,
                                                      Location.code == "KM"))
        session.execute(update(Copy).where(Copy.school_id == school_id).values(
            status=CopyStatus.available, location_id=km, note=None))
    session.commit()


@pytest.fixture
def clean(db_session):
    reset_stocktake(db_session)
    yield
    reset_stocktake(db_session)


def _location(session, school, code):
    return session.scalar(select(Location).where(Location.school_id == school.id,
                                                 Location.code == code))


def _copies(session, school, count=None):
    query = select(Copy).where(Copy.school_id == school.id).order_by(Copy.id)
    return session.scalars(query.limit(count) if count else query).all()


def _start(client, **fields):
    data = {"name": "Kiểm kê kho mở", "started_on": "25/11/2026", **fields}
    data["csrf_token"] = csrf_token(client, "/stocktake/new")
    return client.post("/stocktake/create", data=data)


def _session_id(resp):
    match = re.search(r"/stocktake/show/(\d+)", resp.headers.get("Location", ""))
    assert match, (resp.status_code, text(resp)[:2000])
    return int(match.group(1))


class Scanner:
    def __init__(self, client, st_id):
        self.client, self.st_id = client, st_id
        page = client.get(f"/stocktake/scan/{st_id}")
        assert page.status_code == 200, page.status_code
        self.token = _META.search(text(page)).group(1)

    def scan(self, barcode, **extra):
        resp = self.client.post(f"/stocktake/api/scan/{self.st_id}",
                                json={"barcode": barcode, **extra},
                                headers={"X-CSRFToken": self.token})
        return resp.status_code, resp.get_json()


def _partial_setup(session, school1):
    """5 copies moved to the reading room, one copy of the open stacks on loan, one
    withdrawn: returns (copies in KM, copies in PD, on-loan copy, withdrawn copy)."""
    copies = _copies(session, school1)
    pd = _location(session, school1, "PD")
    for copy in copies[-5:]:
        copy.location_id = pd.id
    copies[0].status = CopyStatus.on_loan
    copies[1].status = CopyStatus.withdrawn
    session.commit()
    return copies[:-5], copies[-5:], copies[0], copies[1]


def _counts(session, st_id):
    return (session.scalar(select(func.count()).select_from(StocktakeScan).where(
        StocktakeScan.session_id == st_id)),
        session.scalar(select(func.count()).select_from(StocktakeUnknown).where(
            StocktakeUnknown.session_id == st_id)))


def test_partial_stocktake_live_outcomes(login, db_session, school1, school2, clean):
    km_copies, pd_copies, on_loan, withdrawn = _partial_setup(db_session, school1)
    librarian = login("thuvien")
    km = _location(db_session, school1, "KM")
    resp = _start(librarian, location_ids=[str(km.id)])
    st_id = _session_id(resp)
    st = db_session.get(StocktakeSession, st_id)
    # Expected: the open stacks' copies, without the withdrawn one.
    assert st.expected_count == len(km_copies) - 1
    scanner = Scanner(librarian, st_id)
    found = km_copies[2]
    status, out = scanner.scan(found.barcode)
    assert status == 200 and out["kind"] == "found" and out["level"] == "ok", out
    assert found.accession_label in out["message"]
    # Scanned again (or by its accession number): counted once.
    status, out = scanner.scan(found.accession_label)
    assert status == 200 and out["duplicate"] and out["level"] == "dup"
    assert "Đã đếm" in out["message"]
    status, out = scanner.scan(pd_copies[0].barcode)
    assert out["kind"] == "misplaced" and "Phòng đọc" in out["message"], out
    status, out = scanner.scan(withdrawn.barcode)
    assert out["kind"] == "withdrawn" and "thanh lọc" in out["message"], out
    status, out = scanner.scan("KHONGCO-999")
    assert status == 200 and out["kind"] == "unknown" and "KHONGCO-999" in out["message"]
    # A shelf chosen on the page: a copy of the open stacks scanned "at" the closed stacks.
    kd = _location(db_session, school1, "KD")
    status, out = scanner.scan(km_copies[3].barcode, location_id=kd.id)
    assert out["kind"] == "found" and out["level"] == "warn" and "Kho mở" in out["message"]
    before = _counts(db_session, st_id)
    # Bad input: another school's copy, garbage, nothing: refused, nothing changed.
    other = _copies(db_session, school2, 1)[0]
    status, out = scanner.scan(other.barcode)
    assert status == 409 and "trường khác" in out["message"] and other.barcode in out["message"]
    status, out = scanner.scan("@@ <script>")
    assert status == 409 and "không phải mã vạch" in out["message"]
    status, out = scanner.scan("   ")
    assert status == 409
    status, out = scanner.scan({"not": "a barcode"})
    assert status == 409
    status, out = scanner.scan(found.barcode, location_id="abc")
    assert status == 409 and "abc" in out["message"]
    db_session.expire_all()
    assert _counts(db_session, st_id) == before == (4, 1)
    summary = librarian.get(f"/stocktake/api/summary/{st_id}").get_json()
    totals = summary["totals"]
    assert totals["found"] == 2 and totals["misplaced"] == 1 and totals["withdrawn"] == 1
    assert totals["unknown"] == 1 and totals["on_loan"] == 1
    assert totals["missing"] == st.expected_count - 2 - 1
    assert [line["location"] for line in summary["locations"]] == ["Kho mở"]
    assert summary["by_user"] == [{"user": "thuvien", "count": 4}]
    page = text(librarian.get(f"/stocktake/show/{st_id}"))
    assert "Kho mở" in page and "KHONGCO-999" in page and pd_copies[0].accession_label in page


def test_close_marks_lost_writes_results_and_register(login, db_session, school1, clean):
    km_copies, pd_copies, on_loan, withdrawn = _partial_setup(db_session, school1)
    librarian = login("thuvien")
    km = _location(db_session, school1, "KM")
    st_id = _session_id(_start(librarian, location_ids=[str(km.id)],
                               committee="Võ Minh Tuấn – Hiệu trưởng\nNguyễn Thị Lan – Thư ký"))
    scanner = Scanner(librarian, st_id)
    present = km_copies[2:-3]  # all but three copies of the open stacks are on the shelf
    missing = km_copies[-3:]
    for copy in present:
        assert scanner.scan(copy.barcode)[0] == 200
    scanner.scan(pd_copies[0].barcode)
    scanner.scan(withdrawn.barcode)
    resp = librarian.post(f"/stocktake/close/{st_id}", data={
        "missing_action": "mark_lost", "proposals": "Đề nghị bổ sung sách",
        "csrf_token": csrf_token(librarian, f"/stocktake/show/{st_id}")},
        follow_redirects=True)
    page = text(resp)
    assert resp.status_code == 200 and "đã kết thúc" in page.lower(), page[:3000]
    db_session.expire_all()
    st = db_session.get(StocktakeSession, st_id)
    assert st.status == SessionStatus.closed and st.closed_at is not None
    assert (st.found_count, st.missing_count, st.on_loan_count, st.misplaced_count) == (
        len(present), 3, 1, 1)
    outcomes = dict(db_session.execute(select(StocktakeResult.copy_id, StocktakeResult.outcome)
                                       .where(StocktakeResult.session_id == st_id)).all())
    marks = dict(db_session.execute(select(StocktakeResult.copy_id, StocktakeResult.mark)
                                    .where(StocktakeResult.session_id == st_id)).all())
    assert all(outcomes[c.id] == Outcome.found and marks[c.id] == "C" for c in present)
    assert all(outcomes[c.id] == Outcome.missing and marks[c.id] == "M" for c in missing)
    assert outcomes[on_loan.id] == Outcome.on_loan and marks[on_loan.id] == "C"
    assert outcomes[pd_copies[0].id] == Outcome.misplaced
    assert outcomes[withdrawn.id] == Outcome.withdrawn
    assert pd_copies[1].id not in outcomes  # another part, not scanned: not in the result
    # Missing copies are now lost, with a note and an audit entry each.
    for copy in missing:
        copy = db_session.get(Copy, copy.id)
        assert copy.status == CopyStatus.lost and "Kiểm kê kho mở" in copy.note
        entry = db_session.scalars(select(AuditLog).where(
            AuditLog.table_name == "copy", AuditLog.row_id == copy.id)
            .order_by(AuditLog.id.desc())).first()
        assert entry.changes["status"] == ["available", "lost"] and entry.username == "thuvien"
    assert db_session.get(Copy, present[0].id).status == CopyStatus.available
    # Part III: copies in the part, out (withdrawn + now lost), remaining, by type and value.
    lines = services.register_lines(db_session, st_id)
    total = lines[-1]
    assert total.is_total and total.copies_in == len(km_copies)
    assert total.copies_out == 1 + 3 and total.copies_remaining == len(km_copies) - 4
    assert total.copies_found == len(present) and total.copies_missing == 3
    value_in = sum(c.price or 0 for c in km_copies)
    assert total.value_in == value_in
    assert total.value_missing == sum(c.price or 0 for c in missing)
    assert sum(line.copies_in for line in lines[:-1]) == total.copies_in
    # Closing twice: a clear message, nothing changed.
    results_before = db_session.scalar(select(func.count()).select_from(StocktakeResult))
    resp = librarian.post(f"/stocktake/close/{st_id}", data={
        "missing_action": "leave", "csrf_token": session_csrf(librarian)},
        follow_redirects=True)
    assert "đã được kết thúc" in text(resp)
    db_session.expire_all()
    assert db_session.scalar(select(func.count()).select_from(StocktakeResult)) == results_before
    assert db_session.get(StocktakeSession, st_id).missing_action.name == "mark_lost"
    # No more scans.
    status, out = scanner.scan(present[0].barcode)
    assert status == 409 and "kết thúc" in out["message"]
    # The register page: the Part III line with its Roman-numeral date, and the SGK marks.
    page = text(librarian.get("/stocktake/register"))
    roman = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
    assert f".{roman[st.closed_at.month - 1]}.{st.closed_at.year}" in page
    assert "Kiểm kê kho mở" in page and "Tổng cộng" in page


def test_close_leaving_missing_copies(db_session, school1, clean):
    st = services.create_session(db_session, None, school1.id, "Toàn bộ", datetime.date.today())
    copies = _copies(db_session, school1)
    for copy in copies[:10]:
        services.scan(db_session, None, school1.id, st.id, copy.barcode)
    services.close(db_session, None, school1.id, st.id, "leave")
    db_session.commit()
    assert st.missing_count == len(copies) - 10
    assert db_session.scalar(select(func.count()).select_from(Copy).where(
        Copy.school_id == school1.id, Copy.status == CopyStatus.lost)) == 0
    assert db_session.scalar(select(func.count()).select_from(StocktakeResult).where(
        StocktakeResult.session_id == st.id, StocktakeResult.mark == "M")) == len(copies) - 10
    with pytest.raises(services.StocktakeError):
        services.close(db_session, None, school1.id, st.id, "mark_lost")
    db_session.rollback()
    with pytest.raises(services.StocktakeError) as error:
        services.close(db_session, None, school1.id, st.id, "something")
    assert "mất" in str(error.value)
    db_session.rollback()


def _upload(client, st_id, content, name="may-quet.txt"):
    token = csrf_token(client, f"/stocktake/show/{st_id}")
    return client.post(f"/stocktake/upload/{st_id}", data={
        "file": (io.BytesIO(content), name), "csrf_token": token},
        content_type="multipart/form-data")


def test_file_of_barcodes(login, db_session, school1, school2, clean):
    librarian = login("thuvien")
    st_id = _session_id(_start(librarian, name="Kiểm kê bằng máy quét cầm tay"))
    copies = _copies(db_session, school1)
    scanner = Scanner(librarian, st_id)
    scanner.scan(copies[0].barcode)  # already counted at the desk
    lines = ["Barcode"] + [c.barcode for c in copies[:20]] + [copies[3].barcode, "",
                                                              "LA-001;2026-11-25 08:00",
                                                              "LA-001"]
    resp = _upload(librarian, st_id, "\r\n".join(lines).encode())
    assert resp.status_code == 302, text(resp)[:1000]
    preview = librarian.get(resp.headers["Location"])
    page = text(preview)
    assert preview.status_code == 200 and "upload-confirm" in page
    assert re.search(r'id="plan-new">19<', page), page
    token = re.search(r"/upload/\d+/([A-Za-z0-9_-]{32})", resp.headers["Location"]).group(1)
    # Another librarian cannot use the upload.
    assert login("thuvien2").get(resp.headers["Location"]).status_code == 404
    resp = librarian.post(f"/stocktake/upload/{st_id}/{token}/confirm",
                          data={"csrf_token": csrf_token(librarian, f"/stocktake/show/{st_id}")},
                          follow_redirects=True)
    assert "19" in text(resp)
    db_session.expire_all()
    assert _counts(db_session, st_id) == (20, 1)  # 20 copies; "LA-001" is unknown
    assert db_session.scalar(select(StocktakeUnknown.times).where(
        StocktakeUnknown.session_id == st_id)) == 2
    via = db_session.scalars(select(StocktakeScan.via).where(
        StocktakeScan.session_id == st_id)).all()
    assert sorted(v.name for v in via).count("file") == 19

    # Garbage lines and another school's copies: the whole file is refused, nothing counted.
    other = _copies(db_session, school2, 1)[0]
    for content, expected in (
            (f"{copies[25].barcode}\nxin chào thư viện\n{copies[26].barcode}\n".encode(),
             "dòng 2"),
            (f"{copies[25].barcode}\n{other.barcode}\n".encode(), "trường khác")):
        resp = _upload(librarian, st_id, content)
        preview = librarian.get(resp.headers["Location"])
        page = text(preview)
        assert expected in page and "upload-confirm" not in page, page[:3000]
        token = re.search(r"/upload/\d+/([A-Za-z0-9_-]{32})", resp.headers["Location"]).group(1)
        resp = librarian.post(f"/stocktake/upload/{st_id}/{token}/confirm", data={
            "csrf_token": session_csrf(librarian)},
            follow_redirects=True)
        assert "Chưa đếm bản nào" in text(resp)
        db_session.expire_all()
        assert _counts(db_session, st_id) == (20, 1)
    # A binary file is refused at once.
    resp = _upload(librarian, st_id, b"PK\x03\x04\x00\x00binary", name="sach.xlsx")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/show/{st_id}")
    assert "không phải tệp" in text(librarian.get(resp.headers["Location"]))


def test_minutes_excel_and_printable_page(login, db_session, school1, clean):
    librarian = login("thuvien")
    st = services.create_session(db_session, None, school1.id, "Kiểm kê cuối năm",
                                 datetime.date(2026, 11, 25),
                                 committee="Võ Minh Tuấn – Hiệu trưởng, Chủ tịch")
    copies = _copies(db_session, school1)
    copies[5].status = CopyStatus.damaged
    for copy in copies[2:]:
        services.scan(db_session, None, school1.id, st.id, copy.barcode)
    services.close(db_session, None, school1.id, st.id, "leave",
                   proposals="Đề nghị thanh lý sách hỏng")
    db_session.commit()
    # Before closing there are no minutes; after, both forms.
    resp = librarian.get(f"/stocktake/minutes/{st.id}/xlsx")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml")
    book = openpyxl.load_workbook(io.BytesIO(resp.data))
    sheet = book.active
    cells = {(c.row, c.column): c.value for row in sheet.iter_rows() for c in row
             if c.value is not None}
    values = list(cells.values())
    assert cells[(1, 1)].startswith("SỞ GIÁO DỤC VÀ ĐÀO TẠO")
    assert cells[(2, 1)] == "TRƯỜNG THCS NGUYỄN DU"
    assert cells[(1, 6)] == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    assert cells[(2, 6)] == "Độc lập - Tự do - Hạnh phúc"
    assert "BIÊN BẢN KIỂM KÊ" in cells[(6, 1)]
    assert sheet.page_setup.paperSize == 9
    assert "1. Võ Minh Tuấn – Hiệu trưởng, Chủ tịch" in values
    total_row = [r for (r, c), v in cells.items() if v == "Tổng cộng"][0]
    assert cells[(total_row, 2)] == len(copies)  # copies in
    assert cells[(total_row, 10)] == 2  # missing
    assert copies[0].accession_label in values and copies[1].accession_label in values
    assert copies[5].accession_label in values  # damaged list
    assert "Đề nghị thanh lý sách hỏng" in values
    assert "CHỦ TỊCH HỘI ĐỒNG (HIỆU TRƯỞNG)" in values
    page = librarian.get(f"/stocktake/minutes/{st.id}")
    body = text(page)
    assert page.status_code == 200 and "BIÊN BẢN KIỂM KÊ THƯ VIỆN" in body
    assert copies[0].accession_label in body and "@page" in body
    # The principal reads the minutes too.
    assert login("hieutruong").get(f"/stocktake/minutes/{st.id}/xlsx").status_code == 200


def test_bad_session_input_creates_nothing(login, db_session, school1, school2, clean):
    librarian = login("thuvien")
    foreign = _location(db_session, school2, "KM")
    empty = _location(db_session, school1, "KD")  # no copy shelved there
    for fields, message in (
            ({"location_ids": [str(empty.id)]}, "Không có bản sách nào"),
            ({"name": ""}, "Nhập tên đợt kiểm kê"),
            ({"started_on": "31/02/2026"}, "ngày"),
            ({"location_ids": [str(foreign.id)]}, "không thuộc trường"),
            ({"class_from": "900", "class_to": "100"}, "900"),
            ({"location_ids": ["abc"]}, "abc")):
        resp = _start(librarian, **fields)
        assert resp.status_code == 400 and message in text(resp), (fields, text(resp)[:500])
    assert db_session.scalar(select(func.count()).select_from(StocktakeSession)) == 0


def test_isolation_and_roles(login, db_session, school1, clean):
    st = services.create_session(db_session, None, school1.id, "Kiểm kê", datetime.date.today())
    copy = _copies(db_session, school1, 1)[0]
    db_session.commit()
    other = login("thuvien2")
    for url in (f"/stocktake/show/{st.id}", f"/stocktake/scan/{st.id}",
                f"/stocktake/minutes/{st.id}", f"/stocktake/minutes/{st.id}/xlsx",
                f"/stocktake/api/summary/{st.id}"):
        assert other.get(url).status_code == 404, url
    token = csrf_token(other, "/stocktake/new")
    resp = other.post(f"/stocktake/api/scan/{st.id}", json={"barcode": copy.barcode},
                      headers={"X-CSRFToken": token})
    assert resp.status_code == 409 and "không tìm thấy" in resp.get_json()["message"].lower()
    for url in (f"/stocktake/close/{st.id}", f"/stocktake/upload/{st.id}"):
        assert other.post(url, data={"missing_action": "leave", "csrf_token": token}
                          ).status_code == 404, url
    assert f'data-id="{st.id}"' not in text(other.get("/stocktake/"))
    # Read-only staff who see the school read the results, never count or close.
    for username in ("hieutruong", "phong", "thanhtra"):
        c = login(username)
        assert c.get(f"/stocktake/show/{st.id}").status_code == 200, username
        assert c.get(f"/stocktake/scan/{st.id}").status_code == 403, username
        assert c.post(f"/stocktake/close/{st.id}").status_code in (400, 403), username
    assert login("hocsinh").get(f"/stocktake/show/{st.id}").status_code == 403
    db_session.expire_all()
    assert db_session.get(StocktakeSession, st.id).status == SessionStatus.open
    assert _counts(db_session, st.id) == (0, 0)


def test_campaigns(login, db_session, school1, clean):
    admin = login("admin")
    token = csrf_token(admin, "/stocktake-campaigns/")
    resp = admin.post("/stocktake-campaigns/create", data={
        "name": "Kiểm kê toàn thành phố 2026", "starts_on": "01/11/2026",
        "ends_on": "31/12/2026", "csrf_token": token})
    assert resp.status_code == 302, text(resp)[:500]
    city = db_session.scalar(select(StocktakeCampaign).where(
        StocktakeCampaign.name == "Kiểm kê toàn thành phố 2026"))
    # Bad input: dates the wrong way round; a closed office.
    resp = admin.post("/stocktake-campaigns/create", data={
        "name": "Sai ngày", "starts_on": "31/12/2026", "ends_on": "01/11/2026",
        "csrf_token": token})
    assert resp.status_code == 400 and "trước khi bắt đầu" in text(resp)
    phong = login("phong")
    resp = phong.post("/stocktake-campaigns/create", data={
        "name": "Phòng cũ", "starts_on": "01/11/2026", "ends_on": "31/12/2026",
        "csrf_token": csrf_token(phong, "/stocktake-campaigns/")})
    assert resp.status_code == 400 and "30/06/2025" in text(resp)
    ward = login("phongvhxh")
    resp = ward.post("/stocktake-campaigns/create", data={
        "name": "Kiểm kê phường Sài Gòn", "starts_on": "01/11/2026",
        "ends_on": "31/12/2026", "csrf_token": csrf_token(ward, "/stocktake-campaigns/")})
    assert resp.status_code == 302
    local = db_session.scalar(select(StocktakeCampaign).where(
        StocktakeCampaign.name == "Kiểm kê phường Sài Gòn"))
    assert db_session.scalar(select(func.count()).select_from(StocktakeCampaign)) == 2
    # Schools' staff never create one.
    librarian = login("thuvien")
    assert librarian.post("/stocktake-campaigns/create", data={
        "name": "x", "csrf_token": csrf_token(librarian, "/stocktake/new")}).status_code == 403
    # The school sees both campaigns and takes part in the ward's.
    page = text(librarian.get("/stocktake/"))
    assert "Kiểm kê toàn thành phố 2026" in page and "Kiểm kê phường Sài Gòn" in page
    st_id = _session_id(_start(librarian, name="Kiểm kê theo đợt của phường",
                               campaign_id=str(local.id)))
    scanner = Scanner(librarian, st_id)
    for copy in _copies(db_session, school1, 4):
        scanner.scan(copy.barcode)
    # The ward sees its schools (two in the demo city): one started (4 counted), the others
    # not.
    from app.org.services import schools_under

    ward_schools = db_session.scalars(select(OrgUnit.code).where(OrgUnit.id.in_(
        schools_under(db_session, local.unit_id)))).all()
    assert "79000001" in ward_schools and "79000002" not in ward_schools
    page = text(ward.get(f"/stocktake-campaigns/show/{local.id}"))
    assert "Kiểm kê theo đợt của phường" in page
    assert all(f'data-school="{code}"' in page for code in ward_schools)
    assert f"1 trên {len(ward_schools)} trường" in page, page
    assert 'data-school="79000002"' not in page
    # Another ward's school and its librarian do not see the ward's campaign.
    assert login("thuvien2").get(f"/stocktake-campaigns/show/{local.id}").status_code == 404
    assert "Kiểm kê phường Sài Gòn" not in text(login("thuvien2").get("/stocktake/"))
    # A campaign the school is not part of cannot be chosen.
    other_school = db_session.scalar(select(OrgUnit).where(OrgUnit.code == "79000002"))
    with pytest.raises(services.StocktakeError):
        services.create_session(db_session, None, other_school.id, "x", datetime.date.today(),
                                campaign_id=local.id)
    db_session.rollback()
    # The department sees every school of the city campaign.
    page = text(login("thanhtra").get(f"/stocktake-campaigns/show/{city.id}"))
    assert all(code in page for code in ("79000001", "79000002", "79000006"))


def test_scanning_the_same_copy_at_once_counts_once(app, db_session, school1, clean):
    """Two phones scan the same copy at the same moment: one scan row, both answered."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrency is proved on PostgreSQL")
    from sqlalchemy.orm import Session

    st = services.create_session(db_session, None, school1.id, "Song song", datetime.date.today())
    db_session.commit()
    barcodes = [c.barcode for c in _copies(db_session, school1, 5)]
    school_id, st_id = school1.id, st.id
    barrier = threading.Barrier(2)
    results = []

    def phone():
        with app.app_context(), Session(db.engine) as session:
            for barcode in barcodes:
                barrier.wait()
                out = services.scan(session, None, school_id, st_id, barcode)
                session.commit()
                results.append(out["duplicate"])

    threads = [threading.Thread(target=phone) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True] * 5
    assert _counts(db_session, st.id) == (5, 0)


def test_closing_twice_at_once_closes_once(app, db_session, school1, clean):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrency is proved on PostgreSQL")
    from sqlalchemy.orm import Session

    st = services.create_session(db_session, None, school1.id, "Đóng hai lần",
                                 datetime.date.today())
    db_session.commit()
    school_id, st_id = school1.id, st.id
    barrier = threading.Barrier(2)
    results = []

    def librarian():
        with app.app_context(), Session(db.engine) as session:
            barrier.wait()
            try:
                services.close(session, None, school_id, st_id, "leave")
                session.commit()
                results.append("ok")
            except services.StocktakeError as error:
                session.rollback()
                results.append(str(error))

    threads = [threading.Thread(target=librarian) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1, results
    assert "đã được kết thúc" in [r for r in results if r != "ok"][0]
    assert db_session.scalar(select(func.count()).select_from(StocktakeResult).where(
        StocktakeResult.session_id == st.id)) == len(_copies(db_session, school1))
    assert db_session.scalar(select(func.count()).select_from(StocktakeRegisterLine).where(
        StocktakeRegisterLine.session_id == st.id, StocktakeRegisterLine.is_total)) == 1


def test_upload_while_someone_scans_skips_their_copies(db_session, school1, clean):
    """A copy counted by a scanner between the file's check and its write is skipped."""
    st = services.create_session(db_session, None, school1.id, "Tệp", datetime.date.today())
    copies = _copies(db_session, school1, 6)
    services.scan(db_session, None, school1.id, st.id, copies[2].barcode)
    rows = [{"school_id": school1.id, "session_id": st.id, "copy_id": c.id, "location_id": None,
             "scanned_at": datetime.datetime(2026, 11, 25, 8, 0), "scanned_by_id": None,
             "via": "file"} for c in copies]
    services._insert_scans(db_session, school1.id, rows)
    db_session.commit()
    assert _counts(db_session, st.id) == (6, 0)


def test_stocktake_screens_are_vietnamese(login, db_session, school1, clean):
    from tests.test_i18n import english_leftovers

    st = services.create_session(db_session, None, school1.id, "Kiểm kê", datetime.date.today())
    db_session.commit()
    librarian = login("thuvien")
    for url in ("/stocktake/", "/stocktake/new", f"/stocktake/show/{st.id}",
                f"/stocktake/scan/{st.id}", "/stocktake/register", "/stocktake-campaigns/"):
        page = text(librarian.get(url))
        assert english_leftovers(page) == [], url
    services.close(db_session, None, school1.id, st.id, "leave")
    db_session.commit()
    for url in (f"/stocktake/show/{st.id}", f"/stocktake/minutes/{st.id}",
                "/stocktake/register"):
        assert english_leftovers(text(librarian.get(url))) == [], url
    admin = login("admin")
    assert english_leftovers(text(admin.get("/stocktake-campaigns/"))) == []


def test_close_waits_for_a_scan_in_flight(app, db_session, school1, clean):
    """A phone's scan not yet committed when the librarian closes: the close waits for it and
    counts the copy; a scan after the close is refused."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrency is proved on PostgreSQL")
    import time

    from sqlalchemy.orm import Session

    st = services.create_session(db_session, None, school1.id, "Đang quét",
                                 datetime.date.today())
    db_session.commit()
    copies = _copies(db_session, school1, 2)
    school_id, st_id = school1.id, st.id
    results = []

    def librarian():
        with app.app_context(), Session(db.engine) as session:
            services.close(session, None, school_id, st_id, "leave")
            session.commit()
            results.append("closed")

    with Session(db.engine) as phone:
        services.scan(phone, None, school_id, st_id, copies[0].barcode)
        closing = threading.Thread(target=librarian)
        closing.start()
        time.sleep(0.5)
        assert closing.is_alive() and results == []  # waiting for the phone's scan
        phone.commit()
    closing.join(timeout=10)
    assert results == ["closed"]
    assert db_session.scalar(select(StocktakeResult.outcome).where(
        StocktakeResult.session_id == st_id,
        StocktakeResult.copy_id == copies[0].id)) == Outcome.found
    with pytest.raises(services.StocktakeError):
        services.scan(db_session, None, school_id, st_id, copies[1].barcode)
    db_session.rollback()


def test_lost_copies_found_go_back_on_the_shelf(db_session, school1, clean):
    """A copy written off as lost and scanned during the count is available again after the
    close, with a note and an audit entry; one already on a weeding list stays lost."""
    from app.weeding import services as weeding

    copies = _copies(db_session, school1)
    found_lost, listed_lost, unscanned_lost = copies[0], copies[1], copies[2]
    for copy in (found_lost, listed_lost, unscanned_lost):
        copy.status = CopyStatus.lost
    db_session.flush()
    round_ = weeding.create_round(db_session, None, school1, "Thanh lọc sách mất")
    weeding.add_copy_ids(db_session, None, round_, [listed_lost.id])
    db_session.commit()
    st = services.create_session(db_session, None, school1.id, "Toàn bộ", datetime.date.today())
    for copy in copies[:2] + copies[3:]:
        services.scan(db_session, None, school1.id, st.id, copy.barcode)
    before = db_session.scalar(select(func.coalesce(func.max(AuditLog.id), 0)))
    services.close(db_session, None, school1.id, st.id, "leave")
    db_session.commit()
    db_session.expire_all()
    assert db_session.get(Copy, found_lost.id).status == CopyStatus.available
    assert "Tìm thấy" in db_session.get(Copy, found_lost.id).note
    assert db_session.get(Copy, listed_lost.id).status == CopyStatus.lost
    assert db_session.get(Copy, unscanned_lost.id).status == CopyStatus.lost
    entries = db_session.scalars(select(AuditLog).where(
        AuditLog.id > before, AuditLog.table_name == "copy")).all()
    assert [(e.row_id, e.changes["status"]) for e in entries] == [
        (found_lost.id, ["lost", "available"])]
    outcomes = dict(db_session.execute(select(StocktakeResult.copy_id, StocktakeResult.outcome)
                                       .where(StocktakeResult.session_id == st.id)).all())
    assert outcomes[found_lost.id] == Outcome.found
    assert outcomes[listed_lost.id] == Outcome.withdrawn
    assert unscanned_lost.id not in outcomes
    # Counted as found, not as out of stock, in Part III.
    assert st.found_count == len(copies) - 2
    total = services.register_lines(db_session, st.id)[-1]
    assert total.copies_out == 2 and total.copies_found == len(copies) - 2
    db_session.execute(delete(weeding.WeedingItem))
    db_session.execute(delete(weeding.WeedingRound))
    db_session.commit()
