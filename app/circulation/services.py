"""Circulation use cases: checkout, return, renewal, undo, holds, class loans, reading room,
lost and damaged copies.

Every function takes the session, the acting user (or None from the CLI) and the school, never
reads the request, raises `CirculationError` with a Vietnamese message naming the problem and
leaves the session unchanged when it refuses. The caller commits.
"""
import datetime
import functools
from collections import namedtuple
from typing import NamedTuple, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, and_, bindparam, cast, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.catalog.models import Record
from app.circulation import policies
from app.circulation.models import (
    ClassLoan, Compensation, Hold, HoldStatus, Loan, LoanKind, LoanStatus, ReadingRoomUse,
)
from app.collection.models import Copy, CopyStatus
from app.core import cache
from app.core.direct import Direct
from app.core.errors import DomainError
from app.core.i18n import format_date, local_today
from app.core.tenancy import guard_rows
from app.readers.models import Reader, ReaderCategory, ReaderStatus

# Copies in these states cannot leave the library.
NOT_LENDABLE = {
    CopyStatus.withdrawn: _l("Copy %(copy)s has been withdrawn: it cannot be lent."),
    CopyStatus.lost: _l("Copy %(copy)s is recorded as lost: it cannot be lent."),
    CopyStatus.damaged: _l("Copy %(copy)s is recorded as damaged: it cannot be lent."),
    CopyStatus.reading_room_only: _l(
        "Copy %(copy)s is for the reading room only: record it as in-library reading."),
}


class CirculationError(DomainError):
    status = 409


class UnknownCopy(CirculationError):
    """No copy of the school has this barcode (the desk then tries it as a reader card)."""


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# --- lookups --------------------------------------------------------------------------------

class PanelReader(NamedTuple):
    """A reader as the desk shows them (one narrow row, category name included): what the
    panel, holds and the reading room need of a reader."""

    id: int
    school_id: int
    category_id: int
    category_name: str
    status: ReaderStatus
    valid_until: Optional[datetime.date]
    class_name: Optional[str]
    family_name: str
    given_name: str
    card_number: Optional[str]
    code: Optional[str]

    @property
    def full_name(self):
        return f"{self.family_name} {self.given_name}".strip()


@functools.cache
def _panel_reader_statements():
    base = (select(Reader.id, Reader.school_id, Reader.category_id, ReaderCategory.name,
                   Reader.status, Reader.valid_until, Reader.class_name, Reader.family_name,
                   Reader.given_name, Reader.card_number, Reader.code,
                   cache.version_column())  # the worker's cache number comes along
            .join(ReaderCategory, ReaderCategory.id == Reader.category_id)
            .where(Reader.school_id == bindparam("school_id")))
    card = bindparam("card")
    return {"card": Direct(base.where(or_(Reader.barcode == card, Reader.card_number == card))
                           .limit(1)),
            "code": Direct(base.where(Reader.code == card).order_by(Reader.id).limit(1)),
            "id": Direct(base.where(Reader.id == bindparam("reader_id")))}


def panel_reader(session, school_id, card=None, reader_id=None, by_code=True):
    """The school's reader with this card number or barcode (then student code, unless
    `by_code` is false), or this id, as a PanelReader; None if there is none."""
    statements = _panel_reader_statements()
    conn = desk_connection(session)
    if reader_id is not None:
        row = statements["id"].first(conn, {"school_id": school_id, "reader_id": reader_id})
    else:
        params = {"school_id": school_id, "card": card}
        row = statements["card"].first(conn, params)
        if row is None and by_code:
            row = statements["code"].first(conn, params)
    if row is None:
        return None
    cache.observe(session, row[-1])
    return PanelReader(*row[:-1])


def panel_reader_by_id(session, school_id, reader_id):
    """`panel_reader` of the school by id (as the desk sends it: a number, or anything else),
    else a CirculationError."""
    reader = panel_reader(session, school_id, reader_id=int(reader_id)) if str(
        reader_id).isdigit() else None
    if reader is None:
        raise CirculationError(_l("Reader not found in your school."))
    return reader


def find_panel_reader(session, school_id, card=None, reader_id=None):
    """`panel_reader` by id (when given) or by what the scanner read (card number, barcode,
    then student code), else a CirculationError naming what was not found."""
    if reader_id:
        return panel_reader_by_id(session, school_id, reader_id)
    card = (card or "").strip()
    if not card:
        raise CirculationError(_l("Scan or type a reader card."))
    reader = panel_reader(session, school_id, card)
    if reader is None:
        raise CirculationError(_l("No reader of this school has the card “%(card)s”."),
                               card=card)
    return reader


def find_copy(session, school_id, barcode):
    """(copy, record) of the school by barcode or accession label."""
    barcode = (barcode or "").strip()
    if not barcode:
        raise CirculationError(_l("Scan or type a copy barcode."))
    # The desk needs no authors: skip their eager load (one query less per scan).
    query = (select(Copy, Record).join(Record, Record.id == Copy.record_id)
             .options(lazyload(Record.authors)))
    row = session.execute(query.where(Copy.school_id == school_id,
                                      Copy.barcode == barcode)).first()
    if row is None:
        row = session.execute(query.where(Copy.school_id == school_id,
                                          Copy.accession_label == barcode)).first()
    if row is None:
        raise UnknownCopy(_l("No copy of this school has the barcode “%(barcode)s”."),
                          barcode=barcode)
    # Keep the record on the copy (no reload by the caller, and a strong reference).
    set_committed_value(row[0], "record", row[1])
    return row


def desk_connection(session):
    """The session's connection, for Core statements without the ORM layer around them (the
    desk's hot path); pending changes of the session are flushed first, as a query would."""
    session = session.registry() if hasattr(session, "registry") else session  # scoped
    if session.new or session.dirty or session.deleted:
        session.flush()
    # The transaction's connection, looked up once per transaction.
    kept = session.info.get(_DESK_CONNECTION)
    if kept is not None and kept[0] is session.get_transaction():
        return kept[1]
    connection = session.connection()
    session.info[_DESK_CONNECTION] = (session.get_transaction(), connection)
    return connection


_DESK_CONNECTION = "_desk_connection"  # session.info: (transaction, its connection)


_DESK_READER_COLUMNS = ("id", "school_id", "category_id", "status", "valid_until",
                        "class_name", "family_name", "given_name")


class DeskReader(NamedTuple):
    """The columns of a reader that a checkout needs (`lend` takes it in place of a Reader),
    and the document type of each of their open loans (for the limits)."""

    id: int
    school_id: int
    category_id: int
    status: ReaderStatus
    valid_until: Optional[datetime.date]
    class_name: Optional[str]
    family_name: str
    given_name: str
    open_loan_types: Optional[tuple] = None  # None: not read (`lend` asks)

    @property
    def full_name(self):
        return f"{self.family_name} {self.given_name}".strip()


@functools.cache
def _desk_reader_statement():
    # The types of the reader's open loans as one string ('' for a record without a type),
    # so that a checkout asks for the reader and their loans in one statement.
    types = (select(func.aggregate_strings(
        func.coalesce(cast(Record.document_type_id, String), ""), ","))
        .select_from(Loan).join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_id)
        .where(Loan.reader_id == Reader.id, Loan.status == LoanStatus.active)
        .correlate(Reader).scalar_subquery())
    return Direct(select(*(getattr(Reader, name) for name in _DESK_READER_COLUMNS), types,
                         cache.version_column()).where(
        Reader.id == bindparam("reader_id"), Reader.school_id == bindparam("school_id")))


def desk_reader(session, school_id, reader_id):
    """The school's reader `reader_id` as a DeskReader with their open loans' types, or None.
    The first statement of a checkout at the desk: the worker's cache number comes along
    (app.core.cache.observe)."""
    row = _desk_reader_statement().first(desk_connection(session),
                                         {"reader_id": reader_id, "school_id": school_id})
    if row is None:
        return None
    cache.observe(session, row[-1])
    types = row[-2]
    types = () if types is None else tuple(int(t) if t else None for t in types.split(","))
    return DeskReader(*row[:-2], open_loan_types=types)


def check_reader(reader, today):
    if reader.status != ReaderStatus.active:
        raise CirculationError(_l("Reader %(reader)s cannot borrow: status “%(status)s”."),
                               reader=reader.full_name, status=reader.status.label)
    if reader.valid_until is not None and reader.valid_until < today:
        raise CirculationError(
            _l("The card of %(reader)s expired on %(date)s: renew the card first."),
            reader=reader.full_name, date=format_date(reader.valid_until))


@functools.cache
def _open_loans_statement():
    return Direct(
        select(Loan.id, Loan.loaned_at, Loan.due_on, Loan.renewals, Copy.accession_label,
               Copy.barcode, Record.title, Record.call_number, Record.document_type_id)
        .join(Copy, Copy.id == Loan.copy_id).join(Record, Record.id == Copy.record_id)
        .where(Loan.reader_id == bindparam("reader_id"), Loan.status == LoanStatus.active)
        .order_by(Loan.due_on, Loan.id), named=True)


def open_loans(session, reader_id):
    """The reader's open loans, oldest due first: rows of the loan's id, loaned_at, due_on and
    renewals, the copy's accession_label and barcode, the record's title, call_number and
    document_type_id."""
    return _open_loans_statement().rows(desk_connection(session), {"reader_id": reader_id})


@functools.cache
def _reader_holds_statement():
    return Direct(
        select(Hold.id, Hold.status, Hold.expires_on, Record.title)
        .join(Record, Record.id == Hold.record_id)
        .where(Hold.reader_id == bindparam("reader_id"),
               or_(Hold.status == HoldStatus.waiting, Hold.status == HoldStatus.ready))
        .order_by(Hold.placed_at), named=True)


def reader_holds(session, reader_id):
    """The reader's holds waiting or set aside, oldest first: rows of the hold's id, status and
    expires_on, and the record's title."""
    return _reader_holds_statement().rows(desk_connection(session), {"reader_id": reader_id})


def allowance(session, reader, rules=None, loans=None):
    """What the reader may still borrow: [(rule, used, remaining)] for the rules in play."""
    rules = rules if rules is not None else policies.school_rules(session, reader.school_id)
    loans = loans if loans is not None else open_loans(session, reader.id)
    used = {}
    for loan in loans:
        rule = policies.pick_rule(rules, reader.category_id, loan.document_type_id)
        if rule is not None:
            used[rule.id] = used.get(rule.id, 0) + 1
    result = []
    for rule in rules:
        applicable = rule.category_id in (None, reader.category_id)
        if applicable and not rule.reading_room_only and (
                rule.school_id is not None or not any(
                    r.school_id is not None and r.category_id == rule.category_id
                    and r.document_type_id == rule.document_type_id for r in rules)):
            count = used.get(rule.id, 0)
            if rule is policies.pick_rule(rules, reader.category_id, rule.document_type_id):
                result.append((rule, count, max(rule.max_items - count, 0)))
    return result


# --- checkout and return --------------------------------------------------------------------
#
# The desk's two busiest operations read narrow rows and write with Core statements: the ORM's
# unit of work, a savepoint and the audit diff cost more than the statements themselves. The
# rules are the same as everywhere (tenancy, card, copy status, holds, limits, closed days, the
# partial unique index); ORM objects of the session are kept in step (`_sync`). The loan register
# is the history of checkouts and returns (who, when): a copy going out and back is not audited
# (a copy returned damaged is, like every other change of a copy).

class DeskCopy(NamedTuple):
    """A copy as the desk needs it, with its record, in one narrow row."""

    id: int
    status: CopyStatus
    accession_label: str
    barcode: str
    record_id: int
    title: str
    call_number: Optional[str]
    document_type_id: Optional[int]


LoanRow = namedtuple("LoanRow", [c.key for c in Loan.__table__.c])  # a loan's columns


class Lent(NamedTuple):
    loan: LoanRow
    copy: DeskCopy


# The columns of the open loan that a return reads (a narrow row: each column read costs).
ReturnedLoan = namedtuple("ReturnedLoan", [
    "id", "school_id", "copy_id", "reader_id", "loaned_at", "due_on", "renewals", "fine",
    "note", "status", "returned_at", "returned_by_id"])


class Returned(NamedTuple):
    loan: ReturnedLoan  # the loan's columns after the return
    copy: DeskCopy
    reader_name: str
    hold: Optional[Hold]  # set aside for the next reader waiting for the title


_COPY_COLUMNS = (Copy.id, Copy.status, Copy.accession_label, Copy.barcode, Copy.record_id,
                 Record.title, Record.call_number, Record.document_type_id)
_LOAN_COLUMNS = tuple(Loan.__table__.c)
_RETURN_LOAN_COLUMNS = tuple(getattr(Loan, key) for key in ReturnedLoan._fields[:9])


@functools.cache
def _desk_statements():
    """The desk's statements, built once with bound parameters and run on the driver's cursor
    (app.core.direct): building a statement, and SQLAlchemy's execution, cost more Python
    than running it."""
    school, code = bindparam("school_id"), bindparam("code")

    def by_code(query):
        return {by: Direct(query.where(Copy.school_id == school,
                                       getattr(Copy, by) == code).limit(1))
                for by in ("barcode", "accession_label")}

    copies = select(*_COPY_COLUMNS).join(Record, Record.id == Copy.record_id)
    loans = Loan.__table__
    columns = [c for c in loans.c if c.key != "id"]
    insert = (f"INSERT INTO loan ({', '.join(c.name for c in columns)}) "
              f"VALUES ({', '.join(':' + c.key for c in columns)}) "
              "ON CONFLICT (copy_id) WHERE status = 'active' DO NOTHING")
    statements = dict(
        # checkout: the copy, its record and a hold that set it aside
        lend_copy=by_code(copies.add_columns(Hold.id, Hold.reader_id).outerjoin(
            Hold, and_(Hold.copy_id == Copy.id, Hold.status == HoldStatus.ready))),
        # return: the copy, its record, its open loan, the loan's reader and the first hold
        # waiting for the title
        # (the first statement of a return: the worker's cache number comes along, see
        # app.core.cache.observe)
        return_copy=by_code(copies.add_columns(
            *_RETURN_LOAN_COLUMNS, Reader.family_name, Reader.given_name,
            select(Hold.id).where(Hold.school_id == school, Hold.record_id == Copy.record_id,
                                  Hold.status == HoldStatus.waiting)
            .order_by(Hold.placed_at, Hold.id).limit(1).correlate(Copy).scalar_subquery(),
            cache.version_column())
            .outerjoin(Loan, and_(Loan.copy_id == Copy.id, Loan.status == LoanStatus.active))
            .outerjoin(Reader, Reader.id == Loan.reader_id)),
        open_loan_types=select(Record.document_type_id).select_from(Loan)
        .join(Copy, Copy.id == Loan.copy_id).join(Record, Record.id == Copy.record_id)
        .where(Loan.reader_id == bindparam("reader_id"), Loan.status == LoanStatus.active),
        # The partial unique index (one open loan per copy) decides between two desks: the
        # second insert does nothing. Written as text because SQLAlchemy does not cache the
        # compiled form of the dialects' INSERT ... ON CONFLICT; the same SQL on PostgreSQL
        # and SQLite (3.35 and later).
        insert_loan=text(insert + " RETURNING id")
        .bindparams(*[bindparam(c.key, type_=c.type) for c in columns]),
        # PostgreSQL: the copy goes on loan in the same statement, only if the loan was
        # inserted.
        insert_loan_and_copy=text(
            f"WITH lent AS ({insert} RETURNING id, copy_id) "
            "UPDATE copy SET status = :on_loan FROM lent "
            "WHERE copy.id = lent.copy_id AND copy.school_id = :school_id RETURNING lent.id")
        .bindparams(*[bindparam(c.key, type_=c.type) for c in columns],
                    bindparam("on_loan", type_=Copy.__table__.c.status.type)),
        close_loan=update(loans).where(
            loans.c.id == bindparam("b_id"), loans.c.school_id == bindparam("b_school_id"),
            loans.c.status == LoanStatus.active).values(
            status=LoanStatus.returned, returned_at=bindparam("b_returned_at"),
            returned_by_id=bindparam("b_returned_by_id"), fine=bindparam("b_fine"),
            note=bindparam("b_note")),
        copy_status=update(Copy.__table__).where(
            Copy.__table__.c.id == bindparam("b_id"),
            Copy.__table__.c.school_id == bindparam("b_school_id"))
        .values(status=bindparam("b_status")),
        # PostgreSQL: the loan closed and its copy back on the shelf in one statement (one
        # round trip); it updates the copy only when it closed the open loan.
        close_loan_and_copy=text(
            "WITH closed AS (UPDATE loan SET status = :returned, returned_at = :returned_at, "
            "returned_by_id = :returned_by_id, fine = :fine, note = :note "
            "WHERE id = :id AND school_id = :school_id AND status = :active "
            "RETURNING copy_id) "
            "UPDATE copy SET status = :available FROM closed "
            "WHERE copy.id = closed.copy_id AND copy.school_id = :school_id")
        .bindparams(bindparam("returned", type_=Loan.__table__.c.status.type),
                    bindparam("active", type_=Loan.__table__.c.status.type),
                    bindparam("available", type_=Copy.__table__.c.status.type),
                    bindparam("returned_at", type_=Loan.__table__.c.returned_at.type),
                    bindparam("fine", type_=Loan.__table__.c.fine.type),
                    bindparam("note", type_=Loan.__table__.c.note.type)),
    )
    return {name: value if isinstance(value, dict) else Direct(value)
            for name, value in statements.items()}


def _desk_copy(session, statements, school_id, barcode):
    """The row of the school's copy with this barcode (or accession label): DeskCopy's columns
    first, then those the statement adds."""
    barcode = (barcode or "").strip()
    if not barcode:
        raise CirculationError(_l("Scan or type a copy barcode."))
    params = {"school_id": school_id, "code": barcode}
    conn = desk_connection(session)
    row = statements["barcode"].first(conn, params)
    if row is None:
        row = statements["accession_label"].first(conn, params)
    if row is None:
        raise UnknownCopy(_l("No copy of this school has the barcode “%(barcode)s”."),
                          barcode=barcode)
    return row


def _sync(session, model, pk, **values):
    """Core statements bypass the session: an object it holds for this row gets the values."""
    identity_map = session.identity_map
    if not identity_map:  # the desk's requests hold no object
        return None
    obj = identity_map.get(identity_key(model, (pk,)))
    if obj is not None:
        for key, value in values.items():
            set_committed_value(obj, key, value)
    return obj


def _set_copy_status(session, school_id, copy_id, status):
    guard_rows(Copy, [school_id])
    _desk_statements()["copy_status"].run(
        desk_connection(session), {"b_id": copy_id, "b_school_id": school_id,
                                   "b_status": status})
    _sync(session, Copy, copy_id, status=status)


def _loan_in_session(session, values):
    """The Loan of these column values (every column), in the session without a query."""
    loan = _sync(session, Loan, values["id"], **values)
    if loan is None:
        loan = Loan(**values)
        make_transient_to_detached(loan)
        session.add(loan)
    return loan


def checkout(session, actor, school_id, reader, barcode, today=None):
    """Lend the copy with `barcode` to `reader`; returns the new Loan."""
    loan = _loan_in_session(session, lend(session, actor, school_id, reader, barcode,
                                          today).loan._asdict())
    if isinstance(reader, Reader):
        set_committed_value(loan, "reader", reader)
    return loan


def lend(session, actor, school_id, reader, barcode, today=None):
    """`checkout`, returning what the desk shows: Lent(loan, copy).

    `reader` is a Reader, or any object with its columns and `full_name` (the desk passes a
    narrow row, see app.circulation.views)."""
    today = today or local_today()
    if reader.school_id != school_id:
        raise CirculationError(_l("Reader %(reader)s belongs to another school."),
                               reader=reader.full_name)
    check_reader(reader, today)
    statements = _desk_statements()
    row = _desk_copy(session, statements["lend_copy"], school_id, barcode)
    copy, hold_id, hold_reader_id = DeskCopy(*row[:8]), row[8], row[9]
    label = copy.accession_label
    if copy.status in NOT_LENDABLE:
        raise CirculationError(NOT_LENDABLE[copy.status], copy=label)
    if copy.status == CopyStatus.on_loan:
        holder = session.scalars(select(Reader).join(Loan, Loan.reader_id == Reader.id).where(
            Loan.copy_id == copy.id, Loan.status == LoanStatus.active)).first()
        if holder is not None and holder.id == reader.id:
            raise CirculationError(_l("Copy %(copy)s is already lent to %(reader)s."),
                                   copy=label, reader=reader.full_name)
        raise CirculationError(
            _l("Copy %(copy)s is on loan to %(holder)s: scan it without a reader to return it "
               "first."), copy=label, holder=holder.full_name if holder else "?")
    policy = policies.school_policy(session, school_id)
    rules = policy.rules
    rule = policies.pick_rule(rules, reader.category_id, copy.document_type_id)
    if rule is None:
        raise CirculationError(_l("No loan rule applies to this reader and this document."))
    if rule.reading_room_only:
        raise CirculationError(
            _l("“%(title)s” is for the reading room only: record it as in-library reading."),
            title=copy.title)
    types = getattr(reader, "open_loan_types", None)
    if types is None:
        types = open_loan_types(session, reader.id)
    used = sum(1 for type_id in types
               if policies.pick_rule(rules, reader.category_id, type_id) is rule)
    if used >= rule.max_items:
        raise CirculationError(
            _l("%(reader)s already has %(used)d of %(max)d items of this kind on loan: the "
               "limit is reached."), reader=reader.full_name, used=used, max=rule.max_items)
    if hold_id is not None and hold_reader_id != reader.id:
        other = session.get(Reader, hold_reader_id)
        raise CirculationError(_l("Copy %(copy)s is set aside for %(reader)s (hold)."),
                               copy=label, reader=other.full_name if other else "?")
    values = dict(school_id=school_id, copy_id=copy.id, reader_id=reader.id,
                  class_loan_id=None, kind=LoanKind.home, status=LoanStatus.active,
                  class_name=reader.class_name, loaned_at=_now(),
                  due_on=policies.due_date(session, school_id, rule, policy.settings, today),
                  returned_at=None, renewals=0, loaned_by_id=getattr(actor, "id", None),
                  returned_by_id=None, fine=None, compensation=None, compensation_amount=None,
                  compensation_settled_on=None, note=None)
    guard_rows(Loan, [school_id])
    conn = desk_connection(session)
    if conn.dialect.name == "postgresql":
        # The loan and the copy's status in one statement (one round trip).
        guard_rows(Copy, [school_id])
        values["id"] = statements["insert_loan_and_copy"].scalar(
            conn, dict(values, on_loan=CopyStatus.on_loan))
        if values["id"] is None:  # nothing has been written
            raise CirculationError(_l("Copy %(copy)s was just lent at another desk."),
                                   copy=label)
        _sync(session, Copy, copy.id, status=CopyStatus.on_loan)
    else:
        values["id"] = statements["insert_loan"].scalar(conn, values)
        if values["id"] is None:  # nothing has been written
            raise CirculationError(_l("Copy %(copy)s was just lent at another desk."),
                                   copy=label)
        _set_copy_status(session, school_id, copy.id, CopyStatus.on_loan)
    if hold_id is not None:  # the reader's own hold: fulfilled
        session.get(Hold, hold_id).status = HoldStatus.fulfilled
    return Lent(LoanRow(**values), copy)


def open_loan_types(session, reader_id):
    """The document type of each of the reader's open loans (for the limits)."""
    return [row[0] for row in _desk_statements()["open_loan_types"].rows(
        desk_connection(session), {"reader_id": reader_id})]


def _hold_on_copy(session, copy_id):
    return session.scalars(select(Hold).where(
        Hold.copy_id == copy_id, Hold.status == HoldStatus.ready)).first()


def checkin(session, actor, school_id, barcode, today=None, damaged=False):
    """Return the copy with `barcode`. Returns (loan, hold set aside or None)."""
    result = take_back(session, actor, school_id, barcode, today, damaged)
    # The Loan of the session (kept in step by take_back), else loaded.
    return session.get(Loan, result.loan.id), result.hold


def take_back(session, actor, school_id, barcode, today=None, damaged=False):
    """`checkin`, returning what the desk shows: Returned(loan, copy, reader name, hold)."""
    today = today or local_today()
    statements = _desk_statements()
    # The copy, its open loan, the loan's reader and the first hold waiting for the title,
    # in one statement.
    row = _desk_copy(session, statements["return_copy"], school_id, barcode)
    cache.observe(session, row[-1])
    copy, n = DeskCopy(*row[:8]), len(_RETURN_LOAN_COLUMNS)
    if row[8] is None:
        raise CirculationError(_l("Copy %(copy)s is not on loan."), copy=copy.accession_label)
    values = dict(zip(ReturnedLoan._fields, row[8:8 + n]))
    reader_name = f"{row[8 + n]} {row[9 + n]}".strip()
    waiting = row[10 + n] or 0
    settings = policies.school_policy(session, school_id).settings
    values.update(status=LoanStatus.returned, returned_at=_now(),
                  returned_by_id=getattr(actor, "id", None))
    if settings.fines_enabled and today > values["due_on"] and settings.fine_per_day:
        values["fine"] = (today - values["due_on"]).days * settings.fine_per_day
    if damaged:
        values["note"] = str(_l("Returned damaged"))
    guard_rows(Loan, [school_id])
    conn = desk_connection(session)
    keys = ("id", "school_id", "returned_at", "returned_by_id", "fine", "note")
    if not damaged and conn.dialect.name == "postgresql":
        guard_rows(Copy, [school_id])
        closed = statements["close_loan_and_copy"].run(conn, dict(
            {key: values[key] for key in keys}, returned=LoanStatus.returned,
            active=LoanStatus.active, available=CopyStatus.available))
    else:
        closed = statements["close_loan"].run(conn, {"b_" + key: values[key]
                                                     for key in keys})
    if closed != 1:  # returned at another desk a moment ago
        raise CirculationError(_l("Copy %(copy)s is not on loan."), copy=copy.accession_label)
    _sync(session, Loan, values["id"], **values)
    hold = None
    if damaged:
        # A change of the copy's condition: through the ORM, so that it is audited.
        session.get(Copy, copy.id).status = CopyStatus.damaged
    else:
        if conn.dialect.name == "postgresql":
            _sync(session, Copy, copy.id, status=CopyStatus.available)
        else:
            _set_copy_status(session, school_id, copy.id, CopyStatus.available)
        hold = _next_hold(session, school_id, copy.record_id, copy, today, settings, waiting)
    return Returned(ReturnedLoan(**values), copy, reader_name, hold)


def _first_waiting(school_id, record_id):
    return (select(Hold.id).where(Hold.school_id == school_id, Hold.record_id == record_id,
                                  Hold.status == HoldStatus.waiting)
            .order_by(Hold.placed_at, Hold.id).limit(1))


def _next_hold(session, school_id, record_id, copy, today, settings, waiting=None):
    """Set the returned copy aside for the first reader waiting for its title (`waiting`: its
    hold's id when the caller has already asked, 0 for none)."""
    if waiting is None:
        waiting = session.scalar(_first_waiting(school_id, record_id))
    if not waiting:
        return None
    hold = session.get(Hold, waiting)
    hold.status = HoldStatus.ready
    hold.copy_id = copy.id
    hold.ready_on = today
    hold.expires_on = policies.next_open_day(
        session, school_id, today + datetime.timedelta(days=settings.hold_days), settings)
    return hold


def renew(session, actor, school_id, barcode, today=None):
    """Renew the open loan of the copy with `barcode`; returns the loan."""
    today = today or local_today()
    copy, record = find_copy(session, school_id, barcode)
    loan = session.scalars(select(Loan).where(
        Loan.copy_id == copy.id, Loan.status == LoanStatus.active)).first()
    if loan is None:
        raise CirculationError(_l("Copy %(copy)s is not on loan."), copy=copy.accession_label)
    reader = loan.reader
    check_reader(reader, today)
    rule = policies.pick_rule(policies.school_rules(session, school_id), reader.category_id,
                              record.document_type_id)
    if rule is None or loan.renewals >= rule.renewals:
        raise CirculationError(
            _l("Copy %(copy)s cannot be renewed again (%(max)d renewals allowed)."),
            copy=copy.accession_label, max=rule.renewals if rule else 0)
    waiting = session.scalar(select(func.count()).select_from(Hold).where(
        Hold.record_id == record.id, Hold.status == HoldStatus.waiting,
        Hold.reader_id != reader.id))
    if waiting:
        raise CirculationError(
            _l("“%(title)s” is reserved by another reader: it cannot be renewed."),
            title=record.title)
    settings = policies.settings_for(session, school_id)
    due = policies.due_date(session, school_id, rule, settings, today,
                            days=rule.renewal_days or rule.loan_days)
    loan.due_on = max(due, loan.due_on)
    loan.renewals += 1
    return loan


def cancel_checkout(session, actor, school_id, loan_id, now=None):
    """Undo a wrong checkout made a moment ago: the loan is kept as cancelled."""
    loan = _own_loan(session, school_id, loan_id)
    settings = policies.settings_for(session, school_id)
    now = now or _now()
    if loan.status != LoanStatus.active:
        raise CirculationError(_l("This loan is no longer open: it cannot be cancelled."))
    if now - loan.loaned_at > datetime.timedelta(minutes=settings.undo_minutes):
        raise CirculationError(
            _l("A checkout can be cancelled only in the %(minutes)d minutes after it."),
            minutes=settings.undo_minutes)
    loan.status = LoanStatus.cancelled
    loan.returned_at = now
    loan.returned_by_id = getattr(actor, "id", None)
    loan.copy.status = CopyStatus.available
    return loan


def undo_return(session, actor, school_id, loan_id, now=None):
    """Reopen a loan returned by mistake a moment ago (the hold it triggered goes back)."""
    loan = _own_loan(session, school_id, loan_id)
    settings = policies.settings_for(session, school_id)
    now = now or _now()
    if loan.status != LoanStatus.returned or loan.returned_at is None or (
            now - loan.returned_at > datetime.timedelta(minutes=settings.undo_minutes)):
        raise CirculationError(_l("This return can no longer be undone."))
    if loan.copy.status != CopyStatus.available:
        raise CirculationError(_l("Copy %(copy)s has moved since: the return stays."),
                               copy=loan.copy.accession_label)
    hold = _hold_on_copy(session, loan.copy_id)
    if hold is not None:
        hold.status, hold.copy_id, hold.ready_on, hold.expires_on = (
            HoldStatus.waiting, None, None, None)
    loan.status = LoanStatus.active
    loan.returned_at = loan.returned_by_id = loan.fine = None
    loan.copy.status = CopyStatus.on_loan
    _insert_check(session, loan)
    return loan


def _insert_check(session, loan):
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise CirculationError(_l("Copy %(copy)s was lent again in the meantime."),
                               copy=loan.copy.accession_label)


def _own_loan(session, school_id, loan_id):
    loan = session.get(Loan, loan_id)
    if loan is None or loan.school_id != school_id:
        raise CirculationError(_l("Loan not found."))
    return loan


def mark_lost(session, actor, school_id, loan_id, compensation=None, amount=None, note=None):
    """The reader lost the copy: the loan closes as lost, the copy is lost, compensation noted
    (a replacement copy or an amount; no fine by default)."""
    loan = _own_loan(session, school_id, loan_id)
    if loan.status != LoanStatus.active:
        raise CirculationError(_l("This loan is no longer open."))
    loan.status = LoanStatus.lost
    loan.returned_at = _now()
    loan.returned_by_id = getattr(actor, "id", None)
    loan.compensation = compensation
    loan.compensation_amount = amount if compensation == Compensation.amount else None
    loan.note = note
    loan.copy.status = CopyStatus.lost
    loan.copy.note = note or str(_l("Lost by a reader"))
    return loan


# --- holds ----------------------------------------------------------------------------------

def place_hold(session, actor, school_id, reader, record_id, today=None):
    today = today or local_today()
    check_reader(reader, today)
    record = session.get(Record, record_id)
    if record is None or record.school_id != school_id or reader.school_id != school_id:
        raise CirculationError(_l("This title is not in your school's catalogue."))
    existing = session.scalar(select(func.count()).select_from(Hold).where(
        Hold.reader_id == reader.id, Hold.record_id == record_id,
        Hold.status.in_([HoldStatus.waiting, HoldStatus.ready])))
    if existing:
        raise CirculationError(_l("%(reader)s already has a hold on “%(title)s”."),
                               reader=reader.full_name, title=record.title)
    hold = Hold(school_id=school_id, record_id=record_id, reader_id=reader.id,
                status=HoldStatus.waiting, placed_at=_now())
    session.add(hold)
    # A copy on the shelf is set aside at once: the desk is told where to fetch it.
    available = session.scalars(select(Copy).where(
        Copy.school_id == school_id, Copy.record_id == record_id,
        Copy.status == CopyStatus.available,
        ~Copy.id.in_(select(Hold.copy_id).where(Hold.status == HoldStatus.ready,
                                                Hold.copy_id.is_not(None))))
        .order_by(Copy.id).limit(1)).first()
    if available is not None:
        settings = policies.settings_for(session, school_id)
        hold.status, hold.copy_id, hold.ready_on = HoldStatus.ready, available.id, today
        hold.expires_on = policies.next_open_day(
            session, school_id, today + datetime.timedelta(days=settings.hold_days), settings)
    session.flush()
    return hold


def cancel_hold(session, actor, school_id, hold_id):
    hold = session.get(Hold, hold_id)
    if hold is None or hold.school_id != school_id:
        raise CirculationError(_l("Hold not found."))
    if hold.status not in (HoldStatus.waiting, HoldStatus.ready):
        raise CirculationError(_l("This hold is already closed."))
    hold.status = HoldStatus.cancelled
    return hold


@functools.cache
def _expired_holds_statement():
    return Direct(select(Hold.id).where(Hold.school_id == bindparam("school_id"),
                                        Hold.status == HoldStatus.ready,
                                        Hold.expires_on < bindparam("today")))


def expire_holds(session, school_id, today=None):
    """Close set-aside holds past their date; their copies go to the next reader waiting.
    Returns the number of holds expired."""
    today = today or local_today()
    ids = [row[0] for row in _expired_holds_statement().rows(
        desk_connection(session), {"school_id": school_id, "today": today})]
    if not ids:  # nearly always: one narrow statement
        return 0
    expired = session.scalars(select(Hold).where(Hold.id.in_(ids)).order_by(Hold.id)).all()
    settings = policies.settings_for(session, school_id)
    for hold in expired:
        hold.status = HoldStatus.expired
        session.flush()
        if hold.copy is not None and hold.copy.status == CopyStatus.available:
            _next_hold(session, school_id, hold.record_id, hold.copy, today, settings)
    return len(expired)


# --- class loans ----------------------------------------------------------------------------

def class_readers(session, school_id, class_name):
    from app.core.i18n import person_sort_key

    readers = session.scalars(select(Reader).where(
        Reader.school_id == school_id, Reader.class_name == class_name,
        Reader.status == ReaderStatus.active)).all()
    return sorted(readers, key=lambda r: person_sort_key(family_and_middle=r.family_name,
                                                         given=r.given_name))


def lend_to_class(session, actor, school_id, class_name, record_ids=(), barcodes=(),
                  holder=None, due_on=None, today=None, note=None):
    """Lend to a whole class in one operation, all or nothing.

    Without `holder`: one copy of each title in `record_ids` to every student of the class
    (textbook handout). With `holder` (the homeroom teacher): the copies in `barcodes` are lent
    to the holder as one class loan (a classroom box).
    """
    today = today or local_today()
    class_name = (class_name or "").strip()
    if not class_name:
        raise CirculationError(_l("Choose a class."))
    now = _now()
    settings = policies.settings_for(session, school_id)
    rules = policies.school_rules(session, school_id)
    plan = []  # (reader, copy, record)
    if holder is None:
        students = class_readers(session, school_id, class_name)
        if not students:
            raise CirculationError(_l("Class %(cls)s has no active reader."), cls=class_name)
        for record_id in record_ids:
            record = session.get(Record, record_id)
            if record is None or record.school_id != school_id:
                raise CirculationError(_l("This title is not in your school's catalogue."))
            copies = session.scalars(select(Copy).where(
                Copy.school_id == school_id, Copy.record_id == record_id,
                Copy.status == CopyStatus.available).order_by(Copy.accession_number)
                .limit(len(students))).all()
            if len(copies) < len(students):
                raise CirculationError(
                    _l("“%(title)s”: %(needed)d copies are needed for class %(cls)s, only "
                       "%(available)d are available."), title=record.title,
                    needed=len(students), cls=class_name, available=len(copies))
            plan.extend((student, copy, record) for student, copy in zip(students, copies))
    else:
        if holder.school_id != school_id:
            raise CirculationError(_l("Reader %(reader)s belongs to another school."),
                                   reader=holder.full_name)
        check_reader(holder, today)
        seen = set()
        for barcode in barcodes:
            if not barcode.strip() or barcode.strip() in seen:
                continue
            seen.add(barcode.strip())
            copy, record = find_copy(session, school_id, barcode)
            if copy.status != CopyStatus.available:
                raise CirculationError(
                    _l("Copy %(copy)s is not on the shelf (%(status)s)."),
                    copy=copy.accession_label, status=copy.status.label)
            plan.append((holder, copy, record))
        if not plan:
            raise CirculationError(_l("Scan the copies of the class loan."))
    if not plan:
        raise CirculationError(_l("Choose the titles to lend to the class."))
    due = due_on
    if due is None:
        # Every check before anything is added: a refusal leaves the session unchanged.
        for reader, _copy, record in plan:
            rule = policies.pick_rule(rules, reader.category_id, record.document_type_id)
            if rule is None:
                raise CirculationError(
                    _l("No loan rule applies to this reader and this document."))
            due = due or policies.due_date(session, school_id, rule, settings, today)
    class_loan = ClassLoan(school_id=school_id, class_name=class_name, loaned_at=now,
                           per_student=holder is None, note=note,
                           holder_id=holder.id if holder else None, due_on=due)
    session.add(class_loan)
    for reader, copy, record in plan:
        session.add(Loan(school_id=school_id, copy=copy, reader=reader,
                         class_loan=class_loan, kind=LoanKind.class_set,
                         status=LoanStatus.active, class_name=class_name, loaned_at=now,
                         due_on=due, loaned_by_id=getattr(actor, "id", None)))
        copy.status = CopyStatus.on_loan
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise CirculationError(_l("One of the copies was just lent at another desk."))
    return class_loan


def return_class_loan(session, actor, school_id, class_loan_id):
    """Take back every copy of a class loan still out; returns how many came back."""
    class_loan = session.get(ClassLoan, class_loan_id)
    if class_loan is None or class_loan.school_id != school_id:
        raise CirculationError(_l("Class loan not found."))
    if class_loan.closed_at is not None:
        raise CirculationError(_l("This class loan has already been returned."))
    now, today = _now(), local_today()
    settings = policies.settings_for(session, school_id)
    count = 0
    for loan in class_loan.loans:
        if loan.status == LoanStatus.active:
            loan.status, loan.returned_at = LoanStatus.returned, now
            loan.returned_by_id = getattr(actor, "id", None)
            loan.copy.status = CopyStatus.available
            session.flush()
            # Like a return at the desk: a reader waiting for the title gets the copy.
            _next_hold(session, school_id, loan.copy.record_id, loan.copy, today, settings)
            count += 1
    class_loan.closed_at = now
    return count


# --- reading room ---------------------------------------------------------------------------

def record_reading(session, actor, school_id, on=None, reader=None, barcode=None,
                   class_name=None, category_id=None, visits=1):
    """Đọc tại chỗ: one copy read in the library, or a visit count for a reader or a class."""
    on = on or local_today()
    if visits is None or visits < 1:
        raise CirculationError(_l("The number of visits must be at least 1."))
    copy = None
    if barcode:
        copy, _record = find_copy(session, school_id, barcode)
    if reader is not None and reader.school_id != school_id:
        raise CirculationError(_l("Reader %(reader)s belongs to another school."),
                               reader=reader.full_name)
    if copy is None and reader is None and not class_name:
        raise CirculationError(_l("Give a reader, a copy or a class."))
    use = ReadingRoomUse(
        school_id=school_id, used_on=on, reader_id=reader.id if reader else None,
        copy_id=copy.id if copy else None,
        class_name=class_name or (reader.class_name if reader else None),
        category_id=category_id or (reader.category_id if reader else None),
        visits=visits, recorded_by_id=getattr(actor, "id", None))
    session.add(use)
    session.flush()
    return use


# --- overdue --------------------------------------------------------------------------------

def overdue_loans(session, school_ids, today=None, class_name=None):
    """Open loans past their due date, by class then reader (for homeroom teachers)."""
    today = today or local_today()
    query = (select(Loan, Reader, Copy, Record)
             .join(Reader, and_(Reader.id == Loan.reader_id))
             .join(Copy, Copy.id == Loan.copy_id).join(Record, Record.id == Copy.record_id)
             .where(Loan.school_id.in_(school_ids), Loan.status == LoanStatus.active,
                    Loan.due_on < today))
    if class_name:
        query = query.where(Reader.class_name == class_name)
    return session.execute(query.order_by(Reader.class_name, Reader.given_name,
                                          Reader.family_name, Loan.due_on)).all()
