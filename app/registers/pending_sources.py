"""Register lines fed by domains that do not exist on this branch yet.

Stocktake (kiểm kê, app/stocktake/) and weeding / withdrawal (thanh lọc, xuất kho,
app/weeding/) are being built in parallel. The registers already have their places: each
function below is the single entry point the registers read, and returns nothing until
its tables exist. When those domains land, only these functions change (the layouts,
the Excel writer and the printed pages already show what they return).

All take the session, the school id and the register's `Period` (app.registers.layout).
"""


def withdrawal_lines(session, school_id, period):
    """Sổ đăng ký tổng quát, Phần II – Xuất kho: one line per biên bản xuất kho.

    Future source: app/weeding/ — the withdrawal record (biên bản xuất kho / thanh lý
    decision approved by the principal: number, date, reason) and its withdrawn copies
    (count, money, breakdown by reason and by document type), dated within `period`.

    Each line, in the order of `providers.general_part2_columns()`:
    [date, running number, "number and date of the document", copies, money,
     worn out, outdated, lost, other reason, SGK, SNV, STK, STN, other type, note].
    Returns [] until app/weeding/ exists.
    """
    return []


def inventory_lines(session, school_id, period):
    """Sổ đăng ký tổng quát, Phần III – Kiểm kê: one line per stocktake ("Hiện còn đến ...").

    Future source: app/stocktake/ — the closed stocktake sessions of the school dated within
    `period`, with the register totals at that date (copies taken in, withdrawn, still held,
    and their money, by document type).

    Each line, in the order of `providers.general_part3_columns()`:
    [date, total in (copies), total out (copies), held (copies), held (money),
     SGK, SNV, STK, STN, other type, note].
    Returns [] until app/stocktake/ exists.
    """
    return []


def inventory_years(session, school_id, series_id):
    """The stocktake years shown as tick columns ("Kiểm kê 2025") of a Sổ đăng ký cá biệt.

    Future source: app/stocktake/ — the years of the closed stocktakes of the school that
    covered the series. Returns [] until app/stocktake/ exists (the register then prints one
    empty "Stocktake" column to tick by hand).
    """
    return []


def inventory_marks(session, school_id, series_id):
    """{copy id: {year: mark}} of the copies of one accession series — the stocktake result of each copy: "C" (còn, found) or
    "M" (mất, missing); used by the Sổ đăng ký cá biệt tick columns and the M/C column of
    the textbook register.

    Future source: app/stocktake/ — the per-copy scan lines of the closed stocktakes.
    Returns {} until app/stocktake/ exists.
    """
    return {}


def weeding_notes(session, school_id, series_id):
    """{copy id of the series: "đã thanh lọc, QĐ số 12/QĐ-THCS ngày 15/05/2026"} — the Ghi chú of a
    weeded copy in the Sổ đăng ký cá biệt (TT 02/2020 Art. 28).

    Future source: app/weeding/ — the weeding decision (number, date) that withdrew each
    copy. Returns {} until app/weeding/ exists (the register then writes the copy's status,
    "Withdrawn", and its own note).
    """
    return {}
