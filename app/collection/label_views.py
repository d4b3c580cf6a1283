"""Printing spine and barcode labels: a form, and the PDF.

Printing labels only reads the school's copies: both routes are GET and need "can_download"
(a read permission, so principals and offices may print too). Every copy is looked up inside
the user's scope: another school's copy id is simply not found (404).
"""
import datetime
import io
import re

from flask import abort, request, send_file
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms import BooleanField, FloatField, IntegerField, RadioField, SelectField
from wtforms.validators import NumberRange, Optional
from wtforms.widgets import NumberInput

from app.collection import labels
from app.collection.models import AccessionSeries, Copy, CopyStatus
from app.core.errors import ValidationError
from app.core.tenancy import current_scope, restrict_query, school_choices, scoped_school
from app.extensions import db

MAX_IDS = labels.MAX_LABELS


# --- Form -------------------------------------------------------------------------------

class MillimetreField(FloatField):
    """Millimetres; accepts a decimal comma (7,5) as Vietnamese users type it."""

    widget = NumberInput(step="0.5", min=0)

    def process_formdata(self, valuelist):
        if valuelist and isinstance(valuelist[0], str):
            valuelist = [valuelist[0].replace(",", ".").strip()]
        super().process_formdata(valuelist)


def _mm(label, default):
    return MillimetreField(label, default=default,
                           validators=[Optional(), NumberRange(min=0, max=50)])


class LabelForm(FlaskForm):
    """Read-only request (GET): no CSRF token needed."""

    class Meta:
        csrf = False

    # Any series of the scope may be asked for; checked (404 outside the scope) on use.
    series = SelectField(_l("Accession series"), validators=[Optional()], choices=[],
                         validate_choice=False)
    number_from = IntegerField(_l("From number"), validators=[Optional(), NumberRange(min=1)])
    number_to = IntegerField(_l("To number"), validators=[Optional(), NumberRange(min=1)])
    kind = RadioField(_l("Labels"), default="spine", choices=[
        ("spine", _l("Spine labels (call number)")),
        ("barcode", _l("Barcode labels (Code 128)"))])
    columns = IntegerField(_l("Columns"), default=3, widget=NumberInput(min=1, max=10),
                           validators=[Optional(), NumberRange(min=1, max=10)])
    rows = IntegerField(_l("Rows"), default=8, widget=NumberInput(min=1, max=30),
                        validators=[Optional(), NumberRange(min=1, max=30)])
    margin_top = _mm(_l("Top margin (mm)"), 7)
    margin_bottom = _mm(_l("Bottom margin (mm)"), 7)
    margin_left = _mm(_l("Left margin (mm)"), 7)
    margin_right = _mm(_l("Right margin (mm)"), 7)
    column_gap = _mm(_l("Gap between columns (mm)"), 2)
    row_gap = _mm(_l("Gap between rows (mm)"), 2)
    start_position = IntegerField(_l("Start at label no."), default=1,
                                  widget=NumberInput(min=1),
                                  validators=[Optional(), NumberRange(min=1)])
    borders = BooleanField(_l("Draw the outline of each label (trial print on plain paper)"))

    LAYOUT_FIELDS = ("columns", "rows", "margin_top", "margin_bottom", "margin_left",
                     "margin_right", "column_gap", "row_gap")

    def layout(self):
        values = {}
        for name in self.LAYOUT_FIELDS:
            value = getattr(self, name).data
            values[name] = value if value is not None else getattr(labels.LabelLayout, name)
        return labels.LabelLayout(**values)

    @staticmethod
    def selected_ids():
        """Copy ids from `?ids=1,2,3` or repeated `?ids=1&ids=2` (the copies list)."""
        out = []
        for part in re.split(r"[,\s]+", ",".join(request.args.getlist("ids"))):
            if not part:
                continue
            if not part.isdigit():
                abort(404)
            out.append(int(part))
        return list(dict.fromkeys(out))  # once each, in the order selected


def _series_choices(school):
    if school is None:
        return []
    return [(str(s.id), f"{s.code} – {s.name}") for s in db.session.execute(
        select(AccessionSeries).where(AccessionSeries.school_id == school.id)
        .order_by(AccessionSeries.code)).scalars()]


# --- View -------------------------------------------------------------------------------

class LabelView(BaseView):
    """Print spine labels and barcode labels for copies of the school."""

    route_base = "/labels"
    access_policy = "school_data"
    default_view = "form"
    class_permission_name = "LabelView"
    method_permission_name = {"form": "download", "pdf": "download"}
    base_permissions = ["can_download"]

    def _form(self):
        form = LabelForm(formdata=request.args if request.args else None)
        ids = form.selected_ids()
        school = None if ids else scoped_school(request.args.get("school"))
        form.series.choices = _series_choices(school)
        return form, ids, school

    def _render(self, form, ids, school, errors=()):
        selected = []
        if ids:
            selected = db.session.execute(
                restrict_query(select(Copy.accession_label), Copy)
                .where(Copy.id.in_(ids[:MAX_IDS])).order_by(Copy.id).limit(12)).scalars().all()
        return self.render_template(
            "collection/labels.html", form=form, ids=ids, selected=selected, school=school,
            schools=school_choices(), errors=errors, title=_l("Print labels"),
            appbuilder=self.appbuilder)

    @expose("/", methods=["GET"])
    @has_access
    def form(self):
        form, ids, school = self._form()
        return self._render(form, ids, school)

    @expose("/pdf", methods=["GET"])
    @has_access
    def pdf(self):
        form, ids, school = self._form()
        if not form.validate():
            return self._render(form, ids, school)
        try:
            copies = self._copies(form, ids)
            data = labels.label_sheet_pdf(copies, kind=form.kind.data, layout=form.layout(),
                                          start_position=form.start_position.data or 1,
                                          borders=form.borders.data)
        except ValidationError as error:
            field = getattr(form, error.field or "", None)
            if field is not None and hasattr(field, "errors"):
                field.errors = list(field.errors or []) + [str(error)]
            return self._render(form, ids, school, errors=[str(error)])
        stem = gettext("spine-labels") if form.kind.data == "spine" else gettext(
            "barcode-labels")
        code = copies[0].school.code if copies[0].school is not None else ""
        name = f"{stem}-{code}-{datetime.date.today():%Y%m%d}.pdf"
        return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                         download_name=name, max_age=0)

    def _copies(self, form, ids):
        """The copies to label, only ever inside the user's scope."""
        query = restrict_query(select(Copy), Copy).options(
            selectinload(Copy.record), selectinload(Copy.school))
        if ids:
            if len(ids) > MAX_IDS:
                raise ValidationError(_l("At most %(n)d labels at a time."), field="ids",
                                      n=MAX_IDS)
            copies = db.session.execute(query.where(Copy.id.in_(ids))).scalars().all()
            if len(copies) != len(ids):
                abort(404)  # another school's copy (or none): not found
            order = {pk: i for i, pk in enumerate(ids)}
            return sorted(copies, key=lambda c: order[c.id])
        if not form.series.data:
            raise ValidationError(_l("Choose an accession series, or select copies in the "
                                     "copies list."), field="series")
        series = db.session.get(AccessionSeries, int(form.series.data)) if str(
            form.series.data).isdigit() else None
        if series is None or not current_scope().can_see_school(series.school_id):
            abort(404)
        first, last = form.number_from.data, form.number_to.data
        if first is None or last is None:
            raise ValidationError(_l("Enter the first and the last accession number."),
                                  field="number_from")
        if first > last:
            raise ValidationError(_l("The first number must not be greater than the last."),
                                  field="number_to")
        query = query.where(Copy.series_id == series.id,
                            Copy.accession_number.between(first, last),
                            Copy.status != CopyStatus.withdrawn)
        copies = db.session.execute(
            query.order_by(Copy.sequence_key, Copy.accession_number, Copy.id)
            .limit(MAX_IDS + 1)).scalars().all()
        if not copies:
            raise ValidationError(_l("No copy of series %(series)s has a number from %(a)d "
                                     "to %(b)d."), field="number_from", series=series.code,
                                  a=first, b=last)
        return copies
