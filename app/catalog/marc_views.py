"""MARC import and export screens (/marc).

Export only reads ("can_download": every role that sees the school: librarian, principal,
offices, department); the import writes ("can_import": the librarian only, into their own
school). The uploaded file waits for confirmation in the instance folder, in a directory
of its uploader under a random token (never in the session cookie); the confirmed import
runs in a background thread (own application context and database session) that writes
its progress to a small JSON file polled by the page; the report stays there afterwards.
"""
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import types

from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    request,
    stream_with_context,
    url_for,
)
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from app.catalog import marc_import, services
from app.catalog.marc import Problem, record_label
from app.collection.models import Intake
from app.core.audit import acting_as
from app.core.errors import DomainError
from app.core.tenancy import current_scope, school_choices, scoped_school
from app.extensions import db
from app.org.models import OrgUnit

log = logging.getLogger(__name__)

TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
MAX_BYTES = 32 * 1024 * 1024  # ~40,000 records: the preview is computed in the request
KEEP_SECONDS = 2 * 24 * 3600
STALE_SECONDS = 15 * 60  # a running import that has not reported for this long has died
SHOWN = 500  # outcomes and problems listed on a page


# --- Uploads and their status files ----------------------------------------------------

def _user_folder(user_id):
    path = os.path.join(current_app.instance_path, "marc_imports", str(int(user_id)))
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _cleanup(folder):
    limit = time.time() - KEEP_SECONDS
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            if os.path.getmtime(path) < limit:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def _write_json(path, data):
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False)
    os.replace(tmp, path)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _upload_dir(token):
    """The directory of an upload of the current librarian for their school, or 404."""
    if not TOKEN.match(token or ""):
        abort(404)
    scope = current_scope()
    path = os.path.join(_user_folder(current_user.id), token)
    meta = _read_json(os.path.join(path, "meta.json"))
    if meta is None or scope.write_school_id is None or \
            meta.get("school_id") != scope.write_school_id:
        abort(404)
    return path, meta


def _options_from(values):
    duplicates = values.get("duplicates", "skip")
    if duplicates not in marc_import.DUPLICATE_MODES:
        duplicates = "skip"
    intake = values.get("intake") or None
    # The form sends copies=0 (hidden) then copies=1 when the box is ticked.
    copies = "copies" not in values or "1" in values.getlist("copies")
    return marc_import.ImportOptions(
        duplicates=duplicates, create_copies=copies,
        intake_id=int(intake) if intake and str(intake).isdigit() else None)


# --- The background import -------------------------------------------------------------

def _run_in_background(app, path, school_id, actor, options, filename):
    status_path = os.path.join(path, "status.json")
    with app.app_context():
        try:
            with open(os.path.join(path, "upload.bin"), "rb") as fh:
                data = fh.read()
            school = db.session.get(OrgUnit, school_id)
            last = [0.0]

            def progress(done, total):
                now = time.time()
                if now - last[0] >= 0.2 or done == total:
                    last[0] = now
                    _write_json(status_path, {"state": "running", "done": done,
                                              "total": total, "updated": now})

            with acting_as(actor):
                result = marc_import.run_import(db.session, school, data, filename, options,
                                                on_progress=progress)
            _write_json(status_path, {"state": "done", "updated": time.time(),
                                      "result": result.as_dict()})
        except DomainError as error:
            _write_json(status_path, {"state": "failed", "updated": time.time(),
                                      "message": str(error)})
        except Exception:  # never leave the page waiting: report and log
            log.exception("MARC import failed")
            _write_json(status_path, {"state": "failed", "updated": time.time(),
                                      "message": gettext("The import failed and nothing was "
                                                         "saved: unexpected error.")})
        finally:
            db.session.remove()
            try:
                os.remove(os.path.join(path, "upload.bin"))
            except OSError:
                pass


def _ids(args):
    values = []
    for raw in args.getlist("ids") + args.getlist("id"):
        values += [v for v in re.split(r"[,\s]+", raw) if v]
    try:
        return sorted({int(v) for v in values}) or None
    except ValueError:
        abort(400)


class MarcView(BaseView):
    """Import MARC files into the school's catalogue; export it as MARC."""

    route_base = "/marc"
    access_policy = "school_data"
    default_view = "index"
    class_permission_name = "MarcView"
    method_permission_name = {
        "index": "download", "export": "download",
        "upload": "import", "preview": "import", "confirm": "import", "progress": "import",
        "status": "import",
    }
    base_permissions = ["can_download", "can_import"]

    def _can_import(self):
        return (current_scope().write_school_id is not None
                and self.appbuilder.sm.has_access("can_import", self.class_permission_name))

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        scope = current_scope()
        school = scoped_school(request.args.get("school"))
        q = request.args.get("q", "").strip()
        page = max(int(request.args.get("page", "1")) if request.args.get(
            "page", "1").isdigit() else 1, 1)
        total, rows = 0, []
        if school is not None:
            total, rows = services.search_records(db.session, q, [school.id], limit=50,
                                                  offset=(page - 1) * 50)
        return self.render_template(
            "catalog/marc_index.html", school=school, schools=school_choices(),
            all_schools=scope.all_schools, q=q, rows=rows, total=total, page=page,
            can_import=self._can_import(), max_mb=MAX_BYTES // (1024 * 1024),
            title=_l("MARC import and export"), appbuilder=self.appbuilder)

    @expose("/export", methods=["GET"])
    @has_access
    def export(self):
        fmt = request.args.get("format", "iso2709")
        if fmt not in marc_import.FORMATS:
            abort(400)
        school = scoped_school(request.args.get("school"))
        if school is None:
            flash(gettext("Choose a school first."), "warning")
            return redirect(url_for(".index"))
        exporter = marc_import.MarcExport(db.session, school, fmt, _ids(request.args))
        return Response(stream_with_context(iter(exporter)), mimetype=exporter.mimetype,
                        headers={"Content-Disposition":
                                 f'attachment; filename="{exporter.filename}"',
                                 "Cache-Control": "no-store"})

    @expose("/upload", methods=["POST"])
    @has_access
    def upload(self):
        school_id = current_scope().write_school_id
        if school_id is None:
            abort(403)
        if request.content_length and request.content_length > MAX_BYTES + 100_000:
            flash(gettext("The file is too large (at most %(n)d MB).",
                          n=MAX_BYTES // (1024 * 1024)), "danger")
            return redirect(url_for(".index"))
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(gettext("Choose the MARC file to import."), "warning")
            return redirect(url_for(".index"))
        data = upload.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            flash(gettext("The file is too large (at most %(n)d MB).",
                          n=MAX_BYTES // (1024 * 1024)), "danger")
            return redirect(url_for(".index"))
        folder = _user_folder(current_user.id)
        _cleanup(folder)
        token = secrets.token_urlsafe(24)
        path = os.path.join(folder, token)
        os.makedirs(path, mode=0o700)
        with open(os.path.join(path, "upload.bin"), "wb") as fh:
            fh.write(data)
        _write_json(os.path.join(path, "meta.json"), {
            "school_id": school_id, "user_id": current_user.id,
            "filename": os.path.basename(upload.filename)[:200], "uploaded": time.time()})
        return redirect(url_for(".preview", token=token))

    @expose("/import/<token>", methods=["GET"])
    @has_access
    def preview(self, token):
        path, meta = _upload_dir(token)
        if os.path.exists(os.path.join(path, "status.json")):
            return redirect(url_for(".progress", token=token))
        try:
            with open(os.path.join(path, "upload.bin"), "rb") as fh:
                data = fh.read()
        except OSError:
            abort(404)
        school = db.session.get(OrgUnit, meta["school_id"])
        options = _options_from(request.args)
        result = marc_import.preview_import(db.session, school, data, meta["filename"],
                                            options)
        intakes = db.session.execute(select(Intake).where(Intake.school_id == school.id)
                                     .order_by(Intake.register_number.desc()).limit(50)
                                     ).scalars().all()
        return self.render_template(
            "catalog/marc_preview.html", token=token, meta=meta, result=result,
            counts=result.counts, options=options, intakes=intakes, shown=SHOWN,
            **_report(result), title=_l("Import MARC records"), appbuilder=self.appbuilder)

    @expose("/import/<token>", methods=["POST"])
    @has_access
    def confirm(self, token):
        path, meta = _upload_dir(token)
        status_path = os.path.join(path, "status.json")
        if os.path.exists(status_path):  # already confirmed
            return redirect(url_for(".progress", token=token))
        if not os.path.exists(os.path.join(path, "upload.bin")):
            abort(404)
        options = _options_from(request.form)
        try:  # once only, even if the button is pressed twice
            fd = os.open(status_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return redirect(url_for(".progress", token=token))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"state": "queued", "done": 0, "total": 0, "updated": time.time()}, fh)
        actor = types.SimpleNamespace(id=current_user.id, username=current_user.username)
        thread = threading.Thread(
            target=_run_in_background, name=f"marc-import-{token[:8]}", daemon=True,
            args=(current_app._get_current_object(), path, meta["school_id"], actor, options,
                  meta["filename"]))
        thread.start()
        return redirect(url_for(".progress", token=token))

    @expose("/import/<token>/progress", methods=["GET"])
    @has_access
    def progress(self, token):
        path, meta = _upload_dir(token)
        status = _status(path)
        if status is None:
            return redirect(url_for(".preview", token=token))
        result = None
        report = {}
        if status["state"] == "done":
            result = marc_import.ImportResult.from_dict(status["result"])
            report = _report(result)
        return self.render_template(
            "catalog/marc_progress.html", token=token, meta=meta, status=status,
            result=result, counts=result.counts if result else None, shown=SHOWN, **report,
            title=_l("Import MARC records"), appbuilder=self.appbuilder)

    @expose("/import/<token>/status", methods=["GET"])
    @has_access
    def status(self, token):
        path, _meta = _upload_dir(token)
        status = _status(path) or {"state": "missing"}
        total = status.get("total") or 0
        return jsonify({"state": status["state"], "done": status.get("done", 0),
                        "total": total,
                        "percent": 100 if status["state"] == "done" else (
                            int(100 * status.get("done", 0) / total) if total else 0)})


def _status(path):
    status = _read_json(os.path.join(path, "status.json"))
    if status and status.get("state") in ("queued", "running") and \
            status.get("updated", 0) < time.time() - STALE_SECONDS:
        status = {"state": "failed", "message": gettext(
            "The import was interrupted (the server stopped): nothing was saved. Import the "
            "file again.")}
    return status


def _report(result):
    """Problems and outcomes as the pages show them (translated now)."""
    errors = [p for p in result.problems if p.level == "error"]
    warnings = [p for p in result.problems if p.level == "warning"]
    return {
        "errors": [p.text() for p in errors[:SHOWN]], "more_errors": max(len(errors) - SHOWN,
                                                                           0),
        "warnings": [p.text() for p in warnings[:SHOWN]],
        "more_warnings": max(len(warnings) - SHOWN, 0),
        "outcomes": result.outcomes[:SHOWN],
        "more_outcomes": max(len(result.outcomes) - SHOWN, 0),
        "duplicate_label": _duplicate_label,
    }


def _duplicate_label(duplicate):
    if not duplicate:
        return ""
    if duplicate.get("id"):
        return gettext("already in the catalogue: “%(title)s”", title=duplicate.get("title"))
    return gettext("same as %(record)s of this file",
                   record=record_label(duplicate.get("position"), title=duplicate.get("title")))


__all__ = ["MarcView", "Problem"]
