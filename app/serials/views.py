"""Newspapers and magazines: the subscriptions and issues (generated CRUD) and the page that
receives the day's issues in one step. Rules live in app.serials.services.

Reading is "can_list"/"can_show" (every staff role that sees the school); writing is the
school's librarian ("can_add"/"can_edit"/"can_delete", "can_receive"). Another school's
subscription or issue is not found (404).
"""
import calendar

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import select

from app.catalog.models import DocumentType, Record
from app.core.i18n import format_date, local_today
from app.core.tenancy import current_scope, school_choices, scoped_school
from app.core.views import SchoolScopedModelView, reject
from app.extensions import db
from app.registers.layout import money_text
from app.serials import services
from app.serials.models import PeriodicalIssue, PeriodicalSubscription


class PeriodicalRecordFilter(BaseFilter):
    """The record drop-down of a subscription: newspapers and magazines only."""

    name = "Periodicals"
    arg_name = None

    def apply(self, query, value):
        return query.filter(Record.document_type_id.in_(select(DocumentType.id).where(
            DocumentType.code.in_(services.PERIODICAL_TYPES))))


def _money(value):
    return "" if value is None else f"{money_text(value)} đ"


class PeriodicalSubscriptionView(SchoolScopedModelView):
    datamodel = SQLAInterface(PeriodicalSubscription)
    base_permissions = ["can_list", "can_show", "can_add", "can_edit", "can_delete"]
    list_title = _l("Periodical subscriptions")
    show_title = _l("Periodical subscription")
    add_title = _l("Add a periodical subscription")
    edit_title = _l("Edit periodical subscription")
    label_columns = {
        "school": _l("School"), "record": _l("Newspaper or magazine"), "year": _l("Year"),
        "frequency": _l("Frequency"), "issuing_body": _l("Issuing body"),
        "copies_per_issue": _l("Copies per issue"), "price": _l("Subscription price (VND)"),
        "issue_price": _l("Price per issue (VND)"), "funding": _l("Funding"),
        "note": _l("Note"),
    }
    description_columns = {
        "issuing_body": _l("Leave empty when it is the record's publisher."),
        "issue_price": _l("Used for the value of the issues received in the library report."),
    }
    list_columns = ["record", "year", "frequency", "copies_per_issue", "price", "funding"]
    show_columns = ["school", "record", "year", "frequency", "issuing_body", "copies_per_issue",
                    "price", "issue_price", "funding", "note"]
    add_columns = edit_columns = ["record", "year", "frequency", "issuing_body",
                                  "copies_per_issue", "price", "issue_price", "funding", "note"]
    search_columns = ["record", "year", "frequency", "funding"]
    formatters_columns = {"price": _money, "issue_price": _money}
    add_form_query_rel_fields = {"record": [["id", PeriodicalRecordFilter, None]]}
    edit_form_query_rel_fields = {"record": [["id", PeriodicalRecordFilter, None]]}
    base_order = ("year", "desc")

    def validate_item(self, item):
        with self.datamodel.session.no_autoflush:
            try:
                services.check_subscription(self.datamodel.session, item)
            except services.ValidationError as error:
                reject(self, error)

    def pre_delete(self, item):
        super().pre_delete(item)
        if item.issues:
            reject(self, services.ValidationError(
                _l("This subscription has issues received: delete them first.")))


class PeriodicalIssueView(SchoolScopedModelView):
    datamodel = SQLAInterface(PeriodicalIssue)
    base_permissions = ["can_list", "can_show", "can_add", "can_edit", "can_delete"]
    list_title = _l("Periodical issues received")
    show_title = _l("Periodical issue")
    add_title = _l("Record a periodical issue")
    edit_title = _l("Edit periodical issue")
    label_columns = {
        "school": _l("School"), "subscription": _l("Subscription"),
        "number": _l("Issue number"), "issue_date": _l("Date of the issue"),
        "received_on": _l("Date received"), "copies": _l("Copies received"),
        "note": _l("Note"),
    }
    list_columns = ["subscription", "number", "issue_date", "received_on", "copies"]
    show_columns = ["school", "subscription", "number", "issue_date", "received_on", "copies",
                    "note"]
    add_columns = edit_columns = ["subscription", "number", "issue_date", "received_on",
                                  "copies", "note"]
    search_columns = ["subscription", "number", "issue_date", "received_on"]
    base_order = ("received_on", "desc")

    def validate_item(self, item):
        with self.datamodel.session.no_autoflush:
            try:
                services.check_issue(self.datamodel.session, item)
            except services.ValidationError as error:
                reject(self, error)


def _visible_subscription(pk):
    """A subscription of the user's scope, else 404."""
    sub = db.session.get(PeriodicalSubscription, pk)
    if sub is None or not current_scope().can_see_school(sub.school_id):
        abort(404)
    return sub


MONTHS = range(1, 13)
DAYS = range(1, 32)


class PeriodicalReceiveView(BaseView):
    """Nhận báo, tạp chí: pick a subscription, see its year's issues in a months × days grid,
    record an issue received in one step."""

    route_base = "/serials/receive"
    access_policy = "school_data"
    default_view = "index"
    class_permission_name = "PeriodicalReceiveView"
    base_permissions = ["can_list", "can_receive"]
    method_permission_name = {"index": "list", "receive": "receive"}

    def _can_write(self, school_id):
        return (current_scope().can_write_school(school_id)
                and self.appbuilder.sm.has_access("can_receive", self.class_permission_name))

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        pk = (request.args.get("subscription") or "").strip()
        if pk:
            if not pk.isdigit():
                abort(404)
            sub = _visible_subscription(int(pk))
            school = sub.school
        else:
            sub = None
            school = scoped_school(request.args.get("school"))
        subs = services.subscriptions(db.session, school.id) if school is not None else []
        today = local_today()
        if sub is None and subs:
            current = [s for s in subs if s.year == today.year]
            sub = (current or subs)[0]
        grid, issues, summary = {}, [], None
        if sub is not None:
            grid, issues = services.year_grid(db.session, sub)
            summary = {"received": len(issues), "copies": sum(i.copies for i in issues),
                       "expected": services.expected_issues(sub)}
        days_in = ({m: calendar.monthrange(sub.year, m)[1] for m in MONTHS}
                   if sub is not None else {})
        form = {
            "number": request.args.get("number", ""),
            "issue_date": request.args.get("issue_date") or format_date(today),
            "received_on": request.args.get("received_on") or format_date(today),
            "copies": request.args.get("copies") or (str(sub.copies_per_issue) if sub else "1"),
            "note": request.args.get("note", ""),
        }
        return self.render_template(
            "serials/receive.html", school=school, schools=school_choices(), subs=subs,
            sub=sub, grid=grid, issues=issues, summary=summary, months=MONTHS, days=DAYS,
            days_in=days_in, form=form, money=_money,
            can_write=sub is not None and self._can_write(sub.school_id),
            title=_l("Receive newspapers and magazines"), appbuilder=self.appbuilder)

    @expose("/<int:pk>", methods=["POST"])
    @has_access
    def receive(self, pk):
        sub = _visible_subscription(pk)
        if not current_scope().can_write_school(sub.school_id):
            abort(404)
        form = request.form
        try:
            issue = services.receive_issue(
                db.session, sub, form.get("number"), form.get("issue_date"),
                form.get("received_on"), form.get("copies"), form.get("note"))
            db.session.commit()
        except services.IssueRejected as error:
            db.session.rollback()
            for message in error.messages:
                flash(message, "danger")
            typed = {k: (form.get(k) or "")[:60] for k in
                     ("number", "issue_date", "received_on", "copies", "note")}
            return redirect(url_for(".index", subscription=pk,
                                    **{k: v for k, v in typed.items() if v}))
        flash(gettext("Issue %(number)s of %(title)s received on %(date)s (%(n)d copies).",
                      number=issue.number, title=sub.title,
                      date=format_date(issue.received_on), n=issue.copies), "success")
        return redirect(url_for(".index", subscription=pk))


def register(appbuilder):
    lib = dict(category="Library", category_label=_l("Library"), category_icon="fa-book-open")
    appbuilder.add_view(PeriodicalReceiveView, "Receive newspapers and magazines",
                        label=_l("Receive newspapers and magazines"), icon="fa-newspaper",
                        **lib)
    appbuilder.add_view(PeriodicalSubscriptionView, "Periodical subscriptions",
                        label=_l("Periodical subscriptions"), icon="fa-newspaper", **lib)
    appbuilder.add_view(PeriodicalIssueView, "Periodical issues received",
                        label=_l("Periodical issues received"), icon="fa-list", **lib)
