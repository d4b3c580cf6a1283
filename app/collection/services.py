"""Accession numbering, intakes (general register) and copies.

Numbers come from `allocate`: one UPDATE ... RETURNING on a counter row, so two librarians of
the same school adding copies at the same moment get disjoint ranges, with no gap and no
reuse (the row lock serialises them; a rolled-back transaction gives its numbers back).
"""
import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select, update

from app.collection.models import (
    AccessionSeries,
    Copy,
    CopyStatus,
    Counter,
    Funding,
    Intake,
    LibrarySettings,
)
from app.core.errors import ValidationError

MAX_COPIES_AT_ONCE = 2000

DEFAULT_SERIES = [
    # code, name, prefix, textbook
    ("SGK", "Sách giáo khoa", "SGK", True),
    ("SNV", "Sách nghiệp vụ", "SNV", False),
    ("STK", "Sách tham khảo", "STK", False),
    ("STN", "Sách thiếu nhi", "STN", False),
]


def allocate(session, school_id, key, count=1):
    """Reserve `count` consecutive numbers of (school, key); returns the first one."""
    if count < 1:
        raise ValueError(count)
    table = Counter.__table__
    stmt = (update(table).where(table.c.school_id == school_id, table.c.key == key)
            .values(last_value=table.c.last_value + count).returning(table.c.last_value))
    last = session.execute(stmt).scalar()
    if last is None:
        # First number of this key: create the row (a concurrent creator wins the race,
        # then we increment its row).
        try:
            with session.begin_nested():
                session.execute(insert(table).values(school_id=school_id, key=key,
                                                     last_value=count))
            return 1
        except Exception:  # unique violation: someone created it first
            last = session.execute(stmt).scalar()
    return last - count + 1


def series_key(series, record_id):
    return f"series:{series.id}:{record_id if series.is_textbook else 0}"


def ensure_library(session, school):
    """Default settings and series of a school's library (idempotent)."""
    settings = session.execute(select(LibrarySettings).where(
        LibrarySettings.school_id == school.id)).scalar_one_or_none()
    if settings is None:
        from app.catalog.models import ClassificationScheme

        ddc = session.execute(select(ClassificationScheme).where(
            ClassificationScheme.code == "DDC")).scalar_one_or_none()
        settings = LibrarySettings(school=school, school_id=school.id, scheme=ddc,
                                   barcode_prefix=school.code)
        session.add(settings)
    existing = set(session.execute(select(AccessionSeries.code).where(
        AccessionSeries.school_id == school.id)).scalars())
    for code, name, prefix, textbook in DEFAULT_SERIES:
        if code not in existing:
            session.add(AccessionSeries(school=school, school_id=school.id, code=code,
                                        name=name, prefix=prefix, is_textbook=textbook))
    session.flush()
    return settings


def validate_series(session, series):
    if series.padding is None or not 1 <= series.padding <= 8:
        raise ValidationError(_l("The number of digits must be between 1 and 8."),
                              field="padding")


def validate_copy(session, copy):
    """Edits of a copy by hand: its status never becomes or stops being "withdrawn" there.
    A copy leaves the stock only through an approved weeding round (app.weeding), which
    writes the decision number and the general register's Part II line."""
    from sqlalchemy import inspect

    history = inspect(copy).attrs.status.history
    if not history.has_changes():
        return
    old = history.deleted[0] if history.deleted else None
    if old == CopyStatus.withdrawn:
        raise ValidationError(_l("Copy %(copy)s was withdrawn by a weeding decision: its "
                                 "status cannot be changed."), field="status",
                              copy=copy.accession_label)
    if copy.status == CopyStatus.withdrawn:
        raise ValidationError(_l("A copy is withdrawn only through a weeding round approved "
                                 "by the principal (Library → Weeding and disposal)."),
                              field="status")


def create_intake(session, school, received_on, source, document_number=None,
                  funding=Funding.state_budget, note=None):
    """A new line of the general register, Part I, with the next running number."""
    if not source or not source.strip():
        raise ValidationError(_l("Enter the source of the intake (supplier or donor)."),
                              field="source")
    intake = Intake(school=school, school_id=school.id,
                    register_number=allocate(session, school.id, "intake"),
                    received_on=received_on or datetime.date.today(), source=source.strip(),
                    document_number=document_number, funding=funding, note=note)
    session.add(intake)
    session.flush()
    return intake


def add_copies(session, school, record, series, count, location=None, intake=None, price=None,
               funding=None, acquisition_source=None, barcodes=None):
    """Add `count` copies of `record` with consecutive accession numbers of `series`.

    Everything is checked before anything is written; all copies or none.
    """
    if record.school_id != school.id or series.school_id != school.id:
        raise ValidationError(_l("The record or the series belongs to another school."))
    if location is not None and location.school_id != school.id:
        raise ValidationError(_l("The shelving location belongs to another school."),
                              field="location")
    if intake is not None and intake.school_id != school.id:
        raise ValidationError(_l("The intake belongs to another school."), field="intake")
    if not isinstance(count, int) or count < 1 or count > MAX_COPIES_AT_ONCE:
        raise ValidationError(_l("The number of copies must be between 1 and %(max)d."),
                              field="count", max=MAX_COPIES_AT_ONCE)
    if barcodes is not None and len(barcodes) != count:
        raise ValidationError(_l("Give one barcode per copy."), field="barcodes")
    settings = session.execute(select(LibrarySettings).where(
        LibrarySettings.school_id == school.id)).scalar_one_or_none()
    prefix = (settings.barcode_prefix if settings and settings.barcode_prefix else school.code)
    if barcodes:
        taken = set(session.execute(select(Copy.barcode).where(
            Copy.school_id == school.id, Copy.barcode.in_(barcodes))).scalars())
        duplicates = sorted(taken | {b for b in barcodes if barcodes.count(b) > 1})
        if duplicates:
            raise ValidationError(_l("The barcode %(barcode)s is already used in your school."),
                                  field="barcodes", barcode=duplicates[0])
    first = allocate(session, school.id, series_key(series, record.id), count)
    copies = []
    for i in range(count):
        number = first + i
        label = accession_label(series, record.id, number)
        copies.append(Copy(
            school_id=school.id, record_id=record.id, series_id=series.id,
            sequence_key=record.id if series.is_textbook else 0, accession_number=number,
            accession_label=label,
            barcode=barcodes[i] if barcodes else f"{prefix}{label.replace(series.separator, '')}",
            location_id=location.id if location else None,
            intake_id=intake.id if intake else None, status=CopyStatus.available,
            price=price if price is not None else record.price,
            funding=funding or (intake.funding if intake else None),
            acquisition_source=acquisition_source or (intake.source if intake else None)))
    if record.is_hidden:
        # A title whose copies were all withdrawn (app.weeding) is in the catalogue again.
        record.is_hidden = False
    # ORM objects (not a bulk insert) so that the audit log records every copy.
    session.add_all(copies)
    session.flush()
    return copies


def accession_label(series, record_id, number):
    """'STK-00012'; textbooks, numbered within their title and volume: 'SGK-12.001'."""
    if series.is_textbook:
        return f"{series.prefix}{series.separator}{record_id}.{number:03d}"
    return series.format(number)


def copy_counts(session, record_ids):
    rows = session.execute(select(Copy.record_id, func.count()).where(
        Copy.record_id.in_(record_ids)).group_by(Copy.record_id)).all()
    return dict(rows)
