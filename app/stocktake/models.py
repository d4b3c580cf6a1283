"""Stocktake (kiểm kê): sessions, scans, per-copy results, Part III register lines, and the
city or office campaigns that schools' sessions take part in.

- A session covers the whole collection or a part (locations, accession series, document
  types, a classification range), stored as its filter; several may be open at once.
- A scan is one copy seen in one session: unique (session, copy), so two people scanning the
  same copy at the same moment count it once (the database refuses the second row).
- Closing computes one result row per copy (outcome, inventory mark C/M) and the Part III
  lines of the general register (totals in, out, remaining by document type and value):
  later registers read them; nothing is recomputed from live data.
"""
from flask_appbuilder import Model
from sqlalchemy import (
    JSON, Boolean, Column, Date, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer,
    Numeric, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import relationship

from app.core.enums import LabeledEnum, N_
from app.core.tenancy import SchoolOwnedMixin
from app.org.models import enum_column


class SessionStatus(LabeledEnum):
    open = N_("Counting")
    closed = N_("Counted and closed")


class MissingAction(LabeledEnum):
    mark_lost = N_("Missing copies marked as lost")
    leave = N_("Missing copies left for the next count")


class Outcome(LabeledEnum):
    found = N_("Found")
    missing = N_("Missing")
    on_loan = N_("On loan (not missing)")
    misplaced = N_("Found, belongs to another part")
    withdrawn = N_("Found, already withdrawn or lost")


class ScanVia(LabeledEnum):
    scanner = N_("Scanner or keyboard")
    camera = N_("Phone camera")
    file = N_("File of barcodes")


class StocktakeCampaign(Model):
    """A city-wide (department) or office-wide stocktake that each school carries out."""

    __tablename__ = "stocktake_campaign"
    __audited__ = True
    __label__ = N_("Stocktake campaign")

    id = Column(Integer, primary_key=True)
    unit_id = Column(Integer, ForeignKey("org_unit.id"), nullable=False, index=True)
    unit = relationship("OrgUnit", foreign_keys=[unit_id])
    name = Column(String(200), nullable=False)
    starts_on = Column(Date, nullable=False)
    ends_on = Column(Date, nullable=False)
    note = Column(String(1000))
    created_by_id = Column(Integer, ForeignKey("ab_user.id"))
    created_at = Column(DateTime, nullable=False)

    def __repr__(self):
        return self.name


class StocktakeSession(SchoolOwnedMixin, Model):
    __tablename__ = "stocktake_session"
    __label__ = N_("Stocktake")

    id = Column(Integer, primary_key=True)
    name = Column(String(200), nullable=False)
    started_on = Column(Date, nullable=False)
    status = enum_column(SessionStatus, nullable=False, default=SessionStatus.open)
    campaign_id = Column(Integer, ForeignKey("stocktake_campaign.id"), index=True)
    campaign = relationship(StocktakeCampaign, backref="sessions")
    # The part counted (empty lists: no limit on that criterion).
    location_ids = Column(JSON, nullable=False, default=list)
    series_ids = Column(JSON, nullable=False, default=list)
    document_type_ids = Column(JSON, nullable=False, default=list)
    class_from = Column(String(30))
    class_to = Column(String(30))
    committee = Column(Text)  # hội đồng kiểm kê: one member a line, "Name – role"
    proposals = Column(Text)  # kiến nghị
    note = Column(String(500))
    missing_action = enum_column(MissingAction)
    expected_count = Column(Integer, nullable=False, default=0)  # at start, then at close
    found_count = Column(Integer)
    missing_count = Column(Integer)
    on_loan_count = Column(Integer)
    misplaced_count = Column(Integer)
    created_by_id = Column(Integer, ForeignKey("ab_user.id"))
    created_at = Column(DateTime, nullable=False)
    closed_at = Column(DateTime)
    closed_by_id = Column(Integer, ForeignKey("ab_user.id"))

    __table_args__ = (
        UniqueConstraint("school_id", "id", name="uq_stocktake_session_school_id"),
        Index("ix_stocktake_session_school_status", "school_id", "status"),
    )

    @property
    def is_partial(self):
        return bool(self.location_ids or self.series_ids or self.document_type_ids
                    or self.class_from or self.class_to)

    def __repr__(self):
        return self.name


class StocktakeScan(SchoolOwnedMixin, Model):
    """A copy seen in a session (once, whoever scanned it first)."""

    __tablename__ = "stocktake_scan"
    __audited__ = False  # thousands per session; the scan table is its own record
    __label__ = N_("Stocktake scan")

    id = Column(Integer, primary_key=True)
    session_id = Column(Integer, nullable=False)
    copy_id = Column(Integer, nullable=False)
    location_id = Column(Integer)  # the shelf the scanner said they were at, if any
    scanned_at = Column(DateTime, nullable=False)
    scanned_by_id = Column(Integer, ForeignKey("ab_user.id"))
    via = enum_column(ScanVia, nullable=False, default=ScanVia.scanner)

    __table_args__ = (
        UniqueConstraint("session_id", "copy_id", name="uq_stocktake_scan_copy"),
        ForeignKeyConstraint(["school_id", "session_id"],
                             ["stocktake_session.school_id", "stocktake_session.id"],
                             name="fk_stocktake_scan_session"),
        ForeignKeyConstraint(["school_id", "copy_id"], ["copy.school_id", "copy.id"],
                             name="fk_stocktake_scan_copy"),
    )


class StocktakeUnknown(SchoolOwnedMixin, Model):
    """A scanned code that is no copy of the school (counted, listed in the results)."""

    __tablename__ = "stocktake_unknown"
    __audited__ = False
    __label__ = N_("Unknown barcode")

    id = Column(Integer, primary_key=True)
    session_id = Column(Integer, nullable=False)
    barcode = Column(String(40), nullable=False)
    times = Column(Integer, nullable=False, default=1)
    first_scanned_at = Column(DateTime, nullable=False)
    scanned_by_id = Column(Integer, ForeignKey("ab_user.id"))

    __table_args__ = (
        UniqueConstraint("session_id", "barcode", name="uq_stocktake_unknown_barcode"),
        ForeignKeyConstraint(["school_id", "session_id"],
                             ["stocktake_session.school_id", "stocktake_session.id"],
                             name="fk_stocktake_unknown_session"),
    )


class StocktakeResult(SchoolOwnedMixin, Model):
    """One copy's result in a closed session, with its inventory mark (C còn / M mất)."""

    __tablename__ = "stocktake_result"
    __audited__ = False  # written once at close, in bulk
    __label__ = N_("Stocktake result")

    id = Column(Integer, primary_key=True)
    session_id = Column(Integer, nullable=False)
    copy_id = Column(Integer, nullable=False)
    outcome = enum_column(Outcome, nullable=False)
    mark = Column(String(1), nullable=False)  # "C" or "M"
    marked_lost = Column(Boolean, nullable=False, default=False)
    document_type_id = Column(Integer)  # as at the close
    location_id = Column(Integer)
    price = Column(Numeric(14, 0))

    __table_args__ = (
        UniqueConstraint("session_id", "copy_id", name="uq_stocktake_result_copy"),
        Index("ix_stocktake_result_copy", "copy_id"),
        ForeignKeyConstraint(["school_id", "session_id"],
                             ["stocktake_session.school_id", "stocktake_session.id"],
                             name="fk_stocktake_result_session"),
        ForeignKeyConstraint(["school_id", "copy_id"], ["copy.school_id", "copy.id"],
                             name="fk_stocktake_result_copy"),
    )


class StocktakeRegisterLine(SchoolOwnedMixin, Model):
    """General register, Part III (kiểm kê): one line per document type and a total line."""

    __tablename__ = "stocktake_register_line"
    __audited__ = False
    __label__ = N_("General register – inventory line")

    id = Column(Integer, primary_key=True)
    session_id = Column(Integer, nullable=False)
    position = Column(Integer, nullable=False)
    is_total = Column(Boolean, nullable=False, default=False)
    document_type_id = Column(Integer, ForeignKey("document_type.id"))
    label = Column(String(120), nullable=False)
    copies_in = Column(Integer, nullable=False)
    value_in = Column(Numeric(16, 0), nullable=False)
    copies_out = Column(Integer, nullable=False)
    value_out = Column(Numeric(16, 0), nullable=False)
    copies_remaining = Column(Integer, nullable=False)
    value_remaining = Column(Numeric(16, 0), nullable=False)
    copies_found = Column(Integer, nullable=False)
    value_found = Column(Numeric(16, 0), nullable=False)
    copies_on_loan = Column(Integer, nullable=False)
    copies_missing = Column(Integer, nullable=False)
    value_missing = Column(Numeric(16, 0), nullable=False)

    __table_args__ = (
        UniqueConstraint("session_id", "position", name="uq_stocktake_register_line"),
        ForeignKeyConstraint(["school_id", "session_id"],
                             ["stocktake_session.school_id", "stocktake_session.id"],
                             name="fk_stocktake_register_line_session"),
    )
