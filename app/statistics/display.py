"""What the statistics page shows of a table (app.statistics.services.Table).

A scope of more than `TRANSPOSE_ABOVE` units (an office's schools, the city's offices) is
shown one row per unit; a scope of more than `UNITS_PER_PAGE` units shows them a page at a
time (the first 100 by name, then the next…), while the totals row is always that of every
unit and the Excel download has every cell (app config STAT_TRANSPOSE_ABOVE and
STAT_UNITS_PER_PAGE change both numbers). The number cells are written here once, as HTML
(digits and dots only), instead of 15,000 filter calls and `<td>`s in the template.
"""
import dataclasses
import math
from typing import List

from markupsafe import Markup

TRANSPOSE_ABOVE = 12
UNITS_PER_PAGE = 100


def vn_number(value):
    """1234567 -> "1.234.567"."""
    return f"{value:,}".replace(",", ".")


def _cells(values, strong=False):
    if strong:
        return Markup("".join(f'<td class="text-right"><strong>{vn_number(v)}</strong></td>'
                              for v in values))
    return Markup("".join(f'<td class="text-right">{vn_number(v)}</td>' for v in values))


def _heads(values):
    return Markup("".join(f'<th class="text-right">{vn_number(v)}</th>' for v in values))


@dataclasses.dataclass
class TableDisplay:
    transposed: bool
    page: int  # 1-based
    pages: int
    first: int  # index of the first unit shown
    last: int  # index after the last unit shown
    unit_count: int
    per_page: int
    rows: List[tuple]  # not transposed: (key label, cells html, row total html, first value)
    units: List[tuple]  # transposed: (Column, cells html, unit total html)
    totals: Markup  # the totals row's cells (after its label)
    page_links: List[tuple]  # (page number, "first–last" units)

    @property
    def paginated(self):
        return self.pages > 1


def display(table, page=1, units_per_page=UNITS_PER_PAGE, transpose_above=TRANSPOSE_ABOVE):
    """The page `page` (clamped) of `table` as the statistics page shows it."""
    columns, measures = table.columns, len(table.measures)
    transposed = len(columns) > transpose_above
    per_page = max(1, units_per_page)
    pages = max(1, math.ceil(len(columns) / per_page)) if transposed else 1
    try:
        page = min(max(1, int(page)), pages)
    except (TypeError, ValueError):
        page = 1
    first = (page - 1) * per_page if transposed else 0
    last = min(len(columns), first + per_page) if transposed else len(columns)
    links = [(n, f"{(n - 1) * per_page + 1}–{min(len(columns), n * per_page)}")
             for n in range(1, pages + 1)]
    several = len(columns) > 1
    if transposed:
        units = []
        for i in range(first, last):
            start = i * measures
            values = [cells[start + m] for _label, cells, _t in table.rows
                      for m in range(measures)]
            units.append((columns[i], _cells(values),
                          _cells(table.totals[start:start + measures], strong=True)))
        totals = _heads([v for _label, _cells_, total in table.rows for v in total]
                        + list(table.grand))
        return TableDisplay(True, page, pages, first, last, len(columns), per_page, [], units,
                            totals, links)
    rows = [(label, _cells(cells), _cells(total, strong=True) if several else Markup(""),
             cells[0] if cells else 0) for label, cells, total in table.rows]
    totals = _heads(list(table.totals) + (list(table.grand) if several else []))
    return TableDisplay(False, 1, 1, 0, len(columns), len(columns), per_page, rows, [],
                        totals, links)
