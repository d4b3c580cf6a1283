"""Aggregates behind the statistics of many schools (an office, the city).

One school's statistics are computed live from its own tables (app.statistics.sources);
the same statements, grouped by school and month, fill `stat_monthly` (use in a month:
loans, reads, visits, acquisitions, new readers) and `stat_snapshot` (the state now:
holdings, readers, overdue loans). `stat_refresh` says when each school was last counted:
the pages show that time, so a figure is never older than it says.
"""
from flask_appbuilder import Model
from sqlalchemy import Column, Date, DateTime, ForeignKey, Index, Integer, Numeric, String


class StatMonthly(Model):
    """A count (and an amount) of one school in one month: metric 'loans.grade', key '6'."""

    __tablename__ = "stat_monthly"
    __audited__ = False  # derived data, rebuilt from the source tables

    id = Column(Integer, primary_key=True)
    school_id = Column(Integer, ForeignKey("org_unit.id"), nullable=False)
    month = Column(Date, nullable=False)  # first day of the month
    metric = Column(String(40), nullable=False)
    key = Column(String(60), nullable=False, default="")
    count = Column(Integer, nullable=False, default=0)
    amount = Column(Numeric(16, 0))

    __table_args__ = (
        Index("ix_stat_monthly_school_month", "school_id", "month"),
        Index("ix_stat_monthly_metric_month", "metric", "month"),
    )


class StatSnapshot(Model):
    """A count of one school at its last refresh: metric 'copies.doctype', key '3'."""

    __tablename__ = "stat_snapshot"
    __audited__ = False

    id = Column(Integer, primary_key=True)
    school_id = Column(Integer, ForeignKey("org_unit.id"), nullable=False)
    metric = Column(String(40), nullable=False)
    key = Column(String(60), nullable=False, default="")
    count = Column(Integer, nullable=False, default=0)
    amount = Column(Numeric(16, 0))

    __table_args__ = (
        Index("ix_stat_snapshot_school", "school_id"),
        Index("ix_stat_snapshot_metric", "metric"),
    )


class StatRefresh(Model):
    """When a school's aggregates were last rebuilt."""

    __tablename__ = "stat_refresh"
    __audited__ = False

    school_id = Column(Integer, ForeignKey("org_unit.id"), primary_key=True)
    refreshed_at = Column(DateTime, nullable=False)
