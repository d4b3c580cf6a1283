"""Screens of the organisation tree, school years and accounts (department administrator)."""
from app.core.datamodel import VNInterface as SQLAInterface
from flask_appbuilder.security.sqla.models import Group, Role
from flask_appbuilder.security.views import UserDBModelView
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from wtforms.validators import DataRequired, ValidationError as FormError

from app.core.errors import ValidationError
from app.core.security import ROLE_UNIT_KINDS, role_label
from app.core.tenancy import SchoolScopeFilter
from app.core.i18n import format_date
from app.core.views import AppModelView, reject
from app.org import services
from app.org.models import OrgLink, OrgUnit, SchoolYear

UNIT_LABELS = {
    "code": _l("Code"),
    "name": _l("Name"),
    "kind": _l("Kind of unit"),
    "levels": _l("Levels taught"),
    "teaches_preschool": _l("Preschool"),
    "teaches_primary": _l("Primary"),
    "teaches_lower_secondary": _l("Lower secondary"),
    "teaches_upper_secondary": _l("Upper secondary"),
    "is_public": _l("Public school"),
    "address": _l("Address"),
    "ward": _l("Ward/commune"),
    "phone": _l("Phone"),
    "email": _l("Email"),
    "valid_from": _l("Valid from"),
    "valid_to": _l("Valid to"),
}


class OrgUnitView(AppModelView):
    datamodel = SQLAInterface(OrgUnit)
    access_policy = "org_admin"
    base_filters = [["id", SchoolScopeFilter, lambda: None]]
    list_title = _l("Units")
    show_title = _l("Unit")
    add_title = _l("Add unit")
    edit_title = _l("Edit unit")
    label_columns = UNIT_LABELS
    list_columns = ["code", "name", "kind", "levels", "is_public", "ward", "valid_to"]
    search_columns = ["code", "name", "kind", "is_public", "ward"]
    add_columns = edit_columns = [
        "code", "name", "kind", "teaches_preschool", "teaches_primary",
        "teaches_lower_secondary", "teaches_upper_secondary", "is_public", "address", "ward",
        "phone", "email", "valid_from", "valid_to",
    ]
    show_columns = ["code", "name", "kind", "levels", "is_public", "address", "ward", "phone",
                    "email", "valid_from", "valid_to"]
    base_order = ("code", "asc")
    description_columns = {
        "code": _l("Unique code; schools use the Ministry's school code (e.g. 79000001)."),
        "valid_to": _l("Leave empty while the unit exists."),
    }

    item_validator = staticmethod(lambda session, item: services.validate_unit(session, item))


class OrgLinkView(AppModelView):
    datamodel = SQLAInterface(OrgLink)
    access_policy = "org_admin"
    list_title = _l("Placements in the tree")
    show_title = _l("Placement")
    add_title = _l("Place a unit")
    edit_title = _l("Edit placement")
    label_columns = {
        "child": _l("Unit"),
        "parent": _l("Under"),
        "hierarchy": _l("Hierarchy"),
        "valid_from": _l("Valid from"),
        "valid_to": _l("Valid to"),
    }
    list_columns = ["child", "parent", "hierarchy", "valid_from", "valid_to"]
    add_columns = edit_columns = ["child", "parent", "hierarchy", "valid_from", "valid_to"]
    search_columns = ["child", "parent", "hierarchy", "valid_from", "valid_to"]
    description_columns = {
        "valid_to": _l("Close a placement on 30/06/2025 and open the new one on 01/07/2025 "
                       "to move a school to a ward office."),
    }
    validators_columns = {
        "child": [DataRequired(message=_l("Choose the unit to place in the tree."))],
        "parent": [DataRequired(message=_l("Choose the parent unit."))],
    }

    item_validator = staticmethod(lambda session, item: services.validate_link(session, item))


class SchoolYearView(AppModelView):
    datamodel = SQLAInterface(SchoolYear)
    access_policy = "city_settings"
    list_title = _l("School years")
    show_title = _l("School year")
    add_title = _l("Add school year")
    edit_title = _l("Edit school year")
    label_columns = {
        "name": _l("School year"),
        "starts_on": _l("Starts on"),
        "semester1_ends_on": _l("Semester 1 ends on"),
        "semester2_starts_on": _l("Semester 2 starts on"),
        "ends_on": _l("Ends on"),
    }
    list_columns = ["name", "starts_on", "semester1_ends_on", "semester2_starts_on", "ends_on"]
    add_columns = edit_columns = list_columns
    base_order = ("starts_on", "desc")
    description_columns = {"name": _l("For example 2025–2026")}

    item_validator = staticmethod(lambda session, item: services.validate_school_year(session, item))


def _roles_fit_unit(form, field):
    unit = form.unit.data if "unit" in form else None
    if unit is None:
        return
    for role in field.data or []:
        kinds = ROLE_UNIT_KINDS.get(role.name)
        if kinds and unit.kind.name not in kinds:
            raise FormError(
                _l("The role “%(role)s” cannot be given to an account of “%(unit)s”.",
                   role=role_label(role.name), unit=unit.name))


ACCOUNT_LABELS = {
    "first_name": _l("Given name"),
    "last_name": _l("Family and middle name"),
    "unit": _l("Unit"),
    "phone": _l("Phone"),
}


class AppUserDBModelView(UserDBModelView):
    """Accounts: each bound to one unit of the tree, roles fitting that unit."""

    access_policy = "accounts"
    exclude_route_methods = {"download"}  # see AppModelView
    label_columns = {**UserDBModelView.label_columns, **ACCOUNT_LABELS}
    list_columns = ["username", "last_name", "first_name", "unit", "roles", "active"]
    add_columns = ["username", "last_name", "first_name", "unit", "roles", "active", "email",
                   "phone", "password", "conf_password"]
    edit_columns = ["username", "last_name", "first_name", "unit", "roles", "active", "email",
                    "phone"]
    show_fieldsets = [
        (_l("User info"), {"fields": ["username", "active", "unit", "roles", "login_count"]}),
        (_l("Personal Info"), {"fields": ["last_name", "first_name", "email", "phone"],
                               "expanded": True}),
        (_l("Audit Info"), {"fields": ["last_login", "fail_login_count", "created_on",
                                       "created_by", "changed_on", "changed_by"],
                            "expanded": False}),
    ]
    user_show_fieldsets = [
        (_l("User info"), {"fields": ["username", "unit", "roles"]}),
        (_l("Personal Info"), {"fields": ["last_name", "first_name", "email", "phone"],
                               "expanded": True}),
    ]
    search_columns = ["username", "first_name", "last_name", "unit", "roles", "active"]
    description_columns = {
        "first_name": _l("Vietnamese given name, e.g. “Lan” in “Nguyễn Thị Lan”."),
        "last_name": _l("Family and middle names, e.g. “Nguyễn Thị”."),
        "unit": _l("The unit whose data the account works on."),
    }
    validators_columns = {
        "unit": [DataRequired(message=_l("Bind the account to a unit of the organisation "
                                         "tree."))],
        "roles": [DataRequired(message=_l("Choose at least one role.")), _roles_fit_unit],
    }
    base_order = ("first_name", "asc")
    formatters_columns = {
        "active": lambda v: _l("Yes") if v else _l("No"),
        "last_login": format_date, "created_on": format_date, "changed_on": format_date,
        "login_count": lambda v: v or 0, "fail_login_count": lambda v: v or 0,
        "created_by": lambda v: v or "", "changed_by": lambda v: v or "",
        "email": lambda v: v or "", "phone": lambda v: v or "",
        "roles": lambda roles: ", ".join(str(r) for r in roles or []),
    }

    def _validate(self, item):
        try:
            services.validate_account(self.datamodel.session, item)
        except ValidationError as error:
            reject(self, error)

    def pre_add(self, item):
        self._validate(item)
        super().pre_add(item)  # hashes the password

    def pre_update(self, item):
        self._validate(item)
        super().pre_update(item)


PERMISSION_LABELS = {
    "can_list": _l("List"), "can_show": _l("Show"), "can_add": _l("Add"),
    "can_edit": _l("Edit"), "can_delete": _l("Delete"), "can_download": _l("Download"),
    "can_history": _l("History of changes"), "menu_access": _l("Menu"),
    "can_userinfo": _l("Your user information"), "resetmypassword": _l("Reset my password"),
    "resetpasswords": _l("Reset Password"), "userinfoedit": _l("Edit User"),
    "can_this_form_get": _l("Open the form"), "can_this_form_post": _l("Submit the form"),
    "can_import": _l("Import"), "can_copy": _l("Copy to my school"),
    "can_add_copies": _l("Add copies"),
    "can_desk": _l("Use the circulation desk"),
}


def _view_label(name):
    """A permission's view or menu name, as the user sees it on screens."""
    from flask import current_app

    appbuilder = current_app.appbuilder
    for view in appbuilder.baseviews:
        if view.class_permission_name == name:
            title = getattr(view, "list_title", None) or getattr(view, "form_title", None)
            if title:
                return title
    for item in appbuilder.menu.get_list():
        for entry in [item] + list(item.childs or []):
            if entry.name == name:
                return entry.label or name
    return name


def _permissions_list(permissions):
    """Permissions of a role in words: 'Xem danh sách — Kho và vị trí xếp giá'."""
    rows = sorted(
        (str(_view_label(pv.view_menu.name)),
         str(PERMISSION_LABELS.get(pv.permission.name, pv.permission.name)))
        for pv in permissions or [])
    items = "".join(f"<li>{escape(view)}: {escape(perm)}</li>" for view, perm in rows)
    return Markup(f'<ul class="list-unstyled">{items}</ul>')


class RoleListView(AppModelView):
    """Roles are defined in code (app.core.security): listed here, never edited."""

    datamodel = SQLAInterface(Role)
    access_policy = "security_meta"
    base_permissions = ["can_list", "can_show"]
    list_title = _l("List Roles")
    show_title = _l("Show Role")
    label_columns = {"name": _l("Name"), "permissions": _l("Permissions")}
    list_columns = ["name"]
    search_columns = ["name"]
    show_columns = ["name", "permissions"]
    formatters_columns = {"name": lambda name: role_label(name),
                          "permissions": _permissions_list}


class GroupListView(AppModelView):
    datamodel = SQLAInterface(Group)
    access_policy = "security_meta"
    base_permissions = ["can_list", "can_show"]
    list_title = _l("List Groups")
    label_columns = {"name": _l("Name"), "label": _l("Label"),
                     "description": _l("Description")}
    list_columns = ["name", "label", "description"]
    search_columns = ["name", "label"]
