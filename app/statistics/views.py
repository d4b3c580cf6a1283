"""The statistics page (/statistics/): one report for one period and one scope, as a table,
a chart and an Excel file. Every user sees their own unit and what lies under it: a school
its own figures, an office its schools, the department the city by office, with links down
to any school (another unit: 404)."""
import io

from flask import abort, g, request, send_file
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.decorators import permission_name
from flask_babel import lazy_gettext as _l

from app.core.errors import ValidationError
from app.core.i18n import local_today
from app.core.tenancy import current_scope
from app.extensions import db
from app.statistics import excel, services


def _args(**changes):
    """The page's query arguments with `changes` (None removes one): links keep the period."""
    keep = {k: v for k, v in request.args.items()
            if k in ("report", "unit", "year", "part", "from", "to", "class") and v}
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
        table = services.build_table(session, report, scope, period)
        years = services.school_years(session)
        year_id = request.args.get("year") or ""
        year = next((y for y in years if str(y.id) == year_id), None) or next(
            (y for y in years if y.starts_on <= local_today() <= y.ends_on), None)
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
        return self.render_template(
            "statistics/index.html", table=table, report=report, scope=scope, period=period,
            error=error, groups=services.GROUPS, reports=services.REPORTS, years=years,
            year=year, months=services.year_months(year) if year else [],
            args=_args, chart=chart, all_schools=current_scope().all_schools,
            share_label=services.MEASURES["share"],
            title=_l("Statistics"), appbuilder=self.appbuilder, **extras)

    @expose("/xlsx")
    @has_access
    @permission_name("download")
    def xlsx(self):
        session, scope, report, period, error = self._context()
        if error:
            abort(400, error)
        table = services.build_table(session, report, scope, period)
        data = excel.table_xlsx(table)
        name = f"thong-ke-{report.code}-{(scope.unit.code if scope.unit else 'thanh-pho')}.xlsx"
        return send_file(io.BytesIO(data), as_attachment=True, download_name=name,
                         mimetype="application/vnd.openxmlformats-officedocument."
                                  "spreadsheetml.sheet")


def register(appbuilder):
    appbuilder.add_view(StatisticsView, "Statistics", label=_l("Statistics"),
                        icon="fa-chart-bar", category="Reports",
                        category_label=_l("Reports"), category_icon="fa-chart-pie")

