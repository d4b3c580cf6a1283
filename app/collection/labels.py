"""Spine labels (nhãn gáy) and barcode labels as PDF sheets of A4 label stock.

Pure functions: they take copies (objects with `accession_label`, `barcode`, `record`,
`school`) and a layout, and return the bytes of a PDF. The views select the copies (always
inside the user's scope) and stream the result.

Vietnamese text is drawn with DejaVu Sans, a TrueType font shipped in app/static/fonts
(free licence, see LICENSE-DejaVu.txt) and embedded (subset) in every PDF.
"""
import dataclasses
import io
import os
import unicodedata

from flask_babel import lazy_gettext as _l
from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from app.core.errors import ValidationError

FONT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "static", "fonts")
FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"

KINDS = ("spine", "barcode")
MAX_LABELS = 3000  # one PDF: 125 sheets of 24 labels

# Code 128 bar (module) widths a hand scanner reads reliably.
MIN_BAR = 0.19 * mm
MAX_BAR = 0.33 * mm


def register_fonts():
    """Register DejaVu Sans (regular and bold) with reportlab, once per process."""
    registered = pdfmetrics.getRegisteredFontNames()
    for name, filename in ((FONT, "DejaVuSans.ttf"), (FONT_BOLD, "DejaVuSans-Bold.ttf")):
        if name not in registered:
            pdfmetrics.registerFont(TTFont(name, os.path.join(FONT_DIR, filename)))


@dataclasses.dataclass
class LabelLayout:
    """A sheet of A4 label stock; every length in millimetres."""

    columns: int = 3
    rows: int = 8
    margin_top: float = 7
    margin_bottom: float = 7
    margin_left: float = 7
    margin_right: float = 7
    column_gap: float = 2
    row_gap: float = 2

    page_width = 210.0
    page_height = 297.0

    @property
    def per_page(self):
        return self.columns * self.rows

    @property
    def label_width(self):
        return (self.page_width - self.margin_left - self.margin_right
                - (self.columns - 1) * self.column_gap) / self.columns

    @property
    def label_height(self):
        return (self.page_height - self.margin_top - self.margin_bottom
                - (self.rows - 1) * self.row_gap) / self.rows

    def validate(self):
        """Raise ValidationError (naming the field) for a layout that does not fit A4."""
        if not 1 <= self.columns <= 10:
            raise ValidationError(_l("The number of columns must be between 1 and 10."),
                                  field="columns")
        if not 1 <= self.rows <= 30:
            raise ValidationError(_l("The number of rows must be between 1 and 30."),
                                  field="rows")
        for name in ("margin_top", "margin_bottom", "margin_left", "margin_right",
                     "column_gap", "row_gap"):
            value = getattr(self, name)
            if value is None or not 0 <= value <= 50:
                raise ValidationError(_l("Margins and gaps must be between 0 and 50 mm."),
                                      field=name)
        if self.label_width < 15 or self.label_height < 8:
            raise ValidationError(
                _l("The labels would be %(w).1f × %(h).1f mm: too small (at least 15 × 8 mm)."
                   " Use fewer rows or columns, or smaller margins and gaps."),
                field="columns", w=self.label_width, h=self.label_height)
        return self

    def origin(self, slot):
        """Bottom-left corner (points) of label `slot` (0-based, row by row from the top)."""
        row, column = divmod(slot, self.columns)
        x = self.margin_left + column * (self.label_width + self.column_gap)
        top = self.margin_top + row * (self.label_height + self.row_gap)
        y = self.page_height - top - self.label_height
        return x * mm, y * mm


# --- What goes on a label -------------------------------------------------------------

def _nfc(text):
    """Vietnamese in precomposed form: decomposed accents (macOS, some imports) would be
    drawn as separate marks."""
    return unicodedata.normalize("NFC", str(text or "")).strip()


def call_number_lines(record):
    """'895.922 / Ánh' -> ['895.922', 'Ánh']; without a call number, class number and mark."""
    if record is None:
        return []
    if record.call_number:
        lines = [part.strip() for part in record.call_number.split("/")]
    else:
        lines = [record.class_number, record.author_mark]
    lines = [_nfc(line) for line in lines if line and str(line).strip()]
    volume = _nfc(getattr(record, "volume", None))
    if volume and volume not in lines:
        lines.append(volume)
    return lines


def _school_name(copy, override):
    if override is not None:
        return _nfc(override)
    school = getattr(copy, "school", None)
    return _nfc(school.name) if school is not None else ""


def fit_text(text, font, size, width):
    """`text` shortened with an ellipsis so that it fits `width` points."""
    text = _nfc(text)
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…" if text else ""


def _fit_size(lines, font, width, height, largest, smallest=5):
    """The largest font size (points) at which every line fits `width` and all of them
    fit `height`."""
    size = largest
    while size > smallest:
        widest = max((pdfmetrics.stringWidth(line, font, size) for line in lines), default=0)
        if widest <= width and size * 1.15 * len(lines) <= height:
            break
        size -= 0.5
    return size


def barcode_symbol(value, width, height):
    """The Code 128 symbol of `value`, as wide as fits `width` points (quiet zones of ten
    modules included), `height` points tall. Its `value` and `encoded` can be checked before
    drawing."""
    if not value or not value.isascii():
        raise ValidationError(_l("The barcode “%(barcode)s” cannot be printed in Code 128 "
                                 "(letters without accents, digits and signs only)."),
                              field="barcode", barcode=value)
    probe = Code128(value, barWidth=1, quiet=0)
    modules = probe.width  # width at one point per module
    bar = max(MIN_BAR, min(MAX_BAR, width / (modules + 20)))
    return Code128(value, barWidth=bar, barHeight=height, humanReadable=False, quiet=1,
                   lquiet=10 * bar, rquiet=10 * bar)


def _draw_centered(c, text, font, size, x, y, width):
    c.setFont(font, size)
    c.drawCentredString(x + width / 2, y, text)


def _draw_spine(c, copy, x, y, w, h, school_name):
    pad = min(2 * mm, h * 0.08)
    inner_w = w - 2 * pad
    top = y + h - pad
    school = _school_name(copy, school_name)
    small = max(5, min(7, h / mm * 0.22))
    if school:
        top -= small
        _draw_centered(c, fit_text(school, FONT, small, inner_w), FONT, small, x, top, w)
        top -= small * 0.35
        c.setLineWidth(0.4)
        c.line(x + pad, top, x + w - pad, top)
    bottom = y + pad
    label = _nfc(copy.accession_label)
    if label:
        _draw_centered(c, fit_text(label, FONT_BOLD, small + 1, inner_w), FONT_BOLD,
                       small + 1, x, bottom, w)
        bottom += (small + 1) * 1.3
    lines = call_number_lines(copy.record)
    if not lines:
        return
    space = top - bottom - small * 0.3
    size = _fit_size(lines, FONT_BOLD, inner_w, space, largest=16)
    block = size * 1.15 * len(lines)
    line_y = bottom + (space + block) / 2 - size
    for line in lines:
        _draw_centered(c, line, FONT_BOLD, size, x, line_y, w)
        line_y -= size * 1.15


def _draw_barcode(c, copy, x, y, w, h, school_name):
    pad = min(2 * mm, h * 0.07)
    inner_w = w - 2 * pad
    top = y + h - pad
    small = max(5, min(7, h / mm * 0.2))
    school = _school_name(copy, school_name)
    if school:
        top -= small
        _draw_centered(c, fit_text(school, FONT, small - 0.5, inner_w), FONT, small - 0.5, x,
                       top, w)
        top -= small * 0.35
    title = _nfc(copy.record.title) if copy.record is not None else ""
    if title:
        top -= small
        _draw_centered(c, fit_text(title, FONT, small, inner_w), FONT, small, x, top, w)
        top -= small * 0.45
    bottom = y + pad
    label_size = small + 2
    _draw_centered(c, fit_text(_nfc(copy.accession_label), FONT_BOLD, label_size, inner_w),
                   FONT_BOLD, label_size, x, bottom, w)
    bottom += label_size * 1.2
    _draw_centered(c, copy.barcode, FONT, small, x, bottom, w)
    bottom += small * 1.1
    bars_height = max(top - bottom, 4 * mm)
    symbol = barcode_symbol(copy.barcode, inner_w, bars_height)
    symbol.drawOn(c, x + (w - symbol.width) / 2, bottom)


DRAWERS = {"spine": _draw_spine, "barcode": _draw_barcode}
TITLES = {"spine": _l("Spine labels"), "barcode": _l("Barcode labels")}


def label_sheet_pdf(copies, kind="spine", layout=None, school_name=None, start_position=1,
                    borders=False):
    """PDF (bytes) of `copies`' labels, one per copy in order, on sheets of `layout`.

    `start_position` (1-based, row by row) skips the labels already used on a partly used
    first sheet. `school_name` overrides each copy's own school name. `borders` draws each
    label's outline (for a trial print on plain paper).
    """
    if kind not in DRAWERS:
        raise ValidationError(_l("Unknown kind of label."), field="kind")
    layout = (layout or LabelLayout()).validate()
    if not 1 <= start_position <= layout.per_page:
        raise ValidationError(
            _l("The first label position must be between 1 and %(n)d (labels on a sheet)."),
            field="start_position", n=layout.per_page)
    copies = list(copies)
    if not copies:
        raise ValidationError(_l("No copy selected."), field="ids")
    if len(copies) > MAX_LABELS:
        raise ValidationError(_l("At most %(n)d labels at a time."), field="ids", n=MAX_LABELS)
    register_fonts()
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    c.setTitle(str(TITLES[kind]))
    c.setCreator("Thư viện trường học")
    draw = DRAWERS[kind]
    w, h = layout.label_width * mm, layout.label_height * mm
    slot = start_position - 1
    for copy in copies:
        if slot == layout.per_page:
            c.showPage()
            slot = 0
        x, y = layout.origin(slot)
        if borders:
            c.setLineWidth(0.25)
            c.setStrokeGray(0.6)
            c.roundRect(x, y, w, h, 1.5 * mm)
            c.setStrokeGray(0)
        c.saveState()
        draw(c, copy, x, y, w, h, school_name)
        c.restoreState()
        slot += 1
    c.showPage()
    c.save()
    return buffer.getvalue()
