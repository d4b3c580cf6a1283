"""A statistics table as an .xlsx file: title, scope, period, the table with its two header
rows (unit, then measure), and totals as formulas (with their values cached, so that a
reader without recalculation sees them too)."""
import io

import xlsxwriter
from flask_babel import gettext
from xlsxwriter.utility import xl_rowcol_to_cell

from app.core.i18n import DATETIME_FORMAT


def _workbook():
    """The in-memory workbook of a statistics table, its sheet and the formats both tables
    use (Times New Roman 12, bordered cells, #,##0 numbers)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(gettext("Statistics")[:31])
    font = {"font_name": "Times New Roman", "font_size": 12}
    formats = {
        "font": font,
        "title": book.add_format({**font, "bold": True, "font_size": 14, "align": "center"}),
        "plain": book.add_format(font),
        "italic": book.add_format({**font, "italic": True}),
        "head": book.add_format({**font, "bold": True, "border": 1, "align": "center",
                                 "valign": "vcenter", "text_wrap": True,
                                 "bg_color": "#EEEEEE"}),
        "cell": book.add_format({**font, "border": 1}),
        "number": book.add_format({**font, "border": 1, "num_format": "#,##0"}),
        "total_label": book.add_format({**font, "border": 1, "bold": True}),
        "total": book.add_format({**font, "border": 1, "bold": True, "num_format": "#,##0"}),
    }
    return buffer, book, sheet, formats


def _heading(sheet, f, width, title, scope_name, when, refreshed_at):
    """Title, scope, period (or date) and freshness; returns the next free row."""
    sheet.merge_range(0, 0, 0, max(width - 1, 1), str(title).upper(), f["title"])
    sheet.write(1, 0, gettext("Scope: %(name)s", name=scope_name), f["plain"])
    sheet.write(2, 0, when, f["plain"])
    row = 3
    if refreshed_at is not None:
        sheet.write(row, 0, gettext("Figures counted at %(time)s",
                                    time=refreshed_at.strftime(DATETIME_FORMAT)), f["italic"])
        row += 1
    return row


def table_xlsx(table):
    buffer, book, sheet, f = _workbook()
    italic, head, cell, number = f["italic"], f["head"], f["cell"], f["number"]
    total_label, total = f["total_label"], f["total"]

    measures = table.measures
    columns = table.columns
    many = len(columns) > 1
    width = 1 + len(columns) * len(measures) + (len(measures) if many else 0)
    row = _heading(sheet, f, width, table.report.title, table.scope.name,
                   gettext("Period: %(period)s", period=table.period.label), table.refreshed_at)
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


def standard_xlsx(table, report, definition):
    """The collection against the standard (app.statistics.standard.StandardTable): one
    row per school with its figures, the minimums and the result; the definition below."""
    from app.core.i18n import DATE_FORMAT, local_today

    buffer, book, sheet, f = _workbook()
    font, head, cell, number = f["font"], f["head"], f["cell"], f["number"]
    total_label, total = f["total_label"], f["total"]
    note = book.add_format({**font, "italic": True, "text_wrap": True, "valign": "top"})
    centre = book.add_format({**font, "border": 1, "align": "center"})
    fail = book.add_format({**font, "border": 1, "align": "center", "bold": True,
                            "font_color": "#C0392B"})
    ratio = book.add_format({**font, "border": 1, "num_format": "#,##0.00"})
    total_ratio = book.add_format({**font, "border": 1, "bold": True, "num_format": "#,##0.00"})

    lead = 2 if table.by_unit else 1
    width = lead + 12
    row = _heading(sheet, f, width, report.title, table.scope.name,
                   gettext("State on %(date)s", date=local_today().strftime(DATE_FORMAT)),
                   table.refreshed_at)
    row += 1
    top, sub = row, row + 1
    sheet.merge_range(top, 0, sub, 0, gettext("School"), head)
    if table.by_unit:
        sheet.merge_range(top, 1, sub, 1, gettext("Unit"), head)
    sheet.merge_range(top, lead, top, lead + 4, gettext("Copies per student"), head)
    sheet.merge_range(top, lead + 5, top, lead + 10, gettext("Teacher books per teacher"), head)
    sheet.merge_range(top, lead + 11, sub, lead + 11,
                      gettext("Copies per professional title"), head)
    subs = [gettext("Students"), gettext("Copies"), gettext("Copies per student"),
            gettext("Minimum"), gettext("Result"), gettext("Teachers"),
            gettext("Teacher books (copies)"), gettext("Teacher-book titles"),
            gettext("Teacher books per teacher"), gettext("Minimum"), gettext("Result")]
    for i, label in enumerate(subs):
        sheet.write(sub, lead + i, label, head)

    def value(r, c, v, fmt):
        if v is None:
            sheet.write(r, c, "–", centre)
        else:
            sheet.write_number(r, c, v, fmt)

    meets, below = gettext("Meets"), gettext("Below")  # once: thousands of lines

    def verdict(r, c, ok):
        if ok is None:
            sheet.write(r, c, "–", centre)
        else:
            sheet.write(r, c, meets if ok else below, centre if ok else fail)

    r = sub + 1
    for s in table.rows:
        sheet.write(r, 0, s.name, cell)
        if table.by_unit:
            sheet.write(r, 1, s.unit_name, cell)
        value(r, lead, s.students, number)
        value(r, lead + 1, s.copies, number)
        value(r, lead + 2, s.copies_per_student, ratio)
        value(r, lead + 3, s.min_copies, number)
        verdict(r, lead + 4, s.copies_ok)
        value(r, lead + 5, s.teachers, number)
        value(r, lead + 6, s.snv_copies, number)
        value(r, lead + 7, s.snv_titles, number)
        value(r, lead + 8, s.teacher_books_per_teacher, ratio)
        value(r, lead + 9, s.min_teacher_books, number)
        verdict(r, lead + 10, s.teacher_books_ok)
        value(r, lead + 11, s.snv_copies_per_title, ratio)
        r += 1
    if len(table.rows) > 1:
        t = table.total
        sheet.write(r, 0, gettext("Total"), total_label)
        if table.by_unit:
            sheet.write(r, 1, "", total_label)
        for c, v, fmt in ((lead, t.students, total), (lead + 1, t.copies, total),
                          (lead + 2, t.copies_per_student, total_ratio),
                          (lead + 5, t.teachers, total), (lead + 6, t.snv_copies, total),
                          (lead + 7, t.snv_titles, total),
                          (lead + 8, t.teacher_books_per_teacher, total_ratio),
                          (lead + 11, t.snv_copies_per_title, total_ratio)):
            if v is None:
                sheet.write(r, c, "–", total_label)
            else:
                sheet.write_number(r, c, v, fmt)
        for c in (lead + 3, lead + 4, lead + 9, lead + 10):
            sheet.write(r, c, "", total_label)
        r += 1
    r += 1
    for paragraph in definition:
        sheet.merge_range(r, 0, r, width - 1, paragraph, note)
        sheet.set_row(r, 48)
        r += 1
    sheet.set_column(0, 0, 34)
    if table.by_unit:
        sheet.set_column(1, 1, 28)
    sheet.set_column(lead, width - 1, 11)
    sheet.freeze_panes(sub + 1, lead)
    sheet.repeat_rows(top, sub)
    sheet.set_paper(9)  # A4
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    book.close()
    return buffer.getvalue()
