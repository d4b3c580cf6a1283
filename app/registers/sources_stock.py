"""Register lines fed by the stocktake (kiểm kê, app/stocktake/) and the weeding rounds
(thanh lọc, xuất kho, app/weeding/).

The registers read these functions only; each reads what those domains stored when a
stocktake was closed or a round withdrawn (nothing is recomputed from live data), through
their own services:

- Part II of the general register: `app.weeding.services.withdrawal_breakdown` (the lines
  of StockWithdrawal, with their copies by reason and document type);
- Part III: the closed sessions (`app.stocktake.services.closed_sessions`) and their lines
  (StocktakeRegisterLine, `register_lines`), fixed at the close;
- the tick columns of the individual register: StocktakeResult.mark of each copy, one
  subquery per stocktake year that the register outer-joins to its copies (streamed with
  its lines); the M/C marks of the textbook register: the same marks read by
  `app.stocktake.services.copy_marks`, one set-based query per stocktake;
- the "đã thanh lọc, QĐ số ..." note of a weeded copy: the decision of its Part II line
  (`app.weeding.services.decision_note`).

Only the copies entered in the general register are counted in its parts (maps, pictures,
tapes, periodicals are not: registers.md §2, as Part I leaves them out).

All take the session, the school id and the register's `Period` (app.registers.layout) or
the accession series.
"""
from collections import defaultdict
from decimal import Decimal

from flask_babel import gettext
from sqlalchemy import case, func, select

from app.catalog.models import DocumentType
from app.collection.models import Copy
from app.core.i18n import format_date
from app.stocktake import services as stocktake
from app.stocktake.models import StocktakeResult
from app.weeding import services as weeding
from app.weeding.models import StockWithdrawal, WeedingReason

# The "by reason" columns of Part II (worn out, outdated, lost, other) and the weeding
# criteria of TT 02/2020 that each one counts.
REASON_COLUMNS = ("worn_out", "outdated", "lost", "other")
REASON_COLUMN = {
    WeedingReason.worn_out: "worn_out",
    WeedingReason.outdated_textbook: "outdated",
    WeedingReason.outdated_content: "outdated",
    WeedingReason.old_periodical: "outdated",
    WeedingReason.lost: "lost",
    WeedingReason.other: "other",
}


def _buckets():
    from app.registers.providers import TYPE_CODES, type_bucket  # (providers imports us)

    return TYPE_CODES, type_bucket


def document_types(session):
    """{document type id: (code, entered in the general register)}."""
    return {type_id: (code, bool(in_register)) for type_id, code, in_register in session.execute(
        select(DocumentType.id, DocumentType.code, DocumentType.in_general_register))}


def withdrawal_lines(session, school_id, period):
    """Sổ đăng ký tổng quát, Phần II – Xuất kho: one line per biên bản xuất kho (the
    principal's approved decision of a weeding round, once its copies are withdrawn), dated
    within `period` by the day of the withdrawal, by running number.

    Each line, in the order of `providers.general_part2_columns()`:
    [date, running number, "number, date of the document", copies, money,
     worn out, outdated, lost, other reason, SGK, SNV, STK, STN, other type, note].
    """
    type_codes, type_bucket = _buckets()
    lines = []
    for line, parts in weeding.withdrawal_breakdown(session, school_id, period.start,
                                                    period.end):
        copies, money, left_out = 0, Decimal(0), 0
        by_reason, by_type = defaultdict(int), defaultdict(int)
        for reason, code, in_register, count, value in parts:
            if not in_register:
                left_out += count
                continue
            copies += count
            money += value
            by_reason[REASON_COLUMN.get(reason, "other")] += count
            by_type[type_bucket(code)] += count
        notes = [line.note or ""]
        if left_out:
            notes.append(gettext("%(count)d other copies not entered in this register "
                                 "(maps, pictures, tapes, periodicals)", count=left_out))
        lines.append([
            line.withdrawn_on, line.register_number,
            f"{line.document_number}, {format_date(line.document_date)}", copies, money,
            *[by_reason.get(key, 0) for key in REASON_COLUMNS],
            *[by_type.get(code, 0) for code in type_codes], by_type.get("other", 0),
            "; ".join(n for n in notes if n)])
    return lines


def inventory_lines(session, school_id, period):
    """Sổ đăng ký tổng quát, Phần III – Kiểm kê: one line per closed stocktake of the school
    closed within `period`, with the totals fixed at its close ("Hiện còn đến ..."): copies
    taken in, out (withdrawn or lost), still held and their money, held by document type.
    A stocktake of part of the collection says so in its note.

    Each line, in the order of `providers.general_part3_columns()`:
    [date, total in (copies), total out (copies), held (copies), held (money),
     SGK, SNV, STK, STN, other type, note].
    """
    type_codes, type_bucket = _buckets()
    types = document_types(session)
    lines = []
    for st in stocktake.closed_sessions(session, school_id, period.start, period.end):
        taken_in = taken_out = held = missing = 0
        money = Decimal(0)
        by_type = defaultdict(int)
        for line in stocktake.register_lines(session, st.id):
            if line.is_total:
                continue
            code, in_register = types.get(line.document_type_id, ("", True))
            if not in_register:
                continue
            taken_in += line.copies_in
            taken_out += line.copies_out
            held += line.copies_remaining
            money += Decimal(line.value_remaining or 0)
            missing += line.copies_missing
            by_type[type_bucket(code)] += line.copies_remaining
        notes = [st.name]
        if st.is_partial:
            notes.append(gettext("part of the collection: %(part)s",
                                 part=stocktake.scope_description(session, st)))
        if missing:
            notes.append(gettext("%(count)d missing", count=missing))
        lines.append([stocktake.closed_on(st), taken_in, taken_out, held, money,
                      *[by_type.get(code, 0) for code in type_codes], by_type.get("other", 0),
                      "; ".join(notes)])
    return lines


def _stocktake_years(session, school_id, series_id):
    """[(year, [session ids of that year, in the order closed])] of the closed sessions
    that counted copies of the series."""
    sessions = stocktake.closed_sessions(session, school_id)
    counted = stocktake.sessions_with_copies_of(session, school_id, series_id,
                                                 [st.id for st in sessions])
    years = {}
    for st in sessions:
        if st.id in counted:
            years.setdefault(stocktake.closed_on(st).year, []).append(st.id)
    return sorted(years.items())


def inventory_mark_columns(session, school_id, series_id):
    """The stocktake tick columns of a Sổ đăng ký cá biệt: [(year, subquery)], one per year
    of the school's closed stocktakes that counted copies of the series (none: the register
    prints one empty "Stocktake" column to tick by hand). Each subquery has the columns
    (copy_id, mark): the copy's mark that year, "C" (còn: found or on loan) or "M" (mất,
    missing), the last stocktake of the year deciding. The register outer-joins them to its
    copies: the marks stream with the lines (nothing held in memory for 50,000 copies)."""
    result = StocktakeResult
    out = []
    for year, ids in _stocktake_years(session, school_id, series_id):
        if len(ids) == 1:
            sub = select(result.copy_id, result.mark).where(result.session_id == ids[0])
        else:
            position = case({st_id: n for n, st_id in enumerate(ids)}, value=result.session_id)
            ranked = select(result.copy_id, result.mark, func.row_number().over(
                partition_by=result.copy_id, order_by=position.desc()).label("row_rank")).where(
                result.session_id.in_(ids)).subquery()
            sub = select(ranked.c.copy_id, ranked.c.mark).where(ranked.c.row_rank == 1)
        out.append((year, sub.subquery(f"marks_{year}")))
    return out


def inventory_marks(session, school_id, series_id):
    """{copy id: mark} of the copies of one accession series at their last stocktake: "C"
    (còn, found or on loan) or "M" (mất, missing); the M/C column of the textbook register.
    One set-based query per closed stocktake that counted the series, the later overriding."""
    marks = {}
    for _year, ids in _stocktake_years(session, school_id, series_id):
        for st_id in ids:
            for copy_id, _st_id, mark in stocktake.copy_marks(session, school_id, [series_id],
                                                             [st_id]):
                marks[copy_id] = mark
    return marks


def weeding_notes(session, school_id, series_id):
    """{copy id of the series: "đã thanh lọc, QĐ số 12/QĐ-THCS ngày 15/05/2026"}: the Ghi chú
    of a weeded copy in the Sổ đăng ký cá biệt (TT 02/2020 Art. 28), from the decision of
    the Part II line that withdrew it."""
    notes = {}
    by_line = {}
    rows = session.execute(
        select(Copy.id, StockWithdrawal.id, StockWithdrawal.document_number,
               StockWithdrawal.document_date)
        .join(StockWithdrawal, StockWithdrawal.id == Copy.withdrawal_id)
        .where(Copy.school_id == school_id, Copy.series_id == series_id,
               StockWithdrawal.school_id == school_id))
    for copy_id, line_id, number, date in rows:
        if line_id not in by_line:
            by_line[line_id] = weeding.decision_note(number, date)
        notes[copy_id] = by_line[line_id]
    return notes
