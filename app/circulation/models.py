"""Circulation: loans (the loan register, sổ mượn), holds, rules, closed days, reading-room use.

Loans are never deleted: the table is the loan register. A copy is never on two open loans:
a partial unique index on copy_id over open loans makes the database refuse the second one.
"""
from flask_appbuilder import Model
from sqlalchemy import (
    Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, ForeignKeyConstraint, Index,
    Integer, Numeric, String, UniqueConstraint, text,
)
from sqlalchemy.orm import relationship

from app.catalog.models import DocumentType, Record
from app.collection.models import Copy
from app.core.enums import LabeledEnum, N_
from app.core.tenancy import SchoolOwnedMixin
from app.org.models import enum_column
from app.readers.models import Reader, ReaderCategory


class LoanStatus(LabeledEnum):
    active = N_("On loan")
    returned = N_("Returned")
    lost = N_("Lost")
    cancelled = N_("Cancelled")


class LoanKind(LabeledEnum):
    home = N_("Home loan")
    class_set = N_("Class loan")


class Compensation(LabeledEnum):
    replacement = N_("Replacement copy")
    amount = N_("Amount of money")
    waived = N_("Waived")


class HoldStatus(LabeledEnum):
    waiting = N_("Waiting")
    ready = N_("Set aside")
    fulfilled = N_("Fulfilled")
    cancelled = N_("Cancelled")
    expired = N_("Expired")


class LoanRule(Model):
    """One cell of the rules matrix: reader category × document type → loan terms.

    school_id NULL = the department's default for the city; a school's own rule wins. An empty
    category or document type matches any; the most specific rule applies.
    """

    __tablename__ = "loan_rule"
    __audited__ = True
    __label__ = N_("Loan rule")

    id = Column(Integer, primary_key=True)
    school_id = Column(Integer, ForeignKey("org_unit.id"), index=True)
    school = relationship("OrgUnit", foreign_keys=[school_id])
    category_id = Column(Integer, ForeignKey("reader_category.id"))
    category = relationship(ReaderCategory)
    document_type_id = Column(Integer, ForeignKey("document_type.id"))
    document_type = relationship(DocumentType)
    loan_days = Column(Integer)  # NULL with until_year_end
    until_year_end = Column(Boolean, nullable=False, default=False)  # textbooks
    max_items = Column(Integer, nullable=False, default=3)
    renewals = Column(Integer, nullable=False, default=1)
    renewal_days = Column(Integer)
    reading_room_only = Column(Boolean, nullable=False, default=False)

    __table_args__ = (
        CheckConstraint("loan_days IS NULL OR loan_days > 0", name="ck_loan_rule_days"),
        CheckConstraint("max_items >= 0 AND renewals >= 0", name="ck_loan_rule_limits"),
    )


class ClosedDay(Model):
    """A day the library is closed: holidays and Tết for the city (school_id NULL, set by the
    department) or a school's own closed day. Due dates move to the next open day."""

    __tablename__ = "closed_day"
    __audited__ = True
    __label__ = N_("Closed day")

    id = Column(Integer, primary_key=True)
    school_id = Column(Integer, ForeignKey("org_unit.id"), index=True)
    school = relationship("OrgUnit", foreign_keys=[school_id])
    day = Column(Date, nullable=False, index=True)
    name = Column(String(120), nullable=False)

    __table_args__ = (UniqueConstraint("school_id", "day", name="uq_closed_day"),)


class CirculationSettings(SchoolOwnedMixin, Model):
    """A school's circulation choices (one row per school, created with defaults)."""

    __tablename__ = "circulation_settings"
    __label__ = N_("Circulation settings")

    id = Column(Integer, primary_key=True)
    closed_on_sundays = Column(Boolean, nullable=False, default=True)
    closed_on_saturdays = Column(Boolean, nullable=False, default=False)
    hold_days = Column(Integer, nullable=False, default=3)  # a set-aside hold expires after
    fines_enabled = Column(Boolean, nullable=False, default=False)
    fine_per_day = Column(Numeric(12, 0), nullable=False, default=0)
    undo_minutes = Column(Integer, nullable=False, default=10)  # a wrong checkout is cancellable

    __table_args__ = (UniqueConstraint("school_id", name="uq_circulation_settings_school"),)


class ClassLoan(SchoolOwnedMixin, Model):
    """A set of books lent to a whole class at once (textbooks, a classroom box)."""

    __tablename__ = "class_loan"
    __label__ = N_("Class loan")

    id = Column(Integer, primary_key=True)
    class_name = Column(String(30), nullable=False)
    holder_id = Column(Integer)  # the homeroom teacher when the class loan is held by one reader
    holder = relationship(Reader, primaryjoin="ClassLoan.holder_id == Reader.id",
                          foreign_keys=[holder_id])
    per_student = Column(Boolean, nullable=False, default=True)
    loaned_at = Column(DateTime, nullable=False)
    due_on = Column(Date, nullable=False)
    closed_at = Column(DateTime)
    note = Column(String(255))

    __table_args__ = (
        UniqueConstraint("school_id", "id", name="uq_class_loan_school_id"),
        ForeignKeyConstraint(["school_id", "holder_id"], ["reader.school_id", "reader.id"],
                             name="fk_class_loan_holder"),
    )

    def __repr__(self):
        return self.class_name


class Loan(SchoolOwnedMixin, Model):
    """One copy lent to one reader: a line of the loan register (sổ mượn)."""

    __tablename__ = "loan"
    __label__ = N_("Loan")
    # The loan register is its own history (who lent, who took back, when): an audit row per
    # checkout and return would double 25–50 M rows a year for nothing.
    __audited__ = False

    id = Column(Integer, primary_key=True)
    copy_id = Column(Integer, nullable=False)
    copy = relationship(Copy, primaryjoin="Loan.copy_id == Copy.id", foreign_keys=[copy_id])
    reader_id = Column(Integer, nullable=False)
    reader = relationship(Reader, primaryjoin="Loan.reader_id == Reader.id",
                          foreign_keys=[reader_id], backref="loans")
    class_loan_id = Column(Integer)
    class_loan = relationship(ClassLoan, primaryjoin="Loan.class_loan_id == ClassLoan.id",
                              foreign_keys=[class_loan_id], backref="loans")
    kind = enum_column(LoanKind, nullable=False, default=LoanKind.home)
    status = enum_column(LoanStatus, nullable=False, default=LoanStatus.active)
    class_name = Column(String(30))  # the reader's class on the loan day (registers by class)
    loaned_at = Column(DateTime, nullable=False)
    due_on = Column(Date, nullable=False)
    returned_at = Column(DateTime)
    renewals = Column(Integer, nullable=False, default=0)
    loaned_by_id = Column(Integer, ForeignKey("ab_user.id"))
    returned_by_id = Column(Integer, ForeignKey("ab_user.id"))
    fine = Column(Numeric(12, 0))
    compensation = enum_column(Compensation)
    compensation_amount = Column(Numeric(12, 0))
    compensation_settled_on = Column(Date)
    note = Column(String(255))

    __table_args__ = (
        ForeignKeyConstraint(["school_id", "copy_id"], ["copy.school_id", "copy.id"],
                             name="fk_loan_copy"),
        ForeignKeyConstraint(["school_id", "reader_id"], ["reader.school_id", "reader.id"],
                             name="fk_loan_reader"),
        ForeignKeyConstraint(["school_id", "class_loan_id"],
                             ["class_loan.school_id", "class_loan.id"], name="fk_loan_class_loan"),
        # A copy is on at most one open loan: the database itself refuses a second checkout.
        Index("uq_loan_open_copy", "copy_id", unique=True,
              postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'")),
        Index("ix_loan_reader_status", "reader_id", "status"),
        Index("ix_loan_school_due", "school_id", "status", "due_on"),
        Index("ix_loan_school_loaned_at", "school_id", "loaned_at"),
    )


class Hold(SchoolOwnedMixin, Model):
    """Đặt trước: a reader waits for a title; a returned copy is set aside for the first one."""

    __tablename__ = "hold"
    __label__ = N_("Hold")

    id = Column(Integer, primary_key=True)
    record_id = Column(Integer, nullable=False)
    record = relationship(Record, primaryjoin="Hold.record_id == Record.id",
                          foreign_keys=[record_id])
    reader_id = Column(Integer, nullable=False)
    reader = relationship(Reader, primaryjoin="Hold.reader_id == Reader.id",
                          foreign_keys=[reader_id])
    copy_id = Column(Integer)  # the copy set aside
    copy = relationship(Copy, primaryjoin="Hold.copy_id == Copy.id", foreign_keys=[copy_id])
    status = enum_column(HoldStatus, nullable=False, default=HoldStatus.waiting)
    placed_at = Column(DateTime, nullable=False)
    ready_on = Column(Date)
    expires_on = Column(Date)

    __table_args__ = (
        ForeignKeyConstraint(["school_id", "record_id"], ["record.school_id", "record.id"],
                             name="fk_hold_record"),
        ForeignKeyConstraint(["school_id", "reader_id"], ["reader.school_id", "reader.id"],
                             name="fk_hold_reader"),
        ForeignKeyConstraint(["school_id", "copy_id"], ["copy.school_id", "copy.id"],
                             name="fk_hold_copy"),
        Index("ix_hold_record_status", "record_id", "status"),
        Index("ix_hold_copy_status", "copy_id", "status"),
        Index("ix_hold_reader_status", "reader_id", "status"),
    )


class ReadingRoomUse(SchoolOwnedMixin, Model):
    """Đọc tại chỗ: a copy read in the library, or a visit count (per reader or per class).

    Feeds lượt đọc (uses) and lượt bạn đọc (visits) in the statistics.
    """

    __tablename__ = "reading_room_use"
    __audited__ = False
    __label__ = N_("Reading-room use")

    id = Column(Integer, primary_key=True)
    used_on = Column(Date, nullable=False)
    reader_id = Column(Integer)
    reader = relationship(Reader, primaryjoin="ReadingRoomUse.reader_id == Reader.id",
                          foreign_keys=[reader_id])
    copy_id = Column(Integer)
    copy = relationship(Copy, primaryjoin="ReadingRoomUse.copy_id == Copy.id",
                        foreign_keys=[copy_id])
    class_name = Column(String(30))
    category_id = Column(Integer, ForeignKey("reader_category.id"))
    category = relationship(ReaderCategory)
    visits = Column(Integer, nullable=False, default=1)  # readers counted in this line
    recorded_by_id = Column(Integer, ForeignKey("ab_user.id"))

    __table_args__ = (
        ForeignKeyConstraint(["school_id", "reader_id"], ["reader.school_id", "reader.id"],
                             name="fk_reading_room_reader"),
        ForeignKeyConstraint(["school_id", "copy_id"], ["copy.school_id", "copy.id"],
                             name="fk_reading_room_copy"),
        CheckConstraint("visits > 0", name="ck_reading_room_visits"),
        Index("ix_reading_room_school_day", "school_id", "used_on"),
    )
