"""Bibliographic records (biểu ghi / đầu sách), their authors, classification schemes and
document types.

A Record belongs to one school (each school's catalogue is its own; the union catalogue is a
read-only search across schools, and "copy cataloguing" copies a record into your school).
The original MARC of imported records is kept (`marc`) so that exports give it back intact.
"""
from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import relationship

from app.core.enums import LabeledEnum, N_
from app.core.i18n import fold
from app.core.tenancy import SchoolOwnedMixin
from app.org.models import enum_column


class ClassificationScheme(Model):
    """DDC, the Vietnamese school '19 lớp' scheme, or a custom scheme (city-wide data)."""

    __tablename__ = "classification_scheme"
    __audited__ = True
    __label__ = N_("Classification scheme")

    id = Column(Integer, primary_key=True)
    code = Column(String(20), unique=True, nullable=False)
    name = Column(String(200), nullable=False)
    marc_source = Column(String(20))  # 084 $2 for local schemes; DDC goes to 082
    is_verified = Column(Boolean, nullable=False, default=True)
    note = Column(String(500))

    def __repr__(self):
        return self.name


class ClassNumber(Model):
    """One class of a scheme: 895.922 Văn học Việt Nam; 53 Vật lý."""

    __tablename__ = "class_number"
    __audited__ = True
    __label__ = N_("Class number")

    id = Column(Integer, primary_key=True)
    scheme_id = Column(Integer, ForeignKey("classification_scheme.id"), nullable=False)
    scheme = relationship(ClassificationScheme, backref="classes")
    code = Column(String(30), nullable=False)
    label = Column(String(255), nullable=False)

    __table_args__ = (UniqueConstraint("scheme_id", "code", name="uq_class_number_code"),)

    def __repr__(self):
        return f"{self.code} {self.label}"


class DocumentType(Model):
    """Sách giáo khoa, sách tham khảo, báo/tạp chí... (city-wide, editable)."""

    __tablename__ = "document_type"
    __audited__ = True
    __label__ = N_("Document type")

    id = Column(Integer, primary_key=True)
    code = Column(String(20), unique=True, nullable=False)
    name = Column(String(120), nullable=False)
    default_series = Column(String(10))  # the accession series its copies usually go to
    in_general_register = Column(Boolean, nullable=False, default=True)

    def __repr__(self):
        return self.name


class AuthorRole(LabeledEnum):
    author = N_("Author")
    editor = N_("Editor")
    translator = N_("Translator")
    illustrator = N_("Illustrator")
    compiler = N_("Compiler")


ROLE_WORDS = {  # how librarians type roles in the authors box
    "tác giả": AuthorRole.author, "author": AuthorRole.author,
    "chủ biên": AuthorRole.editor, "biên tập": AuthorRole.editor, "editor": AuthorRole.editor,
    "dịch": AuthorRole.translator, "người dịch": AuthorRole.translator,
    "translator": AuthorRole.translator,
    "minh họa": AuthorRole.illustrator, "vẽ": AuthorRole.illustrator,
    "illustrator": AuthorRole.illustrator,
    "biên soạn": AuthorRole.compiler, "sưu tầm": AuthorRole.compiler,
    "compiler": AuthorRole.compiler,
}


# Words of a record for the union catalogue (PostgreSQL): the folded title and authors as
# 'simple' text-search words (no stemming, no stop words: Vietnamese syllables as typed).
# Searches must write this exact expression for the planner to use ix_record_search_fts.
SEARCH_VECTOR_SQL = ("to_tsvector('simple'::regconfig, "
                     "(title_folded::text || ' '::text) || authors_folded::text)")


class Record(SchoolOwnedMixin, Model):
    __tablename__ = "record"
    __label__ = N_("Record")

    id = Column(Integer, primary_key=True)
    title = Column(String(500), nullable=False)
    subtitle = Column(String(500))
    responsibility = Column(String(500))  # 245 $c
    edition = Column(String(100))
    place = Column(String(120))
    publisher = Column(String(200))
    year = Column(Integer)
    pages = Column(String(60))  # "245 tr." as printed (300 $a)
    size_cm = Column(Integer)  # khổ sách (300 $c)
    isbn = Column(String(13), index=True)  # normalised digits (ISBN-10 or ISBN-13)
    price = Column(Numeric(14, 0))  # VND
    language = Column(String(3), nullable=False, default="vie")  # MARC language code
    series_statement = Column(String(255))
    volume = Column(String(30))  # "Tập 1": textbooks are numbered per title and volume
    summary = Column(Text)
    subjects = Column(String(1000))  # keywords separated by ";"
    document_type_id = Column(Integer, ForeignKey("document_type.id"))
    document_type = relationship(DocumentType)
    scheme_id = Column(Integer, ForeignKey("classification_scheme.id"))
    scheme = relationship(ClassificationScheme)
    class_number = Column(String(30))
    author_mark = Column(String(10))
    call_number = Column(String(80))  # ký hiệu xếp giá, generated unless overridden
    call_number_is_manual = Column(Boolean, nullable=False, default=False)
    is_hidden = Column(Boolean, nullable=False, default=False)  # every copy withdrawn
    # Search forms: diacritics folded ("Đường" -> "duong"), kept in step by the model.
    title_folded = Column(String(1000), nullable=False, default="")
    authors_folded = Column(String(1000), nullable=False, default="")
    marc = Column(JSON)  # the original MARC (pymarc as_dict) of imported records
    copied_from_id = Column(Integer)  # record of another school it was copied from

    authors = relationship("RecordAuthor", back_populates="record", cascade="all, delete-orphan",
                           primaryjoin="Record.id == RecordAuthor.record_id",
                           foreign_keys="RecordAuthor.record_id",
                           order_by="RecordAuthor.position",
                           # Lists and searches show the main author of every row: one
                           # query per page instead of one per record.
                           lazy="selectin")

    __table_args__ = (
        UniqueConstraint("school_id", "id", name="uq_record_school_id"),
        Index("ix_record_school_title", "school_id", "title_folded"),
        Index("ix_record_school_isbn", "school_id", "isbn"),
        # Substring search on folded text ("hoa vang"): trigram indexes on PostgreSQL.
        Index("ix_record_title_trgm", "title_folded", postgresql_using="gin",
              postgresql_ops={"title_folded": "gin_trgm_ops"}),
        Index("ix_record_authors_trgm", "authors_folded", postgresql_using="gin",
              postgresql_ops={"authors_folded": "gin_trgm_ops"}),
        # Union catalogue: whole words (tsvector GIN) on PostgreSQL; SQLite scans with LIKE.
        Index("ix_record_search_fts", text(SEARCH_VECTOR_SQL),
              postgresql_using="gin").ddl_if(dialect="postgresql"),
    )

    @property
    def main_author(self):
        for author in self.authors:
            if author.is_main:
                return author.name
        return None

    @property
    def authors_text(self):
        """One author a line, 'Name; role' (the form field librarians type into)."""
        lines = []
        for a in self.authors:
            role = "" if a.role == AuthorRole.author else f"; {a.role.label}"
            lines.append(f"{a.name}{role}")
        return "\n".join(lines)

    @authors_text.setter
    def authors_text(self, text):
        from app.catalog.services import parse_authors

        wanted = parse_authors(text or "")
        self.authors = [
            RecordAuthor(name=name, role=role, is_main=(i == 0), position=i,
                         school_id=self.school_id, school=self.school)
            for i, (name, role) in enumerate(wanted)
        ]
        self.refresh_search_fields()

    def refresh_search_fields(self):
        self.title_folded = fold(" ".join(filter(None, [self.title, self.subtitle])))[:1000]
        self.authors_folded = fold(" ".join(a.name for a in self.authors))[:1000]

    def __repr__(self):
        return self.title


class RecordAuthor(SchoolOwnedMixin, Model):
    __tablename__ = "record_author"
    __audited__ = False  # recorded through the record's own history

    id = Column(Integer, primary_key=True)
    record_id = Column(Integer, nullable=False, index=True)
    record = relationship(Record, back_populates="authors",
                          primaryjoin="RecordAuthor.record_id == Record.id",
                          foreign_keys=[record_id])
    name = Column(String(255), nullable=False)
    role = enum_column(AuthorRole, nullable=False, default=AuthorRole.author)
    is_main = Column(Boolean, nullable=False, default=False)
    position = Column(Integer, nullable=False, default=0)

    __table_args__ = (
        # An author row can only belong to a record of the same school.
        ForeignKeyConstraint(["school_id", "record_id"], ["record.school_id", "record.id"],
                             ondelete="CASCADE", name="fk_record_author_record"),
    )
