"""Spine and barcode labels as PDF: content, layout, Code 128, selection, scope, roles."""
import io
import re
import unicodedata
import uuid
from types import SimpleNamespace

import pypdf
import pytest
from barcode.charsets import code128 as code128_tables
from sqlalchemy import select

from app.catalog.models import DocumentType, Record
from app.catalog.services import compute_call_number
from app.collection import labels
from app.collection.models import AccessionSeries, CopyStatus
from app.collection.services import add_copies, ensure_library
from app.core.errors import ValidationError
from app.extensions import db
from app.org.models import OrgUnit
from tests.helpers import text

SCHOOL_NAME = "Trường THCS Nguyễn Du"


# --- Helpers ----------------------------------------------------------------------------

def pdf_pages(data):
    assert data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [unicodedata.normalize("NFC", page.extract_text()) for page in reader.pages]


def positions(data, pattern):
    """[(page index, text, x, y)] of the text runs matching `pattern` (PDF points)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    found = []
    for index, page in enumerate(reader.pages):
        def visit(txt, cm, tm, font_dict, font_size, index=index):
            if re.fullmatch(pattern, txt.strip() or "-"):
                found.append((index, txt.strip(), tm[4], tm[5]))
        page.extract_text(visitor_text=visit)
    return found


def fake_copies(n, title="Tôi thấy hoa vàng trên cỏ xanh", call_number="895.9223 / Ánh"):
    school = SimpleNamespace(name=SCHOOL_NAME, code="79000001")
    record = SimpleNamespace(title=title, call_number=call_number, class_number="895.9223",
                             author_mark="Ánh", volume=None)
    return [SimpleNamespace(accession_label=f"STN-{i:05d}", barcode=f"79000001STN{i:05d}",
                            record=record, school=school) for i in range(1, n + 1)]


def decode_code128(symbol):
    """Decode a reportlab Code128 symbol from its bars (independently of reportlab's
    encoder): widths -> 11-module patterns -> symbol values -> text."""
    symbol.validate()
    symbol.encode()
    symbol.decompose()
    widths = [ord(ch.lower()) - ord("a") + 1 for ch in symbol.decomposed]
    bits, black = "", True
    for width in widths:
        bits += ("1" if black else "0") * width
        black = not black
    stop = code128_tables.STOP + "11"  # the stop symbol and its termination bar
    assert bits.endswith(stop)
    bits = bits[:-len(stop)]
    assert len(bits) % 11 == 0
    patterns = {p: i for i, p in enumerate(code128_tables.CODES)}
    values = [patterns[bits[i:i + 11]] for i in range(0, len(bits), 11)]
    start, *data, check = values
    assert check == (start + sum(i * v for i, v in enumerate(data, start=1))) % 103
    charset = {103: "A", 104: "B", 105: "C"}[start]
    tables = {name: {v: k for k, v in getattr(code128_tables, name).items()} for name in "AB"}
    out = ""
    for value in data:
        if charset == "C":
            if value < 100:
                out += f"{value:02d}"
            else:
                charset = {100: "B", 101: "A"}[value]
        elif value == 99:
            charset = "C"
        elif charset == "A" and value == 100:
            charset = "B"
        elif charset == "B" and value == 101:
            charset = "A"
        else:
            out += tables[charset][value]
    return out


@pytest.fixture(scope="module")
def label_data(app):
    """A record of school 79000001 with 30 copies in a series of its own; one withdrawn;
    and a copy of school 79000002."""
    tag = uuid.uuid4().hex[:6].upper()
    with app.app_context():
        schools = {u.code: u for u in db.session.execute(select(OrgUnit).where(
            OrgUnit.code.in_(["79000001", "79000002"]))).scalars()}
        school, other = schools["79000001"], schools["79000002"]
        ensure_library(db.session, school)
        ensure_library(db.session, other)
        series = AccessionSeries(school=school, school_id=school.id, code=f"L{tag}",
                                 name="Nhãn thử", prefix=f"L{tag}", padding=4)
        db.session.add(series)
        kind = db.session.execute(select(DocumentType).where(DocumentType.code == "STN")
                                  ).scalar_one()
        record = Record(school=school, school_id=school.id, title=f"Đất rừng phương Nam {tag}",
                        class_number="895.9223", document_type=kind, language="vie")
        record.authors_text = "Đoàn Giỏi"
        compute_call_number(record)
        db.session.add(record)
        db.session.flush()
        copies = add_copies(db.session, school, record, series, 30)
        copies[3].status = CopyStatus.withdrawn
        other_series = db.session.execute(select(AccessionSeries).where(
            AccessionSeries.school_id == other.id, AccessionSeries.code == "STK")).scalar_one()
        other_record = Record(school=other, school_id=other.id, title=f"Sách khác {tag}",
                              language="vie")
        other_record.refresh_search_fields()
        db.session.add(other_record)
        db.session.flush()
        foreign = add_copies(db.session, other, other_record, other_series, 1)[0]
        db.session.commit()
        data = SimpleNamespace(
            series_id=series.id, series_code=series.code, record_title=record.title,
            call_number=record.call_number,
            copies=[(c.id, c.accession_number, c.accession_label, c.barcode) for c in copies],
            withdrawn_id=copies[3].id, foreign_id=foreign.id,
            foreign_series_id=other_series.id)
    return data


# --- Pure PDF ---------------------------------------------------------------------------

def test_spine_sheet_is_a_pdf_with_vietnamese_text_and_one_label_per_copy():
    data = labels.label_sheet_pdf(fake_copies(30), kind="spine")
    pages = pdf_pages(data)
    assert len(pages) == 2  # 3 columns x 8 rows = 24 a sheet
    assert [p.count("STN-") for p in pages] == [24, 6]
    assert SCHOOL_NAME in pages[0]
    assert "895.9223" in pages[0] and "Ánh" in pages[0]
    # The font is embedded (a subset of DejaVu Sans), not a standard PDF font.
    reader = pypdf.PdfReader(io.BytesIO(data))
    fonts = {str(font.get_object()["/BaseFont"])
             for font in reader.pages[0]["/Resources"]["/Font"].values()}
    assert any("DejaVuSans" in name for name in fonts), fonts


def test_decomposed_vietnamese_is_drawn_precomposed():
    nfd = unicodedata.normalize("NFD", SCHOOL_NAME)
    copies = fake_copies(1)
    copies[0].school = SimpleNamespace(name=nfd, code="x")
    assert SCHOOL_NAME in pdf_pages(labels.label_sheet_pdf(copies))[0]


@pytest.mark.parametrize("columns,rows,count,expected", [
    (2, 5, 23, [10, 10, 3]), (4, 10, 40, [40]), (1, 1, 3, [1, 1, 1])])
def test_labels_per_page_follow_the_layout(columns, rows, count, expected):
    layout = labels.LabelLayout(columns=columns, rows=rows, margin_top=10, margin_left=5,
                                column_gap=0, row_gap=0)
    data = labels.label_sheet_pdf(fake_copies(count), kind="barcode", layout=layout)
    assert [p.count("STN-") for p in pdf_pages(data)] == expected


def test_start_position_skips_the_used_labels_of_the_first_sheet():
    layout = labels.LabelLayout()  # 3 x 8
    data = labels.label_sheet_pdf(fake_copies(30), kind="spine", layout=layout,
                                  start_position=20)
    assert [p.count("STN-") for p in pdf_pages(data)] == [5, 24, 1]
    # The first label is in slot 20: row 7, column 2 (1-based), row by row from the top.
    first = next(p for p in positions(data, r"STN-00001"))
    x0, y0 = layout.origin(19)
    assert first[0] == 0
    assert x0 <= first[2] <= x0 + layout.label_width * 72 / 25.4
    assert y0 <= first[3] <= y0 + layout.label_height * 72 / 25.4
    # Label 6 starts the second sheet at the top left.
    sixth = next(p for p in positions(data, r"STN-00006"))
    x0, y0 = layout.origin(0)
    assert sixth[0] == 1 and x0 <= sixth[2] <= x0 + layout.label_width * 72 / 25.4
    assert y0 <= sixth[3]


def test_barcode_label_encodes_the_copy_barcode_in_code_128():
    value = "79000001STN00042"
    symbol = labels.barcode_symbol(value, 60 * 72 / 25.4, 12 * 72 / 25.4)
    assert symbol.value == value
    assert decode_code128(symbol) == value
    assert symbol.width <= 60 * 72 / 25.4
    copies = fake_copies(2, title="Một cuốn sách có nhan đề rất rất dài, dài hơn một dòng nhãn "
                                  "mã vạch rất nhiều lần nữa")
    page = pdf_pages(labels.label_sheet_pdf(copies, kind="barcode"))[0]
    assert "79000001STN00001" in page and "STN-00001" in page  # human-readable lines
    assert "Một cuốn sách có nhan đề" in page and "…" in page  # the title, shortened


def test_bad_layouts_and_selections_are_refused_with_the_field():
    with pytest.raises(ValidationError) as error:
        labels.label_sheet_pdf(fake_copies(1), layout=labels.LabelLayout(rows=30, columns=10))
    assert error.value.field == "columns"
    with pytest.raises(ValidationError) as error:
        labels.label_sheet_pdf(fake_copies(1), start_position=25)
    assert error.value.field == "start_position"
    with pytest.raises(ValidationError):
        labels.label_sheet_pdf([], kind="spine")
    with pytest.raises(ValidationError):
        labels.label_sheet_pdf(fake_copies(1), kind="poster")


# --- Through the web --------------------------------------------------------------------

def test_librarian_prints_barcode_labels_of_selected_copies(login, label_data):
    c = login("thuvien")
    chosen = label_data.copies[:7]
    ids = ",".join(str(pk) for pk, *_ in chosen)
    resp = c.get(f"/labels/pdf?ids={ids}&kind=barcode&columns=2&rows=3&start_position=2")
    assert resp.status_code == 200, text(resp)[:500]
    assert resp.mimetype == "application/pdf"
    assert "attachment" in resp.headers["Content-Disposition"]
    pages = pdf_pages(resp.data)
    assert [len(re.findall(rf"{label_data.series_code}-\d{{4}}", p)) for p in pages] == [5, 2]
    joined = "".join(pages)
    for _pk, _n, label, barcode in chosen:
        assert label in joined and barcode in joined
    assert SCHOOL_NAME in pages[0]


def test_spine_labels_by_a_range_of_accession_numbers(login, label_data):
    c = login("thuvien")
    numbers = [n for _pk, n, _l, _b in label_data.copies]
    first, last = numbers[2], numbers[9]  # 8 numbers, one of them withdrawn
    resp = c.get(f"/labels/pdf?series={label_data.series_id}&number_from={first}"
                 f"&number_to={last}&kind=spine")
    assert resp.status_code == 200, text(resp)[:500]
    page = pdf_pages(resp.data)[0]
    printed = re.findall(rf"{label_data.series_code}-\d{{4}}", page)
    expected = [lbl for pk, n, lbl, _b in label_data.copies
                if first <= n <= last and pk != label_data.withdrawn_id]
    assert printed == expected and len(printed) == 7
    for line in label_data.call_number.split(" / "):
        assert line in page


def test_the_form_page_and_its_errors(login, label_data):
    c = login("thuvien")
    page = text(c.get("/labels/"))
    assert 'id="labels-form"' in page and label_data.series_code in page
    ids = ",".join(str(pk) for pk, *_ in label_data.copies[:2])
    page = text(c.get(f"/labels/?ids={ids}"))
    assert label_data.copies[0][2] in page and f'value="{ids}"' in page
    # An empty range and an impossible layout: the form again, with the reason.
    resp = c.get(f"/labels/pdf?series={label_data.series_id}&number_from=9000&number_to=9001")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert 'id="labels-error"' in text(resp)
    resp = c.get(f"/labels/pdf?ids={ids}&columns=10&rows=30")
    assert resp.mimetype == "text/html" and 'id="labels-error"' in text(resp)


def test_another_schools_copies_are_not_found(login, label_data):
    own = label_data.copies[0][0]
    c = login("thuvien")
    assert c.get(f"/labels/pdf?ids={own},{label_data.foreign_id}").status_code == 404
    assert c.get(f"/labels/?ids={label_data.foreign_id}").status_code == 200  # nothing shown
    assert c.get(f"/labels/pdf?series={label_data.foreign_series_id}&number_from=1"
                 f"&number_to=5").status_code == 404
    other = login("thuvien2")
    assert other.get(f"/labels/pdf?ids={own}").status_code == 404
    assert other.get(f"/labels/pdf?ids={label_data.foreign_id}").status_code == 200


def test_principal_may_print_but_readers_may_not(login, label_data):
    ids = ",".join(str(pk) for pk, *_ in label_data.copies[:3])
    principal = login("hieutruong")
    resp = principal.get(f"/labels/pdf?ids={ids}&kind=spine")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert principal.post(f"/labels/pdf?ids={ids}").status_code == 405
    # The copies list offers the tick boxes and the button to the principal too.
    page = text(principal.get("/copyview/list/"))
    assert 'id="copy-labels-form"' in page and 'form="copy-labels-form"' in page
    for reader in ("giaovien", "hocsinh"):
        assert login(reader).get(f"/labels/pdf?ids={ids}").status_code in (302, 403)


def test_copies_list_selection_reaches_the_labels_form(login, label_data):
    c = login("thuvien")
    page = text(c.get("/copyview/list/"))
    assert 'action="/labels/"' in page and 'name="ids"' in page
    # What the browser sends when two copies are ticked.
    pk1, pk2 = label_data.copies[0][0], label_data.copies[1][0]
    page = text(c.get(f"/labels/?ids={pk1}&ids={pk2}"))
    assert f'value="{pk1},{pk2}"' in page
