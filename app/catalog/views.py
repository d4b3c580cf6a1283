"""Cataloguing screens: records, copy cataloguing from the union catalogue, reference data."""
from flask import Response, abort, flash, redirect, request, stream_with_context, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.widgets import ListWidget
from flask_babel import gettext, lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.catalog import marc_import, services
from app.catalog.models import ClassificationScheme, ClassNumber, DocumentType, Record
from app.collection import services as collection
from app.collection.models import AccessionSeries, Intake, Location
from app.collection.views import CopyView
from app.core.datamodel import VNInterface as SQLAInterface
from app.core.errors import DomainError, ValidationError
from app.core.tenancy import current_scope
from app.core.views import AppModelView, SchoolScopedModelView, reject
from app.extensions import db
from app.org.models import OrgUnit

RECORD_LABELS = {
    "school": _l("School"),
    "title": _l("Title"),
    "subtitle": _l("Subtitle"),
    "authors_text": _l("Authors"),
    "main_author": _l("Author"),
    "responsibility": _l("Statement of responsibility"),
    "edition": _l("Edition"),
    "place": _l("Place of publication"),
    "publisher": _l("Publisher"),
    "year": _l("Year"),
    "pages": _l("Pages"),
    "size_cm": _l("Size (cm)"),
    "isbn": _l("ISBN"),
    "isbn_display": _l("ISBN"),
    "price": _l("Price (VND)"),
    "language": _l("Language"),
    "series_statement": _l("Series"),
    "volume": _l("Volume"),
    "summary": _l("Summary"),
    "subjects": _l("Subjects / keywords"),
    "document_type": _l("Document type"),
    "scheme": _l("Classification scheme"),
    "class_number": _l("Class number"),
    "author_mark": _l("Author mark"),
    "call_number": _l("Call number"),
    "call_number_is_manual": _l("Call number set by hand"),
    "is_hidden": _l("Hidden (no copy left)"),
}


class RecordListWidget(ListWidget):
    """The catalogue list with an "Export MARC" button (the whole catalogue, /marc)."""

    template = "catalog/record_list_widget.html"


class RecordView(SchoolScopedModelView):
    datamodel = SQLAInterface(Record)
    list_widget = RecordListWidget
    # Exporting selected records only reads them: "can_download", a read permission (as on
    # /marc), so principals and offices may export too. (FAB's file-download route that
    # "can_download" normally opens stays excluded: see AppModelView.)
    method_permission_name = {"export_marc": "download", "export_marcxml": "download"}
    list_title = _l("Catalogue")
    show_title = _l("Record")
    add_title = _l("Catalogue a document")
    edit_title = _l("Edit record")
    label_columns = RECORD_LABELS
    list_columns = ["title", "main_author", "publisher", "year", "isbn", "call_number"]
    show_columns = ["school", "title", "subtitle", "authors_text", "responsibility", "edition",
                    "place", "publisher", "year", "pages", "size_cm", "isbn", "price",
                    "language", "series_statement", "volume", "document_type", "scheme",
                    "class_number", "call_number", "subjects", "summary"]
    add_columns = edit_columns = [
        "title", "subtitle", "authors_text", "responsibility", "edition", "place", "publisher",
        "year", "pages", "size_cm", "isbn", "price", "language", "series_statement", "volume",
        "document_type", "class_number", "call_number", "call_number_is_manual", "subjects",
        "summary"]
    search_columns = ["title", "isbn", "publisher", "year", "class_number", "call_number",
                      "document_type", "is_hidden"]
    description_columns = {
        "authors_text": _l("One author per line; add the role after a semicolon, e.g. "
                           "“Nguyễn Nhật Ánh” or “Lê Văn A; dịch”."),
        "isbn": _l("ISBN-10 or ISBN-13, with or without hyphens."),
        "call_number": _l("Generated from the class number and the author mark unless set by "
                          "hand."),
        "language": _l("MARC code: vie, eng, fra..."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "authors_text": TextAreaField(_l("Authors"), validators=[Optional()]),
        # Typed with hyphens (up to 17 characters); stored normalised (13).
        "isbn": StringField(_l("ISBN"), validators=[Optional(), Length(max=20)]),
    }
    formatters_columns = {"isbn": services.hyphenate_isbn}
    related_views = [CopyView]
    base_order = ("title", "asc")
    show_template = "catalog/record_show.html"

    def _get_list_widget(self, filters, **kwargs):
        """Records whose copies were all withdrawn (app.weeding) are left out of the list
        unless the search asks for them ("Hidden (no copy left)"); they stay reachable by
        their copies and their own page, with their history."""
        if "is_hidden" not in [f.column_name for f in filters.filters]:
            filters = filters.copy()
            filters.add_filter("is_hidden", FilterEqual, False)
        return super()._get_list_widget(filters, **kwargs)

    def _prepare(self, item):
        session = self.datamodel.session
        try:
            item.isbn = services.normalise_isbn(item.isbn)
        except ValidationError as error:
            reject(self, error)
        school = session.get(OrgUnit, item.school_id)
        settings = collection.ensure_library(session, school)
        if item.scheme_id is None and settings.scheme_id:
            item.scheme_id = settings.scheme_id
        item.refresh_search_fields()
        services.compute_call_number(item, settings.author_mark_rule,
                                     settings.author_mark_length)
        return session

    def pre_add(self, item):
        super().pre_add(item)
        for author in item.authors:
            author.school_id, author.school = item.school_id, item.school
        session = self._prepare(item)
        with session.no_autoflush:
            duplicates = services.find_duplicates(session, item.school_id, item.title,
                                                  item.authors_folded, item.isbn)
        _warn_duplicates(duplicates)

    def pre_update(self, item):
        super().pre_update(item)
        for author in item.authors:
            author.school_id = item.school_id
        self._prepare(item)

    @action("export_marc", _l("Export MARC (ISO 2709)"), icon="fa-download")
    def export_marc(self, items):
        return self._export(items, "iso2709")

    @action("export_marcxml", _l("Export MARCXML"), icon="fa-download")
    def export_marcxml(self, items):
        return self._export(items, "marcxml")

    def _export(self, items, fmt):
        """The selected records as a MARC file, by the /marc export service. AppModelView's
        action routes have already refused (404) any record outside the user's scope."""
        items = items if isinstance(items, list) else [items]  # list page, or show page
        if not items:
            abort(400)
        schools = {item.school_id: item.school for item in items}
        if len(schools) > 1:
            # One file is one school's catalogue (its code is in every 852).
            flash(gettext("The selected records belong to several schools: export the "
                          "records of one school at a time."), "warning")
            return redirect(url_for(f"{self.endpoint}.list"))
        exporter = marc_import.MarcExport(self.datamodel.session, schools.popitem()[1], fmt,
                                          [item.id for item in items])
        return Response(stream_with_context(iter(exporter)), mimetype=exporter.mimetype,
                        headers={"Content-Disposition":
                                 f'attachment; filename="{exporter.filename}"',
                                 "Cache-Control": "no-store"})

    @expose("/copies/<int:pk>", methods=["GET", "POST"])
    @has_access
    def add_copies(self, pk):
        """Add copies of a record in bulk: a title and a number of copies gives that many
        accession numbers at once."""
        record = self.datamodel.get(pk, self._base_filters)
        if record is None:
            abort(404)
        session = self.datamodel.session
        school = record.school
        collection.ensure_library(session, school)
        form = AddCopiesForm(request.form if request.method == "POST" else None)
        form.fill_choices(session, school.id)
        if request.method == "POST" and form.validate():
            try:
                copies = collection.add_copies(
                    session, school, record,
                    session.get(AccessionSeries, int(form.series.data)), form.count.data,
                    location=session.get(Location, int(form.location.data))
                    if form.location.data else None,
                    intake=session.get(Intake, int(form.intake.data))
                    if form.intake.data else None,
                    price=form.price.data)
                session.commit()
            except DomainError as error:
                session.rollback()
                flash(str(error), "danger")
            else:
                flash(gettext("Added %(n)d copies: %(first)s – %(last)s.", n=len(copies),
                              first=copies[0].accession_label,
                              last=copies[-1].accession_label), "success")
                return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        return self.render_template("catalog/add_copies.html", form=form, record=record,
                                    title=_l("Add copies"), appbuilder=self.appbuilder)


def _warn_duplicates(duplicates):
    if not duplicates:
        return
    links = ", ".join(
        f'<a href="{url_for("RecordView.show", pk=r.id)}">{escape(r.title)}</a>'
        for r in duplicates)
    flash(Markup(escape(gettext("Possible duplicate in your catalogue (same ISBN or similar "
                                "title and author):")) + " " + links), "warning")


class AddCopiesForm:
    """Plain WTForms form (CSRF via Flask-WTF's global protection)."""

    def __new__(cls, formdata=None):
        from flask_wtf import FlaskForm

        class _Form(FlaskForm):
            count = IntegerField(_l("Number of copies"), default=1, validators=[
                DataRequired(), NumberRange(min=1, max=collection.MAX_COPIES_AT_ONCE)])
            series = SelectField(_l("Accession series"), validators=[DataRequired()])
            location = SelectField(_l("Shelving location"), validators=[Optional()])
            intake = SelectField(_l("General register line"), validators=[Optional()])
            price = IntegerField(_l("Price (VND)"), validators=[Optional(),
                                                                 NumberRange(min=0)])

            def fill_choices(self, session, school_id):
                self.series.choices = [
                    (str(s.id), f"{s.code} – {s.name}") for s in session.execute(
                        select(AccessionSeries).where(AccessionSeries.school_id == school_id)
                        .order_by(AccessionSeries.code)).scalars()]
                self.location.choices = [("", "—")] + [
                    (str(loc.id), loc.name) for loc in session.execute(
                        select(Location).where(Location.school_id == school_id,
                                               Location.is_active.is_(True))
                        .order_by(Location.code)).scalars()]
                self.intake.choices = [("", "—")] + [
                    (str(i.id), f"{i.register_number} – {i.received_on:%d/%m/%Y} – {i.source}")
                    for i in session.execute(
                        select(Intake).where(Intake.school_id == school_id)
                        .order_by(Intake.register_number.desc()).limit(50)).scalars()]

        return _Form(formdata=formdata)


class UnionCatalogueView(BaseView):
    """Search the records of every school; a librarian copies one into their catalogue."""

    route_base = "/union"
    access_policy = "school_data"
    default_view = "search"
    class_permission_name = "UnionCatalogueView"
    method_permission_name = {"search": "list", "copy": "copy"}
    base_permissions = ["can_list", "can_copy"]

    @expose("/", methods=["GET"])
    @has_access
    def search(self):
        text = request.args.get("q", "").strip()
        page = max(int(request.args.get("page", "1") or 1), 1)
        total, rows, cap = 0, [], services.SEARCH_CAP
        if text:
            total, rows = services.search_records(db.session, text, None, limit=50,
                                                  offset=(page - 1) * 50, cap=cap)
        scope = current_scope()
        return self.render_template(
            "catalog/union.html", q=text, rows=rows, total=min(total, cap),
            more=total > cap, cap=cap, page=page,
            can_copy=scope.write_school_id is not None, own_school_id=scope.write_school_id,
            title=_l("Union catalogue"), appbuilder=self.appbuilder)

    @expose("/copy/<int:pk>", methods=["POST"])
    @has_access
    def copy(self, pk):
        scope = current_scope()
        if scope.write_school_id is None:
            abort(403)
        source = db.session.get(Record, pk)
        if source is None or source.is_hidden:
            abort(404)
        school = db.session.get(OrgUnit, scope.write_school_id)
        try:
            settings = collection.ensure_library(db.session, school)
            record = services.copy_record(db.session, source, school, settings)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
            return redirect(url_for(".search", q=request.form.get("q", "")))
        flash(gettext("The record was copied into your catalogue: add its copies now."),
              "success")
        return redirect(url_for("RecordView.add_copies", pk=record.id))


class ClassificationSchemeView(AppModelView):
    datamodel = SQLAInterface(ClassificationScheme)
    access_policy = "city_settings"
    list_title = _l("Classification schemes")
    show_title = _l("Classification scheme")
    add_title = _l("Add classification scheme")
    edit_title = _l("Edit classification scheme")
    label_columns = {"code": _l("Code"), "name": _l("Name"), "marc_source": _l("MARC source"),
                     "is_verified": _l("Verified list"), "note": _l("Note")}
    list_columns = ["code", "name", "is_verified"]
    add_columns = edit_columns = ["code", "name", "marc_source", "is_verified", "note"]


class ClassNumberView(AppModelView):
    datamodel = SQLAInterface(ClassNumber)
    access_policy = "city_settings"
    list_title = _l("Class numbers")
    show_title = _l("Class number")
    add_title = _l("Add class number")
    edit_title = _l("Edit class number")
    label_columns = {"scheme": _l("Classification scheme"), "code": _l("Code"),
                     "label": _l("Label")}
    list_columns = ["scheme", "code", "label"]
    add_columns = edit_columns = ["scheme", "code", "label"]
    search_columns = ["scheme", "code", "label"]
    base_order = ("code", "asc")


class DocumentTypeView(AppModelView):
    datamodel = SQLAInterface(DocumentType)
    access_policy = "city_settings"
    list_title = _l("Document types")
    show_title = _l("Document type")
    add_title = _l("Add document type")
    edit_title = _l("Edit document type")
    label_columns = {"code": _l("Code"), "name": _l("Name"),
                     "default_series": _l("Usual series"),
                     "in_general_register": _l("Entered in the general register")}
    list_columns = ["code", "name", "default_series", "in_general_register"]
    add_columns = edit_columns = list_columns
