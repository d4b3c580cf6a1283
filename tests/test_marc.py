"""MARC import and export on the real stack, with the real files of /work/shared/data/marc.

Expectations are computed here with pymarc itself (what it can read from each file), not
with the application's reader. Decisions the tests pin down:
- bytes that are not valid UTF-8 are replaced (U+FFFD) and the record is imported with a
  warning: the counts are pymarc's with utf8_handling="replace";
- authority, holdings (leader/06 z, u, v, x, y) and UNIMARC records (no 245, a 200) are
  reported as not bibliographic and not imported;
- a trailing newline after the last record is not a record (pymarc counts it as a
  truncated one);
- a record flagged MARC-8 whose bytes are valid UTF-8 is read as UTF-8, with a warning.
"""
import datetime
import glob
import io
import json
import os
import random
import re
import subprocess
import sys
import time
import unicodedata
import uuid
import warnings

import pymarc
import pytest
from sqlalchemy import func, select

from app.catalog import marc, marc_import
from app.catalog.models import Record
from app.collection.models import AccessionSeries, Copy, Counter, LibrarySettings
from app.core.audit import AuditLog, acting_as
from app.extensions import db
from app.org.models import OrgUnit, UnitKind
from tests.helpers import csrf_token, session_csrf, text

MARC_DIR = "/work/shared/data/marc"
XSD = os.path.join(MARC_DIR, "MARC21slim.xsd")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_BIBLIOGRAPHIC = set("zuvxywq")  # leader/06: authority, holdings, classification...
ITEM_TAGS = {"852", "949", "952"}
MARC_FILES = sorted(
    os.path.relpath(p, MARC_DIR) for p in glob.glob(os.path.join(MARC_DIR, "*", "*"))
    if os.path.basename(p) not in ("README", "test_marc8.txt", "test_utf8.txt")
    and not p.endswith(".mrk"))
NOT_MARC = ["evergreen/README", "pymarc/test_marc8.txt", "pymarc/test_utf8.txt",
            "marc4j/brkrtest.mrk"]


def read(name):
    with open(os.path.join(MARC_DIR, name), "rb") as fh:
        return fh.read()


def pymarc_records(name):
    """(position, pymarc record or None) as pymarc reads the file; None: unreadable."""
    data = read(name)
    if name.endswith(".xml"):
        return [(i, r) for i, r in enumerate(pymarc.parse_xml_to_array(io.BytesIO(data)), 1)]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = pymarc.MARCReader(data, to_unicode=True, hide_utf8_warnings=True,
                                   utf8_handling="replace")
        for i, record in enumerate(reader, 1):
            chunk = reader.current_chunk
            if record is None and not chunk.strip():
                continue  # a newline after the last record
            if record is not None and record.leader[9] == " " and looks_utf8(chunk):
                record = pymarc.Record(chunk, force_utf8=True, utf8_handling="replace")
            out.append((i, record))
    return out


def looks_utf8(chunk):
    """Flagged MARC-8 but valid UTF-8 with non-ASCII bytes and no MARC-8 escape."""
    body = chunk[int(chunk[12:17]):]
    if body.isascii() or b"\x1b" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_bibliographic(record):
    return record.leader[6] not in NOT_BIBLIOGRAPHIC and (
        record.get_fields("245") or not record.get_fields("200"))


CREATED_SCHOOLS = []


def new_school(prefix="M"):
    code = f"{prefix}{uuid.uuid4().hex[:9]}"
    school = OrgUnit(code=code, name=f"Trường thử MARC {code}", kind=UnitKind.school)
    db.session.add(school)
    db.session.commit()
    CREATED_SCHOOLS.append(school.id)
    return school


@pytest.fixture(scope="module", autouse=True)
def remove_the_schools_created_here(app):
    """The database is shared with the other test modules (the tenancy sweep visits every
    school): the schools made here leave with their data at the end of the module."""
    yield
    from sqlalchemy import delete

    from app.catalog.models import RecordAuthor
    from app.collection.models import Intake, Location

    with app.app_context():
        db.session.rollback()
        ids = list(CREATED_SCHOOLS)
        for model in (Copy, RecordAuthor, Record, Counter, AccessionSeries, Location, Intake,
                      LibrarySettings, AuditLog):
            db.session.execute(delete(model).where(model.school_id.in_(ids)))
        db.session.execute(delete(OrgUnit).where(OrgUnit.id.in_(ids)))
        db.session.commit()
        CREATED_SCHOOLS.clear()


def count(model, school):
    return db.session.execute(select(func.count()).select_from(model).where(
        model.school_id == school.id)).scalar()


def import_file(school, data, name="x.mrc", **options):
    options.setdefault("duplicates", "new")
    with acting_as(name="test"):
        return marc_import.run_import(db.session, school, data, name,
                                      marc_import.ImportOptions(**options))


def nfc(value):
    return unicodedata.normalize("NFC", " ".join(value.split()))


@pytest.fixture(scope="module")
def imported(app):
    """Every real MARC file imported once, each into a school of its own."""
    out = {}
    with app.app_context():
        for name in MARC_FILES:
            if name.endswith(".xsd") or name.endswith(".md"):
                continue
            school = new_school("F")
            result = import_file(school, read(name), name)
            out[name] = (school.id, result)
    return out


# --- Every real file --------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in MARC_FILES if not n.endswith((".xsd", ".md"))])
def test_every_readable_record_of_the_real_files_is_imported(app, imported, name):
    school_id, result = imported[name]
    with app.app_context():
        school = db.session.get(OrgUnit, school_id)
        created = count(Record, school)
        counts = result.counts
        assert counts["created"] == created
        if name == "evergreen/serials_marc21.xml":
            # Not well-formed XML (several roots): the first record is read, then the
            # parser stops; the report says where and from which record on.
            assert created == 1
            problem = [p for p in result.problems if p.position is None][0]
            assert "117" in problem.text() and "2" in problem.text()
            return
        records = pymarc_records(name)
        readable = [r for _i, r in records if r is not None]
        expected = [r for r in readable if is_bibliographic(r)]
        assert created == len(expected), (name, created, len(expected))
        # Records pymarc cannot read are reported, with their position in the file.
        unreadable = {i for i, r in records if r is None}
        reported = {p.position for p in result.problems if p.level == "error"}
        assert unreadable <= reported
        # Non-bibliographic records are reported as such and not imported.
        skipped = len(readable) - len(expected)
        not_bib = [p for p in result.problems if "not a bibliographic record" in p.message
                   or "UNIMARC" in p.message]
        assert len(not_bib) == skipped
        if name in ("evergreen/auth-subset100.mrc", "evergreen/serials_mfhd.xml",
                    "pymarc/testunimarc.dat"):
            assert created == 0 and skipped == len(readable) > 0
        # What was imported is what pymarc read: titles in file order.
        titles = db.session.execute(select(Record.title).where(
            Record.school_id == school.id).order_by(Record.id)).scalars().all()
        for title, record in zip(titles, expected):
            source = record["245"]["a"] or record["245"]["k"]
            assert nfc(source).startswith(title[:20]) or "\ufffd" in source, (title, source)


@pytest.mark.parametrize("name", NOT_MARC + ["random", "text"])
def test_files_that_are_not_marc_give_one_clear_error_and_write_nothing(app, name):
    if name == "random":
        data = random.Random(4).randbytes(5000)
        data = b"\x89" + data[1:]
    elif name == "text":
        data = "Danh mục sách thư viện\nTôi thấy hoa vàng trên cỏ xanh\n".encode("utf-8")
    else:
        data = read(name)
    with app.app_context():
        school = new_school()
        result = import_file(school, data, name)
        assert result.outcomes == []
        assert len(result.problems) == 1 and result.problems[0].position is None
        message = result.problems[0].text()
        if name.endswith(".mrk"):
            assert "MarcEdit" in message
        else:
            assert "ISO 2709" in message and "MARCXML" in message
        assert count(Record, school) == 0 and count(Copy, school) == 0


def test_broken_records_are_reported_with_position_and_identity(app, imported):
    with app.app_context():
        # pymarc's bad_records.mrc: 2 good records, one broken record per error class.
        _sid, result = imported["pymarc/bad_records.mrc"]
        errors = {p.position: p.text() for p in result.problems if p.level == "error"}
        assert sorted(errors) == [2, 3, 4, 5, 6, 7]
        assert [o.position for o in result.outcomes] == [1, 8]
        assert "đầu biểu/12-16" in errors[2] and "The pragmatic programmer" in errors[2]
        # A leader with a byte that is not ASCII (oss.marc record 28): named by its 001.
        _sid, result = imported["evergreen/oss.marc"]
        problem = [p for p in result.problems if p.level == "error"][0]
        assert problem.position == 28 and "ocm55941496" in problem.text()
        # 16 records with damaged directories among 383.
        _sid, result = imported["marc4j/pride-and-prejudice-with-many-errors.mrc"]
        broken = [i for i, r in pymarc_records(
            "marc4j/pride-and-prejudice-with-many-errors.mrc") if r is None]
        assert len(broken) == 16
        assert sorted(p.position for p in result.problems if p.level == "error"
                      and "directory" in p.message) == broken
        # A record whose leader says 99999 bytes but is longer: named by 001 and title.
        _sid, result = imported["marc4j/datos-20161010-slice.mrc"]
        assert result.outcomes == []
        (problem,) = result.problems
        assert problem.position == 1 and problem.control_number == "u101755"
        assert "99999" in problem.text()
        # Invalid UTF-8: imported with the bytes replaced, and a warning naming the field.
        school_id, result = imported["marc4j/sample1.mrc"]
        (warning,) = [p for p in result.problems if p.level == "warning"]
        assert warning.position == 7 and "245" in warning.text() and "370636" in warning.text()
        stored = db.session.execute(select(Record.marc).where(
            Record.school_id == school_id, Record.title.like("Dictionnaire%"))).scalar_one()
        assert "\ufffd" in json.dumps([f for f in stored["fields"] if "245" in f],
                                       ensure_ascii=False)
        # A subfield code that is not ASCII: read as pymarc reads it, with a warning.
        _sid, result = imported["pymarc/utf8_invalid.mrc"]
        assert result.counts["created"] == 1
        assert any("subfield code" in p.message for p in result.problems)


def test_a_truncated_file_reports_the_last_record(app):
    data = read("marc4j/chabon.mrc")
    with app.app_context():
        school = new_school()
        result = import_file(school, data[:-200])
        assert result.counts["created"] == 1
        (problem,) = [p for p in result.problems if p.level == "error"]
        assert problem.position == 2 and "truncated" in problem.message


# --- Encodings ------------------------------------------------------------------------------

def test_marc8_is_converted_to_unicode_like_pymarc_does(app, imported):
    school_id, result = imported["evergreen/lul_fre_500.mrc"]
    records = [r for _i, r in pymarc_records("evergreen/lul_fre_500.mrc")]
    with app.app_context():
        titles = db.session.execute(select(Record.title).where(
            Record.school_id == school_id).order_by(Record.id)).scalars().all()
    assert len(titles) == 500
    accented = 0
    for title, record in zip(titles, records):
        expected = marc._clean(record["245"]["a"])
        assert title == expected
        assert "\x1b" not in title and "\ufffd" not in title
        accented += bool(re.search(r"[éèêàçùôîï]", title))
    assert accented > 50
    assert any("é" in t for t in titles)


def test_the_same_records_in_marc8_and_utf8_import_identically(app, imported):
    with app.app_context():
        rows = {}
        for name in ("marc4j/brkrtest.mrc", "marc4j/brkrtest_UTF8.mrc"):
            school_id, _result = imported[name]
            rows[name] = db.session.execute(select(
                Record.title, Record.subtitle, Record.responsibility, Record.publisher,
                Record.authors_folded).where(Record.school_id == school_id)
                .order_by(Record.id)).all()
        assert rows["marc4j/brkrtest.mrc"] == rows["marc4j/brkrtest_UTF8.mrc"]
        assert len(rows["marc4j/brkrtest.mrc"]) == 8
        # The leader says MARC-8 but the bytes are UTF-8: read as UTF-8, with a warning.
        with_flag = imported["pymarc/utf8_with_leader_flag.dat"]
        without = imported["pymarc/utf8_without_leader_flag.dat"]
        titles = [db.session.execute(select(Record.title).where(
            Record.school_id == sid)).scalar_one() for sid, _r in (with_flag, without)]
        assert titles[0] == titles[1]
        assert not with_flag[1].problems
        assert any("UTF-8" in p.text() for p in without[1].problems)


def test_invalid_isbns_are_dropped_with_a_warning(app, imported):
    school_id, result = imported["evergreen/badisbns.xml"]
    with app.app_context():
        isbns = db.session.execute(select(Record.isbn).where(
            Record.school_id == school_id)).scalars().all()
    assert len(isbns) == 10
    warned = [p for p in result.problems if "ISBN" in p.message]
    assert warned and all(p.level == "warning" and p.position for p in warned)
    assert all(isbn is None or len(isbn) in (10, 13) for isbn in isbns)


# --- Copies from item fields ---------------------------------------------------------------

def _record(title, *fields, leader="00000nam a2200000 a 4500"):
    record = pymarc.Record(force_utf8=True, leader=leader)
    record.add_field(pymarc.Field(tag="245", indicators=pymarc.Indicators("1", "0"),
                                  subfields=[pymarc.Subfield("a", title)]))
    for tag, subfields in fields:
        record.add_field(pymarc.Field(tag=tag, indicators=pymarc.Indicators(" ", " "),
                                      subfields=[pymarc.Subfield(c, v) for c, v in subfields]))
    return record


def test_copies_come_from_852_949_952_with_their_barcodes(app, imported, login):
    with app.app_context():
        # 852 $p (map_data.mrc), 949 $i (jazz_1k.mrc).
        school_id, _r = imported["evergreen/map_data.mrc"]
        barcodes = set(db.session.execute(select(Copy.barcode).where(
            Copy.school_id == school_id)).scalars())
        assert {"11223344", "1090109"} <= barcodes and len(barcodes) == 3
        school_id, result = imported["evergreen/jazz_1k.mrc"]
        assert count(Copy, db.session.get(OrgUnit, school_id)) == result.counts["copies"]
        assert db.session.execute(select(func.count()).select_from(Copy).where(
            Copy.school_id == school_id, Copy.barcode == "30007007467409")).scalar() == 1
        # Koha 952: barcode $p, call number $o, price $g; our own 852 with an accession
        # label ($t) written in one of the school's series keeps its number.
        school = new_school()
        records = [
            _record("Dế Mèn phiêu lưu ký", ("100", [("a", "Tô Hoài")]),
                    ("952", [("a", "MAIN"), ("p", "KOHA-0001"), ("o", "895.9223 HOA"),
                             ("g", "45.000đ")]),
                    ("952", [("a", "MAIN"), ("p", "KOHA-0002")])),
            _record("Truyện Kiều", ("100", [("a", "Nguyễn Du")]),
                    ("852", [("a", "X"), ("b", "KM"), ("h", "895.9221 / Du"), ("p", "B-77"),
                             ("t", "STK-00042")])),
            _record("Thơ", ("852", [("a", "X"), ("p", "KOHA-0001")])),  # barcode taken
            _record("Địa lý", ("952", [("a", "Library has 2 copies.")])),  # a note, no item
        ]
        result = import_file(school, marc.write_iso2709(records))
        copies = db.session.execute(select(Copy).where(Copy.school_id == school.id)
                                    .order_by(Copy.id)).scalars().all()
        assert [c.barcode for c in copies][:3] == ["KOHA-0001", "KOHA-0002", "B-77"]
        assert copies[0].price == 45000 and copies[0].record.title == "Dế Mèn phiêu lưu ký"
        assert copies[0].record.call_number == "895.9223 HOA"
        # Search forms and author mark as the model and the cataloguing rules compute them.
        from app.catalog.services import compute_call_number

        for record in db.session.execute(select(Record).where(
                Record.school_id == school.id)).scalars():
            stored = (record.title_folded, record.authors_folded, record.author_mark,
                      record.call_number)
            record.refresh_search_fields()
            compute_call_number(record)
            assert (record.title_folded, record.authors_folded, record.author_mark,
                    record.call_number) == stored
        db.session.rollback()
        assert copies[2].accession_label == "STK-00042" and copies[2].location is None
        # The fourth copy's barcode was taken: a new one, and a warning.
        assert len(copies) == 4 and copies[3].barcode not in ("KOHA-0001",)
        assert any("KOHA-0001" in p.text() and p.level == "warning" for p in result.problems)
        # Numbering continues after the kept number: 42 is kept, the others follow it.
        stk = db.session.execute(select(AccessionSeries).where(
            AccessionSeries.school_id == school.id, AccessionSeries.code == "STK")
        ).scalar_one()
        assert sorted(c.accession_number for c in copies) == [42, 43, 44, 45]
        from app.collection.services import add_copies

        with acting_as(name="test"):
            (extra,) = add_copies(db.session, school, copies[0].record, stk, 1)
            db.session.commit()
        assert extra.accession_number == 46
        # Every copy and record is in the audit log.
        logged = db.session.execute(select(func.count()).select_from(AuditLog).where(
            AuditLog.school_id == school.id, AuditLog.table_name.in_(("record", "copy")),
            AuditLog.action == "insert")).scalar()
        assert logged == count(Record, school) + count(Copy, school)
        # The record's creation lists its values (its original MARC stays in the record).
        record_id, copy_id = copies[0].record_id, copies[0].id
        entry = db.session.execute(select(AuditLog).where(
            AuditLog.table_name == "record", AuditLog.row_id == record_id)).scalar_one()
        assert entry.action == "insert" and entry.username == "test"
        assert entry.changes["title"] == [None, "Dế Mèn phiêu lưu ký"]
        assert entry.changes["call_number"] == [None, "895.9223 HOA"]
        assert "marc" not in entry.changes
    # ...and shows on the history pages of the record and of its copies.
    admin = login("admin")
    for table, row_id, shown in (("record", record_id, "Dế Mèn phiêu lưu ký"),
                                 ("copy", copy_id, "KOHA-0001")):
        page = admin.get(f"/auditlogview/record/{table}/{row_id}")
        assert page.status_code == 200 and shown in text(page) and "Tạo mới" in text(page)


def test_duplicates_are_skipped_or_get_the_copies_or_are_imported(app):
    data = read("evergreen/map_data.mrc")
    with app.app_context():
        school = new_school()
        first = import_file(school, data, duplicates="skip")
        assert first.counts["created"] == 3 and count(Copy, school) == 3
        again = import_file(school, data, duplicates="skip")
        assert again.counts["created"] == 0 and again.counts["duplicates"] == 3
        assert count(Record, school) == 3 and count(Copy, school) == 3
        attached = import_file(school, data, duplicates="copies")
        assert attached.counts["attached"] == 3 and count(Record, school) == 3
        assert count(Copy, school) == 6  # the barcodes were taken: new ones, with warnings
        assert sum("barcode" in p.message for p in attached.problems) == 3
        anyway = import_file(school, data, duplicates="new")
        assert anyway.counts["created"] == 3 and count(Record, school) == 6
        # The same ISBN written as ISBN-10 and ISBN-13 is the same book.
        other = new_school()
        import_file(other, marc.write_iso2709([_record("Một", ("020", [("a", "0553210181")]))]))
        result = import_file(other, marc.write_iso2709(
            [_record("Hai", ("020", [("a", "978-0-553-21018-7")]))]), duplicates="skip")
        assert result.counts["duplicates"] == 1


def test_preview_writes_nothing(app):
    data = read("evergreen/map_data.mrc")
    tables = (Record, Copy, Counter, AccessionSeries, LibrarySettings)
    with app.app_context():
        school = new_school()
        audit_before = db.session.execute(select(func.count()).select_from(AuditLog)).scalar()
        result = marc_import.preview_import(db.session, school, data, "map_data.mrc")
        db.session.commit()
        assert result.counts["created"] == 3 and result.counts["copies"] == 3
        assert [count(m, school) for m in tables] == [0] * len(tables)
        assert db.session.execute(select(func.count()).select_from(AuditLog)).scalar() == \
            audit_before


def test_an_error_while_writing_saves_nothing(app, monkeypatch):
    data = read("marc4j/pride-and-prejudice-fixed.mrc")
    with app.app_context():
        school = new_school()

        def broken(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(marc_import._Numbering, "add_copies", broken)
        with pytest.raises(marc_import.ImportFailed) as error:
            import_file(school, data)
        assert "disk full" in str(error.value)
        assert [count(m, school) for m in (Record, Copy, LibrarySettings, AccessionSeries)] \
            == [0, 0, 0, 0]


def test_an_import_into_another_school_is_refused_by_the_tenancy_rule(app):
    """Records and copies are written with bulk statements, which no flush sees: inside a
    librarian's request the rule of the flush guard still refuses another school's rows,
    and nothing is saved."""
    from flask_login import login_user

    from app.collection.services import ensure_library
    from app.core.errors import TenancyError
    from app.org.models import AppUser

    with app.app_context():
        other = new_school()
        ensure_library(db.session, other)  # set up beforehand: the import writes rows only
        db.session.commit()
        librarian = db.session.execute(select(AppUser).where(
            AppUser.username == "thuvien")).scalar_one()
        audit_before = db.session.execute(select(func.count()).select_from(AuditLog)).scalar()
        with app.test_request_context():
            login_user(librarian)
            with pytest.raises(TenancyError):
                marc_import.run_import(db.session, other, read("evergreen/map_data.mrc"),
                                       "map_data.mrc", marc_import.ImportOptions())
        assert [count(m, other) for m in (Record, Copy)] == [0, 0]
        assert db.session.execute(select(func.count()).select_from(AuditLog)).scalar() == \
            audit_before


# --- Export -----------------------------------------------------------------------------

def fields_of(data):
    """pymarc records of an export, as comparable tuples; 852s apart, without $a (the
    school) and with the record id of textbook labels (SGK-<record>.001) left out."""
    if data.lstrip().startswith(b"<"):
        records = pymarc.parse_xml_to_array(io.BytesIO(data))
    else:
        records = list(pymarc.MARCReader(data, to_unicode=True))
    out = []
    for record in records:
        fields, items = [], []
        for field in record.fields:
            if field.tag in ("001", "005"):
                continue
            if field.control_field:
                fields.append((field.tag, field.data))
            elif field.tag == "852":
                items.append(tuple((s.code, re.sub(r"-\d+\.(\d+)$", r"-#.\1", s.value))
                                   for s in field.subfields if s.code != "a"))
            else:
                fields.append((field.tag, field.indicator1, field.indicator2,
                               tuple(field.subfields)))
        fields.sort(key=lambda f: len(f) != 2)  # MARCXML puts control fields first
        out.append((fields, sorted(items)))
    return out


@pytest.fixture(scope="module")
def catalogue(app):
    """A school whose catalogue mixes imported records (untouched and edited), records
    catalogued in the application (copied from the demo school) and copies of every kind."""
    from app.catalog.services import copy_record
    from app.collection.services import add_copies, ensure_library

    with app.app_context():
        school = new_school("A")
        import_file(school, read("marc4j/chabon.mrc"))
        import_file(school, read("evergreen/sample_acq_order.mrc"))
        import_file(school, read("evergreen/map_data.mrc"))
        import_file(school, read("marc4j/brkrtest.mrc"))
        import_file(school, marc.write_iso2709([_record(
            "Dế Mèn phiêu lưu ký", ("100", [("a", "Tô Hoài")]),
            ("020", [("a", "9786041000124"), ("c", "45000 VND")]),
            ("952", [("p", "KOHA-9"), ("o", "895.9223 HOA")]))]))
        demo = db.session.execute(select(OrgUnit).where(OrgUnit.code == "79000001")
                                  ).scalar_one()
        settings = ensure_library(db.session, school)
        series = {s.code: s for s in db.session.execute(select(AccessionSeries).where(
            AccessionSeries.school_id == school.id)).scalars()}
        with acting_as(name="test"):
            for source in db.session.execute(select(Record).where(
                    Record.school_id == demo.id).order_by(Record.id).limit(8)).scalars():
                copied = copy_record(db.session, source, school, settings)
                db.session.flush()
                kind = source.document_type.code if source.document_type else "STK"
                add_copies(db.session, school, copied, series.get(kind, series["STK"]), 2)
            # A librarian's edit of an imported record: title, price and one more author.
            edited = db.session.execute(select(Record).where(
                Record.school_id == school.id, Record.title.like("Summerland%"))).scalar_one()
            edited.title = "Summerland (bản dịch)"
            edited.price = 99000
            edited.authors_text = edited.authors_text + "\nNguyễn Văn A; dịch"
            db.session.commit()
        return school.id


def test_exported_records_reimport_equal_field_by_field(app, catalogue):
    import xmlschema

    schema = xmlschema.XMLSchema(XSD)
    with app.app_context():
        school = db.session.get(OrgUnit, catalogue)
        iso = marc_import.MarcExport(db.session, school, "iso2709").to_bytes()
        xml = marc_import.MarcExport(db.session, school, "marcxml").to_bytes()
        assert schema.is_valid(xml.decode("utf-8"))
        original = fields_of(iso)
        assert len(original) == count(Record, school) >= 30
        assert fields_of(xml) == original
        for data in (iso, xml):
            other = new_school("B")
            result = import_file(other, data)
            assert result.counts["created"] == len(original)
            assert not [p for p in result.problems if p.level == "error"]
            again = marc_import.MarcExport(db.session, other, "iso2709").to_bytes()
            assert fields_of(again) == original
            assert count(Copy, other) == count(Copy, school)


def test_untouched_imported_records_export_their_original_fields(app, catalogue):
    with app.app_context():
        school = db.session.get(OrgUnit, catalogue)
        iso = marc_import.MarcExport(db.session, school, "iso2709").to_bytes()
        exported = {r["001"].data: r for r in pymarc.MARCReader(iso, to_unicode=True)
                    if r.get("001")}
        sources = {r["001"].data: r for r in pymarc.MARCReader(read("marc4j/chabon.mrc"),
                                                                 to_unicode=True)}
        # Untouched: every field byte for byte (item fields aside).
        source, mine = sources["11939876"], exported["11939876"]
        theirs = [f.as_marc("utf-8") for f in source.fields if f.tag not in ITEM_TAGS]
        assert [f.as_marc("utf-8") for f in mine.fields] == theirs
        # Edited: the fields the librarian changed are rewritten, the others as imported.
        source, edited = sources["12883376"], exported["12883376"]
        assert edited["245"]["a"].startswith("Summerland (bản dịch)")
        assert edited["020"]["c"] == "99000 VND" and edited["020"]["a"] == "0786808772"
        assert any(f["a"] == "Nguyễn Văn A" and f["e"] == "translator"
                   for f in edited.get_fields("700"))
        assert edited["005"].data != source["005"].data
        unchanged = ("008", "040", "250", "260", "300", "520", "650")
        assert [f.as_marc("utf-8") for f in edited.fields if f.tag in unchanged] == \
            [f.as_marc("utf-8") for f in source.fields if f.tag in unchanged]


def test_unchanged_imported_records_export_without_mapping_their_marc_again(app, catalogue,
                                                                            monkeypatch):
    """An imported record keeps the fingerprint of its values with its MARC: an export sees
    that it is unchanged without mapping the MARC again, and writes exactly what mapping it
    gives. An edit changes the values, so the record is mapped and rewritten."""
    now = datetime.datetime(2026, 11, 25, 8, 0)
    with app.app_context():
        records = [r for r in db.session.execute(select(Record).where(
            Record.school_id == catalogue)).scalars() if r.marc]  # imported ones
        assert len(records) >= 20 and all(marc.DIGEST_KEY in r.marc for r in records)
        for record in records:
            values = marc.record_values(record)
            remapped = {k: v for k, v in record.marc.items() if k != marc.DIGEST_KEY}
            assert marc.update_marc(record.marc, values, now) == \
                marc.update_marc(remapped, values, now), record.title
        edited = next(r for r in records if r.title.startswith("Summerland"))
        values = marc.record_values(edited)
        assert marc.values_digest(values) != edited.marc[marc.DIGEST_KEY]
        assert marc.update_marc(edited.marc, values, now)["fields"] != edited.marc["fields"]

        def not_again(*args, **kwargs):
            raise AssertionError("mapped again")

        monkeypatch.setattr(marc, "record_fields", not_again)
        for record in records:
            if record is not edited:
                marc.update_marc(record.marc, marc.record_values(record), now)
        db.session.rollback()


def test_records_catalogued_in_the_application_export_complete_records(app, catalogue):
    with app.app_context():
        school = db.session.get(OrgUnit, catalogue)
        iso = marc_import.MarcExport(db.session, school, "iso2709").to_bytes()
        built = [r for r in pymarc.MARCReader(iso, to_unicode=True)
                 if r.get_fields("927") and r.title.startswith("Tôi thấy hoa vàng")]
        (record,) = built
        assert record["020"]["a"] == "9786041000124" and record["082"]["a"] == "895.9223"
        assert record["100"]["a"] == "Nguyễn Nhật Ánh" and record["041"]["a"] == "vie"
        assert record["264"]["b"].startswith("Nhà xuất bản Trẻ")
        assert record["300"]["c"] == "20 cm" and len(record["008"].data) == 40
        copies = record.get_fields("852")
        assert len(copies) == 2 and all(c["a"] == school.code and c["p"] for c in copies)
        assert record.leader[9] == "a"


def test_another_schools_records_never_appear_in_an_export(app, catalogue, login):
    with app.app_context():
        school = db.session.get(OrgUnit, catalogue)
        demo_ids = db.session.execute(select(Record.id).join(OrgUnit, OrgUnit.id ==
                                                             Record.school_id).where(
            OrgUnit.code == "79000001")).scalars().all()
        own_ids = db.session.execute(select(Record.id).where(
            Record.school_id == school.id).limit(3)).scalars().all()
        data = marc_import.MarcExport(db.session, school, "iso2709",
                                      ids=demo_ids + own_ids).to_bytes()
        assert len(list(pymarc.MARCReader(data))) == 3
        demo_count = len(demo_ids)
    # Through the web: the principal reads their school; another school's code is not found.
    principal = login("hieutruong")
    resp = principal.get("/marc/export?format=iso2709")
    assert resp.status_code == 200 and resp.mimetype == "application/marc"
    records = list(pymarc.MARCReader(resp.data, to_unicode=True))
    assert len(records) == demo_count
    assert all(f["a"] == "79000001" for r in records for f in r.get_fields("852"))
    assert principal.get(f"/marc/export?format=iso2709&school={school.code}").status_code \
        == 404
    other = login("thuvien2")
    resp = other.get("/marc/export?format=marcxml&ids=" + ",".join(map(str, demo_ids)))
    assert resp.status_code == 200
    assert pymarc.parse_xml_to_array(io.BytesIO(resp.data)) == []
    assert other.get("/marc/export?format=iso2709&school=79000001").status_code == 404


# --- Web ---------------------------------------------------------------------------------

def test_web_import_upload_preview_confirm_progress_report(app, login):
    librarian = login("thuvien")
    page = librarian.get("/marc/")
    assert page.status_code == 200 and 'id="marc-upload-form"' in text(page)
    token = csrf_token(librarian, "/marc/")
    data = read("marc4j/sample1.mrc")
    with app.app_context():
        school = db.session.execute(select(OrgUnit).where(OrgUnit.code == "79000001")
                                    ).scalar_one()
        before = count(Record, school), count(Copy, school)
    resp = librarian.post("/marc/upload", data={
        "csrf_token": token, "file": (io.BytesIO(data), "sample1.mrc")},
        content_type="multipart/form-data")
    assert resp.status_code == 302
    preview_url = resp.headers["Location"]
    preview = librarian.get(preview_url)
    body = text(preview)
    assert preview.status_code == 200
    assert re.search(r'id="marc-created">4<', body) and re.search(r'id="marc-read">8<', body)
    assert "biểu ghi vốn tư liệu (holdings)" in body
    with app.app_context():
        assert (count(Record, school), count(Copy, school)) == before
    # Other users never reach this upload.
    assert login("thuvien2").get(preview_url).status_code == 404
    principal = login("hieutruong")
    assert principal.get(preview_url).status_code == 403
    assert principal.post(preview_url, data={"csrf_token": session_csrf(principal)}
                          ).status_code == 403
    assert principal.post("/marc/upload", data={
        "csrf_token": session_csrf(principal), "file": (io.BytesIO(data), "x.mrc")},
        content_type="multipart/form-data").status_code == 403
    # Confirm: the import runs in the background; the page polls its status.
    resp = librarian.post(preview_url, data={"csrf_token": token, "duplicates": "new",
                                             "copies": ["0", "1"]})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/progress")
    progress_url = resp.headers["Location"]
    status_url = progress_url.replace("/progress", "/status")
    deadline = time.time() + 60
    while True:
        status = librarian.get(status_url).get_json()
        if status["state"] in ("done", "failed") or time.time() > deadline:
            break
        assert 0 <= status["percent"] <= 100
        time.sleep(0.1)
    assert status["state"] == "done" and status["percent"] == 100
    report = text(librarian.get(progress_url))
    assert 'id="marc-done"' in report and re.search(r'id="marc-created">4<', report)
    assert "/recordview/show/" in report
    # Confirming again does not import twice.
    again = librarian.post(preview_url, data={"csrf_token": token, "duplicates": "new"})
    assert again.status_code == 302
    with app.app_context():
        assert count(Record, school) == before[0] + 4
        assert count(Copy, school) == before[1]  # sample1's 852s are in holdings records
        assert db.session.execute(select(func.count()).select_from(AuditLog).where(
            AuditLog.table_name == "record", AuditLog.username == "thuvien",
            AuditLog.school_id == school.id)).scalar() >= 4


def test_progress_page_while_running_and_after_an_interruption(app, login):
    librarian = login("thuvien")
    token = csrf_token(librarian, "/marc/")
    resp = librarian.post("/marc/upload", data={
        "csrf_token": token, "file": (io.BytesIO(read("marc4j/chabon.mrc")), "chabon.mrc")},
        content_type="multipart/form-data")
    preview_url = resp.headers["Location"]
    upload = preview_url.rsplit("/", 1)[1]
    with app.app_context():
        from app.org.models import AppUser

        user_id = db.session.execute(select(AppUser.id).where(
            AppUser.username == "thuvien")).scalar_one()
    folder = os.path.join(app.instance_path, "marc_imports", str(user_id), upload)
    status_path = os.path.join(folder, "status.json")
    with open(status_path, "w", encoding="utf-8") as fh:  # as the background thread writes it
        json.dump({"state": "running", "done": 250, "total": 1000, "updated": time.time()}, fh)
    page = text(librarian.get(preview_url, follow_redirects=True))
    assert 'id="marc-progress-bar"' in page and "{done}" in page
    status = librarian.get(f"/marc/import/{upload}/status").get_json()
    assert status == {"state": "running", "done": 250, "total": 1000, "percent": 25}
    # A worker that died: after a while the page says so (nothing was saved).
    with open(status_path, "w", encoding="utf-8") as fh:
        json.dump({"state": "running", "done": 250, "total": 1000, "updated": 0}, fh)
    page = librarian.get(f"/marc/import/{upload}/progress")
    assert 'id="marc-failed"' in text(page)
    assert librarian.get(f"/marc/import/{upload}/status").get_json()["state"] == "failed"


def test_web_export_page_and_selected_records(app, login):
    librarian = login("thuvien")
    page = librarian.get("/marc/?q=Truyện Kiều")
    assert page.status_code == 200
    ids = re.findall(r'name="id" value="(\d+)"', text(page))
    assert ids
    resp = librarian.get("/marc/export?format=marcxml&" + "&".join(f"id={i}" for i in ids))
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    records = pymarc.parse_xml_to_array(io.BytesIO(resp.data))
    assert len(records) == len(ids) and all("Truyện Kiều" in r.title for r in records)
    principal = login("hieutruong")
    body = text(principal.get("/marc/"))
    assert 'id="marc-export-all"' in body and 'id="marc-upload-form"' not in body
    assert login("hocsinh").get("/marc/").status_code == 403
    assert login("hocsinh").get("/marc/export?format=iso2709").status_code == 403


EDITS = {
    "title": "Nhan đề mới", "subtitle": "phụ đề", "responsibility": "Nguyễn Văn A chủ biên",
    "volume": "Tập 2", "edition": "Tái bản lần thứ 3", "place": "Hà Nội",
    "publisher": "Nhà xuất bản Kim Đồng", "year": 2024, "pages": "212 tr.", "size_cm": 24,
    "isbn": "9786041000124", "price": 86000, "language": "vie",
    "series_statement": "Tủ sách vàng", "summary": "Tóm tắt mới.",
    "subjects": "Văn học thiếu nhi; Truyện ngắn", "class_number": "895.9223",
}


@pytest.mark.parametrize("name", ["marc4j/chabon.mrc", "evergreen/sample_acq_order.mrc",
                                  "marc4j/brkrtest.mrc", "evergreen/nepali.marc"])
def test_each_edit_in_the_application_is_exported_and_nothing_else_changes(app, name):
    from app.catalog.models import AuthorRole

    with app.app_context():
        entries, _problems = marc.read_marc(read(name))
        for entry in entries[:12]:
            stored = marc.without_items(entry.as_dict())
            base = marc.record_fields(stored)
            base["authors"] = [(n, r, i == 0) for i, (n, r) in enumerate(base["authors"])]
            assert marc.update_marc(stored, base)["fields"] == stored["fields"]
            edits = dict(EDITS, authors=[("Tô Hoài", AuthorRole.author, True),
                                         ("Lê Minh", AuthorRole.illustrator, False)],
                         document_type="STN")
            for field, value in edits.items():
                values = dict(base, **{field: value})
                if field == "class_number":
                    values["scheme"] = "DDC"
                updated = marc.update_marc(stored, values)
                again = marc.record_fields(updated)
                if field == "authors":
                    assert again["authors"] == [(n, r) for n, r, _m in value]
                else:
                    assert again[field] == value, (name, entry.position, field)
                # Every other column still maps to what it was.
                original = marc.record_fields(stored)
                for other in EDITS:
                    if other != field:
                        assert again[other] == original[other], (name, field, other)


# --- Command line -------------------------------------------------------------------------

def test_cli_import_dry_run_and_export(app, tmp_path):
    runner = app.test_cli_runner()
    path = os.path.join(MARC_DIR, "marc4j/chabon.mrc")
    with app.app_context():
        school = new_school("C")
        code = school.code
    result = runner.invoke(args=["marc-import", path, "--school", code, "--dry-run"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        school = db.session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one()
        assert count(Record, school) == 0 and count(LibrarySettings, school) == 0
    result = runner.invoke(args=["marc-import", path, "--school", code])
    assert result.exit_code == 0, result.output
    assert "2" in result.output
    with app.app_context():
        assert count(Record, school) == 2
        assert db.session.execute(select(AuditLog.username).where(
            AuditLog.table_name == "record", AuditLog.school_id == school.id)).scalars().all() \
            == ["cli", "cli"]
    output = tmp_path / "out.xml"
    result = runner.invoke(args=["marc-export", "--school", code, "--format", "marcxml",
                                 "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert len(pymarc.parse_xml_to_array(str(output))) == 2
    result = runner.invoke(args=["marc-export", "--school", code, "--format", "iso2709",
                                 "--output", str(tmp_path / "out.mrc")])
    assert len(list(pymarc.MARCReader((tmp_path / "out.mrc").read_bytes()))) == 2
    result = runner.invoke(args=["marc-import", path, "--school", "NO-SUCH"])
    assert result.exit_code != 0
    broken = tmp_path / "broken.mrc"
    broken.write_bytes(b"not marc at all")
    result = runner.invoke(args=["marc-import", str(broken), "--school", code])
    assert result.exit_code == 1


# --- Translations -------------------------------------------------------------------------

def test_every_new_message_has_a_pending_vietnamese_translation(tmp_path):
    from babel.messages.pofile import read_po

    pot = tmp_path / "marc.pot"
    files = ["app/catalog/marc.py", "app/catalog/marc_import.py", "app/catalog/marc_views.py",
             "app/catalog/cli.py", "app/templates/catalog/marc_index.html",
             "app/templates/catalog/marc_preview.html",
             "app/templates/catalog/marc_progress.html",
             "app/templates/catalog/marc_report.html"]
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel.cfg", "-k", "N_", "-k", "_l", "-k", "lazy_gettext", "-o", str(pot),
                    *files], cwd=ROOT, check=True, capture_output=True)
    with open(pot, "rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    # New messages wait in translations/pending_marc.json until they are merged into the
    # catalogue (the file is then removed).
    path = os.path.join(ROOT, "translations", "pending_marc.json")
    pending = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            pending = json.load(fh)
    with open(os.path.join(ROOT, "translations", "vi", "LC_MESSAGES", "messages.po"),
              "rb") as fh:
        known = {m.id for m in read_po(fh) if m.id and m.string}
    missing = sorted(m for m in extracted if m not in pending and m not in known)
    assert missing == []
    assert all(isinstance(v, str) and v.strip() for v in pending.values())
    for msgid, translation in pending.items():
        assert set(re.findall(r"%\(\w+\)[sd]", msgid)) == set(
            re.findall(r"%\(\w+\)[sd]", translation)), msgid
