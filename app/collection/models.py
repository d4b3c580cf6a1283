"""Shelving locations of a school library (kho mở, kho đóng, phòng đọc, tủ sách lớp).

The first school-owned table: copies (issue 4) are shelved at a location.
"""
from flask_appbuilder import Model
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import relationship

from app.catalog.models import ClassificationScheme, Record
from app.core.enums import LabeledEnum, N_
from app.core.tenancy import SchoolOwnedMixin
from app.org.models import enum_column


class LocationKind(LabeledEnum):
    open_stack = N_("Open stacks")
    closed_stack = N_("Closed stacks")
    reading_room = N_("Reading room")
    class_shelf = N_("Classroom bookshelf")
    other = N_("Other")


class Location(SchoolOwnedMixin, Model):
    __tablename__ = "location"
    __label__ = N_("Shelving location")

    id = Column(Integer, primary_key=True)
    code = Column(String(20), nullable=False)
    name = Column(String(120), nullable=False)
    kind = enum_column(LocationKind, nullable=False, default=LocationKind.open_stack)
    is_active = Column(Boolean, nullable=False, default=True)
    note = Column(String(255))

    __table_args__ = (
        UniqueConstraint("school_id", "code", name="uq_location_school_code"),
        # Target of composite foreign keys that keep copies in their school (issue 4).
        UniqueConstraint("school_id", "id", name="uq_location_school_id"),
    )

    def __repr__(self):
        return self.name


class Funding(LabeledEnum):
    state_budget = N_("State budget")
    socialization = N_("Socialisation (xã hội hóa)")
    donation = N_("Donation")
    other = N_("Other")


class CopyStatus(LabeledEnum):
    available = N_("Available")
    on_loan = N_("On loan")
    reading_room_only = N_("Reading room only")
    lost = N_("Lost")
    damaged = N_("Damaged")
    withdrawn = N_("Withdrawn")


class AuthorMarkRule(LabeledEnum):
    given_name = N_("First letters of the author's given name")
    family_name = N_("First letters of the author's family name")
    title = N_("First letters of the title")


class LibrarySettings(SchoolOwnedMixin, Model):
    """A school's cataloguing choices (one row per school)."""

    __tablename__ = "library_settings"
    __label__ = N_("Library settings")

    id = Column(Integer, primary_key=True)
    scheme_id = Column(Integer, ForeignKey("classification_scheme.id"))
    scheme = relationship(ClassificationScheme)
    author_mark_rule = enum_column(AuthorMarkRule, nullable=False,
                                   default=AuthorMarkRule.given_name)
    author_mark_length = Column(Integer, nullable=False, default=3)
    barcode_prefix = Column(String(12))  # defaults to the school code

    __table_args__ = (UniqueConstraint("school_id", name="uq_library_settings_school"),)


class AccessionSeries(SchoolOwnedMixin, Model):
    """A series of accession numbers with its own individual register (SGK, STK, SNV, STN...)."""

    __tablename__ = "accession_series"
    __label__ = N_("Accession series")

    id = Column(Integer, primary_key=True)
    code = Column(String(10), nullable=False)
    name = Column(String(120), nullable=False)
    prefix = Column(String(10), nullable=False, default="")
    separator = Column(String(3), nullable=False, default="-")
    padding = Column(Integer, nullable=False, default=5)
    # Textbooks: numbered per title and volume, restarting at 1 (registers.md §4).
    is_textbook = Column(Boolean, nullable=False, default=False)

    __table_args__ = (
        UniqueConstraint("school_id", "code", name="uq_accession_series_code"),
        UniqueConstraint("school_id", "id", name="uq_accession_series_school_id"),
    )

    def format(self, number):
        return f"{self.prefix}{self.separator}{number:0{self.padding}d}"

    def __repr__(self):
        return f"{self.code} – {self.name}"


class Counter(SchoolOwnedMixin, Model):
    """Gap-free numbering per school and key, allocated atomically (see collection.numbering)."""

    __tablename__ = "counter"
    __audited__ = False

    id = Column(Integer, primary_key=True)
    key = Column(String(60), nullable=False)
    last_value = Column(Integer, nullable=False, default=0)

    __table_args__ = (UniqueConstraint("school_id", "key", name="uq_counter_key"),)


class Intake(SchoolOwnedMixin, Model):
    """One line of the general register, Part I (nhập kho): one delivery note or gift record."""

    __tablename__ = "intake"
    __label__ = N_("Intake")

    id = Column(Integer, primary_key=True)
    register_number = Column(Integer, nullable=False)  # số vào sổ tổng quát, never resets
    received_on = Column(Date, nullable=False)
    source = Column(String(255), nullable=False)  # nguồn cung cấp
    document_number = Column(String(60))  # số chứng từ
    funding = enum_column(Funding, nullable=False, default=Funding.state_budget)
    note = Column(String(500))

    __table_args__ = (
        UniqueConstraint("school_id", "register_number", name="uq_intake_number"),
        UniqueConstraint("school_id", "id", name="uq_intake_school_id"),
    )

    def __repr__(self):
        return f"{self.register_number} – {self.source}"


class Copy(SchoolOwnedMixin, Model):
    """A physical copy (bản sách, cá biệt) with its accession number, in its school only."""

    __tablename__ = "copy"
    __label__ = N_("Copy")

    id = Column(Integer, primary_key=True)
    record_id = Column(Integer, nullable=False, index=True)
    record = relationship(Record, primaryjoin="Copy.record_id == Record.id",
                          foreign_keys=[record_id], backref="copies")
    series_id = Column(Integer, nullable=False)
    series = relationship(AccessionSeries, primaryjoin="Copy.series_id == AccessionSeries.id",
                          foreign_keys=[series_id])
    # Textbooks number per record (title + volume); other series per series: this key is the
    # record id for textbooks and 0 otherwise, so one unique constraint covers both rules.
    sequence_key = Column(Integer, nullable=False, default=0)
    accession_number = Column(Integer, nullable=False)
    accession_label = Column(String(30), nullable=False)  # "STK-00012" as written on the book
    barcode = Column(String(40), nullable=False)
    location_id = Column(Integer)
    location = relationship(Location, primaryjoin="Copy.location_id == Location.id",
                            foreign_keys=[location_id])
    intake_id = Column(Integer)
    intake = relationship(Intake, primaryjoin="Copy.intake_id == Intake.id",
                          foreign_keys=[intake_id], backref="copies")
    status = enum_column(CopyStatus, nullable=False, default=CopyStatus.available, index=True)
    price = Column(Numeric(14, 0))
    funding = enum_column(Funding)
    acquisition_source = Column(String(255))
    note = Column(String(500))  # "đã thanh lọc, QĐ số ...", lost, compensated
    # Withdrawn copies: the line of the general register, Part II, that took them out
    # (app.weeding). The row and its accession number stay for ever.
    withdrawal_id = Column(Integer)

    __table_args__ = (
        UniqueConstraint("school_id", "series_id", "sequence_key", "accession_number",
                         name="uq_copy_accession"),
        UniqueConstraint("school_id", "barcode", name="uq_copy_barcode"),
        UniqueConstraint("school_id", "id", name="uq_copy_school_id"),  # for loans' composite FKs
        # Composite keys keep every link inside the copy's own school.
        ForeignKeyConstraint(["school_id", "record_id"], ["record.school_id", "record.id"],
                             name="fk_copy_record"),
        ForeignKeyConstraint(["school_id", "series_id"],
                             ["accession_series.school_id", "accession_series.id"],
                             name="fk_copy_series"),
        ForeignKeyConstraint(["school_id", "location_id"], ["location.school_id", "location.id"],
                             name="fk_copy_location"),
        ForeignKeyConstraint(["school_id", "intake_id"], ["intake.school_id", "intake.id"],
                             name="fk_copy_intake"),
        ForeignKeyConstraint(["school_id", "withdrawal_id"],
                             ["stock_withdrawal.school_id", "stock_withdrawal.id"],
                             name="fk_copy_withdrawal"),
    )

    def __repr__(self):
        return self.accession_label
