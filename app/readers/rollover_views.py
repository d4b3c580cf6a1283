"""The year-end wizard (chuyển năm học): choose the years, edit the class mapping with a
preview, apply, then undo or confirm. Rules live in app.readers.rollover.

Reading (the wizard, its preview and past rollovers) is "can_list": every staff role that
sees the school. Changing anything (apply, undo, confirm) is "can_rollover", POST only with
CSRF: the school's librarian. Another school's rollover is not found (404).
"""
from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from app.core.errors import DomainError
from app.core.tenancy import current_scope, restrict_query, school_choices, scoped_school
from app.extensions import db
from app.org.models import OrgUnit, SchoolYear
from app.readers import rollover as services
from app.readers.models import RolloverStatus, YearRollover


def _year(values, name):
    value = values.get(name, "")
    return db.session.get(SchoolYear, int(value)) if value.isdigit() else None


def mapping_from(values):
    """{class: target} from the table's rows (source, target, ticked "graduates"); a row with
    neither a target nor the tick is left out (missing from the mapping)."""
    graduates = set(values.getlist("graduate"))
    mapping = {}
    for source, target in zip(values.getlist("source"), values.getlist("target")):
        if source in graduates:
            mapping[source] = ""
        elif target.strip():
            mapping[source] = target.strip()
    return mapping


class RolloverView(BaseView):
    """Chuyển năm học for the readers of one school."""

    route_base = "/rollover"
    access_policy = "school_data"
    default_view = "index"
    class_permission_name = "RolloverView"
    method_permission_name = {"index": "list", "preview": "list", "show": "list",
                              "apply": "rollover", "undo": "rollover", "confirm": "rollover"}
    base_permissions = ["can_list", "can_rollover"]

    def _can_write(self, school):
        return (school is not None and current_scope().can_write_school(school.id)
                and self.appbuilder.sm.has_access("can_rollover", self.class_permission_name))

    def _own_school(self):
        school_id = current_scope().write_school_id
        if school_id is None:
            abort(403)
        return db.session.get(OrgUnit, school_id)

    def _rollover(self, pk):
        """A rollover of the user's scope, else 404."""
        rollover = db.session.execute(
            restrict_query(select(YearRollover), YearRollover).where(YearRollover.id == pk)
        ).scalar_one_or_none()
        if rollover is None:
            abort(404)
        return rollover

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        school = scoped_school(request.args.get("school"))
        from_year, to_year = services.default_years(db.session)
        history = []
        if school is not None:
            history = db.session.execute(
                select(YearRollover).where(YearRollover.school_id == school.id)
                .order_by(YearRollover.applied_at.desc(), YearRollover.id.desc())
            ).scalars().all()
        years = db.session.execute(select(SchoolYear).order_by(SchoolYear.starts_on)
                                   ).scalars().all()
        return self.render_template(
            "readers/rollover_index.html", school=school, schools=school_choices(),
            years=years, from_year=from_year, to_year=to_year, history=history,
            pending=next((r for r in history if r.status == RolloverStatus.applied), None),
            can_write=self._can_write(school), title=_l("School-year rollover"),
            appbuilder=self.appbuilder)

    @expose("/preview", methods=["GET"])
    @has_access
    def preview(self):
        school = scoped_school(request.args.get("school"))
        if school is None:
            return redirect(url_for(".index"))
        mapping = mapping_from(request.args) if request.args.get("edited") else {
            source: target for source, target in
            services.propose_mapping(db.session, school).items() if target is not None}
        return self._render_preview(school, _year(request.args, "from_year"),
                                    _year(request.args, "to_year"), mapping)

    def _render_preview(self, school, from_year, to_year, mapping, error=None, status=200):
        year_error = None
        try:
            services.check_years(db.session, school, from_year, to_year)
        except DomainError as problem:
            year_error = str(problem)
        result = services.preview(db.session, school, mapping)
        return self.render_template(
            "readers/rollover_preview.html", school=school, from_year=from_year,
            to_year=to_year, result=result, leavers=result.leavers, error=error,
            year_error=year_error, can_write=self._can_write(school),
            title=_l("School-year rollover"), appbuilder=self.appbuilder), status

    @expose("/apply", methods=["POST"])
    @has_access
    def apply(self):
        school = self._own_school()
        from_year, to_year = _year(request.form, "from_year"), _year(request.form, "to_year")
        mapping = mapping_from(request.form)
        try:
            rollover = services.apply(db.session, current_user, school, from_year, to_year,
                                      mapping)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            return self._render_preview(school, from_year, to_year, mapping, error=str(error),
                                        status=error.status)
        flash(gettext("%(promoted)d readers moved up to %(year)s and %(graduated)d graduated. "
                      "Check the classes, then confirm the new school year.",
                      promoted=rollover.readers_promoted, graduated=rollover.readers_graduated,
                      year=rollover.to_year.name), "success")
        return redirect(url_for(".show", pk=rollover.id))

    @expose("/show/<int:pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        rollover = self._rollover(pk)
        leavers = []
        if rollover.status != RolloverStatus.undone:
            leavers = services.leavers_with_loans(db.session, rollover.school)
        return self.render_template(
            "readers/rollover_show.html", rollover=rollover, school=rollover.school,
            leavers=leavers, can_write=self._can_write(rollover.school),
            title=_l("School-year rollover"), appbuilder=self.appbuilder)

    def _change(self, pk, operation, done_message):
        rollover = self._rollover(pk)
        if not current_scope().can_write_school(rollover.school_id):
            abort(404)
        try:
            operation(db.session, current_user, rollover.school, rollover)
            db.session.commit()
            flash(done_message, "success")
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
        return redirect(url_for(".show", pk=pk))

    @expose("/undo/<int:pk>", methods=["POST"])
    @has_access
    def undo(self, pk):
        return self._change(pk, services.undo, gettext(
            "The rollover has been undone: every reader is back in their class."))

    @expose("/confirm/<int:pk>", methods=["POST"])
    @has_access
    def confirm(self, pk):
        return self._change(pk, services.confirm, gettext(
            "The new school year is confirmed: the rollover can no longer be undone."))


def register(appbuilder):
    appbuilder.add_view(RolloverView, "School-year rollover", label=_l("School-year rollover"),
                        icon="fa-graduation-cap", category="Readers",
                        category_label=_l("Readers"), category_icon="fa-users")
