"""The dated organisation tree, school years and accounts.

A unit's parent is not a column: it is the OrgLink valid at a date, in one of two
hierarchies (administrative: Sở → Phòng → school; professional: Sở → cụm → school).
So a school can move from a district office to a ward office on 01/07/2025 and
reports for both periods still add up.
"""
import datetime

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import relationship

from app.core.enums import LabeledEnum, N_

FAR_PAST = datetime.date(1900, 1, 1)


class UnitKind(LabeledEnum):
    department = N_("Department of Education and Training")
    district_office = N_("District education office")
    ward_office = N_("Ward/commune culture and society office")
    cluster = N_("School cluster")
    school = N_("School")


class Hierarchy(LabeledEnum):
    administrative = N_("Administrative")
    professional = N_("Professional (cluster)")


def enum_column(enum_cls, **kw):
    # Stored as VARCHAR with a CHECK constraint: same schema on SQLite and PostgreSQL.
    return Column(
        Enum(enum_cls, native_enum=False, create_constraint=True, length=30,
             name=f"ck_{enum_cls.__name__.lower()}"),
        **kw,
    )


class OrgUnit(Model):
    __tablename__ = "org_unit"
    __audited__ = True
    __label__ = N_("Unit")

    id = Column(Integer, primary_key=True)
    code = Column(String(20), unique=True, nullable=False)
    name = Column(String(255), nullable=False)
    kind = enum_column(UnitKind, nullable=False, index=True)
    # Schools: levels taught (a multi-level school ticks several) and ownership.
    teaches_preschool = Column(Boolean, nullable=False, default=False)
    teaches_primary = Column(Boolean, nullable=False, default=False)
    teaches_lower_secondary = Column(Boolean, nullable=False, default=False)
    teaches_upper_secondary = Column(Boolean, nullable=False, default=False)
    is_public = Column(Boolean, nullable=False, default=True)
    address = Column(String(255))
    ward = Column(String(120))
    phone = Column(String(30))
    email = Column(String(120))
    valid_from = Column(Date, nullable=False, default=FAR_PAST)
    valid_to = Column(Date)

    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="ck_org_unit_dates"),
    )

    LEVEL_FIELDS = (
        ("teaches_preschool", N_("Preschool")),
        ("teaches_primary", N_("Primary")),
        ("teaches_lower_secondary", N_("Lower secondary")),
        ("teaches_upper_secondary", N_("Upper secondary")),
    )
    LEVEL_ABBR = {
        "teaches_preschool": "MN",
        "teaches_primary": "TH",
        "teaches_lower_secondary": "THCS",
        "teaches_upper_secondary": "THPT",
    }

    @property
    def is_school(self):
        return self.kind == UnitKind.school

    @property
    def levels(self):
        """Short level codes as Vietnamese schools write them: 'TH, THCS'."""
        return ", ".join(abbr for f, abbr in self.LEVEL_ABBR.items() if getattr(self, f))

    def is_active_on(self, day):
        return self.valid_from <= day and (self.valid_to is None or self.valid_to >= day)

    def __repr__(self):
        return self.name


class OrgLink(Model):
    """`child` sits under `parent` in `hierarchy` from valid_from to valid_to (inclusive)."""

    __tablename__ = "org_link"
    __audited__ = True
    __label__ = N_("Placement")

    id = Column(Integer, primary_key=True)
    child_id = Column(Integer, ForeignKey("org_unit.id", ondelete="CASCADE"), nullable=False)
    child = relationship(OrgUnit, foreign_keys=[child_id], backref="parent_links")
    parent_id = Column(Integer, ForeignKey("org_unit.id", ondelete="CASCADE"), nullable=False)
    parent = relationship(OrgUnit, foreign_keys=[parent_id], backref="child_links")
    hierarchy = enum_column(Hierarchy, nullable=False, default=Hierarchy.administrative)
    valid_from = Column(Date, nullable=False, default=FAR_PAST)
    valid_to = Column(Date)

    __table_args__ = (
        CheckConstraint("child_id <> parent_id", name="ck_org_link_not_self"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="ck_org_link_dates"),
        Index("ix_org_link_parent", "parent_id", "hierarchy"),
        Index("ix_org_link_child", "child_id", "hierarchy"),
    )

    def __repr__(self):
        return f"{self.child} → {self.parent}"


class SchoolYear(Model):
    """A school year for the whole city, with its two semesters."""

    __tablename__ = "school_year"
    __audited__ = True
    __label__ = N_("School year")

    id = Column(Integer, primary_key=True)
    name = Column(String(20), unique=True, nullable=False)  # "2025–2026"
    starts_on = Column(Date, nullable=False)
    semester1_ends_on = Column(Date, nullable=False)
    semester2_starts_on = Column(Date, nullable=False)
    ends_on = Column(Date, nullable=False)

    __table_args__ = (
        CheckConstraint(
            "starts_on < semester1_ends_on AND semester1_ends_on < semester2_starts_on"
            " AND semester2_starts_on < ends_on",
            name="ck_school_year_order",
        ),
    )

    def semester_of(self, day):
        if self.starts_on <= day <= self.semester1_ends_on:
            return 1
        if self.semester2_starts_on <= day <= self.ends_on:
            return 2
        return None

    def __repr__(self):
        return self.name


class AppUser(User):
    """FAB's user, bound to one unit of the tree (its scope)."""

    __tablename__ = "ab_user"
    __audited__ = True
    __sort_with__ = {"first_name": ("last_name",), "last_name": ("first_name",)}

    __label__ = N_("Account")

    unit_id = Column(Integer, ForeignKey("org_unit.id"), index=True)
    unit = relationship(OrgUnit, foreign_keys=[unit_id])
    phone = Column(String(30))

    def get_full_name(self):
        # Vietnamese order: family and middle names, then the given name.
        return f"{self.last_name} {self.first_name}".strip()

    def __repr__(self):
        return self.get_full_name()
