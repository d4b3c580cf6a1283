"""Circulation screens other than the desk (registered from app.circulation.views.register).

- loan rules and closed days: two writers, each on their own rows (the department: the city's
  defaults, school_id NULL; the librarian: their school's); the rules matrix page;
- the school's circulation settings;
- the loan register (read-only: loans change only through the desk's services), its Excel
  export, "mark lost";
- overdue loans by class and printable notices; holds; class loans; the reading-room tally.

Views stay thin: rules live in services.py and policies.py, queries in reports.py. Every
write goes through a POST with a CSRF token and a permission that app.core.security only
gives to writers; every row is looked up inside the user's scope (another school's: 404).
"""
import datetime
import io
import re

from flask import abort, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.fields import QuerySelectField
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import permission_name
from flask_appbuilder.widgets import ListWidget
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from wtforms import (
    IntegerField, RadioField, SelectField, SelectMultipleField, StringField, TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from app.catalog.models import DocumentType, Record
from app.circulation import policies, reports, services
from app.circulation.models import (
    CirculationSettings, ClassLoan, ClosedDay, Compensation, Hold, Loan, LoanRule, LoanStatus,
    ReadingRoomUse,
)
from app.collection.models import Copy, CopyStatus
from app.core import i18n
from app.core.datamodel import VNInterface
from app.core.errors import DomainError, ValidationError
from app.core.security import ROLE_DEPT_ADMIN
from app.core.tenancy import current_scope, school_choices, scoped_school
from app.core.views import (
    AppModelView, LabeledEnumField, SchoolScopedModelView, VNDateField, reject,
)
from app.extensions import db
from app.org.models import OrgUnit
from app.readers.models import Reader, ReaderCategory, ReaderKind, ReaderStatus



# --- Small helpers ------------------------------------------------------------------------

def parse_day(text):
    """A date typed as dd/mm/yyyy (or ISO); None when empty; ValidationError otherwise."""
    text = (text or "").strip()
    if not text:
        return None
    for fmt in (i18n.DATE_FORMAT, "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValidationError(_l("“%(value)s” is not a date (dd/mm/yyyy)."), value=text[:20])


def fmt_local_date(value):
    """A stored UTC timestamp as the day in Vietnam (dd/mm/yyyy)."""
    return i18n.format_date(reports.local_date(value)) if value else ""


def fmt_blank(value):
    return "" if value is None else value


def fmt_all(value):
    """An empty category or document type in a rule matches every one."""
    return value if value is not None else _l("All")


def fmt_owner(value):
    return value.name if value is not None else _l("Whole city (department)")


def flash_form_errors(form):
    for field in form:
        for error in field.errors:
            flash(f"{field.label.text}: {error}", "danger")


def own_school_or_403(school_id):
    """Write routes act on the librarian's own school only (their permission already keeps
    read-only roles out; this holds even if a role is misconfigured)."""
    if school_id is None:
        abort(403)
    return school_id


class MoneyField(IntegerField):
    """Đồng, typed with or without thousands separators (50.000 or 50,000 or 50 000)."""

    def process_formdata(self, valuelist):
        if valuelist and isinstance(valuelist[0], str):
            valuelist = [re.sub(r"[.,\s]|đ$", "", valuelist[0].strip().lower())]
        super().process_formdata(valuelist)


# --- Loan rules and closed days: the city's and the school's rows ---------------------------

_NOBODY = object()


def writable_owner():
    """Whose rows the current user writes: their school's id, None for the department (the
    city's rows), or _NOBODY."""
    scope = current_scope()
    if scope.write_school_id is not None:
        return scope.write_school_id
    if scope.all_schools and ROLE_DEPT_ADMIN in {r.name for r in current_user.roles}:
        return None
    return _NOBODY


class CityOrSchoolFilter(BaseFilter):
    """The city's rows (school_id NULL) and the rows of the user's schools."""

    name = "Scope"
    arg_name = None

    def apply(self, query, value):
        scope = current_scope()
        if scope.all_schools:
            return query
        return query.filter(or_(self.model.school_id.is_(None),
                                self.model.school_id.in_(scope.school_ids or {-1})))


class CityOrSchoolListWidget(ListWidget):
    template = "circulation/admin_city_or_school_list_widget.html"


class CityOrSchoolView(AppModelView):
    """Rows with a nullable school_id: not SchoolOwnedMixin, so the flush guard does not
    cover them and every write is checked here against the row's owner."""

    access_policy = "circulation_rules"
    base_filters = [["school_id", CityOrSchoolFilter, lambda: None]]
    list_widget = CityOrSchoolListWidget
    list_template = "circulation/admin_rule_list.html"
    read_only_message = _l("This row belongs to the city or to another school: you can read it "
                           "but not change it.")

    def can_write(self, item):
        owner = writable_owner()
        return owner is not _NOBODY and item.school_id == owner

    @expose("/list/")
    @has_access
    def list(self):
        owner = writable_owner()
        # The list widget shows edit and delete on the rows of this owner only.
        widgets = self._list(owner="city" if owner is None else (
            owner if owner is not _NOBODY else ""))
        return self.render_template(self.list_template, title=self.list_title,
                                    widgets=widgets, owner=owner,
                                    matrix_link=isinstance(self, LoanRuleView))

    def pre_add(self, item):
        owner = writable_owner()
        if owner is _NOBODY:
            reject(self, DomainError(_l("Only the department or the school's librarian can "
                                        "add this.")))
        # Set the relationship, not only the key: the relationship wins at flush.
        item.school = db.session.get(OrgUnit, owner) if owner is not None else None
        item.school_id = owner
        self.validate_item(item)

    def pre_update(self, item):
        if not self.can_write(item):
            reject(self, DomainError(self.read_only_message))
        self.validate_item(item)

    def pre_delete(self, item):
        if not self.can_write(item):
            reject(self, DomainError(self.read_only_message))

    # Rows the user only reads (the city's for a librarian, a school's for the department)
    # never open in an edit form.
    def _edit(self, pk):
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        if not self.can_write(item):
            flash(str(self.read_only_message), "warning")
            return None
        return super()._edit(pk)

    def _delete(self, pk):
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        if not self.can_write(item):
            flash(str(self.read_only_message), "warning")
            return None
        return super()._delete(pk)


class MatrixOrderInterface(VNInterface):
    """base_order "matrix": the city's rules first, then by reader category and document
    type, "all" before a specific one (the list reads like the matrix)."""

    def apply_order_by(self, query, order_column, order_direction, *args, **kwargs):
        if order_column != "matrix":
            return super().apply_order_by(query, order_column, order_direction, *args,
                                          **kwargs)
        m = self.obj
        return query.order_by(m.school_id.is_not(None), m.school_id,
                              m.category_id.is_not(None), m.category_id,
                              m.document_type_id.is_not(None), m.document_type_id, m.id)


def _ref_id(item, relation, key):
    """The id a relationship points to, whether the form set the object or the key."""
    if relation in item.__dict__:
        target = item.__dict__[relation]
        return target.id if target is not None else None
    return getattr(item, key)


def validate_rule(session, rule):
    if not rule.reading_room_only and not rule.until_year_end and not rule.loan_days:
        raise ValidationError(_l("Enter the loan period in days, or tick “Until the end of the "
                                 "school year”."), field="loan_days")
    if rule.loan_days is not None and rule.loan_days < 1:
        raise ValidationError(_l("The loan period must be at least one day."),
                              field="loan_days")
    if rule.max_items is None or rule.max_items < 0:
        raise ValidationError(_l("The number of items at a time must be zero or more."),
                              field="max_items")
    if rule.renewals is None or rule.renewals < 0:
        raise ValidationError(_l("The number of renewals must be zero or more."),
                              field="renewals")
    if rule.renewal_days is not None and rule.renewal_days < 1:
        raise ValidationError(_l("A renewal must last at least one day."),
                              field="renewal_days")
    probe = LoanRule(id=rule.id, school_id=rule.school_id,
                     category_id=_ref_id(rule, "category", "category_id"),
                     document_type_id=_ref_id(rule, "document_type", "document_type_id"))
    with session.no_autoflush:
        if reports.duplicate_rule(session, probe) is not None:
            raise ValidationError(_l("There is already a rule for this reader category and "
                                     "document type: edit that one instead."))


def _category_field():
    return QuerySelectField(
        _l("Reader category"), allow_blank=True, blank_text=_l("All"),
        query_func=lambda: db.session.query(ReaderCategory).order_by(ReaderCategory.id),
        get_pk_func=lambda c: c.id, widget=Select2Widget(), validators=[Optional()],
        description=_l("Empty: every reader category."))


def _document_type_field():
    return QuerySelectField(
        _l("Document type"), allow_blank=True, blank_text=_l("All"),
        query_func=lambda: db.session.query(DocumentType).order_by(DocumentType.code),
        get_pk_func=lambda t: t.id, widget=Select2Widget(), validators=[Optional()],
        description=_l("Empty: every document type."))


RULE_LABELS = {
    "school": _l("Applies in"),
    "category": _l("Reader category"),
    "document_type": _l("Document type"),
    "loan_days": _l("Loan period (days)"),
    "until_year_end": _l("Until the end of the school year"),
    "max_items": _l("Items at a time"),
    "renewals": _l("Renewals"),
    "renewal_days": _l("Days per renewal"),
    "reading_room_only": _l("Reading room only"),
}


class LoanRuleView(CityOrSchoolView):
    """The rules matrix: the department's city defaults, and each school's own rules (which
    win over the city's for the same reader category and document type)."""

    datamodel = MatrixOrderInterface(LoanRule)
    list_title = _l("Loan rules")
    show_title = _l("Loan rule")
    add_title = _l("Add loan rule")
    edit_title = _l("Edit loan rule")
    label_columns = RULE_LABELS
    list_columns = ["school", "category", "document_type", "loan_days", "until_year_end",
                    "max_items", "renewals", "renewal_days", "reading_room_only"]
    show_columns = list_columns
    add_columns = edit_columns = list_columns[1:]
    search_columns = ["category", "document_type", "until_year_end", "reading_room_only"]
    order_columns = []
    base_order = ("matrix", "asc")
    description_columns = {
        "loan_days": _l("Counted from the loan day; a due date on a closed day moves to the "
                        "next open day."),
        "until_year_end": _l("Textbooks: due on the last day of the school year."),
        "max_items": _l("How many items of this kind a reader may have at once (0: none)."),
        "renewal_days": _l("Empty: the loan period again."),
        "reading_room_only": _l("Read in the library only, never lent."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "category": _category_field(), "document_type": _document_type_field()}
    formatters_columns = {"school": fmt_owner, "category": fmt_all, "document_type": fmt_all}
    item_validator = staticmethod(validate_rule)


def validate_closed_day(session, closed_day):
    if closed_day.day is None:
        raise ValidationError(_l("Enter the date."), field="day")
    if not (closed_day.name or "").strip():
        raise ValidationError(_l("Enter what the day is (e.g. Tết Nguyên đán)."), field="name")
    with session.no_autoflush:
        same = reports.duplicate_closed_day(session, closed_day)
        if same is None and closed_day.school_id is not None:
            same = reports.duplicate_closed_day(
                session, ClosedDay(id=-1, school_id=None, day=closed_day.day))
    if same is not None:
        raise ValidationError(_l("%(date)s is already a closed day (%(name)s)."),
                              field="day", date=i18n.format_date(closed_day.day),
                              name=same.name)


class ClosedDayView(CityOrSchoolView):
    """Days the library is closed: the city's holidays (department) and a school's own."""

    datamodel = VNInterface(ClosedDay)
    list_title = _l("Closed days")
    show_title = _l("Closed day")
    add_title = _l("Add closed day")
    edit_title = _l("Edit closed day")
    label_columns = {"school": _l("Applies in"), "day": _l("Date"), "name": _l("Occasion")}
    list_columns = ["day", "name", "school"]
    show_columns = list_columns
    add_columns = edit_columns = ["day", "name"]
    search_columns = ["day", "name"]
    base_order = ("day", "desc")
    description_columns = {
        "day": _l("Due dates falling on a closed day move to the next open day."),
    }
    formatters_columns = {"school": fmt_owner}
    item_validator = staticmethod(validate_closed_day)


class RuleMatrixView(BaseView):
    """The rule in force for each reader category × document type in one school, chosen by
    the same function as the desk (policies.pick_rule); the city's defaults for a user who
    has not chosen a school."""

    route_base = "/loanrules"
    access_policy = "circulation_rules"
    default_view = "matrix"
    base_permissions = ["can_list"]

    @expose("/")
    @has_access
    @permission_name("list")
    def matrix(self):
        school = scoped_school(request.args.get("school"))
        categories, types, cells = reports.rule_matrix(db.session,
                                                       school.id if school else None)
        return self.render_template(
            "circulation/admin_rule_matrix.html", school=school, schools=school_choices(),
            categories=categories, types=types, cells=cells, title=_l("Loan rules at a glance"),
            appbuilder=self.appbuilder)


# --- Settings -------------------------------------------------------------------------------

def validate_settings(session, settings):
    if settings.hold_days is None or not 1 <= settings.hold_days <= 60:
        raise ValidationError(_l("A hold is kept between 1 and 60 days."), field="hold_days")
    if settings.fine_per_day is None or settings.fine_per_day < 0:
        raise ValidationError(_l("The fine per day must be zero or more."),
                              field="fine_per_day")
    if settings.undo_minutes is None or not 0 <= settings.undo_minutes <= 240:
        raise ValidationError(_l("The undo window is between 0 and 240 minutes."),
                              field="undo_minutes")


class CirculationSettingsView(SchoolScopedModelView):
    """One row per school; the librarian's is created with the defaults when first opened."""

    datamodel = VNInterface(CirculationSettings)
    base_permissions = ["can_list", "can_show", "can_edit"]
    list_title = show_title = _l("Circulation settings")
    edit_title = _l("Edit circulation settings")
    label_columns = {
        "school": _l("School"),
        "closed_on_sundays": _l("Closed on Sundays"),
        "closed_on_saturdays": _l("Closed on Saturdays"),
        "hold_days": _l("Days a set-aside hold is kept"),
        "fines_enabled": _l("Fines for late returns"),
        "fine_per_day": _l("Fine per day late (VND)"),
        "undo_minutes": _l("Minutes to undo a checkout or return"),
    }
    list_columns = ["school", "closed_on_sundays", "closed_on_saturdays", "hold_days",
                    "fines_enabled", "fine_per_day", "undo_minutes"]
    show_columns = list_columns
    edit_columns = list_columns[1:]
    item_validator = staticmethod(validate_settings)

    @expose("/list/")
    @has_access
    def list(self):
        school_id = current_scope().write_school_id
        if school_id is not None and db.session.scalar(select(func.count()).where(
                CirculationSettings.school_id == school_id)) == 0:
            db.session.add(policies.default_settings(school_id))
            try:
                db.session.commit()
            except IntegrityError:  # created at the same moment in another request
                db.session.rollback()
        widgets = self._list()
        return self.render_template(self.list_template, title=self.list_title,
                                    widgets=widgets)


# --- The loan register ----------------------------------------------------------------------

class LoanInterface(VNInterface):
    """A page of loans loads its readers, copies and titles in three queries, not per row."""

    def apply_all(self, *args, **kwargs):
        return super().apply_all(*args, **kwargs).options(
            selectinload(Loan.reader), selectinload(Loan.copy).selectinload(Copy.record))


class CriteriaFilter(BaseFilter):
    """The register's filter bar (reports.LoanCriteria) as a FAB filter."""

    name = "Register"
    arg_name = None

    def apply(self, query, criteria):
        return query.filter(*criteria.conditions())


class LostForm(FlaskForm):
    compensation = LabeledEnumField(Compensation, _l("Compensation"),
                                    validators=[InputRequired()])
    amount = MoneyField(_l("Amount (VND)"), validators=[Optional(), NumberRange(min=0)])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=255)])

    def validate(self, extra_validators=None):
        # Form-level: Optional() would stop a field validator on an empty amount.
        if not super().validate(extra_validators):
            return False
        if self.compensation.data == Compensation.amount and not self.amount.data:
            self.amount.errors = [_l("Enter the amount paid, in đồng.")]
            return False
        return True


LOAN_LABELS = {
    "school": _l("School"),
    "reader": _l("Reader"),
    "class_name": _l("Class"),
    "copy.record.title": _l("Title"),
    "copy.accession_label": _l("Accession number"),
    "copy": _l("Copy"),
    "kind": _l("Kind of loan"),
    "status": _l("Status"),
    "loaned_at": _l("Loan date"),
    "due_on": _l("Due date"),
    "returned_at": _l("Return date"),
    "renewals": _l("Renewals"),
    "fine": _l("Fine (VND)"),
    "compensation": _l("Compensation"),
    "compensation_amount": _l("Amount (VND)"),
    "class_loan": _l("Class loan"),
    "note": _l("Note"),
}


class LoanView(SchoolScopedModelView):
    """Sổ mượn: every loan ever made, read-only. Loans change only through the desk's
    services; "mark lost" is the one change made here (services.mark_lost)."""

    datamodel = LoanInterface(Loan)
    base_permissions = ["can_list", "can_show", "can_download", "can_mark_lost"]
    list_title = _l("Loan register")
    show_title = _l("Loan")
    list_template = "circulation/admin_loan_list.html"
    show_template = "circulation/admin_loan_show.html"
    label_columns = LOAN_LABELS
    list_columns = ["reader", "class_name", "copy.record.title", "copy.accession_label",
                    "loaned_at", "due_on", "returned_at", "status"]
    show_columns = ["school", "reader", "class_name", "copy.record.title",
                    "copy.accession_label", "kind", "status", "loaned_at", "due_on",
                    "returned_at", "renewals", "fine", "compensation", "compensation_amount",
                    "class_loan", "note"]
    # The filter bar of the list template replaces FAB's search (see _criteria).
    search_columns = ["status", "class_name"]
    order_columns = ["class_name", "loaned_at", "due_on", "returned_at", "status"]
    base_order = ("loaned_at", "desc")
    formatters_columns = {"loaned_at": fmt_local_date, "returned_at": fmt_local_date,
                          "class_loan": fmt_blank}

    def _criteria(self):
        """(LoanCriteria, the values as typed, error messages) from the filter bar."""
        args = request.args
        values = {key: (args.get(key) or "").strip()[:120] for key in (
            "school", "status", "class_name", "reader", "from", "to", "overdue")}
        errors = []
        criteria = reports.LoanCriteria(today=reports.local_today())
        if values["school"]:
            criteria.school_id = scoped_school(values["school"]).id  # 404 outside the scope
        if values["status"] in LoanStatus.__members__:
            criteria.status = LoanStatus[values["status"]]
        criteria.class_name = values["class_name"] or None
        criteria.reader = values["reader"] or None
        criteria.overdue = values["overdue"] == "1"
        for key, attr in (("from", "loaned_from"), ("to", "loaned_to")):
            try:
                setattr(criteria, attr, parse_day(values[key]))
            except ValidationError as error:
                errors.append(str(error))
        return criteria, values, errors

    def _get_list_widget(self, filters, criteria=None, **kwargs):
        if criteria is not None:
            filters = filters.copy()
            filters.add_filter("id", CriteriaFilter, criteria)
        return super()._get_list_widget(filters=filters, **kwargs)

    @expose("/list/")
    @has_access
    def list(self):
        criteria, values, errors = self._criteria()
        for error in errors:
            flash(error, "warning")
        widgets = self._list(criteria=criteria)
        school = scoped_school(values["school"] or None)
        return self.render_template(
            self.list_template, title=self.list_title, widgets=widgets, values=values,
            statuses=list(LoanStatus), schools=school_choices(), school=school,
            classes=reports.class_names(db.session, school.id) if school else [],
            export_args={k: v for k, v in values.items() if v})

    @expose("/excel")
    @has_access
    @permission_name("download")
    def excel(self):
        criteria, values, errors = self._criteria()
        school = scoped_school(values["school"] or None)
        if school is None or errors:
            for error in errors:
                flash(error, "warning")
            if school is None:
                flash(gettext("Choose a school first."), "warning")
            return redirect(url_for(".list", **{k: v for k, v in values.items() if v}))
        data, _count = reports.register_workbook(db.session, school, criteria)
        stem = gettext("loan-register")  # (outside the f-string: pybabel extracts it)
        name = f"{stem}-{school.code}-{criteria.today:%Y%m%d}.xlsx"
        return send_file(io.BytesIO(data), as_attachment=True, download_name=name, max_age=0,
                         mimetype="application/vnd.openxmlformats-officedocument."
                                  "spreadsheetml.sheet")

    @expose("/show/<pk>")
    @has_access
    def show(self, pk):
        pk = self._deserialize_pk_if_composite(pk)
        widgets = self._show(pk)  # 404 outside the user's scope
        loan = self.datamodel.get(pk, self._base_filters)
        can_mark = (loan.status == LoanStatus.active
                    and current_scope().can_write_school(loan.school_id)
                    and self.appbuilder.sm.has_access("can_mark_lost",
                                                      self.class_permission_name))
        return self.render_template(
            self.show_template, pk=pk, title=self.show_title, widgets=widgets,
            related_views=self._related_views, loan=loan,
            lost_form=LostForm() if can_mark else None)

    @expose("/lost/<pk>", methods=["POST"])
    @has_access
    @permission_name("mark_lost")
    def mark_lost(self, pk):
        loan = self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
        if loan is None:
            abort(404)
        school_id = own_school_or_403(current_scope().write_school_id)
        form = LostForm()
        if not form.validate():
            flash_form_errors(form)
            return redirect(url_for(".show", pk=loan.id))
        try:
            services.mark_lost(db.session, current_user, school_id, loan.id,
                               compensation=form.compensation.data,
                               amount=form.amount.data, note=form.note.data or None)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
        else:
            flash(gettext("The loan is closed as lost; the copy is recorded as lost."),
                  "success")
        return redirect(url_for(".show", pk=loan.id))


# --- Overdue loans and notices ------------------------------------------------------------

class OverdueView(BaseView):
    """Overdue loans by class (for homeroom teachers) and printable notices to parents."""

    route_base = "/overdue"
    access_policy = "school_data"
    default_view = "index"
    base_permissions = ["can_list"]

    def _data(self):
        school = scoped_school(request.args.get("school"))
        class_name = (request.args.get("class_name") or "").strip()[:30] or None
        today = reports.local_today()
        groups = (reports.overdue_by_class(db.session, school.id, today, class_name)
                  if school else [])
        return school, class_name, today, groups

    @expose("/")
    @has_access
    @permission_name("list")
    def index(self):
        school, class_name, today, groups = self._data()
        return self.render_template(
            "circulation/admin_overdue.html", school=school, schools=school_choices(),
            class_name=class_name, today=today, groups=groups,
            classes=reports.class_names(db.session, school.id) if school else [],
            title=_l("Overdue loans"), appbuilder=self.appbuilder)

    @expose("/notices")
    @has_access
    @permission_name("list")
    def notices(self):
        school, class_name, today, groups = self._data()
        if school is None:
            flash(gettext("Choose a school first."), "warning")
            return redirect(url_for(".index"))
        return self.render_template(
            "circulation/notice_overdue.html", school=school, class_name=class_name,
            today=today, groups=groups, count=sum(len(entries) for _n, entries in groups),
            appbuilder=self.appbuilder)


# --- Holds --------------------------------------------------------------------------------

class HoldInterface(VNInterface):
    def apply_all(self, *args, **kwargs):
        return super().apply_all(*args, **kwargs).options(
            selectinload(Hold.reader), selectinload(Hold.record), selectinload(Hold.copy))


class HoldView(SchoolScopedModelView):
    """Đặt trước: read-only list; holds are placed at the desk and cancelled here."""

    datamodel = HoldInterface(Hold)
    base_permissions = ["can_list", "can_show"]
    list_title = _l("Holds")
    show_title = _l("Hold")
    label_columns = {"school": _l("School"), "reader": _l("Reader"), "record": _l("Title"),
                     "copy.accession_label": _l("Copy set aside"), "status": _l("Status"),
                     "placed_at": _l("Placed on"), "ready_on": _l("Set aside on"),
                     "expires_on": _l("Kept until")}
    list_columns = ["reader", "record", "status", "placed_at", "ready_on", "expires_on",
                    "copy.accession_label"]
    show_columns = ["school"] + list_columns
    search_columns = ["status", "ready_on", "expires_on"]
    base_order = ("placed_at", "desc")
    formatters_columns = {"placed_at": fmt_local_date}

    @expose("/list/")
    @has_access
    def list(self):
        # Holds set aside past their date close when the librarian opens the list (their
        # copies go to the next reader waiting). Read-only users only look.
        school_id = current_scope().write_school_id
        if school_id is not None and services.expire_holds(db.session, school_id,
                                                           today=reports.local_today()):
            db.session.commit()
        widgets = self._list()
        return self.render_template(self.list_template, title=self.list_title,
                                    widgets=widgets)

    @action("cancel_hold", _l("Cancel hold"), _l("Cancel the selected holds?"), "fa-times")
    def cancel_hold(self, items):
        items = items if isinstance(items, list) else [items]
        school_id = own_school_or_403(current_scope().write_school_id)
        try:
            for item in items:
                services.cancel_hold(db.session, current_user, school_id, item.id)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
        else:
            flash(gettext("Holds cancelled: %(num)d.", num=len(items)),
                  "success")
        return redirect(url_for(".list"))


# --- Class loans --------------------------------------------------------------------------

class ClassLoanView(SchoolScopedModelView):
    """Sets of books lent to a whole class; "Return all" takes back what is still out."""

    datamodel = VNInterface(ClassLoan)
    base_permissions = ["can_list", "can_show"]
    list_title = _l("Class loans")
    show_title = _l("Class loan")
    list_template = "circulation/admin_class_loan_list.html"
    label_columns = {"school": _l("School"), "class_name": _l("Class"),
                     "holder": _l("Held by"),
                     "per_student": _l("One copy per student"), "loaned_at": _l("Loan date"),
                     "due_on": _l("Due date"), "closed_at": _l("All returned on"),
                     "note": _l("Note")}
    list_columns = ["class_name", "holder", "per_student", "loaned_at", "due_on", "closed_at",
                    "note"]
    show_columns = ["school"] + list_columns
    search_columns = ["class_name", "per_student", "due_on"]
    base_order = ("loaned_at", "desc")
    formatters_columns = {"loaned_at": fmt_local_date, "closed_at": fmt_local_date,
                          "holder": fmt_blank}
    related_views = [LoanView]

    @expose("/list/")
    @has_access
    def list(self):
        widgets = self._list()
        can_lend = (current_scope().write_school_id is not None
                    and self.appbuilder.sm.has_access("can_lend", "ClassLendView"))
        return self.render_template(self.list_template, title=self.list_title,
                                    widgets=widgets, can_lend=can_lend)

    @action("return_all", _l("Return all"),
            _l("Take back every copy of the selected class loans that is still out?"),
            "fa-undo")
    def return_all(self, items):
        items = items if isinstance(items, list) else [items]
        school_id = own_school_or_403(current_scope().write_school_id)
        try:
            count = sum(services.return_class_loan(db.session, current_user, school_id,
                                                   item.id) for item in items)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
        else:
            flash(gettext("Copies returned: %(num)d.", num=count),
                  "success")
        return redirect(url_for(".list"))


HANDOUT, BOX = "students", "holder"


class ClassLendForm(FlaskForm):
    class_name = SelectField(_l("Class"), validators=[InputRequired()], choices=[])
    mode = RadioField(_l("What to lend"), default=HANDOUT, choices=[
        (HANDOUT, _l("One copy of each title to every student of the class (textbooks)")),
        (BOX, _l("Copies held for the class by one reader (a classroom box)"))])
    record_ids = SelectMultipleField(_l("Titles"), coerce=int, choices=[],
                                     validate_choice=False)
    holder = SelectField(_l("Held by"), choices=[], validate_choice=False)
    barcodes = TextAreaField(_l("Copies (scan or type the barcodes, one per line)"))
    due_on = VNDateField(_l("Due date"), validators=[Optional()])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=255)])

    def fill_choices(self, school_id):
        self.class_name.choices = [(c, c) for c in reports.class_names(db.session, school_id)]
        holders = db.session.execute(
            select(Reader).join(ReaderCategory, ReaderCategory.id == Reader.category_id)
            .where(Reader.school_id == school_id, Reader.status == ReaderStatus.active,
                   ReaderCategory.kind != ReaderKind.student)).scalars().all()
        holders.sort(key=lambda r: i18n.person_sort_key(family_and_middle=r.family_name,
                                                        given=r.given_name))
        self.holder.choices = [("", "—")] + [(str(r.id), f"{r.full_name} ({r.card_number})")
                                             for r in holders]


def lendable_titles(school_id, type_id):
    """(record id, title, copies on the shelf) of the school's titles of one document type
    that have a copy available."""
    dialect = db.session.get_bind().dialect.name
    available = func.count(Copy.id)
    query = (select(Record.id, Record.title, available)
             .join(Copy, and_(Copy.record_id == Record.id, Copy.school_id == Record.school_id))
             .where(Record.school_id == school_id, Copy.status == CopyStatus.available)
             .group_by(Record.id, Record.title)
             .order_by(i18n.collate(Record.title, dialect)).limit(500))
    if type_id is not None:
        query = query.where(Record.document_type_id == type_id)
    return db.session.execute(query).all()


class ClassLendView(BaseView):
    """Lend to a whole class at once (services.lend_to_class), then a list to sign."""

    route_base = "/classlend"
    access_policy = "school_data"
    default_view = "form"
    base_permissions = ["can_lend"]

    def _type_id(self, types):
        raw = request.values.get("type", "")
        if raw.isdigit():
            return int(raw)
        if raw == "all":
            return None
        textbooks = [t for t in types if t.code == "SGK"]
        return textbooks[0].id if textbooks else None

    def _render(self, school_id, form, error=None):
        types = db.session.execute(select(DocumentType).order_by(DocumentType.code)).scalars()
        types = list(types)
        type_id = self._type_id(types)
        return self.render_template(
            "circulation/admin_class_lend.html", form=form, error=error, types=types,
            type_id=type_id, titles=lendable_titles(school_id, type_id),
            school=db.session.get(OrgUnit, school_id), title=_l("Lend to a class"),
            appbuilder=self.appbuilder)

    @expose("/", methods=["GET"])
    @has_access
    @permission_name("lend")
    def form(self):
        school_id = own_school_or_403(current_scope().write_school_id)
        form = ClassLendForm(formdata=None)
        form.fill_choices(school_id)
        return self._render(school_id, form)

    @expose("/", methods=["POST"])
    @has_access
    @permission_name("lend")
    def lend(self):
        school_id = own_school_or_403(current_scope().write_school_id)
        form = ClassLendForm()
        form.fill_choices(school_id)
        if not form.validate():
            return self._render(school_id, form)
        today = reports.local_today()
        try:
            if form.due_on.data is not None and form.due_on.data < today:
                raise ValidationError(_l("The due date cannot be in the past."))
            holder = None
            if form.mode.data == BOX:
                raw = form.holder.data or ""
                holder = db.session.get(Reader, int(raw)) if raw.isdigit() else None
                if holder is None or holder.school_id != school_id:
                    raise ValidationError(_l("Choose the reader who holds the class's copies "
                                             "(usually the homeroom teacher)."))
            class_loan = services.lend_to_class(
                db.session, current_user, school_id, form.class_name.data,
                record_ids=form.record_ids.data if holder is None else (),
                barcodes=re.split(r"[\s,;]+", form.barcodes.data or "") if holder else (),
                holder=holder, due_on=form.due_on.data, today=today,
                note=form.note.data or None)
            db.session.commit()
        except DomainError as error:
            # lend_to_class adds the class loan before its checks: nothing may stay.
            db.session.rollback()
            return self._render(school_id, form, error=str(error))
        return redirect(url_for(".result", pk=class_loan.id))

    @expose("/result/<int:pk>")
    @has_access
    @permission_name("lend")
    def result(self, pk):
        class_loan = db.session.get(ClassLoan, pk)
        if class_loan is None or not current_scope().can_see_school(class_loan.school_id):
            abort(404)
        rows = db.session.execute(
            select(Loan, Reader, Copy, Record).join(Reader, Reader.id == Loan.reader_id)
            .join(Copy, Copy.id == Loan.copy_id).join(Record, Record.id == Copy.record_id)
            .where(Loan.class_loan_id == class_loan.id)).all()
        rows.sort(key=lambda r: (i18n.person_sort_key(family_and_middle=r.Reader.family_name,
                                                      given=r.Reader.given_name),
                                 i18n.collation_key(r.Record.title)))
        return self.render_template(
            "circulation/admin_class_lend_result.html", class_loan=class_loan, rows=rows,
            title=_l("Class loan"), appbuilder=self.appbuilder)


# --- Reading room -------------------------------------------------------------------------

class ReadingForm(FlaskForm):
    day = VNDateField(_l("Date"), validators=[InputRequired()])
    barcode = StringField(_l("Copy barcode"), validators=[Optional(), Length(max=40)])
    card = StringField(_l("Reader card (optional)"), validators=[Optional(), Length(max=40)])
    class_name = StringField(_l("Class"), validators=[Optional(), Length(max=30)])
    visits = IntegerField(_l("Number of readers"), default=1,
                          validators=[Optional(), NumberRange(min=1, max=500)])
    category = SelectField(_l("Reader category"), choices=[], validate_choice=False)


class ReadingRoomView(BaseView):
    """Đọc tại chỗ: a quick tally (a scanned copy, or a class and a number of readers), the
    day's lines and the month's totals per day and reader category."""

    route_base = "/readingroom"
    access_policy = "school_data"
    default_view = "index"
    base_permissions = ["can_list", "can_record"]

    @staticmethod
    def _categories():
        return db.session.execute(select(ReaderCategory).order_by(ReaderCategory.id)).scalars(
        ).all()

    @expose("/")
    @has_access
    @permission_name("list")
    def index(self):
        school = scoped_school(request.args.get("school"))
        try:
            day = parse_day(request.args.get("day")) or reports.local_today()
        except ValidationError as error:
            flash(str(error), "warning")
            day = reports.local_today()
        categories = self._categories()
        form = ReadingForm(formdata=None, day=day)
        form.category.choices = [("", "—")] + [(str(c.id), c.name) for c in categories]
        entries, totals, classes = [], None, []
        if school is not None:
            entries = reports.reading_entries(db.session, school.id, day)
            start = day.replace(day=1)
            end = (start + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(
                days=1)
            totals = reports.reading_totals(db.session, school.id, start, end)
            classes = reports.class_names(db.session, school.id)
        can_record = (school is not None and current_scope().can_write_school(school.id)
                      and self.appbuilder.sm.has_access("can_record", "ReadingRoomView"))
        return self.render_template(
            "circulation/admin_reading_room.html", school=school, schools=school_choices(),
            day=day, form=form, entries=entries, totals=totals, classes=classes,
            can_record=can_record, title=_l("Reading room"), appbuilder=self.appbuilder)

    @expose("/record", methods=["POST"])
    @has_access
    @permission_name("record")
    def record(self):
        school_id = own_school_or_403(current_scope().write_school_id)
        form = ReadingForm()
        form.category.choices = [("", "")]
        if not form.validate():
            flash_form_errors(form)
            return redirect(url_for(".index"))
        day = form.day.data
        barcode = (form.barcode.data or "").strip()
        card = (form.card.data or "").strip()
        class_name = (form.class_name.data or "").strip() or None
        raw_category = form.category.data or ""
        try:
            if day > reports.local_today():
                raise ValidationError(_l("The date cannot be in the future."))
            category_id = None
            if raw_category.isdigit():
                category = db.session.get(ReaderCategory, int(raw_category))
                category_id = category.id if category else None
            reader = (services.find_panel_reader(db.session, school_id, card)
                      if card else None)
            if barcode:
                # One copy read by one reader (or by someone not named).
                services.record_reading(db.session, current_user, school_id, on=day,
                                        reader=reader, barcode=barcode, visits=1,
                                        category_id=category_id)
            elif reader is not None or class_name:
                if category_id is None and reader is None:
                    # A class comes to read: its readers are students.
                    category_id = db.session.scalar(select(ReaderCategory.id).where(
                        ReaderCategory.kind == ReaderKind.student).order_by(
                        ReaderCategory.id).limit(1))
                services.record_reading(db.session, current_user, school_id, on=day,
                                        reader=reader, class_name=class_name,
                                        category_id=category_id, visits=form.visits.data or 1)
            else:
                raise ValidationError(_l("Scan a copy, or enter a class and the number of "
                                         "readers."))
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
        else:
            flash(gettext("Recorded."), "success")
        return redirect(url_for(".index", day=i18n.format_date(day)))

    @expose("/delete/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("record")
    def delete(self, pk):
        use = db.session.get(ReadingRoomUse, pk)
        if use is None or use.school_id != current_scope().write_school_id:
            abort(404)
        day = use.used_on
        db.session.delete(use)
        db.session.commit()
        flash(gettext("The line is removed."), "success")
        return redirect(url_for(".index", day=i18n.format_date(day)))


# --- Menu -----------------------------------------------------------------------------------

def register(appbuilder):
    circ = dict(category="Circulation", category_label=_l("Circulation"),
                category_icon="fa-exchange-alt")
    add = appbuilder.add_view
    add(LoanView, "Loan register", label=_l("Loan register"), icon="fa-book-reader", **circ)
    add(OverdueView, "Overdue loans", label=_l("Overdue loans"), icon="fa-clock", **circ)
    add(HoldView, "Holds", label=_l("Holds"), icon="fa-bookmark", **circ)
    add(ClassLoanView, "Class loans", label=_l("Class loans"), icon="fa-users", **circ)
    appbuilder.add_view_no_menu(ClassLendView)
    add(ReadingRoomView, "Reading room", label=_l("Reading room"), icon="fa-chair", **circ)
    add(RuleMatrixView, "Loan rules at a glance", label=_l("Loan rules at a glance"),
        icon="fa-table", **circ)
    add(LoanRuleView, "Loan rules", label=_l("Loan rules"), icon="fa-balance-scale", **circ)
    add(ClosedDayView, "Closed days", label=_l("Closed days"), icon="fa-calendar-times",
        **circ)
    add(CirculationSettingsView, "Circulation settings", label=_l("Circulation settings"),
        icon="fa-sliders-h", **circ)
