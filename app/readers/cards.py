"""Reader cards (thẻ thư viện) as a PDF sheet: A4, 2 × 5 cards of credit-card size.

A pure function of the readers (objects with the Reader attributes) and the school's name
and school year; the views choose the readers (always inside the user's scope). Vietnamese
is drawn with the embedded DejaVu fonts of the labels (app.collection.labels).
"""
import io
import math

from flask_babel import gettext, lazy_gettext as _l
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from app.collection.labels import (
    FONT, FONT_BOLD, _nfc, barcode_symbol, fit_text, register_fonts,
)
from app.core.errors import ValidationError
from app.core.i18n import format_date

CARD_WIDTH, CARD_HEIGHT = 85.6, 54.0  # ISO/IEC 7810 ID-1, mm
COLUMNS, ROWS = 2, 5
PER_PAGE = COLUMNS * ROWS
GAP_X, GAP_Y = 8.0, 3.0
MARGIN_X = (210 - COLUMNS * CARD_WIDTH - (COLUMNS - 1) * GAP_X) / 2
MARGIN_Y = (297 - ROWS * CARD_HEIGHT - (ROWS - 1) * GAP_Y) / 2
MAX_CARDS = 2000
HEADER = 13 * mm  # the band with the school, the title and the school year
PHOTO_W, PHOTO_H = 20 * mm, 26.5 * mm  # a 3 × 4 photo, slightly reduced
BAND_COLOUR = (0.11, 0.30, 0.55)


def pages_for(count):
    return max(1, math.ceil(count / PER_PAGE))


def card_origin(slot):
    """Bottom-left corner (points) of card `slot` (0-based, row by row from the top)."""
    row, column = divmod(slot, COLUMNS)
    x = MARGIN_X + column * (CARD_WIDTH + GAP_X)
    y = 297 - MARGIN_Y - row * (CARD_HEIGHT + GAP_Y) - CARD_HEIGHT
    return x * mm, y * mm


def _photo(reader):
    data = getattr(reader, "photo", None)
    if not data:
        return None
    try:
        return ImageReader(io.BytesIO(data))
    except Exception:  # a damaged image prints the empty frame, not an error
        return None


def _draw_card(c, reader, x, y, school_year):
    w, h = CARD_WIDTH * mm, CARD_HEIGHT * mm
    pad = 3 * mm
    # Cutting outline.
    c.setLineWidth(0.3)
    c.setStrokeGray(0.55)
    c.roundRect(x, y, w, h, 3 * mm)
    # Header band.
    c.setFillColorRGB(*BAND_COLOUR)
    c.roundRect(x, y + h - HEADER, w, HEADER, 3 * mm, stroke=0, fill=1)
    c.rect(x, y + h - HEADER, w, 3 * mm, stroke=0, fill=1)  # square lower corners
    c.setFillGray(1)
    inner = w - 2 * pad
    top = y + h
    school_name = _nfc(reader.school.name if reader.school is not None else "")
    c.setFont(FONT_BOLD, 6.5)
    c.drawCentredString(x + w / 2, top - 4 * mm,
                        fit_text(school_name.upper(), FONT_BOLD, 6.5, inner))
    c.setFont(FONT_BOLD, 9.5)
    c.drawCentredString(x + w / 2, top - 8 * mm, gettext("LIBRARY CARD"))
    if school_year:
        text = gettext("School year %(name)s", name=school_year)
        c.setFont(FONT, 6)
        c.drawCentredString(x + w / 2, top - 11.3 * mm, fit_text(text, FONT, 6, inner))
    c.setFillGray(0)
    c.setStrokeGray(0)
    # Photo, or the frame where it is glued.
    px, py = x + pad, top - HEADER - 2 * mm - PHOTO_H
    image = _photo(reader)
    if image is not None:
        c.drawImage(image, px, py, PHOTO_W, PHOTO_H, preserveAspectRatio=True, anchor="c")
    else:
        c.setLineWidth(0.4)
        c.setDash(2, 1.5)
        c.setStrokeGray(0.5)
        c.rect(px, py, PHOTO_W, PHOTO_H)
        c.setDash()
        c.setFont(FONT, 6)
        c.setFillGray(0.5)
        c.drawCentredString(px + PHOTO_W / 2, py + PHOTO_H / 2 - 2, gettext("Photo 3 × 4"))
        c.setFillGray(0)
    # Details, right of the photo.
    tx = px + PHOTO_W + 3 * mm
    tw = x + w - pad - tx
    line = top - HEADER - 5.5 * mm
    name = _nfc(reader.full_name).upper()
    size = 9.5
    while size > 6.5 and c.stringWidth(name, FONT_BOLD, size) > tw:
        size -= 0.5
    c.setFont(FONT_BOLD, size)
    c.drawString(tx, line, fit_text(name, FONT_BOLD, size, tw))
    details = []
    if reader.class_name:
        details.append((gettext("Class"), _nfc(reader.class_name)))
    elif getattr(reader, "category", None) is not None:
        details.append((gettext("Reader"), _nfc(reader.category.name)))
    if reader.date_of_birth:
        details.append((gettext("Date of birth"), format_date(reader.date_of_birth)))
    details.append((gettext("Card no."), reader.card_number))
    if reader.valid_until:
        details.append((gettext("Valid until"), format_date(reader.valid_until)))
    for label, value in details:
        line -= 3.4 * mm
        c.setFont(FONT, 7)
        label = f"{label}: "
        c.drawString(tx, line, label)
        offset = c.stringWidth(label, FONT, 7)
        c.setFont(FONT_BOLD, 7)
        c.drawString(tx + offset, line, fit_text(value, FONT_BOLD, 7, tw - offset))
    # Barcode of the card, under the details.
    c.setFont(FONT, 6)
    c.drawCentredString(tx + tw / 2, y + 2.2 * mm, reader.barcode)
    symbol = barcode_symbol(reader.barcode, tw, 8 * mm)
    symbol.drawOn(c, tx + (tw - symbol.width) / 2, y + 4.3 * mm)


def card_sheet_pdf(readers, school_year=None):
    """PDF (bytes) of one card per reader, in order, 10 per A4 page; each card names its
    reader's school. `school_year` is the name printed on the cards ("2025–2026"), or None.
    """
    readers = list(readers)
    if not readers:
        raise ValidationError(_l("No reader selected."), field="ids")
    if len(readers) > MAX_CARDS:
        raise ValidationError(_l("At most %(n)d cards at a time."), field="ids", n=MAX_CARDS)
    for reader in readers:
        barcode_symbol(reader.barcode, 50 * mm, 8 * mm)  # refuse before drawing anything
    register_fonts()
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    c.setTitle(gettext("Reader cards"))
    c.setCreator("Thư viện trường học")
    for index, reader in enumerate(readers):
        slot = index % PER_PAGE
        if index and slot == 0:
            c.showPage()
        x, y = card_origin(slot)
        c.saveState()
        _draw_card(c, reader, x, y, school_year)
        c.restoreState()
    c.showPage()
    c.save()
    return buffer.getvalue()
