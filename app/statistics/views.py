"""The statistics page (/statistics/): one report for one period and one scope, as a table,
a chart and an Excel file. Every user sees their own unit and what lies under it: a school
its own figures, an office its schools, the department the city by office, with links down
to any school (another unit: 404)."""
import io

from flask import abort, current_app, g, request, send_file
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _l

from app.core.datamodel import VNInterface
from app.core.errors import ValidationError
from app.core.i18n import local_today
from app.core.tenancy import current_scope
from app.core.views import SchoolScopedModelView
from app.extensions import db
from app.registers.layout import letterhead
from app.statistics import display, excel, library_report, services, standard
from app.statistics.models import LibraryReport


def _args(**changes):
    """The page's query arguments with `changes` (None removes one): links keep the period."""
    keep = {k: v for k, v in request.args.items()
            if k in ("report", "unit", "year", "part", "from", "to", "class", "units") and v}
    keep.update(changes)
    return {k: v for k, v in keep.items() if v is not None}


class StatisticsView(BaseView):
    route_base = "/statistics"
    access_policy = "school_data"
    default_view = "index"
    base_permissions = ["can_list", "can_download"]

    def _context(self):
        session = db.session
        try:
            scope = services.resolve_scope(session, current_scope(), g.user.unit_id,
                                           request.args.get("unit"))
        except LookupError:
            abort(404)
        report = services.REPORTS_BY_CODE.get(request.args.get("report") or "",
                                              services.REPORTS[0])
        error = None
        try:
            period = services.parse_period(session, request.args)
        except ValidationError as exc:
            error = str(exc)
            period = services.parse_period(session, {})
        return session, scope, report, period, error

    @expose("/")
    @has_access
    @permission_name("list")
    def index(self):
        session, scope, report, period, error = self._context()
        if report.kind == "standard":
            return self._standard(session, scope, report, period, error)
        table = services.build_table(session, report, scope, period)
        config = current_app.config
        view = display.display(
            table, request.args.get("units", 1),
            config.get("STAT_UNITS_PER_PAGE", display.UNITS_PER_PAGE),
            config.get("STAT_TRANSPOSE_ABOVE", display.TRANSPOSE_ABOVE))
        extras = {}
        if scope.is_school and report.group in ("use", "readers"):
            school_id = scope.unit.id
            extras = {
                "top_titles": services.top_titles(session, school_id, period),
                "top_readers": services.top_readers(session, school_id, period),
                "idle_classes": services.classes_without_use(session, school_id, period),
                "borrowers": services.borrowers_share(session, school_id, period),
            }
        class_name = (request.args.get("class") or "").strip()[:30]
        if scope.is_school and class_name:
            extras["class_name"] = class_name
            extras["class_rows"] = services.class_readers(session, scope.unit.id, class_name,
                                                          period)
        chart = {
            "id": "stat-chart", "type": "line" if report.by_month else "bar",
            "title": str(report.title),
            "labels": [label for label, _cells, _total in table.rows],
            "values": [total[0] for _label, _cells, total in table.rows],
        }
        return self._render(
            session, table=table, report=report, scope=scope, period=period, error=error,
            chart=chart, view=view,
            units_label=_l("%(count)s units, %(per_page)s a page:", count=view.unit_count,
                           per_page=view.per_page),
            pages_note=_l("The total row counts every unit; the Excel file has every cell."),
            all_units_total=_l("Total of all %(count)s units", count=view.unit_count),
            **extras)

    def _render(self, session, **context):
        years = services.school_years(session)
        year_id = request.args.get("year") or ""
        year = next((y for y in years if str(y.id) == year_id), None) or next(
            (y for y in years if y.starts_on <= local_today() <= y.ends_on), None)
        return self.render_template(
            "statistics/index.html", groups=services.GROUPS, reports=services.REPORTS,
            years=years, year=year, months=services.year_months(year) if year else [],
            args=_args, all_schools=current_scope().all_schools,
            share_label=services.MEASURES["share"], today=local_today(),
            title=_l("Statistics"), appbuilder=self.appbuilder, **context)

    def _standard(self, session, scope, report, period, error):
        """The collection against the standard: one row per school (the state now)."""
        table = standard.build_table(session, scope)
        return self._render(session, table=table, report=report, scope=scope, period=period,
                            error=error, chart=None, definition=standard.definition())

    @expose("/xlsx")
    @has_access
    @permission_name("download")
    def xlsx(self):
        session, scope, report, period, error = self._context()
        if error:
            abort(400, error)
        if report.kind == "standard":
            data = excel.standard_xlsx(standard.build_table(session, scope), report,
                                       standard.definition())
        else:
            data = excel.table_xlsx(services.build_table(session, report, scope, period))
        name = f"thong-ke-{report.code}-{(scope.unit.code if scope.unit else 'thanh-pho')}.xlsx"
        return send_file(io.BytesIO(data), as_attachment=True, download_name=name,
                         mimetype="application/vnd.openxmlformats-officedocument."
                                  "spreadsheetml.sheet")





# --- The school's library report -------------------------------------------------------

def validate_report(session, report):
    if report.starts_on and report.ends_on and report.ends_on < report.starts_on:
        raise ValidationError(_l("The report ends (%(end)s) before it starts (%(start)s).",
                                 end=report.ends_on.strftime("%d/%m/%Y"),
                                 start=report.starts_on.strftime("%d/%m/%Y")),
                              field="ends_on")


class LibraryReportView(SchoolScopedModelView):
    """Báo cáo công tác thư viện: the librarian writes the words, the data gives the
    figures; printed and downloaded in the official layout."""

    datamodel = VNInterface(LibraryReport)
    base_permissions = ["can_list", "can_show", "can_add", "can_edit", "can_download"]
    list_title = _l("Library reports")
    show_title = _l("Library report")
    add_title = _l("New library report")
    edit_title = _l("Edit the library report")
    show_template = "statistics/report_show.html"
    item_validator = staticmethod(validate_report)
    label_columns = {
        "school": _l("School"), "kind": _l("Report"), "starts_on": _l("From"),
        "ends_on": _l("To"), "activities": _l("Activities held"),
        "coordination": _l("Coordination"), "teacher_requests": _l("Requests of teachers"),
        "student_requests": _l("Requests of students"),
        "school_proposals": _l("Proposals to the school"),
        "office_proposals": _l("Proposals to the education office"),
        "written_on": _l("Written on"),
    }
    list_columns = ["kind", "starts_on", "ends_on", "written_on"]
    add_columns = ["kind", "starts_on", "ends_on", "activities", "coordination",
                   "teacher_requests", "student_requests", "school_proposals",
                   "office_proposals"]
    edit_columns = add_columns + ["written_on"]
    show_columns = ["school", "kind", "starts_on", "ends_on", "written_on"]
    search_columns = ["kind", "starts_on"]
    base_order = ("starts_on", "desc")

    def _report(self, pk):
        report = self.datamodel.get(pk, self._base_filters)
        if report is None:
            abort(404)
        return report

    def _figures(self, report):
        from app.org.models import OrgUnit

        school = db.session.get(OrgUnit, report.school_id)
        fig = library_report.figures(db.session, report.school_id, report.starts_on,
                                     report.ends_on)
        head = letterhead(db.session, school, on=report.ends_on, signed_on=report.written_on)
        return fig, head

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        report = self._report(pk)
        fig, head = self._figures(report)
        widgets = self._get_show_widget(pk, report)
        return self.render_template(
            self.show_template, pk=pk, title=self.show_title, widgets=widgets,
            related_views=[], report=report, fig=fig, head=head,
            report_title=library_report.title(report),
            reader_lines=library_report.reader_lines(fig),
            text_parts=library_report.text_parts(report))

    @expose("/print/<int:pk>")
    @has_access
    @permission_name("show")
    def printable(self, pk):
        report = self._report(pk)
        fig, head = self._figures(report)
        return self.render_template(
            "statistics/report_print.html", report=report, fig=fig, head=head,
            report_title=library_report.title(report),
            reader_lines=library_report.reader_lines(fig),
            text_parts=library_report.text_parts(report))

    @expose("/xlsx/<int:pk>")
    @has_access
    @permission_name("download")
    def xlsx(self, pk):
        report = self._report(pk)
        fig, head = self._figures(report)
        data = library_report.write_excel(report, fig, head)
        name = f"bao-cao-thu-vien-{report.starts_on:%Y-%m}.xlsx"
        return send_file(io.BytesIO(data), as_attachment=True, download_name=name,
                         mimetype="application/vnd.openxmlformats-officedocument."
                                  "spreadsheetml.sheet")


def register(appbuilder):
    appbuilder.add_view(StatisticsView, "Statistics", label=_l("Statistics"),
                        icon="fa-chart-bar", category="Reports",
                        category_label=_l("Reports"), category_icon="fa-chart-pie")
    appbuilder.add_view(LibraryReportView, "Library reports", label=_l("Library reports"),
                        icon="fa-file-alt", category="Reports")
