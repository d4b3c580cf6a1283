"""Screens of the audit log: the whole log (scoped) and the history of one record."""
from flask import abort
from flask_appbuilder import expose, has_access
from flask_appbuilder.models.filters import BaseFilter
from app.core.datamodel import VNInterface as SQLAInterface
from flask_babel import lazy_gettext as _l

from app.core.audit import AuditLog
from app.core.i18n import format_date
from app.core.tenancy import current_scope
from app.core.views import AppModelView


class AuditScopeFilter(BaseFilter):
    """The department sees every change; others see changes to their schools' records."""

    name = "Scope"

    def apply(self, query, value):
        scope = current_scope()
        if scope.all_schools:
            return query
        return query.filter(AuditLog.school_id.in_(scope.school_ids or {-1}))


class AuditLogView(AppModelView):
    datamodel = SQLAInterface(AuditLog)
    access_policy = "audit"
    base_permissions = ["can_list", "can_show", "can_history"]
    base_filters = [["school_id", AuditScopeFilter, lambda: None]]
    list_title = _l("Change history")
    show_title = _l("Change")
    label_columns = {
        "at": _l("Time (UTC)"),
        "username": _l("By"),
        "table_name": _l("Table"),
        "table_label": _l("Table"),
        "row_id": _l("Record no."),
        "action_label": _l("Action"),
        "changes": _l("Changes"),
    }
    list_columns = ["at", "username", "table_label", "row_id", "action_label"]
    show_columns = ["at", "username", "table_label", "row_id", "action_label", "changes"]
    search_columns = ["username", "table_name", "row_id", "at"]
    base_order = ("at", "desc")
    formatters_columns = {"at": format_date}

    @expose("/record/<table>/<int:row_id>")
    @has_access
    def history(self, table, row_id):
        """Every change of one record, newest first (404 outside the user's scope)."""
        query = self.datamodel.session.query(AuditLog).filter(
            AuditLog.table_name == table, AuditLog.row_id == row_id)
        query = AuditScopeFilter("school_id", self.datamodel).apply(query, None)
        entries = query.order_by(AuditLog.at.desc(), AuditLog.id.desc()).all()
        if not entries:
            abort(404)
        return self.render_template(
            "app/record_history.html", entries=entries, table=table, row_id=row_id,
            title=_l("History of changes"), appbuilder=self.appbuilder)
