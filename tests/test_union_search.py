"""Union catalogue search: whole words without accents on title or authors, best matches
first, a capped count, pages; who may search. Runs on SQLite (LIKE + word-boundary check)
and PostgreSQL (word index)."""
import json
import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import delete, select
from stdnum import isbn as stdnum_isbn

from app.catalog import services
from app.catalog.models import Record, RecordAuthor
from app.extensions import db
from app.org.models import OrgUnit
from tests.helpers import session_csrf, text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISBN = "9786049990014"  # 978-604-9990-01-4

# (school code, title, authors, hidden). Invented syllables, so that neither the demo city
# nor the generated catalogue of other tests matches them.
RECORDS = [
    ("79000001", "Khoòng Xuýp trên đồi", "Lê Văn Thước", False),  # title starts with them
    ("79000002", "Chuyện Khoòng Xuýp", "Trần Bỉm", False),  # title contains them
    ("79000002", "Dê Khoòng Xuýp", "", False),
    ("79000001", "Đà Khoòng Xuýp", "", False),  # Vietnamese order: c, d, đ
    ("79000001", "Mùa xuân", "Khoòng Xuýp", False),  # by the author only
    ("79000002", "Xuýp ở làng Khoòng", "", False),  # words apart
    ("79000001", "Khoòng trên núi", "Phạm Xuýpa", False),  # "xuyp" only as a word start
    ("79000001", "Khoòngxuýp", "", False),  # one word, not the two
    ("79000002", "Khoòng Xuýp bị ẩn", "", True),  # hidden: no copy left
    ("79000001", "Khoòng lẻ", "", False),  # one word missing
]
BY_WORDS = ["Khoòng Xuýp trên đồi", "Chuyện Khoòng Xuýp", "Dê Khoòng Xuýp", "Đà Khoòng Xuýp",
            "Mùa xuân", "Xuýp ở làng Khoòng"]


def _school(code):
    return db.session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one()


def _add(code, title, authors="", hidden=False, isbn=None):
    school = _school(code)
    record = Record(school=school, school_id=school.id, title=title, language="vie",
                    is_hidden=hidden, isbn=isbn)
    record.authors_text = authors  # also sets the folded search fields
    db.session.add(record)
    return record


def _remove(ids):
    db.session.execute(delete(RecordAuthor).where(RecordAuthor.record_id.in_(ids)))
    db.session.execute(delete(Record).where(Record.id.in_(ids)))
    db.session.commit()


@pytest.fixture
def records(app):
    with app.app_context():
        made = [_add(code, title, authors, hidden, ISBN if i == 0 else None)
                for i, (code, title, authors, hidden) in enumerate(RECORDS)]
        db.session.commit()
        ids = {r.title: r.id for r in made}
    # No application context held during the test: requests must each get their own `g`.
    yield ids
    with app.app_context():
        _remove(list(ids.values()))


def titles(rows):
    return [r.title for r in rows]


def test_every_word_without_accents_on_title_or_authors(app, records):
    with app.app_context():
        total, rows = services.search_records(db.session, "khoong xuyp")
        # Best first: title starting with the words, then containing them (Vietnamese
        # order: Chuyện, Dê, Đà), then authors containing them, then words apart.
        assert titles(rows) == BY_WORDS and total == 6
        # Accents, case and punctuation typed make no difference.
        assert titles(services.search_records(db.session, "  KHOÒNG, Xuýp… ")[1]) == BY_WORDS
        # Words may come from the title and the authors together.
        assert titles(services.search_records(db.session, "khoong xuyp thuoc")[1]) == [
            "Khoòng Xuýp trên đồi"]
        # A word found nowhere excludes the record.
        assert services.search_records(db.session, "khoong xuyp moc") == (0, [])
        assert "Khoòng lẻ" not in titles(rows) and "Khoòng lẻ" in titles(
            services.search_records(db.session, "khoong le")[1])
        # Words, not pieces of words; hidden records are not offered.
        assert "Khoòngxuýp" not in titles(rows) and "Khoòng Xuýp bị ẩn" not in titles(rows)
        assert "Khoòng trên núi" not in titles(rows)  # "Xuýpa" is another word


def test_the_last_word_may_be_the_start_of_a_word(app, records):
    with app.app_context():
        # No record has a word "khoo": the last word is taken as the start of a word. "xuyp"
        # is not the last word, so it must be whole ("Xuýpa" does not count).
        total, rows = services.search_records(db.session, "xuyp khoo")
        assert total == 6 and titles(rows) == [
            "Chuyện Khoòng Xuýp", "Dê Khoòng Xuýp", "Đà Khoòng Xuýp", "Khoòng Xuýp trên đồi",
            "Mùa xuân", "Xuýp ở làng Khoòng"]
        assert set(titles(services.search_records(db.session, "khoong xuy")[1])) == set(
            BY_WORDS) | {"Khoòng trên núi"}
        # Only when the whole words find nothing; and one letter is no start of a word.
        assert titles(services.search_records(db.session, "khoong xuypa")[1]) == [
            "Khoòng trên núi"]
        assert services.search_records(db.session, "khoong x") == (0, [])


def test_punctuation_and_query_syntax_are_plain_text(app):
    with app.app_context():
        record = _add("79000001", "C++ Khoòng cơ bản 2.0", "O'Neil, Xuýp")
        db.session.commit()
        try:
            # Characters of the full-text query language are only text ("!" is no NOT).
            for typed in ("c++ khoong 2.0 o'neil", "khoong 2.0 xuyp", "“Khoòng” (C++)",
                          "khoong & !xuyp"):
                assert titles(services.search_records(db.session, typed)[1]) == [
                    "C++ Khoòng cơ bản 2.0"], typed
            for typed in ("khoong | zzz", "khoong:* zzz", "'", "\\", "&|!():*"):
                assert services.search_records(db.session, typed) == (0, []), typed
        finally:
            _remove([record.id])


def test_isbn_typed_with_hyphens(app, records):
    with app.app_context():
        total, rows = services.search_records(db.session, stdnum_isbn.format(ISBN))
        assert total == 1 and titles(rows) == ["Khoòng Xuýp trên đồi"]


def test_count_is_capped_and_pages_stay_within_the_cap(app, records):
    with app.app_context():
        assert services.search_records(db.session, "khoong xuyp", cap=6)[0] == 6  # exact
        # One more than the cap means "more than 4"; only 4 matches are paged.
        total, first4 = services.search_records(db.session, "khoong xuyp", limit=10, cap=4)
        assert total == 5 and len(first4) == 4 and set(titles(first4)) <= set(BY_WORDS)
        pages = [services.search_records(db.session, "khoong xuyp", limit=3, offset=offset,
                                         cap=4) for offset in (0, 3, 6)]
        assert [t for t, _rows in pages] == [5, 5, 5]
        assert [len(rows) for _t, rows in pages] == [3, 1, 0]
        assert [r for _t, rows in pages for r in rows] == first4  # same order, no repeats


def test_first_pages_and_word_index_give_the_same_matches(app, records, monkeypatch):
    """PostgreSQL reads the first pages of the table before asking the word index: both ways
    must keep the same matches past the cap (the table's order), or the pages would differ."""
    with app.app_context():
        found = services.search_records(db.session, "khoong xuyp", limit=10, cap=3)
        monkeypatch.setattr(services, "_FIRST_PAGES", 0)  # nothing there: the index answers
        assert services.search_records(db.session, "khoong xuyp", limit=10, cap=3) == found
        assert found[0] == 4 and len(found[1]) == 3


def test_duplicate_warning_still_finds_similar_records(app, records):
    with app.app_context():
        found = services.find_duplicates(db.session, _school("79000001").id,
                                         "KHOÒNG XUÝP trên đồi", "Lê Văn Thước")
        assert [r.id for r in found] == [records["Khoòng Xuýp trên đồi"]]
        assert services.find_duplicates(db.session, _school("79000002").id,
                                        "Khoòng Xuýp trên đồi", "thuoc") == []


def _total(page):
    return re.search(r'id="union-total">([^<]*)<', page).group(1).strip()


def test_librarian_sees_every_school_and_copies_from_the_others(app, login, records):
    page = text(login("thuvien2").get("/union/", query_string={"q": "khoong xuyp"}))
    assert _total(page) == "6" and 'id="union-more"' not in page
    positions = [page.index(title) for title in BY_WORDS]
    assert positions == sorted(positions)
    # Copy buttons for the records of the other school only (thuvien2 is 79000002's).
    copy_ids = {int(pk) for pk in re.findall(r'action="/union/copy/(\d+)"', page)}
    assert records["Khoòng Xuýp trên đồi"] in copy_ids
    assert records["Chuyện Khoòng Xuýp"] not in copy_ids


def test_principal_searches_read_only_and_readers_do_not(app, login, records):
    principal = login("hieutruong")
    page = text(principal.get("/union/?q=khoong+xuyp"))
    assert _total(page) == "6" and "Dê Khoòng Xuýp" in page and "/union/copy/" not in page
    resp = principal.post(f"/union/copy/{records['Dê Khoòng Xuýp']}",
                          data={"csrf_token": session_csrf(principal)})
    assert resp.status_code == 403
    # Students and teachers are readers: the union catalogue is a staff page (as before).
    assert login("hocsinh").get("/union/?q=khoong+xuyp").status_code == 403


@pytest.fixture
def many(app):
    with app.app_context():
        made = [_add("79000002", f"Pặc Trừm tập {n}") for n in range(1, 56)]
        db.session.commit()
        ids = [r.id for r in made]
    yield ids
    with app.app_context():
        _remove(ids)


def test_pages_of_fifty_and_more_than_the_cap(app, login, many, monkeypatch):
    c = login("thuvien")
    first = text(c.get("/union/?q=pac+trum"))
    assert _total(first) == "55" and first.count('action="/union/copy/') == 50
    assert "page=2" in first
    second = text(c.get("/union/?q=pac+trum&page=2"))
    assert second.count('action="/union/copy/') == 5 and "page=3" not in second
    # Past the cap: "more than 52", and the pages stop at the cap.
    monkeypatch.setattr(services, "SEARCH_CAP", 52)
    first = text(c.get("/union/?q=pac+trum"))
    assert _total(first) in ("more than 52", "hơn 52") and 'id="union-more"' in first
    second = text(c.get("/union/?q=pac+trum&page=2"))
    assert second.count('action="/union/copy/') == 2 and "page=3" not in second


def test_new_messages_have_a_pending_vietnamese_translation(tmp_path):
    from babel.messages.pofile import read_po

    pot = tmp_path / "union.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel.cfg", "-o", str(pot), "app/templates/catalog/union.html"],
                   cwd=ROOT, check=True, capture_output=True)
    with open(pot, "rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    with open(os.path.join(ROOT, "translations", "vi", "LC_MESSAGES", "messages.po"),
              "rb") as fh:
        known = {m.id for m in read_po(fh) if m.id and m.string}
    path = os.path.join(ROOT, "translations", "pending_union.json")
    pending = {}
    if os.path.exists(path):  # removed once merged into messages.po
        with open(path, encoding="utf-8") as fh:
            pending = json.load(fh)
    assert sorted(extracted - known - set(pending)) == []
    for msgid, translation in pending.items():
        assert translation.strip() and set(re.findall(r"%\(\w+\)[sd]", msgid)) == set(
            re.findall(r"%\(\w+\)[sd]", translation)), msgid
