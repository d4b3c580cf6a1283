"""Readers (bạn đọc): students, teachers and staff of a school, with their library card."""
from flask_appbuilder import Model
from sqlalchemy import (
    Column, Date, DateTime, ForeignKey, Index, Integer, JSON, LargeBinary, String,
    UniqueConstraint,
)
from sqlalchemy.orm import deferred, relationship

from app.core.enums import LabeledEnum, N_
from app.core.i18n import local_today
from app.core.tenancy import SchoolOwnedMixin
from app.org.models import enum_column


class ReaderKind(LabeledEnum):
    student = N_("Student")
    teacher = N_("Teacher")
    staff = N_("Staff")


class Gender(LabeledEnum):
    female = N_("Female")
    male = N_("Male")


class ReaderStatus(LabeledEnum):
    active = N_("Active")
    suspended = N_("Suspended")
    graduated = N_("Graduated")
    left = N_("Left the school")


class ReaderCategory(Model):
    """Học sinh, giáo viên, cán bộ nhân viên... (city-wide, editable by the department)."""

    __tablename__ = "reader_category"
    __audited__ = True
    __label__ = N_("Reader category")

    id = Column(Integer, primary_key=True)
    code = Column(String(20), unique=True, nullable=False)
    name = Column(String(120), nullable=False)
    kind = enum_column(ReaderKind, nullable=False, default=ReaderKind.student)

    def __repr__(self):
        return self.name


class Reader(SchoolOwnedMixin, Model):
    """A reader of one school. The loan history stays attached to the reader for ever."""

    __tablename__ = "reader"
    __label__ = N_("Reader")
    # Vietnamese order: by given name, then family and middle names.
    __sort_with__ = {"given_name": ("family_name",), "family_name": ("given_name",)}

    id = Column(Integer, primary_key=True)
    category_id = Column(Integer, ForeignKey("reader_category.id"), nullable=False)
    category = relationship(ReaderCategory, lazy="joined")
    code = Column(String(40))  # mã học sinh / mã định danh from the school-management software
    family_name = Column(String(120), nullable=False)  # họ và tên đệm
    given_name = Column(String(60), nullable=False)  # tên
    class_name = Column(String(30))  # lớp 6A1; empty for staff
    grade = Column(Integer)  # khối 1..12
    date_of_birth = Column(Date)
    gender = enum_column(Gender)
    phone = Column(String(30))
    email = Column(String(120))
    photo = deferred(Column(LargeBinary))  # JPEG/PNG, small; loaded only for cards
    card_number = Column(String(40), nullable=False)
    barcode = Column(String(40), nullable=False)
    valid_until = Column(Date)
    status = enum_column(ReaderStatus, nullable=False, default=ReaderStatus.active)
    user_id = Column(Integer, ForeignKey("ab_user.id"))  # the reader's own account, if any
    note = Column(String(255))
    # Day the reader was registered in the library ("new readers" of a period).
    registered_on = Column(Date, default=local_today, index=True)

    __table_args__ = (
        UniqueConstraint("school_id", "card_number", name="uq_reader_card"),
        UniqueConstraint("school_id", "barcode", name="uq_reader_barcode"),
        UniqueConstraint("school_id", "id", name="uq_reader_school_id"),
        Index("ix_reader_school_code", "school_id", "code"),
        Index("ix_reader_school_class", "school_id", "class_name"),
    )

    @property
    def full_name(self):
        return f"{self.family_name} {self.given_name}".strip()

    def __repr__(self):
        return self.full_name


class ReaderImportMapping(SchoolOwnedMixin, Model):
    """The column mapping a school chose for its class-list files (remembered once set)."""

    __tablename__ = "reader_import_mapping"
    __audited__ = False
    __label__ = N_("Reader import mapping")

    id = Column(Integer, primary_key=True)
    mapping = Column(JSON, nullable=False, default=dict)  # field -> column header

    __table_args__ = (UniqueConstraint("school_id", name="uq_reader_import_mapping_school"),)


class RolloverStatus(LabeledEnum):
    applied = N_("Applied (can still be undone)")
    confirmed = N_("Confirmed")
    undone = N_("Undone")


class YearRollover(SchoolOwnedMixin, Model):
    """Chuyển năm học: the promotion applied to a school's readers, undoable until confirmed.

    `snapshot` keeps every changed reader's class, grade and status before the promotion so
    that undo restores them exactly; loans keep the class they were made in.
    """

    __tablename__ = "year_rollover"
    __label__ = N_("School-year rollover")

    id = Column(Integer, primary_key=True)
    from_year_id = Column(Integer, ForeignKey("school_year.id"), nullable=False)
    from_year = relationship("SchoolYear", foreign_keys=[from_year_id])
    to_year_id = Column(Integer, ForeignKey("school_year.id"), nullable=False)
    to_year = relationship("SchoolYear", foreign_keys=[to_year_id])
    class_mapping = Column(JSON, nullable=False, default=dict)  # "6A1" -> "7A1" | "" = graduates
    snapshot = deferred(Column(JSON, nullable=False, default=dict))
    status = enum_column(RolloverStatus, nullable=False, default=RolloverStatus.applied)
    applied_at = Column(DateTime, nullable=False)
    confirmed_at = Column(DateTime)
    readers_promoted = Column(Integer, nullable=False, default=0)
    readers_graduated = Column(Integer, nullable=False, default=0)
