"""MARC import into a school's catalogue, and export of it (web, command line, tests).

- `preview_import(session, school, data, filename)`: what an import would do (records,
  copies, duplicates, every problem), without writing anything.
- `run_import(session, school, data, filename, on_progress=None)`: the import in one
  transaction. Records that cannot be imported are skipped and listed in the report; if
  anything else goes wrong nothing is saved.
- `MarcExport(session, school, fmt, ids=None)`: the school's records (all, or the ids
  given) as ISO 2709 or MARCXML, with their copies in 852 fields.

Database work is batched: the school's ISBNs, title keys, barcodes and accession numbers
are loaded once for duplicate and uniqueness checks; ids and accession numbers are reserved
first (one counter update per series, see app.collection.services.allocate); records,
authors and copies are then written 500 records at a time with bulk statements
(app.core.bulk: the tenancy rule and the audit entries of ORM writes, without their cost).
Exports read a batch of 1,000 records in three queries and encode it at once. Both pause
the garbage collector (app.core.bulk.gc_paused). Figures: bench/README.md (bench_marc.py).
"""
import dataclasses
import datetime
import json
import re
import time
import types

from flask_babel import lazy_gettext as _l
from sqlalchemy import Text, case, cast, insert, select, update
from sqlalchemy.exc import IntegrityError
from stdnum import isbn as stdnum_isbn

from app.catalog import marc
from app.catalog.models import ClassificationScheme, DocumentType, Record, RecordAuthor
from app.catalog.services import compute_call_number
from app.collection.models import (
    AccessionSeries,
    Copy,
    CopyStatus,
    Counter,
    Intake,
    LibrarySettings,
    Location,
)
from app.collection.services import DEFAULT_SERIES, accession_label, allocate, ensure_library
from app.core.bulk import BulkWriter, gc_paused, reserve_ids
from app.core.enums import N_
from app.core.errors import DomainError, ValidationError
from app.core.i18n import fold

BATCH = 500
DUPLICATE_MODES = ("skip", "copies", "new")
DEFAULT_SERIES_CODE = "STK"


@dataclasses.dataclass
class ImportOptions:
    # What to do with a record that is already in the catalogue (same ISBN, or same title,
    # author and year): "skip" it, add its item copies to the existing record ("copies"),
    # or import it as a "new" record all the same.
    duplicates: str = "skip"
    create_copies: bool = True  # copies from the item fields (852/949/952)
    intake_id: int = None  # general register line the new copies are entered under

    def __post_init__(self):
        if self.duplicates not in DUPLICATE_MODES:
            raise ValidationError(_l("Unknown choice for duplicates: %(value)s."),
                                  field="duplicates", value=self.duplicates)


@dataclasses.dataclass
class Outcome:
    """What happens to one readable record of the file."""

    position: int
    status: str  # "new", "duplicate" or "error"
    action: str  # "create", "attach" (copies added to the existing record), "skip"
    title: str = None
    author: str = None
    year: int = None
    isbn: str = None
    copies: int = 0
    duplicate_of: dict = None  # {"id": .., "title": ..} or {"position": .., "title": ..}
    record_id: int = None  # after the import

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ImportResult:
    filename: str
    format: str = None
    outcomes: list = dataclasses.field(default_factory=list)
    problems: list = dataclasses.field(default_factory=list)  # marc.Problem
    done: bool = False  # True once written (run_import)
    seconds: float = 0.0

    @property
    def counts(self):
        readable = {o.position for o in self.outcomes}
        out = {"read": len(self.outcomes), "new": 0, "duplicates": 0, "errors": 0,
               "created": 0, "attached": 0, "skipped": 0, "copies": 0,
               "warnings": sum(1 for p in self.problems if p.level == "warning"),
               "unreadable": len({p.position for p in self.problems
                                  if p.level == "error" and p.position is not None
                                  and p.position not in readable}),
               "file_errors": sum(1 for p in self.problems if p.position is None
                                  and p.level == "error")}
        for o in self.outcomes:
            out["new" if o.status == "new" else "duplicates" if o.status == "duplicate"
                else "errors"] += 1
            if o.action == "create":
                out["created"] += 1
            elif o.action == "attach":
                out["attached"] += 1
            elif o.status == "duplicate":
                out["skipped"] += 1
            out["copies"] += o.copies
        out["errors"] += out["unreadable"]
        return out

    def as_dict(self):
        return {"filename": self.filename, "format": self.format, "done": self.done,
                "seconds": round(self.seconds, 2), "counts": self.counts,
                "outcomes": [o.as_dict() for o in self.outcomes],
                "problems": [p.as_dict() for p in self.problems]}

    @classmethod
    def from_dict(cls, data):
        result = cls(data.get("filename"), data.get("format"),
                     [Outcome(**o) for o in data.get("outcomes", ())],
                     [marc.Problem.from_dict(p) for p in data.get("problems", ())],
                     data.get("done", False), data.get("seconds", 0.0))
        return result


class ImportFailed(DomainError):
    message = _l("The import failed and nothing was saved: %(reason)s")


# --- The school's catalogue, loaded once ---------------------------------------------------

def isbn13(value):
    if not value:
        return None
    try:
        return stdnum_isbn.to_isbn13(value) if len(value) == 10 else value
    except Exception:
        return value


def title_key(title, subtitle):
    """The record's title_folded, as Record.refresh_search_fields computes it."""
    return fold(" ".join(filter(None, [title, subtitle])))[:1000]


class _Catalogue:
    """What the import checks against: loaded with a few queries, updated as it plans."""

    def __init__(self, session, school, writing):
        self.session, self.school = session, school
        sid = school.id
        self.settings = session.execute(select(LibrarySettings).where(
            LibrarySettings.school_id == sid)).scalar_one_or_none()
        series = session.execute(select(AccessionSeries).where(
            AccessionSeries.school_id == sid).order_by(AccessionSeries.code)).scalars().all()
        if not writing:
            # Preview before the library is set up: the default series it would get.
            existing = {s.code for s in series}
            series = list(series) + [
                AccessionSeries(code=code, name=name, prefix=prefix, separator="-",
                                padding=5, is_textbook=textbook)
                for code, name, prefix, textbook in DEFAULT_SERIES if code not in existing]
        self.series = {s.code.upper(): s for s in series}
        self.label_patterns = []
        for s in series:
            prefix = re.escape(s.prefix or "") + re.escape(s.separator or "")
            pattern = (prefix + r"(\d+)\.(\d+)") if s.is_textbook else (prefix + r"(\d+)")
            self.label_patterns.append((re.compile(pattern + r"$"), s))
        self.document_types = {}
        for dt in session.execute(select(DocumentType)).scalars():
            self.document_types[dt.code.upper()] = dt
            self.document_types.setdefault(fold(dt.name), dt)
        self.schemes = {}
        for scheme in session.execute(select(ClassificationScheme)).scalars():
            self.schemes.setdefault(scheme.code.upper(), scheme)
            if scheme.marc_source:
                self.schemes.setdefault(scheme.marc_source.upper(), scheme)
        self.locations = {loc.code.upper(): loc for loc in session.execute(
            select(Location).where(Location.school_id == sid)).scalars()}
        # Duplicates: ISBN-13 -> record, title key -> candidates.
        self.by_isbn = {}
        self.by_title = {}
        rows = session.execute(select(
            Record.id, Record.title, Record.isbn, Record.title_folded, Record.authors_folded,
            Record.year).where(Record.school_id == sid).order_by(Record.id))
        for rid, title, isbn, key, authors, year in rows:
            self._remember({"id": rid, "title": title}, isbn13(isbn), key, authors, year)
        self.barcodes = set()
        self.numbers = set()  # (series code, sequence key, number) already used
        codes = {s.id: s.code for s in series if s.id is not None}
        for barcode, series_id, key, number in session.execute(select(
                Copy.barcode, Copy.series_id, Copy.sequence_key, Copy.accession_number).where(
                Copy.school_id == sid)):
            self.barcodes.add(barcode)
            self.numbers.add((codes.get(series_id), key, number))

    def _remember(self, ref, isbn, key, authors, year):
        if isbn:
            self.by_isbn.setdefault(isbn, ref)
        if key:
            self.by_title.setdefault(key, []).append((ref, isbn, authors or "", year))

    def duplicate(self, fields):
        """The record (or earlier record of the file) this one duplicates, or None.

        Same ISBN (ISBN-10 and ISBN-13 are equal); or, when the two do not both have an
        ISBN, the same title and subtitle, the same author and the same year (when both
        give one): a different edition is not a duplicate.
        """
        isbn = isbn13(fields["isbn"])
        if isbn and isbn in self.by_isbn:
            return self.by_isbn[isbn]
        key = fields["title_folded"]
        words = fields["authors_folded"].split()
        for ref, other_isbn, authors, year in self.by_title.get(key, ()):
            if isbn and other_isbn and isbn != other_isbn:
                continue
            if words and words[-1] not in authors:
                continue
            if fields["year"] and year and fields["year"] != year:
                continue
            return ref
        return None

    def remember(self, ref, fields):
        self._remember(ref, isbn13(fields["isbn"]), fields["title_folded"],
                       fields["authors_folded"], fields["year"])

    def series_for(self, document_type):
        code = (document_type.default_series if document_type else None) or \
            DEFAULT_SERIES_CODE
        return (self.series.get(code.upper()) or self.series.get(DEFAULT_SERIES_CODE)
                or next(iter(self.series.values()), None))

    def parse_label(self, label):
        """(series, number) of an accession label written in one of the school's series."""
        if not label:
            return None, None
        for pattern, series in self.label_patterns:
            match = pattern.match(label.strip())
            if match:
                return series, int(match.groups()[-1])
        return None, None


# --- Planning ------------------------------------------------------------------------------

@dataclasses.dataclass
class _CopyPlan:
    series: AccessionSeries
    number: int = None  # kept from the file when free; else allocated
    barcode: str = None  # kept from the file when free; else generated
    location_id: int = None
    price: int = None


@dataclasses.dataclass
class _RecordPlan:
    outcome: Outcome
    fields: dict = None
    marc: dict = None
    document_type: DocumentType = None
    scheme: ClassificationScheme = None
    call_number: str = None
    copies: list = dataclasses.field(default_factory=list)
    target: object = None  # attach: an existing record id, or the _RecordPlan of the file
    record_id: int = None  # after writing


def _plan(session, school, data, filename, options, writing, records=None):
    """(result, plans, catalogue) of a file; `records` (a _RecordWriter) gets each plan
    as soon as it is made."""
    started = time.perf_counter()
    result = ImportResult(filename=filename)
    result.format, _problem = marc.detect_format(data)
    entries, problems = marc.read_marc(data, filename)
    result.problems.extend(problems)
    catalogue = _Catalogue(session, school, writing)
    if records is not None:
        records.start(len(entries))
    plans = []
    unknown_locations = set()
    for entry in entries:
        plan = _plan_record(catalogue, entry, options, result, unknown_locations)
        result.outcomes.append(plan.outcome)
        plans.append(plan)
        if records is not None:
            records.add(plan)
    if unknown_locations:
        result.problems.append(marc.Problem(
            N_("These location codes are not shelving locations of your school: %(codes)s. "
               "Their copies get no shelving location."),
            {"codes": ", ".join(sorted(unknown_locations)[:30])}, level="warning"))
    result.problems.sort(key=lambda p: (p.position is not None, p.position or 0,
                                        p.level != "error"))
    result.seconds = time.perf_counter() - started
    return result, plans, catalogue


def _plan_record(catalogue, entry, options, result, unknown_locations):
    data = entry.as_dict()
    indexed = entry.index()
    control, title = entry.control_number, entry.title
    outcome = Outcome(entry.position, "error", "skip", title=title)
    plan = _RecordPlan(outcome)
    result.problems.extend(entry.warnings)

    def problem(message, params=None, level="error"):
        result.problems.append(marc.Problem(message, params or {}, entry.position, control,
                                            title, level))

    reason = marc.bibliographic_problem(indexed)
    if reason:
        problem(reason)
        return plan
    warnings = []
    try:
        fields = marc.record_fields(indexed, warnings)
    except marc.MarcError as error:
        problem(error.message, error.params)
        return plan
    for message, params in warnings:
        problem(message, params, "warning")
    # The search forms, as Record.refresh_search_fields computes them (used for duplicates).
    fields["title_folded"] = title_key(fields["title"], fields["subtitle"])
    fields["authors_folded"] = fold(" ".join(name for name, _r in fields["authors"]))[:1000]
    outcome.title, outcome.author = fields["title"], fields["main_author"] or (
        fields["authors"][0][0] if fields["authors"] else None)
    outcome.year, outcome.isbn = fields["year"], fields["isbn"]
    plan.fields = fields
    plan.marc = marc.without_items(data)
    plan.document_type = catalogue.document_types.get(
        (fields["document_type"] or "").upper()) or catalogue.document_types.get(
        fold(fields["document_type"] or "-"))
    if fields["class_number"]:
        plan.scheme = catalogue.schemes.get((fields["scheme"] or "").upper())
    duplicate = catalogue.duplicate(fields)
    if duplicate is None:
        outcome.status, outcome.action = "new", "create"
    else:
        outcome.status = "duplicate"
        outcome.duplicate_of = {k: v for k, v in duplicate.items() if k != "plan"}
        outcome.action = {"skip": "skip", "copies": "attach", "new": "create"}[
            options.duplicates]
        if outcome.action == "attach":
            plan.target = duplicate.get("plan") or duplicate["id"]
    if outcome.action == "create":
        ref = {"position": entry.position, "title": fields["title"], "plan": plan}
        catalogue.remember(ref, fields)
    if outcome.action == "skip" or not options.create_copies:
        return plan
    items = marc.item_fields(indexed)
    for item in items:
        plan.copies.append(_plan_copy(catalogue, plan, item, problem, unknown_locations))
    outcome.copies = len(plan.copies)
    if outcome.action == "create":
        plan.call_number = next((i["call_number"] for i in items if i["call_number"]), None)
    return plan


def _plan_copy(catalogue, plan, item, problem, unknown_locations):
    # An accession label written in one of the school's series keeps its number when it is
    # free (migration from paper registers or another program: numbers are kept as they
    # are and the sequence continues from the maximum).
    series, number = catalogue.parse_label(item["label"])
    if series is not None:
        if not series.is_textbook:
            key = (series.code, 0, number)
        elif plan.outcome.action == "create":
            key = (series.code, ("plan", plan.outcome.position), number)
        elif isinstance(plan.target, int):
            key = (series.code, plan.target, number)
        else:
            key = None  # textbook copies added to a record created by this same import
        if key is None or key in catalogue.numbers:
            if key is not None:
                problem(N_("The accession number %(label)s is already used in your school: "
                           "the copy gets a new number."), {"label": item["label"]},
                        "warning")
            number = None
        else:
            catalogue.numbers.add(key)
    else:
        series = catalogue.series_for(plan.document_type)
        number = None
    barcode = item["barcode"]
    if barcode:
        if len(barcode) > 40:
            problem(N_("The barcode %(barcode)s is longer than 40 characters: the copy gets a "
                       "new barcode."), {"barcode": barcode}, "warning")
            barcode = None
        elif barcode in catalogue.barcodes:
            problem(N_("The barcode %(barcode)s is already used in your school: the copy gets "
                       "a new barcode."), {"barcode": barcode}, "warning")
            barcode = None
        else:
            catalogue.barcodes.add(barcode)
    location_id = None
    for code in item["locations"]:
        location = catalogue.locations.get(code.upper())
        if location is not None:
            location_id = location.id
            break
    if location_id is None and item["locations"]:
        unknown_locations.add(item["locations"][0])
    return _CopyPlan(series, number, barcode, location_id, item["price"])


# --- Preview and import ------------------------------------------------------------------

def preview_import(session, school, data, filename=None, options=None):
    """What the import of `data` would create, without writing anything."""
    options = options or ImportOptions()
    with gc_paused(), session.no_autoflush:
        result, _plans, _catalogue = _plan(session, school, data, filename, options,
                                           writing=False)
    return result


def run_import(session, school, data, filename=None, options=None, on_progress=None):
    """Import `data` into `school`'s catalogue in one transaction (committed here).

    Records that cannot be imported are skipped and listed in the result; any other error
    rolls everything back and raises ImportFailed.
    """
    options = options or ImportOptions()
    started = time.perf_counter()
    try:
        intake = None
        if options.intake_id:
            intake = session.get(Intake, options.intake_id)
            if intake is None or intake.school_id != school.id:
                raise ValidationError(_l("The general register line belongs to another "
                                         "school."), field="intake")
        settings = ensure_library(session, school)
        with gc_paused(), BulkWriter(session) as writer:
            # The records are written while the rest of the file is planned (on PostgreSQL
            # the server inserts them meanwhile); the copies once every plan is known.
            records = _RecordWriter(session, school, settings, writer)
            with session.no_autoflush:
                result, plans, catalogue = _plan(session, school, data, filename, options,
                                                 writing=True, records=records)
            records.flush()
            _write_copies(session, school, settings, catalogue, plans, intake, writer,
                          on_progress)
        for plan in plans:
            if plan.record_id is not None:
                plan.outcome.record_id = plan.record_id
        session.commit()
    except DomainError:
        session.rollback()
        raise
    except Exception as error:
        session.rollback()
        raise ImportFailed(reason=f"{type(error).__name__}: {error}"[:300]) from error
    result.done = True
    result.seconds = time.perf_counter() - started
    return result


class _RecordWriter:
    """Writes the new records and their authors as they are planned, BATCH at a time."""

    def __init__(self, session, school, settings, writer):
        self.session, self.school, self.writer = session, school, writer
        self.rule = settings.author_mark_rule if settings else "given_name"
        self.length = settings.author_mark_length if settings else 3
        self.ids = None
        self.batch = []

    def start(self, entries):
        # An id for each record of the file (those not created leave gaps in the sequence):
        # taken now, so that writing needs no other query.
        self.ids = iter(reserve_ids(self.session, Record.__table__, entries))

    def add(self, plan):
        if plan.outcome.action != "create":
            return
        plan.record_id = next(self.ids)
        self.batch.append(plan)
        if len(self.batch) == BATCH:
            self.flush()

    def flush(self):
        batch, self.batch = self.batch, []
        if not batch:
            return
        sid = self.school.id
        self.writer.insert(Record, [_record_row(self.school, p, self.rule, self.length)
                                    for p in batch])
        self.writer.insert(RecordAuthor, [
            {"school_id": sid, "record_id": plan.record_id, "name": name, "role": role,
             "is_main": main, "position": i}
            for plan in batch for i, (name, role, main) in enumerate(_authors(plan))])


def _write_copies(session, school, settings, catalogue, plans, intake, writer, on_progress):
    """The copies of the new records (BATCH records at a time, the progress), then those
    added to records already in the catalogue (duplicates, "copies" choice)."""
    created = [p for p in plans if p.outcome.action == "create"]
    attached = [p for p in plans if p.outcome.action == "attach" and p.copies]
    total = len(created) + len(attached)
    prefix = (settings.barcode_prefix if settings and settings.barcode_prefix
              else school.code)
    numbering = _Numbering(session, school, catalogue, prefix)
    # Numbers kept from the file: the shared counters continue from their maximum first,
    # so that numbers allocated for any copy never meet them.
    numbering.raise_shared_counters(plans)
    # Every accession number and copy id first (a few statements; they wait for the
    # records being written): the copies are then written without another query.
    items = [(p, p.record_id, True, p.fields["price"]) for p in created if p.copies]
    if attached:
        targets = [(p.target.record_id, p.target.fields["price"])
                   if isinstance(p.target, _RecordPlan) else (p.target, None) for p in attached]
        missing = {record_id for record_id, price in targets if price is None}
        prices = dict(session.execute(select(Record.id, Record.price).where(
            Record.school_id == school.id, Record.id.in_(missing))).all()) if missing else {}
        extra = [(p, record_id, False, prices.get(record_id) if price is None else price)
                 for p, (record_id, price) in zip(attached, targets)]
    else:
        extra = []
    writer.insert(Counter, numbering.number(items + extra))
    copy_ids = iter(reserve_ids(session, Copy.__table__,
                                sum(len(p.copies) for p, *_rest in items + extra)))
    if on_progress:
        on_progress(0, total)
    for start in range(0, len(created), BATCH):
        batch = created[start:start + BATCH]
        numbering.add_copies([(p, p.record_id, True, p.fields["price"]) for p in batch
                              if p.copies], intake, writer, copy_ids)
        writer.end_batch(len(batch))
        if on_progress:
            on_progress(writer.written(pending=1), total)
    if extra:
        numbering.add_copies(extra, intake, writer, copy_ids)
        writer.end_batch(len(extra))
    done = writer.written()
    if on_progress and total:
        on_progress(done, total)


RECORD_COLUMNS = ("title", "subtitle", "responsibility", "edition", "place", "publisher",
                  "year", "pages", "size_cm", "isbn", "price", "language", "series_statement",
                  "volume", "summary", "subjects", "class_number")


def _record_row(school, plan, rule, length):
    """The row of a new record (written with app.core.bulk, audited there); its authors
    follow it (they are not audited: "recorded through the record's own history")."""
    fields = plan.fields
    row = {name: fields[name] for name in RECORD_COLUMNS}
    # Search forms and call number exactly as Record.refresh_search_fields and
    # services.compute_call_number compute them.
    row["title_folded"] = fields["title_folded"]
    row["authors_folded"] = fields["authors_folded"]
    holder = types.SimpleNamespace(
        title=fields["title"], main_author=fields["main_author"],
        class_number=fields["class_number"], author_mark=None,
        call_number=plan.call_number[:80] if plan.call_number else None,
        call_number_is_manual=bool(plan.call_number))
    compute_call_number(holder, rule, length)
    # The record's values as an export reads them back (see marc.stored_marc).
    values = {name: fields[name] for name in EXPORT_VALUES}
    values.update(scheme=marc.scheme_code(plan.scheme),
                  document_type=plan.document_type.code if plan.document_type else None,
                  authors=[(name, role, main) for name, role, main in _authors(plan)])
    row.update(id=plan.record_id, school_id=school.id,
               document_type_id=plan.document_type.id if plan.document_type else None,
               scheme_id=plan.scheme.id if plan.scheme else None,
               author_mark=holder.author_mark, call_number=holder.call_number,
               call_number_is_manual=holder.call_number_is_manual, is_hidden=False,
               marc=marc.stored_marc(plan.marc, fields, values), copied_from_id=None)
    return row


def _authors(plan):
    """(name, role, is_main) of a new record's authors, in order."""
    main = plan.fields["main_author"]
    return [(name, role, i == 0 and main == name)
            for i, (name, role) in enumerate(plan.fields["authors"])]


class _Numbering:
    """Accession numbers and barcodes of the imported copies."""

    def __init__(self, session, school, catalogue, barcode_prefix):
        self.session, self.school, self.catalogue = session, school, catalogue
        self.prefix = barcode_prefix

    def raise_shared_counters(self, plans):
        highest = {}
        for plan in plans:
            for copy in plan.copies:
                if copy.number is not None and not copy.series.is_textbook:
                    highest[copy.series.id] = max(highest.get(copy.series.id, 0), copy.number)
        for series_id, number in highest.items():
            raise_counter(self.session, self.school.id, f"series:{series_id}:0", number)

    def number(self, items):
        """Number every copy of `items` (plan, record_id, record_is_new, price), in order:
        one counter update per series (and per existing textbook record). Returns the
        counter rows of the new records' textbooks, to insert."""
        session = self.session
        pending = {}  # counter key -> [copy plans without number]
        new_counters = {}
        for plan, record_id, is_new, _price in items:
            for copy in plan.copies:
                series = copy.series
                if series.is_textbook and is_new:
                    continue
                key = f"series:{series.id}:{record_id if series.is_textbook else 0}"
                if copy.number is None:
                    pending.setdefault(key, []).append(copy)
                elif series.is_textbook:
                    raise_counter(session, self.school.id, key, copy.number)
        # Textbooks of new records: their counters start here (numbers kept, then the next).
        for plan, record_id, is_new, _price in items:
            if not is_new:
                continue
            by_series = {}
            for copy in plan.copies:
                if copy.series.is_textbook:
                    by_series.setdefault(copy.series.id, []).append(copy)
            for series_id, copies in by_series.items():
                last = max((c.number for c in copies if c.number is not None), default=0)
                for copy in copies:
                    if copy.number is None:
                        last += 1
                        copy.number = last
                new_counters[f"series:{series_id}:{record_id}"] = last
        for key, copies in pending.items():
            if key in new_counters:  # more textbook copies of a record new in this import
                first = new_counters[key] + 1
                new_counters[key] += len(copies)
            else:
                first = allocate(session, self.school.id, key, len(copies))
            for i, copy in enumerate(copies):
                copy.number = first + i
        return [{"school_id": self.school.id, "key": key, "last_value": value}
                for key, value in new_counters.items()]

    def add_copies(self, items, intake, writer, ids):
        """Write the copies of `items` (numbered by `number`), with the next `ids`."""
        sid = self.school.id
        intake_id = intake.id if intake else None
        funding = intake.funding if intake else None
        source = intake.source if intake else None
        rows = []
        for plan, record_id, _is_new, price in items:
            for copy in plan.copies:
                series = copy.series
                label = accession_label(series, record_id, copy.number)
                rows.append({
                    "id": next(ids), "school_id": sid, "record_id": record_id,
                    "series_id": series.id,
                    "sequence_key": record_id if series.is_textbook else 0,
                    "accession_number": copy.number, "accession_label": label,
                    "barcode": copy.barcode or self._barcode(label, series),
                    "location_id": copy.location_id, "intake_id": intake_id,
                    "status": CopyStatus.available,
                    "price": copy.price if copy.price is not None else price,
                    "funding": funding, "acquisition_source": source, "note": None})
        writer.insert(Copy, rows)

    def _barcode(self, label, series):
        base = f"{self.prefix}{label.replace(series.separator, '')}"[:40]
        barcode, n = base, 1
        while barcode in self.catalogue.barcodes:
            n += 1
            barcode = f"{base[:36]}-{n}"
        self.catalogue.barcodes.add(barcode)
        return barcode


def raise_counter(session, school_id, key, value):
    """Make the counter of (school, key) at least `value` (numbers kept from an import:
    the sequence continues from the maximum)."""
    table = Counter.__table__
    stmt = (update(table).where(table.c.school_id == school_id, table.c.key == key)
            .values(last_value=case((table.c.last_value < value, value),
                                    else_=table.c.last_value)))
    if session.execute(stmt).rowcount:
        return
    try:
        with session.begin_nested():
            session.execute(insert(table).values(school_id=school_id, key=key,
                                                 last_value=value))
    except IntegrityError:  # created meanwhile by another transaction
        session.execute(stmt)


# --- Export -----------------------------------------------------------------------------------

FORMATS = {
    "iso2709": ("application/marc", "mrc"),
    "marcxml": ("application/marcxml+xml", "xml"),
}


EXPORT_VALUES = ("title", "subtitle", "responsibility", "volume", "edition", "place",
                 "publisher", "year", "pages", "size_cm", "isbn", "price", "language",
                 "series_statement", "summary", "subjects", "class_number")


class MarcExport:
    """The records of a school (all, or `ids`) as MARC, produced batch by batch.

    Iterate for the bytes; afterwards `count` is the number of records written and
    `skipped` the ids of records too long for ISO 2709 (99,999 bytes).
    """

    def __init__(self, session, school, fmt, ids=None, batch=1000):
        if fmt not in FORMATS:
            raise ValidationError(_l("Unknown MARC format: %(value)s."), field="format",
                                  value=fmt)
        self.session, self.school, self.format, self.batch = session, school, fmt, batch
        self.ids = None if ids is None else sorted({int(i) for i in ids})
        self.count = 0
        self.skipped = []
        self.mimetype, extension = FORMATS[fmt]
        self.filename = f"marc-{school.code}-{datetime.date.today():%Y%m%d}.{extension}"

    def __iter__(self):
        xml = self.format == "marcxml"
        now = datetime.datetime.now().replace(microsecond=0)  # one 005 for the export
        if xml:
            yield marc.XML_HEADER.encode("utf-8")
        batches = self._batches()
        while True:
            # A batch (read and encoded) at a time with the garbage collector paused, as the
            # import does (app.core.bulk.gc_paused): its thousands of short-lived objects
            # otherwise make it walk the application's whole heap again and again. Never
            # paused across a yield: the client may stop reading at any time.
            with gc_paused():
                batch = next(batches, None)
                if batch is None:
                    break
                chunk = self._encode(batch, xml, now)
            yield chunk
        if xml:
            yield marc.XML_FOOTER.encode("utf-8")

    def _encode(self, batch, xml, now):
        out = []
        for values, copies, stored, record_id in batch:
            data = marc.to_marc_dict(values, copies, self.school.code,
                                     json.loads(stored) if stored else None, record_id, now)
            if xml:
                out.append(marc.marcxml_record(data) + "\n")
                continue
            try:
                out.append(marc.iso2709_bytes(data))
            except ValueError:
                self.skipped.append(record_id)
        self.count += len(out)
        return "".join(out).encode("utf-8") if xml else b"".join(out)

    def to_bytes(self):
        return b"".join(self)

    def _batches(self):
        """Lists of (values, copies, stored MARC as JSON text, record id), a batch each."""
        session, sid = self.session, self.school.id
        schemes = {s.id: marc.scheme_code(s)
                   for s in session.execute(select(ClassificationScheme)).scalars()}
        types = dict(session.execute(select(DocumentType.id, DocumentType.code)).all())
        locations = dict(session.execute(select(Location.id, Location.code).where(
            Location.school_id == sid)).all())
        t = Record.__table__.c
        columns = [t.id] + [t[name] for name in EXPORT_VALUES] + [
            t.scheme_id, t.document_type_id, t.call_number,
            # As text, decoded record by record when encoded (a hundred objects a record).
            cast(t.marc, Text).label("marc")]
        last = 0
        offset = 0
        while True:
            query = select(*columns).where(t.school_id == sid, t.id > last)
            if self.ids is not None:
                chunk = self.ids[offset:offset + self.batch]
                offset += self.batch
                if not chunk:
                    return
                query = query.where(t.id.in_(chunk))
            rows = session.execute(query.order_by(t.id).limit(self.batch)).all()
            if not rows:
                if self.ids is not None:
                    continue
                return
            first, last = rows[0].id, rows[-1].id
            if self.ids is None:
                # Every record of the school between the first and the last of the batch
                # is in it: a range, not a list of a thousand ids to bind.
                def of_batch(column):
                    return column.between(first, last)
            else:
                ids = [r.id for r in rows]

                def of_batch(column):
                    return column.in_(ids)
            authors = {}
            for rid, name, role, is_main in session.execute(
                    select(RecordAuthor.record_id, RecordAuthor.name, RecordAuthor.role,
                           RecordAuthor.is_main).where(
                        RecordAuthor.school_id == sid, of_batch(RecordAuthor.record_id))
                    .order_by(RecordAuthor.record_id, RecordAuthor.position)):
                authors.setdefault(rid, []).append((name, role, is_main))
            copies = {}
            for rid, barcode, label, location_id in session.execute(
                    select(Copy.record_id, Copy.barcode, Copy.accession_label,
                           Copy.location_id).where(
                        Copy.school_id == sid, of_batch(Copy.record_id),
                        Copy.status != CopyStatus.withdrawn)
                    .order_by(Copy.record_id, Copy.series_id, Copy.sequence_key,
                              Copy.accession_number)):
                copies.setdefault(rid, []).append((barcode, label, location_id))
            batch = []
            for row in rows:
                values = dict(zip(EXPORT_VALUES, row[1:len(EXPORT_VALUES) + 1]))
                values["scheme"] = schemes.get(row.scheme_id)
                values["document_type"] = types.get(row.document_type_id)
                values["authors"] = authors.get(row.id, [])
                items = [{"barcode": b, "label": lab, "location": locations.get(loc),
                          "call_number": row.call_number}
                         for b, lab, loc in copies.get(row.id, ())]
                batch.append((values, items, row.marc, row.id))
            yield batch
