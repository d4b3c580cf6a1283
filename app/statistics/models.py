"""Aggregates behind the statistics of many schools (an office, the city).

One school's statistics are computed live from its own tables (app.statistics.sources);
the same statements, grouped by school and month, fill `stat_monthly` (use in a month:
loans, reads, visits, acquisitions, new readers) and `stat_snapshot` (the state now:
holdings, readers, overdue loans). `stat_refresh` says when each school was last counted:
the pages show that time, so a figure is never older than it says.
"""
from flask_appbuilder import Model
from sqlalchemy import (
    CheckConstraint, Column, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text,
)

from app.core.enums import LabeledEnum, N_
from app.core.i18n import local_today
from app.core.tenancy import SchoolOwnedMixin
from app.org.models import enum_column


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

    # The pages read one metric over some months: the whole city along (metric, month), an
    # office or a ward school by school along (metric, school_id); on PostgreSQL both carry
    # the figures (INCLUDE) so that neither visits the table (index-only scans, kept so by
    # the VACUUM after `flask stats-refresh`). The refresh deletes by (school_id, month).
    __table_args__ = (
        Index("ix_stat_monthly_school_month", "school_id", "month"),
        Index("ix_stat_monthly_metric_month", "metric", "month", "school_id", "key",
              postgresql_include=["count", "amount"]),
        Index("ix_stat_monthly_metric_school", "metric", "school_id", "month", "key",
              postgresql_include=["count", "amount"]),
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
        # As stat_monthly's: an office reads its schools' rows of one metric by index only.
        Index("ix_stat_snapshot_metric", "metric", "school_id", "key",
              postgresql_include=["count", "amount"]),
    )


class StatRefresh(Model):
    """When a school's aggregates were last rebuilt."""

    __tablename__ = "stat_refresh"
    __audited__ = False

    school_id = Column(Integer, ForeignKey("org_unit.id"), primary_key=True)
    refreshed_at = Column(DateTime, nullable=False)


class ReportKind(LabeledEnum):
    month = N_("Monthly")
    semester = N_("Semester")
    year = N_("Annual")


class LibraryReport(SchoolOwnedMixin, Model):
    """Báo cáo công tác thư viện: the school's monthly, semester or annual report. Figures
    come from the data when it is shown (app.statistics.library_report); the librarian
    types the parts that are words (activities, requests, proposals)."""

    __tablename__ = "library_report"
    __label__ = N_("Library report")

    id = Column(Integer, primary_key=True)
    kind = enum_column(ReportKind, nullable=False, default=ReportKind.month)
    starts_on = Column(Date, nullable=False)
    ends_on = Column(Date, nullable=False)
    activities = Column(Text)  # II.2 hoạt động đã tổ chức
    coordination = Column(Text)  # II.3 phối hợp (Tổng phụ trách Đội, hội thi...)
    teacher_requests = Column(Text)  # III. nhu cầu của giáo viên
    student_requests = Column(Text)  # III. nhu cầu của học sinh
    school_proposals = Column(Text)  # IV. đề xuất với nhà trường
    office_proposals = Column(Text)  # IV. đề xuất với Phòng GD&ĐT / Sở
    written_on = Column(Date, nullable=False, default=local_today)

    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", name="ck_library_report_dates"),
    )

    def __repr__(self):
        return f"{self.kind} {self.starts_on:%d/%m/%Y}–{self.ends_on:%d/%m/%Y}"
