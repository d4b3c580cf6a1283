"""Shelving locations of a school library (kho mở, kho đóng, phòng đọc, tủ sách lớp).

The first school-owned table: copies (issue 4) are shelved at a location.
"""
from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, Integer, String, UniqueConstraint

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
