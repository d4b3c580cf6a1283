"""Newspapers and magazines (báo, tạp chí): a subscription per title and year, and the
issues received under it. They feed the periodicals register (sổ đăng ký báo, tạp chí)
and the library report's acquisitions of newspapers and magazines.

The title itself is a catalogue record of document type "Báo, tạp chí" (BC); issues are
not copies: they are not given accession numbers (registers.md: periodicals are not
entered in the general or individual registers).
"""
from flask_appbuilder import Model
from sqlalchemy import (
    Column,
    Date,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import relationship

from app.catalog.models import Record
from app.collection.models import Funding
from app.core.enums import LabeledEnum, N_
from app.core.tenancy import SchoolOwnedMixin
from app.org.models import enum_column


class Frequency(LabeledEnum):
    daily = N_("Daily")
    weekly = N_("Weekly")
    twice_monthly = N_("Twice a month")
    monthly = N_("Once a month")
    bimonthly = N_("Every two months")
    quarterly = N_("Quarterly")
    irregular = N_("Irregular")


# Issues expected in a year, per frequency (None: not known in advance).
ISSUES_PER_YEAR = {
    Frequency.daily: 365, Frequency.weekly: 52, Frequency.twice_monthly: 24,
    Frequency.monthly: 12, Frequency.bimonthly: 6, Frequency.quarterly: 4,
    Frequency.irregular: None,
}


class PeriodicalSubscription(SchoolOwnedMixin, Model):
    """One title subscribed for one year (one page of the periodicals register)."""

    __tablename__ = "periodical_subscription"
    __label__ = N_("Periodical subscription")

    id = Column(Integer, primary_key=True)
    record_id = Column(Integer, nullable=False, index=True)
    record = relationship(Record, primaryjoin="PeriodicalSubscription.record_id == Record.id",
                          foreign_keys=[record_id])
    year = Column(Integer, nullable=False)
    frequency = enum_column(Frequency, nullable=False, default=Frequency.weekly)
    issuing_body = Column(String(255))  # cơ quan xuất bản, when not the record's publisher
    copies_per_issue = Column(Integer, nullable=False, default=1)
    price = Column(Numeric(14, 0))  # giá đặt mua for the year (VND)
    issue_price = Column(Numeric(14, 0))  # giá một số (VND), for the acquisitions' value
    funding = enum_column(Funding, nullable=False, default=Funding.state_budget)
    note = Column(String(500))

    __table_args__ = (
        UniqueConstraint("school_id", "record_id", "year", name="uq_periodical_subscription"),
        UniqueConstraint("school_id", "id", name="uq_periodical_subscription_school_id"),
        ForeignKeyConstraint(["school_id", "record_id"], ["record.school_id", "record.id"],
                             name="fk_periodical_subscription_record"),
    )

    @property
    def title(self):
        return self.record.title if self.record is not None else ""

    @property
    def issuer(self):
        """The issuing body: its own, else the record's publisher."""
        if self.issuing_body:
            return self.issuing_body
        return (self.record.publisher or "") if self.record is not None else ""

    def __repr__(self):
        return f"{self.title} ({self.year})"


class PeriodicalIssue(SchoolOwnedMixin, Model):
    """One issue of a subscription, received on a day (a line of the register)."""

    __tablename__ = "periodical_issue"
    __label__ = N_("Periodical issue")

    id = Column(Integer, primary_key=True)
    subscription_id = Column(Integer, nullable=False, index=True)
    subscription = relationship(
        PeriodicalSubscription,
        primaryjoin="PeriodicalIssue.subscription_id == PeriodicalSubscription.id",
        foreign_keys=[subscription_id], backref="issues")
    number = Column(String(30), nullable=False)  # "125", "Số 12", "Xuân 2026"
    issue_date = Column(Date, nullable=False)  # ngày phát hành
    received_on = Column(Date, nullable=False, index=True)  # ngày nhận
    copies = Column(Integer, nullable=False, default=1)
    note = Column(String(255))

    __table_args__ = (
        UniqueConstraint("school_id", "subscription_id", "number",
                         name="uq_periodical_issue_number"),
        ForeignKeyConstraint(["school_id", "subscription_id"],
                             ["periodical_subscription.school_id",
                              "periodical_subscription.id"],
                             name="fk_periodical_issue_subscription"),
    )

    def __repr__(self):
        return self.number
