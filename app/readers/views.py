"""Readers' screens: readers of the school, reader categories, reader cards, the import.

Printing cards only reads: the list action and the cards page need "can_download" (a read
permission), so principals, offices and the department may print the cards of the readers
they see. Every reader is looked up inside the user's scope (another school's: 404).
"""
import datetime
import io
import re

from flask import Response, abort, flash, redirect, request, send_file
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf.file import FileField
from sqlalchemy import select
from sqlalchemy.orm import selectinload, undefer
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import Length, NumberRange, Optional

from app.core.datamodel import VNInterface as SQLAInterface
from app.core.errors import TenancyError, ValidationError
from app.core.tenancy import current_scope, restrict_query, school_choices, scoped_school
from app.core.views import AppModelView, SchoolScopedModelView, reject
from app.extensions import db
from app.readers import cards, photos, services
from app.readers.models import Reader, ReaderCategory, ReaderStatus

READER_LABELS = {**services.LABELS, "photo_upload": _l("Photo"),
                 "photo_remove": _l("Remove the photo")}


def _code_field(label):
    # Left empty: generated on saving (see services.prepare_reader).
    return StringField(label, validators=[Optional(), Length(max=40)])


class ReaderView(SchoolScopedModelView):
    datamodel = SQLAInterface(Reader)
    list_title = _l("Readers")
    show_title = _l("Reader")
    add_title = _l("Add reader")
    edit_title = _l("Edit reader")
    label_columns = READER_LABELS
    list_columns = ["card_number", "family_name", "given_name", "class_name", "category",
                    "status"]
    show_columns = ["school", "family_name", "given_name", "category", "code", "class_name",
                    "grade", "date_of_birth", "gender", "phone", "email", "card_number",
                    "barcode", "valid_until", "status", "note"]
    add_columns = edit_columns = [
        "family_name", "given_name", "category", "code", "class_name", "grade",
        "date_of_birth", "gender", "phone", "email", "card_number", "barcode", "valid_until",
        "status", "note", "photo_upload", "photo_remove"]
    search_columns = ["given_name", "family_name", "class_name", "code", "card_number",
                      "barcode", "category", "status", "grade"]
    description_columns = {
        "family_name": _l("Family name and middle names, e.g. “Nguyễn Thị Minh”."),
        "given_name": _l("The given name only, e.g. “Khai”: lists are sorted by it."),
        "code": _l("The student code (mã học sinh) or staff code of the school-management "
                   "software: imports find the reader by it."),
        "class_name": _l("E.g. 6A1; empty for staff. The grade is taken from it when left "
                         "empty."),
        "card_number": _l("Left empty: the next number of the school (category code + "
                          "number)."),
        "barcode": _l("Left empty: the school's barcode prefix + the card number."),
        "photo_upload": _l("JPEG or PNG, printed on the card (at most 5 MB; reduced to "
                           "card size)."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "card_number": _code_field(_l("Card number")),
        "barcode": _code_field(_l("Barcode")),
        "grade": IntegerField(_l("Grade"), validators=[Optional(), NumberRange(min=1,
                                                                               max=12)]),
        "photo_upload": FileField(_l("Photo")),
        "photo_remove": BooleanField(_l("Remove the photo")),
    }
    base_order = ("given_name", "asc")
    show_template = "readers/reader_show.html"
    method_permission_name = {"print_cards": "download", "photo": "show"}
    item_validator = staticmethod(services.prepare_reader)

    def _take_photo(self, item):
        upload = getattr(item, "photo_upload", None)
        remove = getattr(item, "photo_remove", False)
        try:
            if upload is not None and getattr(upload, "filename", ""):
                item.photo = photos.card_photo(upload.read(photos.MAX_BYTES + 1))
            elif remove:
                item.photo = None
        except ValidationError as error:
            reject(self, error)

    def pre_add(self, item):
        self._take_photo(item)
        super().pre_add(item)

    def pre_update(self, item):
        self._take_photo(item)
        super().pre_update(item)

    def pre_delete(self, item):
        # Only the scope check of pre_update: a reader with old, inconsistent data (a code
        # used twice...) can still be deleted.
        if not current_scope().can_write_school(item.school_id):
            raise TenancyError()
        try:
            services.check_can_delete(self.datamodel.session, item)
        except ValidationError as error:
            reject(self, error)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        pk = self._deserialize_pk_if_composite(pk)
        widgets = self._show(pk)  # 404 outside the user's scope
        session = self.datamodel.session
        reader = session.get(Reader, int(pk))
        current, past, past_total = services.reader_loans(session, reader)
        has_photo = session.execute(select(Reader.photo.is_not(None)).where(
            Reader.id == reader.id)).scalar()
        return self.render_template(
            self.show_template, pk=pk, title=self.show_title, widgets=widgets,
            related_views=self._related_views, current_loans=current,
            past_loans=past, past_total=past_total, has_photo=has_photo,
            today=datetime.date.today(), local_day=services.local_day)

    @expose("/photo/<int:pk>", methods=["GET"])
    @has_access
    def photo(self, pk):
        data = db.session.execute(restrict_query(select(Reader.photo), Reader).where(
            Reader.id == pk)).first()
        if data is None or data[0] is None:
            abort(404)
        return Response(data[0], mimetype=photos.mimetype(data[0]),
                        headers={"Cache-Control": "private, no-store"})

    @action("print_cards", _l("Print cards"), icon="fa-id-card")
    def print_cards(self, items):
        """The ticked readers' cards (list), or the reader's card (show page). The action
        routes of AppModelView have already refused (404) readers outside the scope."""
        items = items if isinstance(items, list) else [items]
        try:
            return cards_response(load_for_cards([item.id for item in items]))
        except ValidationError as error:
            flash(str(error), "danger")
            return redirect(self.get_redirect())


def load_for_cards(ids):
    """The readers `ids`, with their photos, in that order; 404 if one is outside the scope."""
    ids = list(dict.fromkeys(ids))
    if len(ids) > cards.MAX_CARDS:
        raise ValidationError(_l("At most %(n)d cards at a time."), field="ids",
                              n=cards.MAX_CARDS)
    readers = db.session.execute(
        restrict_query(select(Reader), Reader).where(Reader.id.in_(ids or [-1]))
        .options(undefer(Reader.photo), selectinload(Reader.school))).scalars().all()
    if len(readers) != len(ids):
        abort(404)
    order = {pk: i for i, pk in enumerate(ids)}
    return sorted(readers, key=lambda r: order[r.id])


def cards_response(readers, stem=None):
    from app.org.services import current_school_year

    year = current_school_year(db.session)
    data = cards.card_sheet_pdf(readers, school_year=year.name if year else None)
    school = readers[0].school
    stem = stem or gettext("reader-cards")
    name = f"{stem}-{school.code if school else ''}-{datetime.date.today():%Y%m%d}.pdf"
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=name, max_age=0)


class ReaderCategoryView(AppModelView):
    """Học sinh, giáo viên, cán bộ nhân viên...: set by the department for the whole city."""

    datamodel = SQLAInterface(ReaderCategory)
    access_policy = "city_settings"
    list_title = _l("Reader categories")
    show_title = _l("Reader category")
    add_title = _l("Add reader category")
    edit_title = _l("Edit reader category")
    label_columns = {"code": _l("Code"), "name": _l("Name"), "kind": _l("Kind")}
    list_columns = add_columns = edit_columns = show_columns = ["code", "name", "kind"]
    description_columns = {"code": _l("Capital letters without accents (HS, GV...): it "
                                      "begins the card numbers of the category.")}
    base_order = ("code", "asc")
    item_validator = staticmethod(services.validate_category)

    def pre_delete(self, item):
        try:
            services.check_category_unused(self.datamodel.session, item)
        except ValidationError as error:
            reject(self, error)


# --- Cards of a class ----------------------------------------------------------------------

class ReaderCardView(BaseView):
    """Print the cards of a class, or of readers chosen in the readers list (read-only)."""

    route_base = "/reader-cards"
    access_policy = "school_data"
    default_view = "form"
    class_permission_name = "ReaderCardView"
    method_permission_name = {"form": "download", "pdf": "download"}
    base_permissions = ["can_download"]

    @staticmethod
    def _ids():
        out = []
        for part in re.split(r"[,\s]+", ",".join(request.args.getlist("ids"))):
            if not part:
                continue
            if not part.isdigit():
                abort(404)
            out.append(int(part))
        return out

    def _render(self, school, errors=()):
        classes = services.classes_of(db.session, school.id) if school is not None else []
        return self.render_template(
            "readers/cards.html", school=school, schools=school_choices(), classes=classes,
            chosen=request.args.get("class_name", ""), errors=errors,
            per_page=cards.PER_PAGE, title=_l("Print reader cards"),
            appbuilder=self.appbuilder)

    @expose("/", methods=["GET"])
    @has_access
    def form(self):
        return self._render(scoped_school(request.args.get("school")))

    @expose("/pdf", methods=["GET"])
    @has_access
    def pdf(self):
        try:
            return self._pdf()
        except ValidationError as error:
            return self._render(scoped_school(request.args.get("school")),
                                errors=[str(error)])

    def _pdf(self):
        ids = self._ids()
        if ids:
            return cards_response(load_for_cards(ids))
        school = scoped_school(request.args.get("school"))
        class_name = (request.args.get("class_name") or "").strip()
        if school is None:
            return self._render(None, errors=[gettext("Choose a school first.")])
        if not class_name:
            return self._render(school, errors=[gettext("Choose a class.")])
        query = select(Reader.id, Reader.family_name, Reader.given_name).where(
            Reader.school_id == school.id, Reader.class_name == class_name)
        if request.args.get("all") != "1":
            query = query.where(Reader.status == ReaderStatus.active)
        rows = db.session.execute(query).all()
        if not rows:
            return self._render(school, errors=[gettext(
                "The class %(name)s has no reader.", name=class_name)])
        rows.sort(key=lambda r: services.reader_sort_key(r.family_name, r.given_name))
        return cards_response(load_for_cards([r.id for r in rows]),
                              stem=f"{gettext('reader-cards')}-{class_name}")


def register(appbuilder):
    from app.readers.import_views import ReaderImportView

    add = appbuilder.add_view
    menu = dict(category="Readers", category_label=_l("Readers"), category_icon="fa-users")
    add(ReaderView, "Readers", label=_l("Readers"), icon="fa-user", **menu)
    add(ReaderImportView, "Import readers", label=_l("Import readers from Excel"),
        icon="fa-file-excel", **menu)
    add(ReaderCardView, "Print reader cards", label=_l("Print reader cards"),
        icon="fa-id-card", **menu)
    add(ReaderCategoryView, "Reader categories", label=_l("Reader categories"),
        icon="fa-tags", **menu)
