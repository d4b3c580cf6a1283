"""Stocktake use cases: sessions, scanning (one by one or a file), live results, closing,
campaigns.

Every function takes the session, the acting user (or None) and the school, never reads the
request, raises `StocktakeError` with a Vietnamese message naming the problem and leaves the
database unchanged when it refuses. The caller commits (closing is one transaction).

Scope of a session ("the part counted"): copies of the school whose location, accession
series, document type and class number match the session's filter. Expected on the shelves:
the copies of the part that are not withdrawn or lost. A copy on loan is not missing.
"""
import datetime
import re
from decimal import Decimal

from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from app.catalog.models import DocumentType, Record
from app.circulation.models import Loan, LoanStatus
from app.collection.models import AccessionSeries, Copy, CopyStatus, LibrarySettings, Location
from app.core.audit import AuditLog
from app.core.bulk import insert_rows
from app.core.errors import DomainError
from app.core.i18n import format_date, local_date, local_today
from app.core.tenancy import guard_rows
from app.org.models import OrgLink, OrgUnit, UnitKind
from app.stocktake.models import (
    MissingAction, Outcome, ScanVia, SessionStatus, StocktakeCampaign, StocktakeRegisterLine,
    StocktakeResult, StocktakeScan, StocktakeSession, StocktakeUnknown,
)

# What a scanner or a portable scanner's file may hold: letters, digits and . - _ /
BARCODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-_/]{0,39}$")
FILE_HEADERS = {"barcode", "barcodes", "mã vạch", "ma vach", "mavach", "code", "mã", "ma"}
MAX_FILE_LINES = 200_000
OUT_OF_STOCK = (CopyStatus.withdrawn, CopyStatus.lost)
# Copies that a close may mark as lost (on the shelf as far as the catalogue knows).
SHELF_STATUSES = (CopyStatus.available, CopyStatus.damaged, CopyStatus.reading_room_only)
CHUNK = 1000


class StocktakeError(DomainError):
    status = 409


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _actor_id(actor):
    return getattr(actor, "id", None)


def _chunks(items, size=CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- the part counted -----------------------------------------------------------------------

def needs_record(st):
    return bool(st.document_type_ids or st.class_from or st.class_to)


def scope_conditions(st):
    """SQL conditions on Copy (and Record when needs_record) for the session's part."""
    conds = [Copy.school_id == st.school_id]
    if st.location_ids:
        conds.append(Copy.location_id.in_(st.location_ids))
    if st.series_ids:
        conds.append(Copy.series_id.in_(st.series_ids))
    if st.document_type_ids:
        conds.append(Record.document_type_id.in_(st.document_type_ids))
    if st.class_from:
        conds.append(Record.class_number >= st.class_from)
    if st.class_to:
        conds.append(or_(Record.class_number <= st.class_to,
                         Record.class_number.like(st.class_to + "%")))
    return conds


def in_scope(st, location_id, series_id, document_type_id, class_number):
    """The same rule as scope_conditions, for one copy already loaded."""
    if st.location_ids and location_id not in st.location_ids:
        return False
    if st.series_ids and series_id not in st.series_ids:
        return False
    if st.document_type_ids and document_type_id not in st.document_type_ids:
        return False
    if st.class_from and (class_number is None or class_number < st.class_from):
        return False
    if st.class_to and (class_number is None or not (
            class_number <= st.class_to or class_number.startswith(st.class_to))):
        return False
    return True


def _scoped(query, st):
    if needs_record(st):
        query = query.join(Record, Record.id == Copy.record_id)
    return query.where(*scope_conditions(st))


def count_expected(session, st):
    return session.scalar(_scoped(select(func.count()).select_from(Copy), st)
                          .where(Copy.status.not_in(OUT_OF_STOCK))) or 0


def scope_description(session, st):
    """"Kho: Kho mở; Loại tài liệu: …" or "the whole collection", for screens and minutes."""
    parts = []
    if st.location_ids:
        names = session.scalars(select(Location.name).where(
            Location.id.in_(st.location_ids)).order_by(Location.code)).all()
        parts.append(gettext("Locations: %(names)s", names=", ".join(names)))
    if st.series_ids:
        names = session.scalars(select(AccessionSeries.name).where(
            AccessionSeries.id.in_(st.series_ids)).order_by(AccessionSeries.code)).all()
        parts.append(gettext("Accession series: %(names)s", names=", ".join(names)))
    if st.document_type_ids:
        names = session.scalars(select(DocumentType.name).where(
            DocumentType.id.in_(st.document_type_ids)).order_by(DocumentType.code)).all()
        parts.append(gettext("Document types: %(names)s", names=", ".join(names)))
    if st.class_from or st.class_to:
        parts.append(gettext("Class numbers from %(start)s to %(end)s",
                             start=st.class_from or "…", end=st.class_to or "…"))
    return "; ".join(parts) if parts else gettext("The whole collection")


# --- sessions -------------------------------------------------------------------------------

def _ids(values):
    out = []
    for value in values or ():
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            out.append(int(value))
        else:
            raise StocktakeError(_l("“%(value)s” is not a valid choice."), value=value)
    return sorted(set(out))


def create_session(session, actor, school_id, name, started_on, location_ids=(),
                   series_ids=(), document_type_ids=(), class_from=None, class_to=None,
                   campaign_id=None, committee=None, note=None):
    name = (name or "").strip()
    if not name:
        raise StocktakeError(_l("Enter the name of the stocktake."))
    if len(name) > 200:
        raise StocktakeError(_l("The name of the stocktake is too long (200 characters at "
                                "most)."))
    if started_on is None:
        raise StocktakeError(_l("Enter the date of the stocktake (dd/mm/yyyy)."))
    location_ids, series_ids = _ids(location_ids), _ids(series_ids)
    document_type_ids = _ids(document_type_ids)
    if location_ids and session.scalar(select(func.count()).select_from(Location).where(
            Location.id.in_(location_ids), Location.school_id == school_id)) != len(location_ids):
        raise StocktakeError(_l("A chosen shelving location does not belong to your school."))
    if series_ids and session.scalar(select(func.count()).select_from(AccessionSeries).where(
            AccessionSeries.id.in_(series_ids),
            AccessionSeries.school_id == school_id)) != len(series_ids):
        raise StocktakeError(_l("A chosen accession series does not belong to your school."))
    if document_type_ids and session.scalar(select(func.count()).select_from(DocumentType)
                                            .where(DocumentType.id.in_(document_type_ids))
                                            ) != len(document_type_ids):
        raise StocktakeError(_l("A chosen document type does not exist."))
    class_from = (class_from or "").strip() or None
    class_to = (class_to or "").strip() or None
    if class_from and class_to and class_from > class_to:
        raise StocktakeError(_l("The classification range goes from %(start)s to %(end)s: "
                                "the start comes after the end."), start=class_from,
                             end=class_to)
    if campaign_id:
        campaign_id = (_ids([campaign_id]) or [None])[0]
        if campaign_id not in {c.id for c in campaigns_for_school(session, school_id)}:
            raise StocktakeError(_l("This campaign does not cover your school or is over."))
    st = StocktakeSession(
        school_id=school_id, name=name, started_on=started_on, status=SessionStatus.open,
        campaign_id=int(campaign_id) if campaign_id else None, location_ids=location_ids,
        series_ids=series_ids, document_type_ids=document_type_ids, class_from=class_from,
        class_to=class_to, committee=(committee or "").strip() or None,
        note=(note or "").strip() or None, created_by_id=_actor_id(actor),
        created_at=_now(), expected_count=0)
    st.expected_count = count_expected(session, st)
    if st.expected_count == 0:
        raise StocktakeError(_l("No copy of your school is in the part chosen (%(part)s): "
                                "choose other locations, series, document types or class "
                                "numbers."), part=scope_description(session, st))
    session.add(st)
    session.flush()
    return st


def get_session(session, school_ids, st_id):
    """The session if it belongs to one of `school_ids` (None: any school), else None."""
    st = session.get(StocktakeSession, st_id) if st_id else None
    if st is None or (school_ids is not None and st.school_id not in school_ids):
        return None
    return st


def _open_session(session, school_id, st_id):
    """The open session, share-locked until the caller's commit (PostgreSQL): a close waits
    for the scans in flight, and a scan that comes after the close sees it closed."""
    if not isinstance(st_id, int):
        st_id = (_ids([st_id]) or [None])[0]
    st = session.scalars(
        select(StocktakeSession).where(StocktakeSession.id == st_id,
                                       StocktakeSession.school_id == school_id)
        .with_for_update(read=True).execution_options(populate_existing=True)).first()
    if st is None:
        raise StocktakeError(_l("Stocktake not found in your school."))
    if st.status != SessionStatus.open:
        raise StocktakeError(_l("The stocktake “%(name)s” is closed: it takes no more scans."),
                             name=st.name)
    return st


# --- scanning -------------------------------------------------------------------------------

_COPY_COLUMNS = (Copy.id, Copy.status, Copy.location_id, Copy.series_id, Copy.accession_label,
                 Copy.barcode, Record.title, Record.document_type_id, Record.class_number)


def _find_copy(session, school_id, code):
    query = select(*_COPY_COLUMNS).join(Record, Record.id == Copy.record_id)
    row = session.execute(query.where(Copy.school_id == school_id, Copy.barcode == code)).first()
    if row is None:
        row = session.execute(query.where(Copy.school_id == school_id,
                                          Copy.accession_label == code).limit(1)).first()
    return row


def other_school_codes(session, school_id, codes):
    """Those of `codes` that are barcodes of another school's copies. Barcodes carry their
    school's prefix (the school code by default): only the schools whose prefix begins the
    code are asked, each through its (school, barcode) unique index."""
    codes = set(codes)
    if not codes:
        return set()
    by_length = {}  # prefix length -> {prefix: [school ids]}
    for other_id, prefix in session.execute(
            select(OrgUnit.id, func.coalesce(LibrarySettings.barcode_prefix, OrgUnit.code))
            .join(LibrarySettings, LibrarySettings.school_id == OrgUnit.id, isouter=True)
            .where(OrgUnit.kind == UnitKind.school, OrgUnit.id != school_id)):
        if prefix:
            by_length.setdefault(len(prefix), {}).setdefault(prefix, []).append(other_id)
    candidates = {}
    for code in codes:
        for length, prefixes in by_length.items():
            for other_id in prefixes.get(code[:length], ()):
                candidates.setdefault(other_id, []).append(code)
    found = set()
    for other_id, other_codes in candidates.items():
        for chunk in _chunks(other_codes):
            found |= set(session.scalars(select(Copy.barcode).where(
                Copy.school_id == other_id, Copy.barcode.in_(chunk))))
    return found


def _insert(session, table):
    dialect = session.get_bind().dialect.name
    return (pg_dialect.insert(table) if dialect == "postgresql" else sqlite_dialect.insert(table))


def _add_scan(session, actor, st, copy_id, location_id, via):
    """Count the copy once in the session: True if this scan is the first."""
    guard_rows(StocktakeScan, [st.school_id])
    table = StocktakeScan.__table__
    stmt = _insert(session, table).values(
        school_id=st.school_id, session_id=st.id, copy_id=copy_id, location_id=location_id,
        scanned_at=_now(), scanned_by_id=_actor_id(actor), via=via.name,
    ).on_conflict_do_nothing(index_elements=["session_id", "copy_id"]).returning(table.c.id)
    return session.execute(stmt).scalar() is not None


def _add_unknown(session, actor, st, codes):
    """Count unknown codes ({code: times} or a list), one statement for all of them."""
    if not codes:
        return
    guard_rows(StocktakeUnknown, [st.school_id])
    table = StocktakeUnknown.__table__
    counts = codes if isinstance(codes, dict) else {code: 1 for code in codes}
    now, user_id = _now(), _actor_id(actor)
    stmt = _insert(session, table)
    stmt = stmt.on_conflict_do_update(index_elements=["session_id", "barcode"],
                                      set_={"times": table.c.times + stmt.excluded.times})
    session.execute(stmt, [{"school_id": st.school_id, "session_id": st.id, "barcode": code,
                            "times": times, "first_scanned_at": now, "scanned_by_id": user_id}
                           for code, times in counts.items()])


def check_code(code):
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    code = code.strip() if isinstance(code, str) else ""
    if not code:
        raise StocktakeError(_l("Scan or type a copy barcode."))
    if not BARCODE.match(code):
        raise StocktakeError(_l("“%(code)s” is not a barcode (letters, digits and . - _ / "
                                "only, 40 characters at most): nothing was counted."),
                             code=code[:60])
    return code


def scan(session, actor, school_id, st_id, code, location_id=None, via=ScanVia.scanner):
    """One copy scanned into an open session. Returns a dict for the scanning page."""
    st = _open_session(session, school_id, st_id)
    code = check_code(code)
    if location_id:
        location = session.get(Location, _ids([location_id])[0])
        if location is None or location.school_id != school_id:
            raise StocktakeError(_l("Shelving location not found in your school."))
        location_id = location.id
    else:
        location_id = None
    row = _find_copy(session, school_id, code)
    if row is None:
        if other_school_codes(session, school_id, [code]):
            raise StocktakeError(
                _l("The barcode “%(barcode)s” is a copy of another school: it is not counted "
                   "in this stocktake."), barcode=code)
        _add_unknown(session, actor, st, [code])
        return {"kind": "unknown", "level": "warn", "barcode": code,
                "message": gettext("No copy of this school has the barcode “%(barcode)s”: "
                                   "it is listed as an unknown barcode.", barcode=code)}
    first = _add_scan(session, actor, st, row.id, location_id, via)
    label, title = row.accession_label, row.title
    result = {"barcode": row.barcode, "accession": label, "title": title, "copy_id": row.id,
              "duplicate": not first}
    scoped = in_scope(st, row.location_id, row.series_id, row.document_type_id,
                      row.class_number)
    if row.status in OUT_OF_STOCK:
        result.update(kind=Outcome.withdrawn.name, level="warn", message=gettext(
            "%(copy)s “%(title)s” is recorded as %(status)s: set it aside for the librarian.",
            copy=label, title=title, status=str(row.status.label).lower()))
    elif not scoped:
        where = session.get(Location, row.location_id).name if row.location_id else "—"
        result.update(kind=Outcome.misplaced.name, level="warn", message=gettext(
            "%(copy)s “%(title)s” belongs to another part of the library (%(location)s): put "
            "it back there.", copy=label, title=title, location=where))
    elif row.status == CopyStatus.on_loan:
        result.update(kind=Outcome.found.name, level="warn", message=gettext(
            "Found %(copy)s “%(title)s”, but it is recorded as on loan: check it in at the "
            "desk.", copy=label, title=title))
    elif location_id and row.location_id != location_id:
        where = session.get(Location, row.location_id).name if row.location_id else "—"
        result.update(kind=Outcome.found.name, level="warn", message=gettext(
            "Found %(copy)s “%(title)s”, shelved at the wrong place: it belongs to "
            "%(location)s.", copy=label, title=title, location=where))
    else:
        result.update(kind=Outcome.found.name, level="ok", message=gettext(
            "Found %(copy)s “%(title)s”.", copy=label, title=title))
    if not first:
        result["level"] = "dup"
        result["message"] = gettext("Already counted: %(message)s", message=result["message"])
    result["scanned"] = session.scalar(select(func.count()).select_from(StocktakeScan).where(
        StocktakeScan.session_id == st.id))
    return result


# --- files of barcodes ----------------------------------------------------------------------

def parse_barcodes(data):
    """(codes [(line, code)], bad lines [(line, text)]) of an uploaded file: one barcode a
    line, or the first column of a CSV line; an optional header line is skipped."""
    if not data:
        raise StocktakeError(_l("The file is empty."))
    if b"\x00" in data[:4096]:
        raise StocktakeError(_l("The file is not a text file of barcodes (one per line): "
                                "nothing was counted."))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1258", errors="replace")
    lines = text.splitlines()
    if len(lines) > MAX_FILE_LINES:
        raise StocktakeError(_l("The file has %(count)d lines: at most %(max)d at a time."),
                             count=len(lines), max=MAX_FILE_LINES)
    codes, bad = [], []
    first = True
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        field = re.split(r"[,;\t]", stripped, maxsplit=1)[0].strip().strip('"').strip()
        if first and field.lower() in FILE_HEADERS:
            first = False
            continue
        first = False
        if BARCODE.match(field):
            codes.append((number, field))
        else:
            bad.append((number, stripped[:60]))
    if not codes and not bad:
        raise StocktakeError(_l("The file holds no barcode."))
    return codes, bad


def plan_upload(session, school_id, st, codes):
    """What a file would do: the copies it counts, those already counted, unknown codes, and
    the lines refused (another school's copies)."""
    by_barcode = dict(session.execute(select(Copy.barcode, Copy.id).where(
        Copy.school_id == school_id)).all())
    ids, unmatched = {}, []
    for number, code in codes:
        copy_id = by_barcode.get(code)
        if copy_id is None:
            unmatched.append((number, code))
        else:
            ids.setdefault(copy_id, number)
    if unmatched:
        labels = {}
        for chunk in _chunks({code for _n, code in unmatched}):
            labels.update(session.execute(select(Copy.accession_label, Copy.id).where(
                Copy.school_id == school_id, Copy.accession_label.in_(chunk))).all())
        still = []
        for number, code in unmatched:
            if code in labels:
                ids.setdefault(labels[code], number)
            else:
                still.append((number, code))
        unmatched = still
    foreign = other_school_codes(session, school_id, {code for _n, code in unmatched})
    already = set(session.scalars(select(StocktakeScan.copy_id).where(
        StocktakeScan.session_id == st.id)))
    return {
        "lines": len(codes),
        "copies": len(ids),
        "new": len(set(ids) - already),
        "already": len(set(ids) & already),
        "repeated": len(codes) - len(ids) - len(unmatched),
        "copy_ids": sorted(set(ids) - already),
        "unknown": sorted({code for _n, code in unmatched if code not in foreign}),
        "unknown_times": _times(code for _n, code in unmatched if code not in foreign),
        "foreign": [(n, code) for n, code in unmatched if code in foreign],
    }


def _times(codes):
    out = {}
    for code in codes:
        out[code] = out.get(code, 0) + 1
    return out


def apply_upload(session, actor, school_id, st_id, data):
    """Count the copies of a file of barcodes in one transaction; refused whole (nothing
    counted) if a line is not a barcode or is another school's copy."""
    st = _open_session(session, school_id, st_id)
    codes, bad = parse_barcodes(data)
    if bad:
        raise StocktakeError(bad_lines_message(bad))
    plan = plan_upload(session, school_id, st, codes)
    if plan["foreign"]:
        raise StocktakeError(foreign_lines_message(plan["foreign"]))
    now, user_id = _now(), _actor_id(actor)
    rows = [{"school_id": school_id, "session_id": st.id, "copy_id": copy_id,
             "location_id": None, "scanned_at": now, "scanned_by_id": user_id,
             "via": ScanVia.file.name} for copy_id in plan["copy_ids"]]
    _insert_scans(session, st.school_id, rows)
    _add_unknown(session, actor, st, plan["unknown_times"])
    return plan


def bad_lines_message(bad):
    shown = "; ".join(gettext("line %(line)d: “%(text)s”", line=n, text=t) for n, t in bad[:5])
    return gettext("%(count)d line(s) of the file are not barcodes (%(lines)s): correct the "
                   "file and upload it again. Nothing was counted.", count=len(bad),
                   lines=shown + ("…" if len(bad) > 5 else ""))


def foreign_lines_message(foreign):
    shown = "; ".join(gettext("line %(line)d: “%(text)s”", line=n, text=t)
                      for n, t in foreign[:5])
    return gettext("%(count)d line(s) of the file are copies of another school (%(lines)s): "
                   "remove them and upload the file again. Nothing was counted.",
                   count=len(foreign), lines=shown + ("…" if len(foreign) > 5 else ""))


def _insert_scans(session, school_id, rows):
    """Insert scan rows, skipping copies another scanner counted meanwhile (no error)."""
    if not rows:
        return
    guard_rows(StocktakeScan, [school_id])
    conn = session.connection()
    names = list(rows[0])
    table = StocktakeScan.__table__
    if conn.dialect.name == "postgresql":
        # COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING: as fast as
        # COPY, and a copy scanned at the same moment by someone else is simply skipped.
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS tmp_stocktake_scan (school_id integer, "
            "session_id integer, copy_id integer, location_id integer, scanned_at timestamp, "
            "scanned_by_id integer, via varchar(30)) ON COMMIT DELETE ROWS")
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor:
            with cursor.copy(f"COPY tmp_stocktake_scan ({', '.join(names)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row([row[name] for name in names])
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} FROM "
            "tmp_stocktake_scan ON CONFLICT (session_id, copy_id) DO NOTHING")
        conn.exec_driver_sql("DELETE FROM tmp_stocktake_scan")
    else:
        dialect = conn.dialect
        convert = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                   for name in names]
        marks = ", ".join("?" for _n in names)
        conn.exec_driver_sql(
            f"INSERT OR IGNORE INTO {table.name} ({', '.join(names)}) VALUES ({marks})",
            [tuple(row[name] if fn is None else fn(row[name])
                   for name, fn in zip(names, convert)) for row in rows])


# --- live results ---------------------------------------------------------------------------

def summary(session, st):
    """Counts of the session now: overall and per shelving location (progress bars)."""
    scanned_q = exists().where(StocktakeScan.session_id == st.id,
                               StocktakeScan.copy_id == Copy.id)
    query = _scoped(select(Copy.location_id, Copy.status, scanned_q.label("scanned"),
                           func.count()).select_from(Copy), st)
    rows = session.execute(query.group_by(Copy.location_id, Copy.status, scanned_q)).all()
    names = dict(session.execute(select(Location.id, Location.name).where(
        Location.school_id == st.school_id)).all())
    per_location = {}
    totals = {"expected": 0, "found": 0, "on_loan": 0, "missing": 0, "withdrawn": 0}
    in_scope_scanned = 0
    for location_id, status, scanned, count in rows:
        line = per_location.setdefault(location_id, {"expected": 0, "found": 0, "on_loan": 0})
        if scanned:
            in_scope_scanned += count
        if status in OUT_OF_STOCK:
            if scanned:
                totals["withdrawn"] += count
            continue
        line["expected"] += count
        if scanned:
            line["found"] += count
        elif status == CopyStatus.on_loan:
            line["on_loan"] += count
    locations = []
    for location_id, line in per_location.items():
        if not line["expected"]:
            continue
        missing = line["expected"] - line["found"] - line["on_loan"]
        for key in ("expected", "found", "on_loan"):
            totals[key] += line[key]
        totals["missing"] += missing
        locations.append({"location": names.get(location_id) or gettext("No location"),
                          "expected": line["expected"], "found": line["found"],
                          "on_loan": line["on_loan"], "missing": missing,
                          "percent": percent(line["found"] + line["on_loan"],
                                             line["expected"])})
    locations.sort(key=lambda line: line["location"])
    scans = session.scalar(select(func.count()).select_from(StocktakeScan).where(
        StocktakeScan.session_id == st.id)) or 0
    totals["misplaced"] = scans - in_scope_scanned
    totals["scanned"] = scans
    totals["unknown"] = session.scalar(select(func.count()).select_from(StocktakeUnknown).where(
        StocktakeUnknown.session_id == st.id)) or 0
    totals["percent"] = percent(totals["found"] + totals["on_loan"], totals["expected"])
    from app.org.models import AppUser

    by_user = session.execute(
        select(AppUser.username, func.count()).select_from(StocktakeScan)
        .join(AppUser, AppUser.id == StocktakeScan.scanned_by_id, isouter=True)
        .where(StocktakeScan.session_id == st.id).group_by(AppUser.username)
        .order_by(AppUser.username)).all()
    return {"totals": totals, "locations": locations,
            "by_user": [{"user": user or "—", "count": count} for user, count in by_user]}


def percent(done, total):
    return 0 if not total else min(100, int(done * 100 / total))


def copy_list(session, st, which, limit=200):
    """Lines of one list of the live results: missing, on_loan, misplaced, withdrawn, damaged.
    [(accession, barcode, title, location, price)]"""
    scanned_q = exists().where(StocktakeScan.session_id == st.id,
                               StocktakeScan.copy_id == Copy.id)
    columns = (Copy.accession_label, Copy.barcode, Record.title, Location.name, Copy.price)
    base = (select(*columns).select_from(Copy).join(Record, Record.id == Copy.record_id)
            .join(Location, Location.id == Copy.location_id, isouter=True))
    if which == "misplaced":
        conds = scope_conditions(st)[1:]
        query = base.join(StocktakeScan, and_(StocktakeScan.copy_id == Copy.id,
                                              StocktakeScan.session_id == st.id)).where(
            Copy.school_id == st.school_id, Copy.status.not_in(OUT_OF_STOCK))
        if conds:
            query = query.where(~and_(*conds))
        else:
            return []
    else:
        query = base.where(*scope_conditions(st))
        if which == "missing":
            query = query.where(~scanned_q, Copy.status.in_(SHELF_STATUSES))
        elif which == "on_loan":
            query = query.where(~scanned_q, Copy.status == CopyStatus.on_loan)
        elif which == "withdrawn":
            query = query.where(scanned_q, Copy.status.in_(OUT_OF_STOCK))
        elif which == "damaged":
            query = query.where(Copy.status == CopyStatus.damaged)
        else:
            raise ValueError(which)
    query = query.order_by(Copy.series_id, Copy.sequence_key, Copy.accession_number)
    if limit:
        query = query.limit(limit)
    return session.execute(query).all()


def unknown_list(session, st, limit=200):
    return session.execute(select(StocktakeUnknown.barcode, StocktakeUnknown.times).where(
        StocktakeUnknown.session_id == st.id).order_by(StocktakeUnknown.barcode).limit(limit)
    ).all()


# --- closing --------------------------------------------------------------------------------

def close(session, actor, school_id, st_id, missing_action, committee=None, proposals=None):
    """Close an open session in the caller's transaction: per-copy results and marks, Part III
    lines, missing copies marked lost (or left). Closing twice is refused, nothing changed."""
    if isinstance(missing_action, str):
        missing_action = MissingAction.__members__.get(missing_action)
    if not isinstance(missing_action, MissingAction):
        raise StocktakeError(_l("Choose what to do with the missing copies: mark them as lost "
                                "or leave them for the next count."))
    st = get_session(session, {school_id}, st_id)
    if st is None:
        raise StocktakeError(_l("Stocktake not found in your school."))
    table = StocktakeSession.__table__
    # The first statement takes the row (PostgreSQL) or the database (SQLite) for this
    # transaction: a second close waits, then finds the session closed.
    taken = session.execute(update(table).where(
        table.c.id == st.id, table.c.school_id == school_id,
        table.c.status == SessionStatus.open.name).values(status=SessionStatus.closed.name)
    ).rowcount
    if taken != 1:
        session.refresh(st)
        raise StocktakeError(_l("The stocktake “%(name)s” was already closed on %(date)s: "
                                "nothing was changed."), name=st.name,
                             date=format_date(st.closed_at.date() if st.closed_at else None))
    session.refresh(st)
    now = _now()
    query = _scoped(select(Copy.id, Copy.status, Copy.price, Copy.location_id,
                           Record.document_type_id).select_from(Copy), st)
    if not needs_record(st):
        query = query.join(Record, Record.id == Copy.record_id)
    copies = session.execute(query).all()
    scanned = set(session.scalars(select(StocktakeScan.copy_id).where(
        StocktakeScan.session_id == st.id)))
    loaned = set(session.scalars(select(Loan.copy_id).where(
        Loan.school_id == school_id, Loan.status == LoanStatus.active)))
    mark_lost = missing_action == MissingAction.mark_lost
    results, missing_ids, in_scope_ids = [], [], set()
    lines = {}

    def line_of(type_id):
        return lines.setdefault(type_id, dict(
            copies_in=0, value_in=Decimal(0), copies_out=0, value_out=Decimal(0),
            copies_found=0, value_found=Decimal(0), copies_on_loan=0, copies_missing=0,
            value_missing=Decimal(0)))

    def result(copy_id, outcome, mark, type_id, location_id, price, lost=False):
        results.append({"school_id": school_id, "session_id": st.id, "copy_id": copy_id,
                        "outcome": outcome.name, "mark": mark, "marked_lost": lost,
                        "document_type_id": type_id, "location_id": location_id,
                        "price": price})

    counts = {"found": 0, "missing": 0, "on_loan": 0}
    # A copy written off as lost but found on the shelf goes back into stock, unless a weeding
    # round in progress already lists it (the committee decides on those).
    found_lost = _found_lost_copies(session, school_id, [
        copy_id for copy_id, status, *_ in copies
        if status == CopyStatus.lost and copy_id in scanned])
    for copy_id, status, price, location_id, type_id in copies:
        in_scope_ids.add(copy_id)
        value = price or Decimal(0)
        line = line_of(type_id)
        line["copies_in"] += 1
        line["value_in"] += value
        if status in OUT_OF_STOCK and copy_id not in found_lost:
            line["copies_out"] += 1
            line["value_out"] += value
            if copy_id in scanned:
                result(copy_id, Outcome.withdrawn, "C", type_id, location_id, price)
            continue
        if copy_id in scanned:
            outcome, mark = Outcome.found, "C"
            line["copies_found"] += 1
            line["value_found"] += value
            counts["found"] += 1
        elif status == CopyStatus.on_loan or copy_id in loaned:
            outcome, mark = Outcome.on_loan, "C"
            line["copies_on_loan"] += 1
            counts["on_loan"] += 1
        else:
            outcome, mark = Outcome.missing, "M"
            line["copies_missing"] += 1
            line["value_missing"] += value
            counts["missing"] += 1
            missing_ids.append(copy_id)
            if mark_lost and status in SHELF_STATUSES:
                line["copies_out"] += 1
                line["value_out"] += value
        result(copy_id, outcome, mark, type_id, location_id, price,
               lost=outcome == Outcome.missing and mark_lost)
    # Copies of the school found while counting this part, that belong to another part.
    misplaced = sorted(scanned - in_scope_ids)
    for chunk in _chunks(misplaced):
        for copy_id, status, price, location_id, type_id in session.execute(
                select(Copy.id, Copy.status, Copy.price, Copy.location_id,
                       Record.document_type_id).join(Record, Record.id == Copy.record_id)
                .where(Copy.id.in_(chunk), Copy.school_id == school_id)):
            outcome = Outcome.withdrawn if status in OUT_OF_STOCK else Outcome.misplaced
            result(copy_id, outcome, "C", type_id, location_id, price)
    insert_rows(session, StocktakeResult, results)
    if mark_lost and missing_ids:
        _mark_lost(session, school_id, missing_ids, gettext(
            "Missing at the stocktake “%(name)s” closed on %(date)s",
            name=st.name, date=format_date(local_today())))
    if found_lost:
        _set_status(session, school_id, sorted(found_lost), (CopyStatus.lost,),
                    CopyStatus.available, gettext(
                        "Found at the stocktake “%(name)s” closed on %(date)s",
                        name=st.name, date=format_date(local_today())))
    _write_register_lines(session, st, lines)
    st.expected_count = sum(counts.values())
    st.found_count = counts["found"]
    st.missing_count = counts["missing"]
    st.on_loan_count = counts["on_loan"]
    st.misplaced_count = len(misplaced)
    st.missing_action = missing_action
    st.committee = (committee or "").strip() or st.committee
    st.proposals = (proposals or "").strip() or st.proposals
    st.closed_at = now
    st.closed_by_id = _actor_id(actor)
    session.flush()
    return st


def _found_lost_copies(session, school_id, copy_ids):
    """Of these lost copies, those that no weeding round in progress lists."""
    from app.weeding.services import _in_open_rounds

    found = set(copy_ids)
    for chunk in _chunks(sorted(found)):
        found -= set(_in_open_rounds(session, school_id, chunk))
    return found


def _mark_lost(session, school_id, copy_ids, note):
    """Copy.status = lost with a note, for copies still on the shelf by the catalogue."""
    _set_status(session, school_id, copy_ids, SHELF_STATUSES, CopyStatus.lost, note)


def _set_status(session, school_id, copy_ids, from_statuses, status, note):
    """Copy.status from one of from_statuses to status with a note, with an audit entry per
    copy (a Core UPDATE: a close may change thousands)."""
    guard_rows(Copy, [school_id])
    from app.core.audit import _actor_now

    user_id, username = _actor_now()
    table = Copy.__table__
    now = _now()
    for chunk in _chunks(copy_ids):
        before = session.execute(select(table.c.id, table.c.status, table.c.note).where(
            table.c.id.in_(chunk), table.c.school_id == school_id,
            table.c.status.in_([s.name for s in from_statuses]))).all()
        if not before:
            continue
        session.execute(update(table).where(table.c.id.in_([r.id for r in before]))
                        .values(status=status.name, note=note[:500]))
        insert_rows(session, AuditLog, [
            {"at": now, "user_id": user_id, "username": username or "system",
             "school_id": school_id, "table_name": "copy", "row_id": r.id, "action": "update",
             "changes": {"status": [_name(r.status), status.name],
                         "note": [r.note, note[:500]]}} for r in before])


def _name(status):
    return status.name if hasattr(status, "name") else status


def _write_register_lines(session, st, lines):
    types = {t.id: t for t in session.scalars(select(DocumentType))}
    ordered = sorted(lines.items(), key=lambda item: (
        item[0] is None, types[item[0]].code if item[0] in types else ""))
    rows, total = [], None
    for position, (type_id, line) in enumerate(ordered, 1):
        label = types[type_id].name if type_id in types else gettext("Other documents")
        rows.append(_line_row(st, position, type_id, label, line, False))
        if total is None:
            total = {key: 0 for key in line}
        for key, value in line.items():
            total[key] += value
    if total is None:
        total = {key: 0 for key in ("copies_in", "value_in", "copies_out", "value_out",
                                    "copies_found", "value_found", "copies_on_loan",
                                    "copies_missing", "value_missing")}
    rows.append(_line_row(st, len(rows) + 1, None, gettext("Total"), total, True))
    insert_rows(session, StocktakeRegisterLine, rows)


def _line_row(st, position, type_id, label, line, is_total):
    return {"school_id": st.school_id, "session_id": st.id, "position": position,
            "is_total": is_total, "document_type_id": type_id, "label": label[:120],
            "copies_in": line["copies_in"], "value_in": line["value_in"],
            "copies_out": line["copies_out"], "value_out": line["value_out"],
            "copies_remaining": line["copies_in"] - line["copies_out"],
            "value_remaining": line["value_in"] - line["value_out"],
            "copies_found": line["copies_found"], "value_found": line["value_found"],
            "copies_on_loan": line["copies_on_loan"],
            "copies_missing": line["copies_missing"], "value_missing": line["value_missing"]}


def register_lines(session, st_id):
    return session.scalars(select(StocktakeRegisterLine).where(
        StocktakeRegisterLine.session_id == st_id).order_by(StocktakeRegisterLine.position)
    ).all()


def closed_on(st):
    """The day (in Vietnam) a session was closed: the stocktake's date in the general
    register's Part III, the individual register's columns and the minutes."""
    return local_date(st.closed_at)


def closed_sessions(session, school_id, start=None, end=None):
    """The school's closed sessions in the order they were closed; only those closed from
    `start` to `end` (days in Vietnam, both included; None: no limit)."""
    sessions = session.scalars(select(StocktakeSession).where(
        StocktakeSession.school_id == school_id,
        StocktakeSession.status == SessionStatus.closed)
        .order_by(StocktakeSession.closed_at, StocktakeSession.id)).all()
    return [st for st in sessions if (start is None or closed_on(st) >= start)
            and (end is None or closed_on(st) <= end)]


def copy_marks(session, school_id, series_ids, session_ids):
    """The inventory marks (C / M) of the copies of these accession series in these closed
    sessions, one set-based query streamed in batches: yields (copy id, session id, mark)."""
    if not series_ids or not session_ids:
        return
    query = (select(StocktakeResult.copy_id, StocktakeResult.session_id, StocktakeResult.mark)
             .join(Copy, Copy.id == StocktakeResult.copy_id)
             .where(StocktakeResult.school_id == school_id,
                    StocktakeResult.session_id.in_(list(session_ids)),
                    Copy.school_id == school_id, Copy.series_id.in_(list(series_ids)))
             .execution_options(yield_per=5000))
    yield from session.execute(query)


def sessions_with_copies_of(session, school_id, series_id, session_ids):
    """Those of the closed sessions `session_ids` that have a result for a copy of the
    series (the sessions that counted it, whole or in part)."""
    if not session_ids:
        return set()
    counted = (select(StocktakeResult.id).join(Copy, Copy.id == StocktakeResult.copy_id)
               .where(StocktakeResult.session_id == StocktakeSession.id,
                      Copy.school_id == school_id, Copy.series_id == series_id)
               .correlate(StocktakeSession).exists())
    return set(session.scalars(select(StocktakeSession.id).where(
        StocktakeSession.school_id == school_id,
        StocktakeSession.id.in_(list(session_ids)), counted)))


def result_list(session, st, outcome, limit=None):
    """Copies of a closed session with one outcome, in register order."""
    query = (select(Copy.accession_label, Copy.barcode, Record.title, Location.name,
                    StocktakeResult.price, StocktakeResult.marked_lost)
             .select_from(StocktakeResult)
             .join(Copy, Copy.id == StocktakeResult.copy_id)
             .join(Record, Record.id == Copy.record_id)
             .join(Location, Location.id == StocktakeResult.location_id, isouter=True)
             .where(StocktakeResult.session_id == st.id, StocktakeResult.outcome == outcome)
             .order_by(Copy.series_id, Copy.sequence_key, Copy.accession_number))
    if limit:
        query = query.limit(limit)
    return session.execute(query).all()


def textbook_marks(session, school_id, limit_sessions=5):
    """SGK register, inventory marks: per title and volume, copies C and M at each of the
    last closed sessions: [(session, [(title, C count, M count, [M labels])])]."""
    sessions = session.scalars(select(StocktakeSession).where(
        StocktakeSession.school_id == school_id,
        StocktakeSession.status == SessionStatus.closed)
        .order_by(StocktakeSession.closed_at.desc()).limit(limit_sessions)).all()
    out = []
    for st in sessions:
        rows = session.execute(
            select(Record.id, Record.title, StocktakeResult.mark, Copy.accession_label)
            .select_from(StocktakeResult)
            .join(Copy, Copy.id == StocktakeResult.copy_id)
            .join(AccessionSeries, AccessionSeries.id == Copy.series_id)
            .join(Record, Record.id == Copy.record_id)
            .where(StocktakeResult.session_id == st.id, AccessionSeries.is_textbook.is_(True))
            .order_by(Record.title, Copy.accession_number)).all()
        titles = {}
        for record_id, title, mark, label in rows:
            entry = titles.setdefault(record_id, [title, 0, 0, []])
            if mark == "M":
                entry[2] += 1
                entry[3].append(label)
            else:
                entry[1] += 1
        out.append((st, list(titles.values())))
    return out


# --- campaigns ------------------------------------------------------------------------------

CAMPAIGN_UNIT_KINDS = (UnitKind.department, UnitKind.district_office, UnitKind.ward_office,
                       UnitKind.cluster)


def create_campaign(session, actor, unit, name, starts_on, ends_on, note=None):
    today = local_today()
    if unit is None or unit.kind not in CAMPAIGN_UNIT_KINDS:
        raise StocktakeError(_l("Only the department or an office can start a stocktake "
                                "campaign."))
    if not unit.is_active_on(today):
        raise StocktakeError(_l("%(unit)s closed on %(date)s: it can no longer start a "
                                "campaign."), unit=unit.name, date=format_date(unit.valid_to))
    name = (name or "").strip()
    if not name:
        raise StocktakeError(_l("Enter the name of the campaign."))
    if starts_on is None or ends_on is None:
        raise StocktakeError(_l("Enter the first and the last day of the campaign "
                                "(dd/mm/yyyy)."))
    if ends_on < starts_on:
        raise StocktakeError(_l("The campaign ends (%(end)s) before it starts (%(start)s)."),
                             end=format_date(ends_on), start=format_date(starts_on))
    campaign = StocktakeCampaign(unit_id=unit.id, name=name[:200], starts_on=starts_on,
                                 ends_on=ends_on, note=(note or "").strip() or None,
                                 created_by_id=_actor_id(actor), created_at=_now())
    session.add(campaign)
    session.flush()
    return campaign


def ancestor_units(session, unit_id, on=None):
    """Ids of the units above `unit_id` (both hierarchies) at date `on`."""
    on = on or local_today()
    seen, frontier = set(), {unit_id}
    while frontier:
        parents = set(session.scalars(select(OrgLink.parent_id).where(
            OrgLink.child_id.in_(frontier), OrgLink.valid_from <= on,
            or_(OrgLink.valid_to.is_(None), OrgLink.valid_to >= on))))
        frontier = parents - seen
        seen |= frontier
    return seen


def campaigns_for_school(session, school_id, on=None, open_only=True):
    """Campaigns of the department or of an office above the school."""
    on = on or local_today()
    units = ancestor_units(session, school_id, on)
    query = (select(StocktakeCampaign).join(OrgUnit, OrgUnit.id == StocktakeCampaign.unit_id)
             .where(or_(StocktakeCampaign.unit_id.in_(units or {-1}),
                        OrgUnit.kind == UnitKind.department)))
    if open_only:
        query = query.where(StocktakeCampaign.starts_on <= on, StocktakeCampaign.ends_on >= on)
    return session.scalars(query.order_by(StocktakeCampaign.starts_on.desc())).all()


def campaign_school_ids(session, campaign, on=None):
    from app.org.services import schools_under

    unit = campaign.unit
    if unit.kind == UnitKind.department:
        return set(session.scalars(select(OrgUnit.id).where(OrgUnit.kind == UnitKind.school)))
    when = on or local_today()
    if unit.valid_to is not None and unit.valid_to < when:
        when = unit.valid_to
    return schools_under(session, unit.id, when)


def campaign_visible(session, campaign, scope):
    if scope.all_schools or scope.can_see_unit(campaign.unit_id):
        return True
    return bool(campaign_school_ids(session, campaign) & set(scope.school_ids))


def campaign_progress(session, campaign, scope):
    """One line per school of the campaign that the viewer sees: its sessions' progress."""
    school_ids = campaign_school_ids(session, campaign)
    if not scope.all_schools:
        school_ids &= set(scope.school_ids)
    schools = session.scalars(select(OrgUnit).where(OrgUnit.id.in_(school_ids or {-1}))
                              .order_by(OrgUnit.code)).all()
    sessions = session.scalars(select(StocktakeSession).where(
        StocktakeSession.campaign_id == campaign.id,
        StocktakeSession.school_id.in_(school_ids or {-1}))
        .order_by(StocktakeSession.id)).all()
    scans = dict(session.execute(
        select(StocktakeScan.session_id, func.count()).where(
            StocktakeScan.session_id.in_([s.id for s in sessions if
                                          s.status == SessionStatus.open] or [-1]))
        .group_by(StocktakeScan.session_id)).all())
    by_school = {}
    for st in sessions:
        by_school.setdefault(st.school_id, []).append(st)
    lines = []
    for school in schools:
        entries = []
        for st in by_school.get(school.id, []):
            if st.status == SessionStatus.closed:
                done = (st.found_count or 0) + (st.on_loan_count or 0)
                entries.append({"session": st, "expected": st.expected_count, "done": done,
                                "found": st.found_count, "missing": st.missing_count,
                                "on_loan": st.on_loan_count,
                                "percent": percent(done, st.expected_count)})
            else:
                done = scans.get(st.id, 0)
                entries.append({"session": st, "expected": st.expected_count, "done": done,
                                "found": None, "missing": None, "on_loan": None,
                                "percent": percent(done, st.expected_count)})
        lines.append({"school": school, "sessions": entries})
    return lines
