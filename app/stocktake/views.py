"""Stocktake screens: the school's sessions, a scanning page made for a desk scanner or a
phone camera, a file of barcodes, live results, closing, the minutes, the Part III register;
and the campaigns of the department or an office with each school's progress.

Reading (lists, results, minutes, register) is "can_list": every staff role that sees the
school. Counting and closing ("can_stocktake") is the school's librarian; JSON endpoints
answer like the desk's. Another school's session is not found (404). Campaigns are created
by the department administrator or an office officer ("can_campaign", policy
"stocktake_campaign") and read by the staff who see one of their schools.
"""
import datetime
import io
import secrets
import time

from flask import abort, flash, jsonify, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access, has_access_api
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from app.catalog.models import DocumentType
from app.collection.models import AccessionSeries, Location
from app.core.errors import DomainError
from app.core.i18n import DATE_FORMAT, local_today
from app.core.tenancy import current_scope, school_choices, scoped_school
from app.core.uploads import PendingUploads
from app.extensions import db
from app.org.models import OrgUnit
from app.registers.layout import roman_date
from app.stocktake import minutes, services
from app.stocktake.models import (
    MissingAction, ScanVia, SessionStatus, StocktakeCampaign, StocktakeSession,
)
from app.stocktake.services import StocktakeError

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UPLOADS = PendingUploads("stocktake_uploads", keep_seconds=6 * 3600)
MAX_UPLOAD_BYTES = 8 * 1024 * 1024


def _date(value):
    value = (value or "").strip()
    for fmt in (DATE_FORMAT, "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def _visible_school_ids():
    scope = current_scope()
    return None if scope.all_schools else set(scope.school_ids)


class StocktakeView(BaseView):
    route_base = "/stocktake"
    default_view = "index"
    access_policy = "school_data"
    class_permission_name = "StocktakeView"
    base_permissions = ["can_list", "can_stocktake"]
    method_permission_name = {
        "index": "list", "show": "list", "api_summary": "list", "minutes_page": "list",
        "minutes_xlsx": "list", "register_page": "list",
        "new": "stocktake", "create": "stocktake", "scan_page": "stocktake",
        "api_scan": "stocktake", "upload": "stocktake", "upload_preview": "stocktake",
        "upload_confirm": "stocktake", "close": "stocktake",
    }

    # --- helpers ---
    def _session(self, pk):
        st = services.get_session(db.session, _visible_school_ids(), pk)
        if st is None:
            abort(404)
        return st

    def _own_session(self, pk):
        """A session of the librarian's own school, else 404."""
        st = self._session(pk)
        if not current_scope().can_write_school(st.school_id):
            abort(404)
        return st

    def _can_write(self, school_id):
        return (current_scope().can_write_school(school_id)
                and self.appbuilder.sm.has_access("can_stocktake", self.class_permission_name))

    def _own_school_id(self):
        school_id = current_scope().write_school_id
        if school_id is None:
            abort(403)
        return school_id

    def _choices(self, school_id):
        return {
            "locations": db.session.scalars(select(Location).where(
                Location.school_id == school_id).order_by(Location.code)).all(),
            "series": db.session.scalars(select(AccessionSeries).where(
                AccessionSeries.school_id == school_id).order_by(AccessionSeries.code)).all(),
            "types": db.session.scalars(select(DocumentType).order_by(DocumentType.code)).all(),
            "campaigns": services.campaigns_for_school(db.session, school_id),
        }

    # --- pages ---
    @expose("/")
    @has_access
    def index(self):
        school = scoped_school(request.args.get("school"))
        sessions, campaigns = [], []
        if school is not None:
            sessions = db.session.scalars(select(StocktakeSession).where(
                StocktakeSession.school_id == school.id)
                .order_by(StocktakeSession.started_on.desc(), StocktakeSession.id.desc())).all()
            campaigns = services.campaigns_for_school(db.session, school.id)
        return self.render_template(
            "stocktake/index.html", school=school, schools=school_choices(), sessions=sessions,
            campaigns=campaigns, can_write=school is not None and self._can_write(school.id),
            title=_l("Stocktakes"))

    @expose("/new")
    @has_access
    def new(self):
        school_id = self._own_school_id()
        return self._render_new(school_id, {"started_on": local_today().strftime(DATE_FORMAT),
                                            "campaign_id": request.args.get("campaign", "")})

    def _render_new(self, school_id, values, error=None, status=200):
        return self.render_template(
            "stocktake/new.html", values=values, error=error, title=_l("New stocktake"),
            **self._choices(school_id)), status

    @expose("/create", methods=["POST"])
    @has_access
    def create(self):
        school_id = self._own_school_id()
        form = request.form
        try:
            st = services.create_session(
                db.session, current_user, school_id, form.get("name"),
                _date(form.get("started_on")), form.getlist("location_ids"),
                form.getlist("series_ids"), form.getlist("document_type_ids"),
                form.get("class_from"), form.get("class_to"), form.get("campaign_id") or None,
                form.get("committee"), form.get("note"))
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            values = form.to_dict()
            values["location_ids"] = form.getlist("location_ids")
            values["series_ids"] = form.getlist("series_ids")
            values["document_type_ids"] = form.getlist("document_type_ids")
            return self._render_new(school_id, values, error=str(error), status=400)
        flash(gettext("Stocktake “%(name)s” started: %(count)d copies expected on the "
                      "shelves.", name=st.name, count=st.expected_count), "success")
        return redirect(url_for(".show", pk=st.id))

    @expose("/show/<int:pk>")
    @has_access
    def show(self, pk):
        st = self._session(pk)
        data = services.summary(db.session, st)
        lists = {}
        if st.status == SessionStatus.open:
            for which in ("missing", "misplaced", "withdrawn", "on_loan"):
                lists[which] = services.copy_list(db.session, st, which)
        else:
            from app.stocktake.models import Outcome

            for which in ("missing", "misplaced", "withdrawn", "on_loan"):
                lists[which] = services.result_list(db.session, st, Outcome[which], limit=200)
        return self.render_template(
            "stocktake/show.html", st=st, summary=data, lists=lists,
            unknown=services.unknown_list(db.session, st),
            scope_text=services.scope_description(db.session, st),
            lines=services.register_lines(db.session, st.id),
            school=db.session.get(OrgUnit, st.school_id), can_write=self._can_write(st.school_id),
            actions=list(MissingAction), money=minutes.money, title=st.name)

    @expose("/api/summary/<int:pk>")
    @has_access_api
    def api_summary(self, pk):
        st = self._session(pk)
        return jsonify(ok=True, status=st.status.name, **services.summary(db.session, st))

    @expose("/scan/<int:pk>")
    @has_access
    def scan_page(self, pk):
        st = self._own_session(pk)
        if st.status != SessionStatus.open:
            flash(gettext("The stocktake “%(name)s” is closed: it takes no more scans.",
                          name=st.name), "warning")
            return redirect(url_for(".show", pk=st.id))
        locations = db.session.scalars(select(Location).where(
            Location.school_id == st.school_id).order_by(Location.code)).all()
        return self.render_template(
            "stocktake/scan.html", st=st, locations=locations,
            scope_text=services.scope_description(db.session, st), title=st.name)

    @expose("/api/scan/<int:pk>", methods=["POST"])
    @has_access_api
    def api_scan(self, pk):
        payload = request.get_json(silent=True) or {}
        school_id = current_scope().write_school_id
        try:
            if school_id is None:
                raise StocktakeError(_l("Only the librarian of a school can count its copies."))
            via = ScanVia.camera if payload.get("via") == "camera" else ScanVia.scanner
            result = services.scan(db.session, current_user, school_id, pk,
                                   payload.get("barcode"), payload.get("location_id"), via)
            db.session.commit()
            return jsonify(ok=True, **result)
        except DomainError as error:
            db.session.rollback()
            return jsonify(ok=False, level="err", message=str(error)), 409

    # --- file of barcodes ---
    @expose("/upload/<int:pk>", methods=["POST"])
    @has_access
    def upload(self, pk):
        st = self._own_session(pk)
        upload = request.files.get("file")
        data = upload.read(MAX_UPLOAD_BYTES + 1) if upload else b""
        try:
            if not upload or not upload.filename:
                raise StocktakeError(_l("Choose the file of barcodes to upload."))
            if len(data) > MAX_UPLOAD_BYTES:
                raise StocktakeError(_l("The file is larger than %(mb)d MB."),
                                     mb=MAX_UPLOAD_BYTES // (1024 * 1024))
            services.parse_barcodes(data)  # an unreadable file is refused at once
        except DomainError as error:
            flash(str(error), "danger")
            return redirect(url_for(".show", pk=st.id))
        UPLOADS.cleanup()
        token = secrets.token_urlsafe(24)[:32]
        with open(UPLOADS.path(token, ".txt"), "wb") as fh:
            fh.write(data)
        UPLOADS.save_meta(token, {"user_id": current_user.id, "school_id": st.school_id,
                                  "session_id": st.id, "filename": upload.filename,
                                  "uploaded": time.time()})
        return redirect(url_for(".upload_preview", pk=st.id, token=token))

    def _upload(self, pk, token):
        st = self._own_session(pk)
        meta = UPLOADS.meta(token)
        if meta.get("session_id") != st.id:
            abort(404)
        with open(UPLOADS.path(token, ".txt"), "rb") as fh:
            return st, meta, fh.read()

    @expose("/upload/<int:pk>/<token>")
    @has_access
    def upload_preview(self, pk, token):
        st, meta, data = self._upload(pk, token)
        codes, bad = services.parse_barcodes(data)
        plan = services.plan_upload(db.session, st.school_id, st, codes)
        problems = []
        if bad:
            problems.append(services.bad_lines_message(bad))
        if plan["foreign"]:
            problems.append(services.foreign_lines_message(plan["foreign"]))
        return self.render_template(
            "stocktake/upload.html", st=st, meta=meta, plan=plan, bad=bad[:100],
            problems=problems, token=token, title=st.name)

    @expose("/upload/<int:pk>/<token>/confirm", methods=["POST"])
    @has_access
    def upload_confirm(self, pk, token):
        st, meta, data = self._upload(pk, token)
        try:
            plan = services.apply_upload(db.session, current_user, st.school_id, st.id, data)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
            return redirect(url_for(".show", pk=st.id))
        flash(gettext("File %(name)s: %(new)d copies counted, %(already)d already counted, "
                      "%(unknown)d unknown barcodes.", name=meta.get("filename", ""),
                      new=plan["new"], already=plan["already"], unknown=len(plan["unknown"])),
              "success")
        return redirect(url_for(".show", pk=st.id))

    # --- closing and its documents ---
    @expose("/close/<int:pk>", methods=["POST"])
    @has_access
    def close(self, pk):
        st = self._own_session(pk)
        form = request.form
        try:
            services.close(db.session, current_user, st.school_id, st.id,
                           form.get("missing_action"), form.get("committee"),
                           form.get("proposals"))
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            flash(str(error), "danger")
            return redirect(url_for(".show", pk=pk))
        flash(gettext("The stocktake is closed: %(found)d found, %(missing)d missing, "
                      "%(on_loan)d on loan.", found=st.found_count, missing=st.missing_count,
                      on_loan=st.on_loan_count), "success")
        return redirect(url_for(".show", pk=pk))

    def _closed(self, pk):
        st = self._session(pk)
        if st.status != SessionStatus.closed:
            flash(gettext("The minutes are made when the stocktake is closed."), "warning")
            return st, redirect(url_for(".show", pk=pk))
        return st, None

    @expose("/minutes/<int:pk>")
    @has_access
    def minutes_page(self, pk):
        st, refused = self._closed(pk)
        if refused:
            return refused
        data = minutes.minutes_data(db.session, st)
        return self.render_template(
            "stocktake/minutes.html", data=data, headings=minutes.register_headings(),
            list_headings=minutes.list_headings(), money=minutes.money, st=st,
            title=data["title"])

    @expose("/minutes/<int:pk>/xlsx")
    @has_access
    def minutes_xlsx(self, pk):
        st, refused = self._closed(pk)
        if refused:
            return refused
        content = minutes.minutes_xlsx(minutes.minutes_data(db.session, st))
        name = f"bien-ban-kiem-ke-{st.id}-{st.closed_at:%Y%m%d}.xlsx"
        return send_file(io.BytesIO(content), mimetype=XLSX, as_attachment=True,
                         download_name=name, max_age=0)

    @expose("/register")
    @has_access
    def register_page(self):
        school = scoped_school(request.args.get("school"))
        sessions, marks = [], []
        if school is not None:
            sessions = services.closed_sessions(db.session, school.id)
            marks = services.textbook_marks(db.session, school.id)
        lines = {st.id: services.register_lines(db.session, st.id) for st in sessions}
        return self.render_template(
            "stocktake/register.html", school=school, schools=school_choices(),
            sessions=sessions, lines=lines, marks=marks, roman_date=roman_date,
            closed_on=services.closed_on, money=minutes.money,
            headings=minutes.register_headings(),
            title=_l("General register – Part III (inventory)"))


class StocktakeCampaignView(BaseView):
    route_base = "/stocktake-campaigns"
    default_view = "index"
    access_policy = "stocktake_campaign"
    class_permission_name = "StocktakeCampaignView"
    base_permissions = ["can_list", "can_campaign"]
    method_permission_name = {"index": "list", "show": "list", "create": "campaign"}

    def _can_create(self):
        return (self.appbuilder.sm.has_access("can_campaign", self.class_permission_name)
                and current_user.unit is not None
                and current_user.unit.kind in services.CAMPAIGN_UNIT_KINDS)

    def _campaigns(self):
        scope = current_scope()
        campaigns = db.session.scalars(select(StocktakeCampaign).order_by(
            StocktakeCampaign.starts_on.desc(), StocktakeCampaign.id.desc())).all()
        return [c for c in campaigns if services.campaign_visible(db.session, c, scope)]

    @expose("/")
    @has_access
    def index(self, error=None, values=None, status=200):
        return self.render_template(
            "stocktake/campaigns.html", campaigns=self._campaigns(),
            can_create=self._can_create(), error=error, values=values or {},
            title=_l("Stocktake campaigns")), status

    @expose("/create", methods=["POST"])
    @has_access
    def create(self):
        form = request.form
        try:
            campaign = services.create_campaign(
                db.session, current_user, current_user.unit, form.get("name"),
                _date(form.get("starts_on")), _date(form.get("ends_on")), form.get("note"))
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            return self.index(error=str(error), values=form.to_dict(), status=400)
        flash(gettext("Campaign “%(name)s” started: the schools see it on their stocktake "
                      "page.", name=campaign.name), "success")
        return redirect(url_for(".show", pk=campaign.id))

    @expose("/show/<int:pk>")
    @has_access
    def show(self, pk):
        campaign = db.session.get(StocktakeCampaign, pk)
        scope = current_scope()
        if campaign is None or not services.campaign_visible(db.session, campaign, scope):
            abort(404)
        lines = services.campaign_progress(db.session, campaign, scope)
        started = sum(1 for line in lines if line["sessions"])
        closed = sum(1 for line in lines if line["sessions"] and all(
            e["session"].status == SessionStatus.closed for e in line["sessions"]))
        return self.render_template(
            "stocktake/campaign_show.html", campaign=campaign, lines=lines, started=started,
            closed=closed, title=campaign.name)


def register(appbuilder):
    category = dict(category="Stocktake", category_label=_l("Stocktake"),
                    category_icon="fa-clipboard-check")
    view = appbuilder.add_view(StocktakeView, "Stocktakes", label=_l("Stocktakes"),
                               icon="fa-clipboard-list", **category)
    appbuilder.add_link("General register – Part III", label=_l("General register – Part III"),
                        href="StocktakeView.register_page", icon="fa-book",
                        category="Stocktake", baseview=view)
    appbuilder.add_view(StocktakeCampaignView, "Stocktake campaigns",
                        label=_l("Stocktake campaigns"), icon="fa-flag", **category)
