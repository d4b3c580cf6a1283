"""Cataloguing and accession registers: records, call numbers, copies, intakes, union catalogue."""
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.catalog import services
from app.catalog.models import Record
from app.collection import services as collection
from app.collection.models import AccessionSeries, Copy, Intake
from app.core.errors import ValidationError
from app.extensions import db
from app.org.models import OrgUnit
from tests.helpers import post_form, session_csrf, text


def school(code):
    return db.session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one()


def series(school_id, code):
    return db.session.execute(select(AccessionSeries).where(
        AccessionSeries.school_id == school_id, AccessionSeries.code == code)).scalar_one()


def flashes(client):
    with client.session_transaction() as sess:
        return [m for _c, m in sess.get("_flashes", [])]


def record_by_title(title, school_id=None):
    query = select(Record).where(Record.title == title)
    if school_id:
        query = query.where(Record.school_id == school_id)
    return db.session.execute(query).scalars().first()


def test_isbn_rules(app):
    assert services.normalise_isbn("978-604-1-00012-4") == "9786041000124"
    assert services.normalise_isbn(" 0-306-40615-2 ") == "0306406152"
    assert services.hyphenate_isbn("9786041000124") == "978-604-1-00012-4"
    assert services.normalise_isbn("") is None
    for bad in ("978-604-1-00012-5", "12345", "abc"):
        with pytest.raises(ValidationError) as err:
            services.normalise_isbn(bad, row=7)
        assert err.value.row == 7 and err.value.field == "isbn"
    with app.test_request_context():
        with pytest.raises(ValidationError) as err:
            services.normalise_isbn("978-604-1-00012-5")
        assert str(err.value) == ("ISBN “978-604-1-00012-5” không hợp lệ (sai độ dài hoặc "
                                  "số kiểm tra).")


def test_author_marks_follow_the_school_rule():
    record = Record(title="Tôi thấy hoa vàng trên cỏ xanh", class_number="895.9223")
    record.authors_text = "Nguyễn Nhật Ánh\nLê Văn Tám; minh họa"
    assert [(a.name, a.role.name, a.is_main) for a in record.authors] == [
        ("Nguyễn Nhật Ánh", "author", True), ("Lê Văn Tám", "illustrator", False)]
    assert services.author_mark(record, "given_name") == "Ánh"
    assert services.author_mark(record, "family_name") == "Ngu"
    assert services.author_mark(record, "title") == "Tôi"
    assert services.compute_call_number(record) == "895.9223 / Ánh"
    foreign = Record(title="Pride and prejudice")
    foreign.authors_text = "Austen, Jane"
    assert services.author_mark(foreign, "family_name") == "Aus"
    assert services.author_mark(foreign, "given_name") == "Jan"
    # Set by hand: kept.
    record.call_number, record.call_number_is_manual = "8(V) / NNA", True
    assert services.compute_call_number(record) == "8(V) / NNA"
    assert record.title_folded == "toi thay hoa vang tren co xanh"
    assert "nguyen nhat anh" in record.authors_folded


def test_librarian_catalogues_a_book_and_adds_copies(app, login):
    c = login("thuvien")
    resp = post_form(c, "/recordview/add", {
        "title": "Mắt biếc", "authors_text": "Nguyễn Nhật Ánh", "publisher": "NXB Trẻ",
        "place": "TP. Hồ Chí Minh", "year": "2019", "isbn": "978-0-306-40615-7",
        "class_number": "895.9223", "language": "vie", "price": "110000"})
    assert resp.status_code == 302, text(resp)[-1500:]
    with app.app_context():
        s1 = school("79000001")
        record = record_by_title("Mắt biếc", s1.id)
        assert record.isbn == "9780306406157" and record.call_number == "895.9223 / Ánh"
        record_id = record.id
        stk = series(s1.id, "STK")
        before = db.session.execute(select(func.max(Copy.accession_number)).where(
            Copy.series_id == stk.id)).scalar() or 0
    page = text(c.get(f"/recordview/show/{record_id}"))
    assert "978-0-306-40615-7" in page and "Thêm bản sách" in page
    # 30 copies at once: 30 consecutive accession numbers.
    resp = post_form(c, f"/recordview/copies/{record_id}", {
        "count": "30", "series": str(stk.id), "location": "", "intake": "", "price": ""})
    assert resp.status_code == 302, text(resp)[-1500:]
    assert any("Đã thêm 30 bản" in m for m in flashes(c))
    with app.app_context():
        copies = db.session.execute(select(Copy).where(Copy.record_id == record_id)
                                    .order_by(Copy.accession_number)).scalars().all()
        numbers = [cp.accession_number for cp in copies]
        assert numbers == list(range(before + 1, before + 31))
        assert copies[0].accession_label == f"STK-{before + 1:05d}"
        assert copies[0].barcode == f"79000001STK{before + 1:05d}"
        assert all(cp.price == 110000 for cp in copies)
    # Bad input: 0 copies, nothing changes.
    resp = post_form(c, f"/recordview/copies/{record_id}", {"count": "0", "series": str(stk.id)})
    assert resp.status_code == 200
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Copy).where(
            Copy.record_id == record_id)).scalar() == 30


def test_invalid_isbn_is_refused_and_nothing_saved(app, login):
    c = login("thuvien")
    post_form(c, "/recordview/add", {"title": "Sách ISBN sai", "isbn": "978-604-1-00012-5",
                                     "language": "vie"})
    assert any("ISBN “978-604-1-00012-5” không hợp lệ" in m for m in flashes(c))
    with app.app_context():
        assert record_by_title("Sách ISBN sai") is None


def test_duplicate_warning_on_same_isbn_or_similar_title(app, login):
    c = login("thuvien")
    resp = post_form(c, "/recordview/add", {"title": "toi thay hoa vang tren co xanh",
                                            "authors_text": "Nguyen Nhat Anh", "language": "vie"})
    assert resp.status_code == 302
    warnings = [m for m in flashes(c) if "Có thể trùng" in m]
    assert warnings and "Tôi thấy hoa vàng trên cỏ xanh" in warnings[0]
    # Only the school's own catalogue counts: thuvien2's school has no such record.
    c2 = login("thuvien2")
    post_form(c2, "/recordview/add", {"title": "Mắt biếc", "authors_text": "Nguyễn Nhật Ánh",
                                      "language": "vie"})
    assert not [m for m in flashes(c2) if "Có thể trùng" in m]


def test_textbooks_are_numbered_per_title_and_volume(app):
    with app.app_context():
        s1 = school("79000001")
        sgk = series(s1.id, "SGK")
        books = []
        for title in ("Toán 7. Tập 1", "Toán 7. Tập 2"):
            record = Record(school=s1, school_id=s1.id, title=title, language="vie")
            db.session.add(record)
            db.session.flush()
            books.append(record)
        first = collection.add_copies(db.session, s1, books[0], sgk, 3)
        second = collection.add_copies(db.session, s1, books[1], sgk, 2)
        more = collection.add_copies(db.session, s1, books[0], sgk, 1)
        db.session.commit()
        assert [c.accession_number for c in first + more] == [1, 2, 3, 4]
        assert [c.accession_number for c in second] == [1, 2]
        assert first[0].accession_label == f"SGK-{books[0].id}.001"
        assert len({c.barcode for c in first + second + more}) == 6


def test_intake_register_numbers_run_per_school_and_never_reset(app, login):
    c = login("thuvien")
    with app.app_context():
        s1, s2 = school("79000001"), school("79000002")
        last1 = db.session.execute(select(func.max(Intake.register_number)).where(
            Intake.school_id == s1.id)).scalar()
        last2 = db.session.execute(select(func.max(Intake.register_number)).where(
            Intake.school_id == s2.id)).scalar()
    for doc in ("HĐ 1", "HĐ 2"):
        resp = post_form(c, "/intakeview/add", {"received_on": "02/01/2026",
                                                "source": "Công ty Sách Phương Nam",
                                                "document_number": doc,
                                                "funding": "state_budget"})
        assert resp.status_code == 302, text(resp)[-1000:]
    with app.app_context():
        numbers = db.session.execute(select(Intake.register_number).where(
            Intake.school_id == s1.id, Intake.document_number.in_(["HĐ 1", "HĐ 2"]))
            .order_by(Intake.register_number)).scalars().all()
        assert numbers == [last1 + 1, last1 + 2]
        assert db.session.execute(select(func.max(Intake.register_number)).where(
            Intake.school_id == s2.id)).scalar() == last2
    # A missing source: the form says so, nothing saved.
    resp = post_form(c, "/intakeview/add", {"received_on": "02/01/2026", "source": "",
                                            "funding": "donation"})
    assert "Trường này là bắt buộc." in text(resp)


def test_copies_stay_in_their_school(app):
    with app.app_context():
        s1, s2 = school("79000001"), school("79000002")
        foreign_record = db.session.execute(select(Record).where(
            Record.school_id == s1.id)).scalars().first()
        with pytest.raises(ValidationError):
            collection.add_copies(db.session, s2, foreign_record, series(s2.id, "STK"), 1)
        db.session.rollback()
        # The database refuses it too (composite foreign key school_id + record_id).
        db.session.add(Copy(school_id=s2.id, record_id=foreign_record.id,
                            series_id=series(s2.id, "STK").id, accession_number=999999,
                            accession_label="X", barcode="X-FOREIGN"))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_copies_are_never_deleted(app, login):
    c = login("thuvien")
    with app.app_context():
        copy_id = db.session.execute(select(Copy.id).where(
            Copy.school_id == school("79000001").id)).scalars().first()
    resp = c.post(f"/copyview/delete/{copy_id}", data={"csrf_token": session_csrf(c)})
    assert resp.status_code == 403
    with app.app_context():
        assert db.session.get(Copy, copy_id) is not None


def test_union_catalogue_and_copy_cataloguing(app, login):
    c2 = login("thuvien2")
    page = text(c2.get("/union/?q=toi thay hoa vang"))
    assert "Tôi thấy hoa vàng trên cỏ xanh" in page and "Trường THCS Nguyễn Du" in page
    with app.app_context():
        s1, s2 = school("79000001"), school("79000002")
        source = record_by_title("Tôi thấy hoa vàng trên cỏ xanh", s1.id)
        source_id = source.id
        before = db.session.execute(select(func.count()).select_from(Record).where(
            Record.school_id == s2.id)).scalar()
    # The principal searches but cannot copy.
    principal = login("hieutruong")
    assert principal.get("/union/?q=de men").status_code == 200
    resp = principal.post(f"/union/copy/{source_id}",
                          data={"csrf_token": session_csrf(principal)})
    assert resp.status_code == 403
    # The librarian of another school copies it in one click.
    resp = c2.post(f"/union/copy/{source_id}", data={"csrf_token": session_csrf(c2)})
    assert resp.status_code == 302 and "/recordview/copies/" in resp.headers["Location"]
    with app.app_context():
        copied = db.session.execute(select(Record).where(
            Record.school_id == s2.id, Record.copied_from_id == source_id)).scalar_one()
        assert copied.title == source.title and copied.isbn == source.isbn
        assert copied.main_author == "Nguyễn Nhật Ánh"
        assert copied.call_number == "895.9223 / Ánh"
        assert db.session.execute(select(func.count()).select_from(Record).where(
            Record.school_id == s2.id)).scalar() == before + 1
        # The source school's record is untouched and stays in its school.
        assert db.session.get(Record, source_id).school_id == s1.id


def test_concurrent_copy_additions_get_disjoint_gap_free_numbers(app):
    """Two librarians of one school adding copies at the same moment (PostgreSQL: real
    concurrency; SQLite serialises writers, and the test still checks the numbering)."""
    with app.app_context():
        s1 = school("79000001")
        record = Record(school=s1, school_id=s1.id, title="Sách thử đồng thời", language="vie")
        db.session.add(record)
        db.session.commit()
        record_id, school_id = record.id, s1.id
        snv_id = series(school_id, "SNV").id
        start = (db.session.execute(select(func.max(Copy.accession_number)).where(
            Copy.series_id == snv_id)).scalar() or 0)
    barrier = threading.Barrier(4)
    errors = []

    def worker():
        with app.app_context():
            session = db.session
            try:
                s = session.get(OrgUnit, school_id)
                barrier.wait(timeout=10)
                for _ in range(5):
                    collection.add_copies(session, s, session.get(Record, record_id),
                                          session.get(AccessionSeries, snv_id), 10)
                    session.commit()
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(repr(error))
                session.rollback()
            finally:
                session.remove()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with app.app_context():
        numbers = db.session.execute(select(Copy.accession_number).where(
            Copy.series_id == snv_id, Copy.accession_number > start)
            .order_by(Copy.accession_number)).scalars().all()
        assert numbers == list(range(start + 1, start + 201))
