"""Weeding rounds (đợt thanh lọc), their proposed copies and the general register's Part II.

A round goes draft → proposed (Mẫu 04) → committee (Mẫu 05, 06a/06b) → approved by the
principal (Mẫu 07a/07b; public display for 15 days) → withdrawn; it may be cancelled before
the withdrawal. Nothing is ever deleted: the round, its items and the copies stay (the
dossier is kept), the copies with status "withdrawn", the note "đã thanh lọc" and the
decision number, and a line of the general register, Part II (xuất kho).
"""
from flask_appbuilder import Model
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import relationship

from app.collection.models import Copy
from app.core.enums import LabeledEnum, N_
from app.core.tenancy import SchoolOwnedMixin
from app.org.models import enum_column


class RoundStatus(LabeledEnum):
    draft = N_("Draft")
    proposed = N_("List drawn up")
    committee = N_("Appraised by the committee")
    approved = N_("Approved, on public display")
    withdrawn = N_("Withdrawn")
    cancelled = N_("Cancelled")


class WeedingReason(LabeledEnum):
    outdated_textbook = N_("Textbook replaced by a new curriculum")
    worn_out = N_("Worn out, not repairable")
    lost = N_("Lost in circulation")
    old_periodical = N_("Periodical older than 2 years")
    outdated_content = N_("Outdated content")
    other = N_("Other reason")


class DisposalMethod(LabeledEnum):
    liquidate = N_("Liquidation")
    repurpose = N_("Change of use")


class WeedingRound(SchoolOwnedMixin, Model):
    """One weeding round of a school, with the data of every form of its dossier."""

    __tablename__ = "weeding_round"
    __label__ = N_("Weeding round")
    # The principal's one write (tenancy.guard_flush): these columns of a round of their own
    # school, nothing else (no new row, no other table).
    __principal_columns__ = frozenset({
        "status", "decision_number", "decision_date", "disposal_method", "approved_by_id",
        "approved_at", "display_from"})

    id = Column(Integer, primary_key=True)
    number = Column(Integer, nullable=False)  # running number of the school's rounds
    name = Column(String(200), nullable=False)
    plan_note = Column(String(1000))  # the weeding plan (step 1)
    status = enum_column(RoundStatus, nullable=False, default=RoundStatus.draft, index=True)
    created_at = Column(DateTime, nullable=False)
    created_by_id = Column(Integer, ForeignKey("ab_user.id"))
    proposed_on = Column(Date)  # Mẫu 04
    # Mẫu 05: the principal's decision forming the appraisal committee.
    committee_decision_number = Column(String(60))
    committee_decision_date = Column(Date)
    committee_members = Column(Text)  # one a line: "Name; position in the committee"
    # Mẫu 06a/06b: the committee's meeting and conclusion.
    appraisal_date = Column(Date)
    appraisal_conclusion = Column(String(1000))
    # Mẫu 07a/07b: the principal's approval.
    decision_number = Column(String(60))
    decision_date = Column(Date)
    disposal_method = enum_column(DisposalMethod)
    approved_by_id = Column(Integer, ForeignKey("ab_user.id"))
    approved_at = Column(DateTime)
    display_from = Column(Date)  # the list is shown publicly for 15 days from this day
    withdrawn_on = Column(Date)
    withdrawn_by_id = Column(Integer, ForeignKey("ab_user.id"))
    cancelled_on = Column(Date)
    cancel_reason = Column(String(500))

    __table_args__ = (
        UniqueConstraint("school_id", "number", name="uq_weeding_round_number"),
        UniqueConstraint("school_id", "id", name="uq_weeding_round_school_id"),
    )

    def __repr__(self):
        return f"{self.number} – {self.name}"


class WeedingItem(SchoolOwnedMixin, Model):
    """A copy proposed in a round, with its reason (one of the TT 02/2020 criteria)."""

    __tablename__ = "weeding_item"
    __label__ = N_("Weeded copy")

    id = Column(Integer, primary_key=True)
    round_id = Column(Integer, nullable=False, index=True)
    round = relationship(WeedingRound, primaryjoin="WeedingItem.round_id == WeedingRound.id",
                         foreign_keys=[round_id], backref="items")
    copy_id = Column(Integer, nullable=False, index=True)
    copy = relationship(Copy, primaryjoin="WeedingItem.copy_id == Copy.id",
                        foreign_keys=[copy_id])
    reason = enum_column(WeedingReason, nullable=False)
    note = Column(String(255))

    __table_args__ = (
        UniqueConstraint("round_id", "copy_id", name="uq_weeding_item_copy"),
        ForeignKeyConstraint(["school_id", "round_id"],
                             ["weeding_round.school_id", "weeding_round.id"],
                             name="fk_weeding_item_round"),
        ForeignKeyConstraint(["school_id", "copy_id"], ["copy.school_id", "copy.id"],
                             name="fk_weeding_item_copy"),
    )


class StockWithdrawal(SchoolOwnedMixin, Model):
    """One line of the general register, Part II (xuất kho): one approved withdrawal."""

    __tablename__ = "stock_withdrawal"
    __label__ = N_("Withdrawal (general register, Part II)")

    id = Column(Integer, primary_key=True)
    register_number = Column(Integer, nullable=False)  # STT of Part II, never resets
    withdrawn_on = Column(Date, nullable=False)
    document_number = Column(String(60), nullable=False)  # the principal's decision
    document_date = Column(Date, nullable=False)
    round_id = Column(Integer, nullable=False)
    round = relationship(WeedingRound,
                         primaryjoin="StockWithdrawal.round_id == WeedingRound.id",
                         foreign_keys=[round_id], backref="withdrawals")
    copies_count = Column(Integer, nullable=False)
    total_value = Column(Numeric(14, 0), nullable=False, default=0)
    note = Column(String(500))

    __table_args__ = (
        UniqueConstraint("school_id", "register_number", name="uq_stock_withdrawal_number"),
        UniqueConstraint("school_id", "id", name="uq_stock_withdrawal_school_id"),
        ForeignKeyConstraint(["school_id", "round_id"],
                             ["weeding_round.school_id", "weeding_round.id"],
                             name="fk_stock_withdrawal_round"),
    )
