"""Weeding screens: the rounds of a school, each step of a round, its forms (Excel and
printable) and the general register's Part II. Rules live in app.weeding.services.

Reading (rounds, forms, register) is "can_list": every staff role that sees the school.
Changing a round is "can_weed" (the school's librarian), approving it "can_approve" on
WeedingApprovalView (the principal of the round's school: the one write of that role). Every
change is a POST with CSRF; another school's round is not found (404).
"""
import datetime

from flask import Response, abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user

from app.core.errors import DomainError
from app.core.i18n import DATE_FORMAT, local_today
from app.core.tenancy import current_scope, school_choices, scoped_school
from app.extensions import db
from app.org.models import OrgUnit
from app.weeding import documents, services
from app.weeding.models import DisposalMethod, RoundStatus, WeedingReason, WeedingRound
from app.weeding.services import WeedingError

CRITERIA = (WeedingReason.outdated_textbook, WeedingReason.worn_out, WeedingReason.lost,
            WeedingReason.old_periodical)
# Forms available from each status on.
FORMS_FROM = {"04": RoundStatus.proposed, "05": RoundStatus.committee,
              "06a": RoundStatus.committee, "06b": RoundStatus.committee,
              "07a": RoundStatus.approved, "07b": RoundStatus.approved}
ORDER = [RoundStatus.draft, RoundStatus.proposed, RoundStatus.committee, RoundStatus.approved,
         RoundStatus.withdrawn]
FORM_NAMES = {
    "04": _l("Form 04 – list of copies proposed for weeding"),
    "05": _l("Form 05 – decision forming the appraisal committee"),
    "06a": _l("Form 06a – minutes of the appraisal committee"),
    "06b": _l("Form 06b – list appraised by the committee"),
    "07a": _l("Form 07a – decision approving the list"),
    "07b": _l("Form 07b – decision on the disposal"),
}


def forms_available(round_):
    """The forms of the round's dossier so far (a cancelled round keeps those it had)."""
    reached = round_.status
    if reached == RoundStatus.cancelled:
        reached = (RoundStatus.approved if round_.decision_number else RoundStatus.committee
                   if round_.appraisal_date else RoundStatus.proposed if round_.proposed_on
                   else RoundStatus.draft)
    index = ORDER.index(reached)
    return [code for code, start in FORMS_FROM.items() if ORDER.index(start) <= index]


def parse_date(value, label):
    value = (value or "").strip()
    if not value:
        return None
    for fmt in (DATE_FORMAT, "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise WeedingError(_l("%(field)s: “%(value)s” is not a date (dd/mm/yyyy)."),
                       field=label, value=value)


def _visible_round(pk):
    """A round of the user's scope, else 404."""
    scope = current_scope()
    try:
        return services.round_of(db.session, None if scope.all_schools else scope.school_ids,
                                 pk)
    except WeedingError:
        abort(404)


def _actor():
    return current_user if getattr(current_user, "is_authenticated", False) else None


class WeedingView(BaseView):
    route_base = "/weeding"
    access_policy = "school_data"
    default_view = "index"
    class_permission_name = "WeedingView"
    base_permissions = ["can_list", "can_weed"]
    method_permission_name = {
        "index": "list", "show": "list", "form_xlsx": "list", "form_print": "list",
        "register": "list", "register_xlsx": "list", "register_print": "list",
        "create": "weed", "add": "weed", "remove": "weed", "propose": "weed",
        "committee": "weed", "withdraw": "weed", "cancel": "weed"}

    def _can_write(self, school_id):
        return (current_scope().can_write_school(school_id)
                and self.appbuilder.sm.has_access("can_weed", self.class_permission_name))

    def _can_approve(self, school_id):
        return (current_scope().can_approve_school(school_id)
                and self.appbuilder.sm.has_access("can_approve", "WeedingApprovalView"))

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        school = scoped_school(request.args.get("school"))
        rounds = []
        if school is not None:
            rounds = db.session.query(WeedingRound).filter(
                WeedingRound.school_id == school.id).order_by(WeedingRound.number.desc()).all()
        return self.render_template(
            "weeding/index.html", school=school, schools=school_choices(), rounds=rounds,
            can_write=school is not None and self._can_write(school.id),
            holdings=services.holdings(db.session, school.id) if school else 0,
            title=_l("Weeding and disposal"), appbuilder=self.appbuilder)

    @expose("/create", methods=["POST"])
    @has_access
    def create(self):
        school_id = current_scope().write_school_id
        if school_id is None:
            abort(403)
        try:
            round_ = services.create_round(
                db.session, _actor(), db.session.get(OrgUnit, school_id),
                request.form.get("name"), request.form.get("plan_note"))
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
            return redirect(url_for(".index"))
        flash(gettext("Round %(n)d created: add the copies to weed.", n=round_.number),
              "success")
        return redirect(url_for(".show", pk=round_.id))

    @expose("/show/<int:pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        round_ = _visible_round(pk)
        today = local_today()
        count, value = services.totals(db.session, round_)
        return self.render_template(
            "weeding/show.html", round=round_, school=round_.school,
            items=services.items(db.session, round_), count=count, value=value,
            warnings=services.warnings(db.session, round_, today),
            forms=forms_available(round_), form_names=FORM_NAMES,
            display_ends=services.display_ends(round_),
            withdrawable_from=services.withdrawable_from(round_), today=today,
            can_write=self._can_write(round_.school_id),
            can_approve=self._can_approve(round_.school_id),
            criteria=CRITERIA, reasons=list(WeedingReason), methods=list(DisposalMethod),
            statuses=RoundStatus, default_year=today.year - 5,
            title=_l("Weeding round"), appbuilder=self.appbuilder)

    def _change(self, pk, work, done):
        """Run one step on a round of the librarian's own school, in one transaction."""
        round_ = _visible_round(pk)
        if not current_scope().can_write_school(round_.school_id):
            abort(404)
        try:
            result = work(round_)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
        else:
            flash(done(result) if callable(done) else done, "success")
        return redirect(url_for(".show", pk=pk))

    @expose("/add/<int:pk>", methods=["POST"])
    @has_access
    def add(self, pk):
        form = request.form

        def work(round_):
            reason = WeedingReason.__members__.get(form.get("reason", ""))
            if form.get("mode") == "criterion":
                if reason not in CRITERIA:
                    raise WeedingError(_l("Choose a criterion."))
                year = form.get("before_year", "").strip()
                if year and not year.isdigit():
                    raise WeedingError(_l("The year of the new curriculum must be a number."))
                return services.add_by_criterion(db.session, _actor(), round_, reason,
                                                 int(year) if year else None)
            if reason is None:
                raise WeedingError(_l("Choose the reason for weeding."))
            ids = form.getlist("copy_id")
            if ids:
                if not all(i.isdigit() for i in ids):
                    raise WeedingError(_l("Copy not found."))
                return services.add_copy_ids(db.session, _actor(), round_,
                                             [int(i) for i in ids], reason)
            copies = services.find_copies(db.session, round_.school_id,
                                          form.get("codes", "").splitlines())
            return services.add_copies(db.session, _actor(), round_, copies, reason,
                                       form.get("note"))
        return self._change(pk, work, lambda n: gettext("%(n)d copies added to the round.",
                                                        n=n))

    @expose("/remove/<int:pk>/<int:item_id>", methods=["POST"])
    @has_access
    def remove(self, pk, item_id):
        return self._change(
            pk, lambda r: services.remove_item(db.session, _actor(), r, item_id),
            gettext("The copy was taken out of the round."))

    @expose("/propose/<int:pk>", methods=["POST"])
    @has_access
    def propose(self, pk):
        return self._change(
            pk, lambda r: services.propose(db.session, _actor(), r),
            gettext("The list is drawn up (Form 04). Record the committee's appraisal next."))

    @expose("/committee/<int:pk>", methods=["POST"])
    @has_access
    def committee(self, pk):
        form = request.form

        def work(round_):
            return services.record_committee(
                db.session, _actor(), round_, form.get("committee_decision_number"),
                parse_date(form.get("committee_decision_date"),
                           gettext("Date of the committee decision")),
                form.get("committee_members"),
                parse_date(form.get("appraisal_date"), gettext("Date of the appraisal")),
                form.get("appraisal_conclusion"))
        return self._change(pk, work, gettext(
            "The committee's appraisal is recorded (Forms 05, 06a, 06b). The principal can "
            "now approve the list."))

    @expose("/withdraw/<int:pk>", methods=["POST"])
    @has_access
    def withdraw(self, pk):
        return self._change(
            pk, lambda r: services.withdraw(db.session, _actor(), r),
            lambda line: gettext("%(n)d copies withdrawn; line %(number)d of the general "
                                 "register, Part II.", n=line.copies_count,
                                 number=line.register_number))

    @expose("/cancel/<int:pk>", methods=["POST"])
    @has_access
    def cancel(self, pk):
        return self._change(
            pk, lambda r: services.cancel(db.session, _actor(), r, request.form.get("reason")),
            gettext("The round is cancelled; its list stays in the dossier."))

    @expose("/form/<int:pk>/<code>.xlsx", methods=["GET"])
    @has_access
    def form_xlsx(self, pk, code):
        round_ = _visible_round(pk)
        if code not in forms_available(round_):
            abort(404)
        doc = documents.build(db.session, round_, code)
        return _xlsx_response(doc)

    @expose("/print/<int:pk>/<code>", methods=["GET"])
    @has_access
    def form_print(self, pk, code):
        round_ = _visible_round(pk)
        if code not in forms_available(round_):
            abort(404)
        doc = documents.build(db.session, round_, code)
        return self.render_template("weeding/document.html", doc=doc,
                                    back=url_for(".show", pk=pk), **documents.fixed_texts())

    @expose("/register", methods=["GET"])
    @has_access
    def register(self):
        school = scoped_school(request.args.get("school"))
        lines = services.register_part_two(db.session, school.id) if school else []
        return self.render_template(
            "weeding/register.html", school=school, schools=school_choices(), lines=lines,
            reasons=list(WeedingReason), roman_date=documents.roman_date,
            title=_l("General register – Part II (withdrawals)"), appbuilder=self.appbuilder)

    @expose("/register.xlsx", methods=["GET"])
    @has_access
    def register_xlsx(self):
        school = scoped_school(request.args.get("school"))
        if school is None:
            abort(404)
        return _xlsx_response(documents.register_document(db.session, school))

    @expose("/register/print", methods=["GET"])
    @has_access
    def register_print(self):
        school = scoped_school(request.args.get("school"))
        if school is None:
            abort(404)
        return self.render_template("weeding/document.html",
                                    doc=documents.register_document(db.session, school),
                                    back=url_for(".register", school=school.code),
                                    **documents.fixed_texts())


def _xlsx_response(doc):
    return Response(
        documents.to_xlsx(doc),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition":
                 f'attachment; filename="{documents.safe_filename(doc.filename)}.xlsx"',
                 "Cache-Control": "no-store"})


class WeedingApprovalView(BaseView):
    """The principal's approval of a round of their own school (Mẫu 07a/07b)."""

    route_base = "/weeding-approval"
    access_policy = "weeding_approval"
    class_permission_name = "WeedingApprovalView"
    base_permissions = ["can_approve"]
    method_permission_name = {"approve": "approve"}

    @expose("/approve/<int:pk>", methods=["POST"])
    @has_access
    def approve(self, pk):
        round_ = _visible_round(pk)
        scope = current_scope()
        if not scope.can_approve_school(round_.school_id):
            abort(404)
        form = request.form
        try:
            services.approve(
                db.session, _actor(), scope.approve_school_id, round_,
                form.get("decision_number"),
                parse_date(form.get("decision_date"), gettext("Date of the decision")),
                DisposalMethod.__members__.get(form.get("disposal_method", "")))
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
        else:
            flash(gettext("The list is approved by decision %(number)s. It is displayed "
                          "publicly until %(end)s; the librarian withdraws the copies after "
                          "that.", number=round_.decision_number,
                          end=services.display_ends(round_).strftime(DATE_FORMAT)), "success")
        return redirect(url_for("WeedingView.show", pk=pk))


def register(appbuilder):
    appbuilder.add_view(WeedingView, "Weeding and disposal", label=_l("Weeding and disposal"),
                        icon="fa-recycle", category="Library", category_label=_l("Library"),
                        category_icon="fa-book-open")
    appbuilder.add_view_no_menu(WeedingApprovalView)
