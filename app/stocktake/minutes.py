"""Biên bản kiểm kê (inventory minutes) of a closed session: the same content as a printable
page and as an A4 Excel workbook with the official header (registers.md §6)."""
import io

import xlsxwriter
from flask_babel import gettext
from sqlalchemy import select

from app.catalog.models import Record
from app.collection.models import Copy, CopyStatus, Location
from app.core.enums import N_
from app.core.i18n import format_date
from app.org.models import AppUser, OrgUnit, UnitKind
from app.stocktake import services
from app.stocktake.models import Outcome, StocktakeResult


def _department(session):
    return session.scalars(select(OrgUnit).where(OrgUnit.kind == UnitKind.department)
                           .order_by(OrgUnit.id)).first()


def _place(department):
    """"Thành phố Hồ Chí Minh" from "Sở Giáo dục và Đào tạo Thành phố Hồ Chí Minh"."""
    name = department.name if department else ""
    marker = "Đào tạo "
    return name.split(marker, 1)[1] if marker in name else ""


def minutes_data(session, st):
    school = session.get(OrgUnit, st.school_id)
    department = _department(session)
    closed_on = services.closed_on(st)
    damaged = session.execute(
        select(Copy.accession_label, Copy.barcode, Record.title, Location.name, Copy.price)
        .select_from(StocktakeResult)
        .join(Copy, Copy.id == StocktakeResult.copy_id)
        .join(Record, Record.id == Copy.record_id)
        .join(Location, Location.id == Copy.location_id, isouter=True)
        .where(StocktakeResult.session_id == st.id, Copy.status == CopyStatus.damaged,
               StocktakeResult.outcome.in_([Outcome.found, Outcome.on_loan,
                                            Outcome.misplaced]))
        .order_by(Copy.series_id, Copy.sequence_key, Copy.accession_number)).all()
    closer = session.get(AppUser, st.closed_by_id) if st.closed_by_id else None
    place = _place(department)
    return {
        "department": (department.name if department else "").upper(),
        "school": school.name.upper(),
        "place_date": gettext("%(place)s, day %(day)02d month %(month)02d year %(year)d",
                              place=place, day=closed_on.day, month=closed_on.month,
                              year=closed_on.year).lstrip(", "),
        "title": gettext("LIBRARY INVENTORY MINUTES"),
        "session": st,
        "scope": services.scope_description(session, st),
        "started_on": format_date(st.started_on),
        "closed_on": format_date(closed_on),
        "closed_by": closer.get_full_name() if closer else "",
        "committee": [line.strip() for line in (st.committee or "").splitlines()
                      if line.strip()],
        "lines": services.register_lines(session, st.id),
        "missing": services.result_list(session, st, Outcome.missing),
        "damaged": damaged,
        "misplaced": st.misplaced_count or 0,
        "unknown": len(services.unknown_list(session, st, limit=None)),
        "missing_action": st.missing_action.label if st.missing_action else "",
        "proposals": [line for line in (st.proposals or "").splitlines() if line.strip()],
    }


def money(value):
    return f"{int(value or 0):,}".replace(",", ".")


REGISTER_HEADINGS = (
    N_("Document type"), N_("Copies in"), N_("Value in (VND)"), N_("Copies out"),
    N_("Value out (VND)"), N_("Copies remaining"), N_("Value remaining (VND)"),
    N_("Copies found"), N_("On loan"), N_("Copies missing"), N_("Value missing (VND)"))
LIST_HEADINGS = (N_("No."), N_("Accession number"), N_("Barcode"), N_("Title"),
                 N_("Shelving location"), N_("Price (VND)"))


def register_headings():
    return [gettext(h) for h in REGISTER_HEADINGS]


def list_headings():
    return [gettext(h) for h in LIST_HEADINGS]


def minutes_xlsx(data):
    """The minutes as .xlsx bytes: A4 portrait, one page wide, official header."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet(gettext("Minutes"))
    sheet.set_paper(9)  # A4
    sheet.set_portrait()
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=0.6, right=0.4, top=0.6, bottom=0.6)
    sheet.repeat_rows(0, 0)
    font = {"font_name": "Times New Roman", "font_size": 12, "valign": "top"}
    f = {
        "plain": book.add_format({**font, "text_wrap": True}),
        "center": book.add_format({**font, "align": "center", "text_wrap": True}),
        "center_bold": book.add_format({**font, "align": "center", "bold": True,
                                        "text_wrap": True}),
        "center_italic": book.add_format({**font, "align": "center", "italic": True}),
        "title": book.add_format({**font, "align": "center", "bold": True, "font_size": 14}),
        "heading": book.add_format({**font, "bold": True}),
        "th": book.add_format({**font, "bold": True, "border": 1, "align": "center",
                               "valign": "vcenter", "text_wrap": True, "font_size": 11}),
        "td": book.add_format({**font, "border": 1, "text_wrap": True, "font_size": 11}),
        "num": book.add_format({**font, "border": 1, "num_format": "#,##0",
                                "font_size": 11}),
        "total": book.add_format({**font, "border": 1, "bold": True, "font_size": 11}),
        "total_num": book.add_format({**font, "border": 1, "bold": True,
                                      "num_format": "#,##0", "font_size": 11}),
    }
    widths = (18, 9, 13, 9, 13, 9, 13, 9, 8, 9, 13)
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width)
    last = len(widths) - 1
    # Official header: the managing body and the school left, the national motto right.
    sheet.merge_range(0, 0, 0, 4, data["department"], f["center"])
    sheet.merge_range(1, 0, 1, 4, data["school"], f["center_bold"])
    sheet.merge_range(0, 5, 0, last, gettext("SOCIALIST REPUBLIC OF VIETNAM"),
                      f["center_bold"])
    sheet.merge_range(1, 5, 1, last, gettext("Independence - Freedom - Happiness"),
                      f["center_bold"])
    sheet.merge_range(3, 5, 3, last, data["place_date"], f["center_italic"])
    sheet.merge_range(5, 0, 5, last, data["title"], f["title"])
    sheet.merge_range(6, 0, 6, last, data["session"].name, f["center_bold"])
    row = 8
    facts = [
        (gettext("Part counted"), data["scope"]),
        (gettext("Started on"), data["started_on"]),
        (gettext("Closed on"), data["closed_on"]),
        (gettext("Missing copies"), str(data["missing_action"])),
    ]
    for label, value in facts:
        sheet.write(row, 0, label, f["heading"])
        sheet.merge_range(row, 1, row, last, value, f["plain"])
        row += 1
    row += 1
    sheet.merge_range(row, 0, row, last, gettext("I. The stocktake committee"), f["heading"])
    row += 1
    for n, member in enumerate(data["committee"] or ["…"], 1):
        sheet.merge_range(row, 0, row, last, f"{n}. {member}", f["plain"])
        row += 1
    row += 1
    sheet.merge_range(row, 0, row, last, gettext("II. Results by document type and value"),
                      f["heading"])
    row += 1
    sheet.set_row(row, 45)
    for col, heading in enumerate(register_headings()):
        sheet.write(row, col, heading, f["th"])
    row += 1
    for line in data["lines"]:
        text_f, num_f = (f["total"], f["total_num"]) if line.is_total else (f["td"], f["num"])
        values = (line.copies_in, line.value_in, line.copies_out, line.value_out,
                  line.copies_remaining, line.value_remaining, line.copies_found,
                  line.copies_on_loan, line.copies_missing, line.value_missing)
        sheet.write(row, 0, line.label, text_f)
        for col, value in enumerate(values, 1):
            sheet.write_number(row, col, int(value or 0), num_f)
        row += 1
    row += 1
    sheet.merge_range(row, 0, row, last, gettext(
        "Found in another part: %(misplaced)d copies; unknown barcodes: %(unknown)d.",
        misplaced=data["misplaced"], unknown=data["unknown"]), f["plain"])
    row += 2
    for heading, rows in ((gettext("III. Missing copies"), data["missing"]),
                          (gettext("IV. Damaged copies"), data["damaged"])):
        sheet.merge_range(row, 0, row, last, f"{heading} ({len(rows)})", f["heading"])
        row += 1
        row = _copy_table(sheet, f, row, rows, last)
        row += 1
    sheet.merge_range(row, 0, row, last, gettext("V. Proposals"), f["heading"])
    row += 1
    for line in data["proposals"] or ["…"]:
        sheet.merge_range(row, 0, row, last, line, f["plain"])
        row += 1
    row += 2
    sheet.merge_range(row, 0, row, 4, gettext("SECRETARY OF THE COMMITTEE"), f["center_bold"])
    sheet.merge_range(row, 5, row, last, gettext("CHAIR OF THE COMMITTEE (PRINCIPAL)"),
                      f["center_bold"])
    row += 1
    sheet.merge_range(row, 0, row, 4, gettext("(signature and full name)"),
                      f["center_italic"])
    sheet.merge_range(row, 5, row, last, gettext("(signature, full name and seal)"),
                      f["center_italic"])
    book.close()
    return out.getvalue()


def _copy_table(sheet, f, row, rows, last):
    headings = list_headings()
    spans = [(0, 0), (1, 2), (3, 3), (4, 7), (8, 9), (10, last)]
    for (start, end), heading in zip(spans, headings):
        _cell(sheet, row, start, end, heading, f["th"])
    row += 1
    for n, (label, barcode, title, location, price, *_rest) in enumerate(rows, 1):
        values = (n, label, barcode, title, location or "", price)
        for (start, end), value in zip(spans, values):
            if isinstance(value, (int, float)) or value is None or hasattr(value, "as_tuple"):
                fmt = f["num"]
                value = int(value or 0)
            else:
                fmt = f["td"]
            _cell(sheet, row, start, end, value, fmt)
        row += 1
    return row


def _cell(sheet, row, start, end, value, fmt):
    if start == end:
        sheet.write(row, start, value, fmt)
    else:
        sheet.merge_range(row, start, row, end, value, fmt)
