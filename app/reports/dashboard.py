"""The home page: a dashboard with real figures for the user's scope, per role."""
from flask import g, redirect
from flask_appbuilder import IndexView, expose
from flask_babel import lazy_gettext as _l

from app.core.security import ROLE_LIBRARIAN, ROLE_PRINCIPAL
from app.core.tenancy import current_scope
from app.extensions import db
from app.org.models import OrgUnit, UnitKind
from app.org.services import current_school_year
from app.reports import queries


def _user_role_names(user):
    return {r.name for r in user.roles}


class HomeView(IndexView):
    route_base = ""
    access_policy = "home"

    @expose("/")
    def index(self):
        user = g.user
        if user is None or not user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_login)
        session = db.session
        scope = current_scope()
        unit = session.get(OrgUnit, user.unit_id) if user.unit_id else None
        ctx = {
            "unit": unit,
            "school_year": current_school_year(session),
            "cards": [],
            "charts": [],
        }
        roles = _user_role_names(user)
        if unit is None:
            pass
        elif unit.kind == UnitKind.school:
            self._school_dashboard(session, scope, ctx, roles)
        else:
            self._area_dashboard(session, scope, ctx, unit)
        self._library_figures(session, scope, ctx, unit)
        return self.render_template("app/dashboard.html", appbuilder=self.appbuilder, **ctx)

    def _library_figures(self, session, scope, ctx, unit):
        """Loans, participation and the standard's minimum (app.statistics.dashboard)."""
        from app.core.i18n import local_today
        from app.statistics import dashboard, services

        if unit is None:
            return
        today = local_today()
        if unit.kind == UnitKind.school:
            cards, charts = dashboard.school_figures(session, unit.id, today)
        else:
            try:
                stat_scope = services.resolve_scope(session, scope, unit.id)
            except LookupError:
                return
            cards, charts, below, fresh = dashboard.area_figures(session, stat_scope, today)
            ctx["below_standard"] = below[:20]
            ctx["below_count"] = len(below)
            ctx["standard_note"] = dashboard.STANDARD_NOTE
            ctx["figures_at"] = fresh
        ctx["cards"].extend(cards)
        ctx["charts"][:0] = charts

    def _area_dashboard(self, session, scope, ctx, unit):
        counts = queries.school_counts(session, scope)
        cards = ctx["cards"]
        cards.append((_l("Schools"), counts["total"], "fa-school"))
        cards.append((_l("Public schools"), counts["public"], "fa-landmark"))
        cards.append((_l("Non-public schools"), counts["non_public"], "fa-building"))
        cards.append((_l("Active accounts"), queries.account_count(session, scope), "fa-users"))
        ctx["charts"].append({
            "id": "chart-levels", "type": "bar", "title": _l("Schools by level taught"),
            "labels": [abbr for abbr, _n in counts["levels"]],
            "values": [n for _abbr, n in counts["levels"]],
        })
        per_parent = queries.schools_per_parent(session, scope)
        if per_parent:
            ctx["charts"].append({
                "id": "chart-offices", "type": "bar", "horizontal": True,
                "title": _l("Schools per office (largest first)"),
                "labels": [name for name, _n in per_parent],
                "values": [n for _name, n in per_parent],
            })
        if scope.all_schools:
            units = queries.unit_counts(session)
            for kind in (UnitKind.district_office, UnitKind.ward_office, UnitKind.cluster):
                cards.append((kind.label, units.get(kind, 0), "fa-sitemap"))

    def _school_dashboard(self, session, scope, ctx, roles):
        cards = ctx["cards"]
        records, copies = queries.collection_counts(session, scope.school_ids)
        cards.append((_l("Titles"), records, "fa-book"))
        cards.append((_l("Copies"), copies, "fa-barcode"))
        by_type = queries.copies_by_document_type(session, scope.school_ids)
        if by_type:
            ctx["charts"].append({
                "id": "chart-doctypes", "type": "bar",
                "title": _l("Copies by document type"),
                "labels": [name or str(_l("Other")) for name, _n in by_type],
                "values": [n for _name, n in by_type],
            })
        locations = queries.locations_by_kind(session, scope)
        cards.append((_l("Shelving locations"), sum(n for _k, n in locations), "fa-th"))
        if roles & {ROLE_LIBRARIAN, ROLE_PRINCIPAL}:
            cards.append((_l("Active accounts"), queries.account_count(session, scope),
                          "fa-users"))
            activity = queries.changes_per_day(session, scope)
            cards.append((_l("Changes in the last 30 days"), sum(n for _d, n in activity),
                          "fa-pen"))
            ctx["charts"].append({
                "id": "chart-activity", "type": "line",
                "title": _l("Library work, changes per day (last 30 days)"),
                "labels": [d for d, _n in activity], "values": [n for _d, n in activity],
            })
        if locations:
            ctx["charts"].append({
                "id": "chart-locations", "type": "doughnut",
                "title": _l("Shelving locations by kind"),
                "labels": [str(k) for k, _n in locations], "values": [n for _k, n in locations],
            })
