"""A statistics table as an .xlsx file: title, scope, period, the table with its two header
rows (unit, then measure), and totals as formulas (with their values cached, so that a
reader without recalculation sees them too)."""
import io

import xlsxwriter
from flask_babel import gettext
from xlsxwriter.utility import xl_rowcol_to_cell

from app.core.i18n import DATETIME_FORMAT


def table_xlsx(table):
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(gettext("Statistics")[:31])
    font = {"font_name": "Times New Roman", "font_size": 12}
    title = book.add_format({**font, "bold": True, "font_size": 14, "align": "center"})
    plain = book.add_format(font)
    italic = book.add_format({**font, "italic": True})
    head = book.add_format({**font, "bold": True, "border": 1, "align": "center",
                            "valign": "vcenter", "text_wrap": True, "bg_color": "#EEEEEE"})
    cell = book.add_format({**font, "border": 1})
    number = book.add_format({**font, "border": 1, "num_format": "#,##0"})
    total_label = book.add_format({**font, "border": 1, "bold": True})
    total = book.add_format({**font, "border": 1, "bold": True, "num_format": "#,##0"})

    measures = table.measures
    columns = table.columns
    many = len(columns) > 1
    width = 1 + len(columns) * len(measures) + (len(measures) if many else 0)
    sheet.merge_range(0, 0, 0, max(width - 1, 1), str(table.report.title).upper(), title)
    sheet.write(1, 0, gettext("Scope: %(name)s", name=table.scope.name), plain)
    sheet.write(2, 0, gettext("Period: %(period)s", period=table.period.label), plain)
    row = 3
    if table.refreshed_at is not None:
        sheet.write(row, 0, gettext("Figures counted at %(time)s",
                                    time=table.refreshed_at.strftime(DATETIME_FORMAT)), italic)
        row += 1
    if table.note:
        sheet.write(row, 0, table.note, italic)
        row += 1
    row += 1
    top, sub = row, row + 1
    sheet.merge_range(top, 0, sub, 0, str(table.report.key_title), head)
    col = 1
    groups = [(c.name, c) for c in columns] + ([(gettext("Total"), None)] if many else [])
    for name, _column in groups:
        if len(measures) > 1:
            sheet.merge_range(top, col, top, col + len(measures) - 1, name, head)
        else:
            sheet.write(top, col, name, head)
        for i, (_code, label) in enumerate(measures):
            sheet.write(sub, col + i, str(label), head)
        col += len(measures)
    first = sub + 1
    r = first
    for label, cells, row_total in table.rows:
        sheet.write(r, 0, label, cell)
        for i, value in enumerate(cells):
            sheet.write_number(r, 1 + i, value, number)
        if many:
            base = 1 + len(cells)
            for m, value in enumerate(row_total):
                # The total of the row: the sum of its units' cells for the same measure.
                refs = ",".join(xl_rowcol_to_cell(r, 1 + k * len(measures) + m)
                                for k in range(len(columns)))
                if sum(cells[k * len(measures) + m] for k in range(len(columns))) == value:
                    sheet.write_formula(r, base + m, f"=SUM({refs})", total, value)
                else:  # a school outside every column (e.g. directly under the department)
                    sheet.write_number(r, base + m, value, total)
        r += 1
    sheet.write(r, 0, gettext("Total"), total_label)
    sums = table.totals + (table.grand if many else [])
    for i, value in enumerate(sums):
        if table.rows:
            top_cell, bottom = xl_rowcol_to_cell(first, 1 + i), xl_rowcol_to_cell(r - 1, 1 + i)
            sheet.write_formula(r, 1 + i, f"=SUM({top_cell}:{bottom})", total, value)
        else:
            sheet.write_number(r, 1 + i, 0, total)
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, max(width - 1, 1), 14)
    sheet.freeze_panes(first, 1)
    sheet.repeat_rows(top, sub)
    sheet.set_paper(9)  # A4
    if width > 6:
        sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    book.close()
    return buffer.getvalue()
