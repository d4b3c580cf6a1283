"""Roles defined in code and synchronised into the database; the security manager.

Each registered view declares an `access_policy` (see POLICIES); `sync_roles` turns the
policies into exactly one permission set per role. Nothing is granted by hand in the UI.
"""
import functools
import logging
import re


from flask import g, has_request_context
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.sqla.models import Role
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import text

from app.core.enums import N_

log = logging.getLogger(__name__)

# flask.g: the user and their permissions may be taken from the worker's cache on trust
# (app.core.cache.trust); set by app.core.security.cached_access_api around its requests.
TRUST_CACHE = "_trust_cache"


def cached_access_api(view):
    """FAB's `has_access_api` (the view's permission, 401/403) made lean, for JSON APIs on a
    hot path (the circulation desk's): the logged-in user, their permissions and their school
    are taken from the worker's cache on trust (AppSecurityManager.trusted_user_for,
    tenancy.school_user_scope): no statement, no copy of the user in the request's session.
    The request's first statement reads the cache's number along with its own columns
    (`cache.observe`); the view must call `cache.confirm(session)` (it reads the number if no
    statement did) before it commits or answers a refusal, as the desk's `_answer` does. If
    the entries were stale (`cache.Stale`: an account, role, group, unit or permission
    changed meanwhile), nothing is kept: the request runs again from the start the ordinary
    way (Flask-Login, FAB's has_access), which also answers every refusal. CSRF is checked
    before (CSRFProtect), as everywhere."""
    from flask import current_app
    from flask_appbuilder.security.decorators import has_access_api
    from flask_login import current_user

    from app.core import cache
    from app.core.tenancy import school_user_scope, use_scope
    from app.extensions import db

    guarded = has_access_api(view)

    @functools.wraps(guarded)
    def wrapper(self, *args, **kwargs):
        setattr(g, TRUST_CACHE, True)
        try:
            permission = "can_" + self.method_permission_name[view.__name__]
            user = current_app.appbuilder.sm.trusted_user_for(
                permission, self.class_permission_name)
            scope = school_user_scope(user) if user is not None else None
            if scope is not None and permission in self.base_permissions:
                # The lean way: FAB's checks done on the cached user; Flask-Login's and the
                # tenancy's request state set from it (see trusted_user_for).
                g._login_user = user
                use_scope(user, scope)
                return view(self, *args, **kwargs)
            response = guarded(self, *args, **kwargs)
            cache.confirm(db.session)  # a refusal (401, 403) made on trust
            return response
        except cache.Stale:
            db.session.rollback()
            for name in ("_login_user", "_tenancy_scope", TRUST_CACHE):
                g.pop(name, None)
            g.user = current_user  # as FAB's before_request
            return guarded(self, *args, **kwargs)
        finally:
            g.pop(TRUST_CACHE, None)
            cache.forget_assumption(db.session)
    return wrapper

ROLE_DEPT_ADMIN = "dept_admin"
ROLE_INSPECTOR = "dept_inspector"
ROLE_OFFICER = "office_officer"
ROLE_LIBRARIAN = "librarian"
ROLE_PRINCIPAL = "principal"
ROLE_TEACHER = "teacher"
ROLE_STUDENT = "student"
ROLE_PUBLIC = "public"

ROLE_LABELS = {
    ROLE_DEPT_ADMIN: N_("Department administrator"),
    ROLE_INSPECTOR: N_("Department inspector"),
    ROLE_OFFICER: N_("Office officer"),
    ROLE_LIBRARIAN: N_("Librarian"),
    ROLE_PRINCIPAL: N_("Principal"),
    ROLE_TEACHER: N_("Teacher (reader)"),
    ROLE_STUDENT: N_("Student (reader)"),
    ROLE_PUBLIC: N_("Public"),
}

# Which kind of unit an account of each role must be bound to.
ROLE_UNIT_KINDS = {
    ROLE_DEPT_ADMIN: {"department"},
    ROLE_INSPECTOR: {"department"},
    ROLE_OFFICER: {"district_office", "ward_office", "cluster"},
    ROLE_LIBRARIAN: {"school"},
    ROLE_PRINCIPAL: {"school"},
    ROLE_TEACHER: {"school"},
    ROLE_STUDENT: {"school"},
}

WRITER_ROLES = frozenset({ROLE_LIBRARIAN})
# Roles that approve (and only approve) documents of their own school: the principal's
# approval of a weeding round (TT 02/2020, Mẫu 07). See tenancy.Scope.approve_school_id.
APPROVER_ROLES = frozenset({ROLE_PRINCIPAL})
STAFF_ROLES = frozenset(
    {ROLE_DEPT_ADMIN, ROLE_INSPECTOR, ROLE_OFFICER, ROLE_LIBRARIAN, ROLE_PRINCIPAL}
)
ALL_ROLES = STAFF_ROLES | {ROLE_TEACHER, ROLE_STUDENT}
READ_ONLY_ROLES = frozenset({ROLE_INSPECTOR, ROLE_OFFICER, ROLE_PRINCIPAL})

# Permission names that only read. Anything else (add, edit, delete, actions, imports) writes.
READ_PERMISSIONS = frozenset(
    {"can_list", "can_show", "can_download", "can_get", "can_info", "can_history",
     "can_data", "menu_access"}
)

# policy -> (roles that read, roles that also write)
POLICIES = {
    # School-owned library data: the librarian writes their school; the others read their scope.
    "school_data": (STAFF_ROLES, {ROLE_LIBRARIAN}),
    # Organisation tree and accounts: the department administrator.
    "org_admin": ({ROLE_DEPT_ADMIN, ROLE_INSPECTOR, ROLE_OFFICER}, {ROLE_DEPT_ADMIN}),
    "city_settings": (STAFF_ROLES, {ROLE_DEPT_ADMIN}),
    # Loan rules and closed days: the department writes the city's rows, a librarian their
    # school's (checked row by row in app.circulation.admin_views.CityOrSchoolView).
    "circulation_rules": (STAFF_ROLES, {ROLE_DEPT_ADMIN, ROLE_LIBRARIAN}),
    # Stocktake campaigns: the department administrator or an office starts one for its
    # schools; staff read the campaigns covering schools they see (checked row by row).
    "stocktake_campaign": (STAFF_ROLES, {ROLE_DEPT_ADMIN, ROLE_OFFICER}),
    "accounts": ({ROLE_DEPT_ADMIN}, {ROLE_DEPT_ADMIN}),
    "security_meta": ({ROLE_DEPT_ADMIN}, set()),
    # Approval of a weeding round: the one write of the principal, on their own school
    # (checked row by row in app.weeding.views and by tenancy.guard_flush).
    "weeding_approval": (STAFF_ROLES, {ROLE_PRINCIPAL}),
    "audit": (STAFF_ROLES, set()),
    "home": (ALL_ROLES, set()),
    "self_service": (ALL_ROLES, ALL_ROLES),
}

# Flask-AppBuilder's own views, by class name.
FAB_VIEW_POLICIES = {
    "AppUserDBModelView": "accounts",
    "RoleListView": "security_meta",
    "GroupListView": "security_meta",
    "ResetPasswordView": "accounts",
    "ResetMyPasswordView": "self_service",
    "UserInfoEditView": "self_service",
    "UserStatsChartView": "accounts",
    "LocaleView": "self_service",
    "UtilView": "self_service",
}
# Permissions of the user view that every user needs for their own profile.
SELF_SERVICE_USER_PERMS = {"can_userinfo", "resetmypassword", "userinfoedit"}


def role_label(name):
    return _l(ROLE_LABELS.get(name, name))


# Roles are shown by their translated label wherever FAB prints a Role.
Role.__repr__ = lambda self: str(role_label(self.name))
Role.__str__ = Role.__repr__


def password_policy(password):
    """At least 8 characters with letters and digits (FAB_PASSWORD_COMPLEXITY_VALIDATOR)."""
    if len(password or "") < 8:
        raise PasswordComplexityValidationError(
            gettext("The password must have at least 8 characters.")
        )
    if not re.search(r"[^\W\d_]", password) or not re.search(r"\d", password):
        raise PasswordComplexityValidationError(
            gettext("The password must contain both letters and digits.")
        )


def view_policy(view):
    return getattr(view, "access_policy", None) or FAB_VIEW_POLICIES.get(type(view).__name__)


def desired_permissions(appbuilder):
    """{role name: {(permission, view_menu)}} computed from the registered views and menu."""
    wanted = {name: set() for name in ALL_ROLES}
    menu_targets = {}
    for view in appbuilder.baseviews:
        policy = view_policy(view)
        perms = set(getattr(view, "base_permissions", None) or [])
        view_menu = view.class_permission_name
        if policy is None:
            if type(view).__name__ == "AppUserDBModelView":
                policy = "accounts"
            else:
                continue
        readers, writers = POLICIES[policy]
        for perm in perms:
            is_read = perm in READ_PERMISSIONS
            for role in ALL_ROLES:
                if role in writers or (is_read and role in readers):
                    wanted[role].add((perm, view_menu))
        if type(view).__name__ == "AppUserDBModelView":
            for role in ALL_ROLES:
                for perm in SELF_SERVICE_USER_PERMS & perms:
                    wanted[role].add((perm, view_menu))
        menu_targets[view_menu] = view
    # Menu entries: visible when the role can list/see the view behind them.
    for category in appbuilder.menu.get_list():
        items = category.childs or [category]
        visible_in_category = {name: False for name in ALL_ROLES}
        for item in items:
            view = getattr(item, "baseview", None)
            if view is None:
                continue
            needed = ("can_list" if "can_list" in (view.base_permissions or [])
                      else None)
            for role in ALL_ROLES:
                if any(vm == view.class_permission_name and (needed is None or p == needed)
                       for p, vm in wanted[role]):
                    wanted[role].add(("menu_access", item.name))
                    visible_in_category[role] = True
        if category.childs:
            for role, visible in visible_in_category.items():
                if visible:
                    wanted[role].add(("menu_access", category.name))
    return wanted


def sync_roles(appbuilder):
    """Create every permission and role, and give each role exactly its permissions."""
    sm = appbuilder.sm
    session = sm.session
    if session.get_bind().dialect.name == "postgresql":
        # Several workers starting at once: one syncs, the others wait.
        session.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
    appbuilder.add_permissions(update_perms=True)
    wanted = desired_permissions(appbuilder)
    for name in sorted(ALL_ROLES | {ROLE_PUBLIC}):
        role = sm.find_role(name) or sm.add_role(name)
        pvs = []
        for perm, view_menu in sorted(wanted.get(name, ())):
            pv = sm.find_permission_view_menu(perm, view_menu) or sm.add_permission_view_menu(
                perm, view_menu
            )
            pvs.append(pv)
        role.permissions = pvs
    # The triggers on the permission tables make every worker reload them (app.core.cache).
    session.commit()


class AppSecurityManager(SecurityManager):
    from app.org.models import AppUser as user_model  # noqa: N813
    from app.org.views import AppUserDBModelView as userdbmodelview  # noqa: N813
    from app.org.views import RoleListView as rolemodelview  # noqa: N813
    from app.org.views import GroupListView as groupmodelview  # noqa: N813

    userstatschartview = None  # loads Google Charts from the internet

    def _role_permissions(self, role_ids):
        """Every (permission, view) of these roles. FAB would send one query per menu entry and
        per check (25 of a list page's 58 statements); they change only when the roles are
        synchronised, so each worker keeps them (app.core.cache: a change is seen by the next
        transaction of every worker)."""
        from flask_appbuilder.security.sqla.models import (
            assoc_permissionview_role, Permission, PermissionView, ViewMenu)
        from sqlalchemy import select

        from app.core import cache

        key = tuple(sorted(role_ids))

        def load():
            rows = self.session.execute(
                select(Permission.name, ViewMenu.name)
                .join(PermissionView, PermissionView.permission_id == Permission.id)
                .join(ViewMenu, ViewMenu.id == PermissionView.view_menu_id)
                .join(assoc_permissionview_role,
                      assoc_permissionview_role.c.permission_view_id == PermissionView.id)
                .where(assoc_permissionview_role.c.role_id.in_(key))).all()
            return frozenset((p, v) for p, v in rows)

        return cache.cached(self.session, ("permissions", key), load)

    # Columns FAB writes at every login (and failed login): not part of the cached user, so
    # that logins do not invalidate the caches; read from the database when asked for.
    LOGIN_BOOKKEEPING = ("last_login", "login_count", "fail_login_count", "changed_on")

    def _user_statement(self):
        statement = self.__dict__.get("_user_select")
        if statement is None:  # built once: building it costs more than running it
            from flask_appbuilder.security.sqla.models import Group
            from sqlalchemy import bindparam, select
            from sqlalchemy.orm import joinedload

            model = self.user_model
            statement = self._user_select = (
                select(model)
                .options(joinedload(model.roles),
                         joinedload(model.groups).joinedload(Group.roles),
                         joinedload(model.unit))
                .where(model.id == bindparam("pk")))
        return statement

    def get_user_by_id(self, pk):
        """The user of a request (Flask-Login's loader), with their roles, groups and unit,
        from the worker's cache (app.core.cache).

        The cache is exact: the triggers bump the version number when an account, its roles or
        groups, a role or a unit changes (migrations c8e3a4b5f603, a1d7e8f9c007), except FAB's
        bookkeeping at login (LOGIN_BOOKKEEPING). So a request costs one narrow statement (the
        number) when nothing changed; an account deactivated or given other roles is seen by
        the next request of every worker.

        The cache holds a detached copy loaded in a private session; each request gets its own
        persistent copy in the request's session (`merge(load=False)`: no SQL), so nothing is
        shared between requests or threads but the read-only original."""
        from sqlalchemy import inspect as sa_inspect
        from sqlalchemy.orm import Session

        from app.core import cache

        try:
            pk = int(pk)
        except (TypeError, ValueError):
            return None
        session = self.session
        model = self.user_model
        present = session.identity_map.get(sa_inspect(model).identity_key_from_primary_key((pk,)))
        if present is not None and sa_inspect(present).modified:
            # Changed in this session and not yet flushed: load it there, as FAB would.
            return session.execute(self._user_statement(), {"pk": pk}).unique().scalar()

        def load():
            # A private session on the request's connection (same transaction): its objects
            # stay loaded when it closes, unlike the request session's at commit.
            private = Session(bind=session.connection(), autoflush=False)
            try:
                user = private.execute(self._user_statement(), {"pk": pk}).unique().scalar()
                if user is not None:
                    private.expire(user, self.LOGIN_BOOKKEEPING)
                return user
            finally:
                private.close()

        snapshot = cache.MISSING
        if has_request_context() and g.get(TRUST_CACHE):
            # The desk's JSON API: the entry on trust, checked by the request's first
            # statement (app.core.cache.trust, app.core.security.cached_access_api).
            snapshot = cache.trust(session, ("user", pk))
        if snapshot is cache.MISSING:
            snapshot = cache.cached(session, ("user", pk), load)
        if snapshot is None:
            return None
        return session.merge(snapshot, load=False)

    def trusted_user_for(self, permission_name, view_name):
        """The session's user from the worker's cache on trust (app.core.cache.trust: no
        statement), if active and granted `permission_name` on `view_name`; else None, and
        the caller goes the ordinary way (Flask-Login, FAB's has_access), which also answers
        every refusal. For app.core.security.cached_access_api.

        The checks are FAB's has_access for a session user: Flask-Login's session
        protection, an active account, the permission through the user's roles and their
        groups' roles (none of them built-in). The user returned is the cache's detached,
        shared copy: read it only (id, username, unit, roles)."""
        from flask import current_app, session as http_session
        from flask_login.signals import user_accessed

        from app.core import cache

        if "_login_user" in g or g.get("_api_key_user"):
            return None
        user_id = http_session.get("_user_id")
        if user_id is None:
            return None
        user_accessed.send(current_app._get_current_object())
        if current_app.login_manager._session_protection_failed():
            return None
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        user = cache.trust(self.session, ("user", pk))
        if user is cache.MISSING or user is None or not user.is_active:
            return None
        roles = list(user.roles) + [role for group in user.groups for role in group.roles]
        if not roles or any(role.name in self.builtin_roles for role in roles):
            return None
        if (permission_name, view_name) not in self._role_permissions([r.id for r in roles]):
            return None
        return user

    def exist_permission_on_roles(self, view_name, permission_name, role_ids):
        return (permission_name, view_name) in self._role_permissions(role_ids)

    def _get_user_permission_view_menus(self, user, permission_name, view_menus_name):
        roles = [self.get_public_role()] if user is None else self.get_user_roles(user)
        granted = self._role_permissions([role.id for role in roles if role is not None])
        names = {v for p, v in granted if p == permission_name}
        return names if view_menus_name is None else names & set(view_menus_name)

    def __init__(self, appbuilder):
        super().__init__(appbuilder)
        from app.core.datamodel import VNInterface

        # Accounts list sorted the Vietnamese way (given name, then family and middle).
        self.userdbmodelview.datamodel = VNInterface(self.user_model)

    def register_views(self):
        super().register_views()
        # FAB limits only the HTML login form; the JSON login gets the same limit.
        if self.is_auth_limited:
            for view in self.appbuilder.baseviews:
                if type(view).__name__ == "SecurityApi":
                    self.limiter.limit(self.auth_rate_limit, methods=["POST"])(view.blueprint)
