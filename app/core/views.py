"""Base views every domain inherits: tenancy, Vietnamese dates and enums, audit link.

A new view gets the school scope by inheriting `SchoolScopedModelView`, not by remembering.
"""
import datetime

from flask import abort, flash, redirect, request
from flask_appbuilder import ModelView, expose
from flask_appbuilder._compat import as_unicode
from flask_appbuilder.const import FLAMSG_ERR_SEC_ACCESS_DENIED
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, Date, DateTime, Enum
from wtforms import BooleanField, DateField, SelectField
from wtforms.validators import DataRequired, Optional

from app.core import i18n
from app.core.errors import DomainError, ValidationError
from app.core.tenancy import SchoolScopeFilter, current_scope, is_school_owned


class VNDatePickerWidget(BS3TextFieldWidget):
    """A text input with a dd/mm/yyyy date picker (initialised in app/baselayout.html)."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("placeholder", "dd/mm/yyyy")
        kwargs["class"] = (kwargs.get("class", "") + " vn_date").strip()
        kwargs.setdefault("autocomplete", "off")
        return super().__call__(field, **kwargs)


class VNDateField(DateField):
    """Dates typed and shown as dd/mm/yyyy; also accepts ISO for API clients."""

    widget = VNDatePickerWidget()

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("format", [i18n.DATE_FORMAT, "%Y-%m-%d"])
        super().__init__(label, validators, **kwargs)

    def _value(self):
        if self.raw_data:
            return " ".join(self.raw_data)
        return self.data.strftime(i18n.DATE_FORMAT) if self.data else ""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        text = valuelist[0].strip()
        for fmt in self.strptime_format:
            try:
                self.data = datetime.datetime.strptime(text, fmt).date()
                return
            except ValueError:
                continue
        self.data = None
        raise ValueError(self.gettext("Not a valid date value (dd/mm/yyyy)."))


class LabeledEnumField(SelectField):
    """A select over a LabeledEnum showing translated labels, storing members."""

    def __init__(self, enum_cls, label=None, validators=None, **kwargs):
        self.enum_cls = enum_cls
        choices = [(m.name, m.label) for m in enum_cls]
        super().__init__(label, validators, choices=choices, coerce=self._coerce, **kwargs)

    def _coerce(self, value):
        if value is None or value == "" or isinstance(value, self.enum_cls):
            return value or None
        return self.enum_cls[value]

    def _choices_generator(self, choices):
        for value, label in choices:
            yield (value, label, self.data is not None and self.data.name == value, {})

    def pre_validate(self, form):
        if self.data is not None and not isinstance(self.data, self.enum_cls):
            raise ValueError(self.gettext("Not a valid choice."))


def _fmt_date(value):
    return i18n.format_date(value)


def _enum_formatter(enum_cls):
    """FAB hands formatters the member, its name or its value (the msgid): show the label."""

    def fmt(value):
        if value is None or value == "":
            return ""
        if isinstance(value, enum_cls):
            return value.label
        if value in enum_cls.__members__:
            return enum_cls[value].label
        return _l(value)

    return fmt


def reject(view, error):
    """Undo the form's changes to the session, then raise: FAB flashes the message and
    saves nothing."""
    view.datamodel.session.rollback()
    raise error


def _fmt_plain(value):
    return "" if value is None else value


def _fmt_bool(value):
    return _l("Yes") if value else _l("No")


class AppModelView(ModelView):
    """Every generated view of the application."""

    access_policy = None  # see app.core.security.POLICIES
    # A service rule `f(session, item)` raising ValidationError, run before every add and
    # update: the message is flashed and nothing is saved.
    item_validator = None
    show_template = "app/show_with_history.html"
    page_size = 25
    # FAB's file-download route serves UPLOAD_FOLDER to anyone with can_download, whatever
    # their school: no view of ours stores files there.
    exclude_route_methods = {"download"}

    def __init__(self, **kwargs):
        self._localise()
        super().__init__(**kwargs)
        if getattr(self.datamodel.obj, "__audited__", False):
            # The show page links to the record's history of changes.
            self.extra_args = {**self.extra_args,
                               "history_table": self.datamodel.obj.__tablename__}

    @classmethod
    def _columns_of(cls, datamodel):
        return {c.key: c for c in datamodel.obj.__table__.columns}

    def _localise(self):
        """Dates as dd/mm/yyyy and enums with translated labels, in lists, shows and forms."""
        columns = self._columns_of(self.datamodel)
        self.formatters_columns = dict(self.formatters_columns or {})
        self.add_form_extra_fields = dict(self.add_form_extra_fields or {})
        self.edit_form_extra_fields = dict(self.edit_form_extra_fields or {})
        labels = self.label_columns or {}
        for key, column in columns.items():
            label = labels.get(key, key)
            required = not column.nullable and column.default is None
            validators = [DataRequired()] if required else [Optional()]
            field = None
            if isinstance(column.type, Date):
                self.formatters_columns.setdefault(key, _fmt_date)
                field = VNDateField(label, validators=validators)
            elif isinstance(column.type, DateTime):
                self.formatters_columns.setdefault(key, _fmt_date)
            elif isinstance(column.type, Enum) and column.type.enum_class is not None:
                enum_cls = column.type.enum_class
                self.formatters_columns.setdefault(key, _enum_formatter(enum_cls))
                field = LabeledEnumField(enum_cls, label, validators=validators)
            elif isinstance(column.type, Boolean):
                # An unticked box is a valid "no": never "required".
                self.formatters_columns.setdefault(key, _fmt_bool)
                field = BooleanField(label, default=column.default.arg if column.default
                                     is not None else False)
            if field is not None:
                self.add_form_extra_fields.setdefault(key, field)
                self.edit_form_extra_fields.setdefault(key, field)
            # An empty value is shown empty, never as "None".
            self.formatters_columns.setdefault(key, _fmt_plain)

    def validate_item(self, item):
        if self.item_validator is not None:
            try:
                self.item_validator(self.datamodel.session, item)
            except ValidationError as error:
                reject(self, error)

    def pre_add(self, item):
        self.validate_item(item)

    def pre_update(self, item):
        self.validate_item(item)

    def get_action_permission_name(self, name):
        if name not in (self.actions or {}):
            abort(404)
        return super().get_action_permission_name(name)

    # FAB's action routes load rows with datamodel.get(pk) WITHOUT the base filters:
    # re-implemented so that an action can never reach a row outside the user's scope.
    @expose("/action/<string:name>/<pk>", methods=["GET", "POST"])
    def action(self, name, pk):
        if not self.is_get_mutation_allowed():
            flash(as_unicode(FLAMSG_ERR_SEC_ACCESS_DENIED), "danger")
            return redirect(self.get_redirect())
        permission_name = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission_name, self.class_permission_name):
            flash(as_unicode(FLAMSG_ERR_SEC_ACCESS_DENIED), "danger")
            return redirect(".")
        item = self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
        if item is None:
            abort(404)
        return self.actions[name].func(item)

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        name = request.form.get("action", "")
        permission_name = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission_name, self.class_permission_name):
            flash(as_unicode(FLAMSG_ERR_SEC_ACCESS_DENIED), "danger")
            return redirect(".")
        items = [self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
                 for pk in request.form.getlist("rowid")]
        if any(item is None for item in items):
            abort(404)
        return self.actions[name].func(items)


class SchoolScopedModelView(AppModelView):
    """Views of school-owned data: scoped to the user's schools, written by the librarian.

    - list/show/edit/delete/export/API only reach rows of the user's scope (others: 404);
    - the school is set from the librarian's account, never from the form;
    - drop-downs to other school-owned rows only offer the user's own school's rows.
    """

    access_policy = "school_data"
    base_filters = [["school_id", SchoolScopeFilter, lambda: None]]

    def __init__(self, **kwargs):
        assert is_school_owned(self.datamodel.obj), self.datamodel.obj
        for col in ("school", "school_id"):
            for attr in ("add_columns", "edit_columns"):
                cols = getattr(self, attr, None)
                if cols and col in cols:
                    raise AssertionError(f"{type(self).__name__}.{attr} must not expose {col}")
        self._scope_related_fields()
        super().__init__(**kwargs)

    def _scope_related_fields(self):
        """Scope every relation drop-down to the user's schools (one rule for all views)."""
        mapper = self.datamodel.obj.__mapper__
        for attr in ("add_form_query_rel_fields", "edit_form_query_rel_fields",
                     "search_form_query_rel_fields"):
            rel_fields = dict(getattr(self, attr, None) or {})
            for rel in mapper.relationships:
                target = rel.mapper.class_
                if rel.key == "school":
                    continue
                if is_school_owned(target):
                    rel_fields.setdefault(rel.key, []).append(
                        ["school_id", SchoolScopeFilter, lambda: None]
                    )
            setattr(self, attr, rel_fields)

    def pre_add(self, item):
        scope = current_scope()
        if scope.write_school_id is None:
            raise DomainError(_l("Only the school's librarian can add records."))
        from app.org.models import OrgUnit

        # Set the relationship, not only the key: the relationship wins at flush.
        item.school = self.datamodel.session.get(OrgUnit, scope.write_school_id)
        item.school_id = scope.write_school_id
        self.validate_item(item)

    def pre_update(self, item):
        if not current_scope().can_write_school(item.school_id):
            raise DomainError(_l("This record belongs to another school: you cannot change it."))
        self.validate_item(item)

    def pre_delete(self, item):
        self.pre_update(item)


class ScopedUnitFilterMixin:
    """For views over OrgUnit itself: a user sees the units of their scope."""

    base_filters = [["id", SchoolScopeFilter, lambda: None]]


def datamodel(model):
    return SQLAInterface(model)
