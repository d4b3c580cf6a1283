"""The catalogue in Excel: downloads (exports, import template) and the import.

Downloads only read: "can_download", every role that sees the school (principals, offices).
The import writes: "can_import", which app.core.security gives to the librarian only (it is
not a read permission), and it always writes into the librarian's own school.

An uploaded file waits for confirmation in the instance folder under a random token (never
in the cookie), bound to its uploader and school, for at most a day.
"""
import datetime
import io
import os
import secrets
import time

from flask import abort, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from wtforms import BooleanField, SelectField
from wtforms.validators import Optional

from app.catalog import excel
from app.collection.models import Intake
from app.core.errors import DomainError
from app.core.tenancy import current_scope, school_choices, scoped_school
from app.core.uploads import ExcelUploadForm, PendingUploads
from app.extensions import db
from app.org.models import OrgUnit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PREVIEW_ROWS = 200


# --- Uploaded files waiting for confirmation ---------------------------------------------

UPLOADS = PendingUploads("imports")
_path, _cleanup = UPLOADS.path, UPLOADS.cleanup


def _store(data, filename, school_id):
    _cleanup()
    token = secrets.token_urlsafe(24)
    with open(_path(token, ".xlsx"), "xb") as fh:
        fh.write(data)
    _save_meta(token, {"user_id": current_user.id, "school_id": school_id,
                       "filename": (filename or "")[:200], "uploaded": time.time()})
    return token


_save_meta, _meta = UPLOADS.save_meta, UPLOADS.meta


def _read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


# --- Forms ------------------------------------------------------------------------------

class ConfirmForm(FlaskForm):
    valid_only = BooleanField(_l("Import the valid rows only (the rows with problems are left "
                                 "out; you can download them with the reason)"))
    intake = SelectField(_l("General register line of the copies"), validators=[Optional()],
                         choices=[])

    def fill_choices(self, school_id):
        self.intake.choices = [("", "—")] + [
            (str(i.id), f"{i.register_number} – {i.received_on:%d/%m/%Y} – {i.source}")
            for i in db.session.execute(
                select(Intake).where(Intake.school_id == school_id)
                .order_by(Intake.register_number.desc()).limit(50)).scalars()]


def _download(data, stem, school=None):
    code = f"-{school.code}" if school is not None else ""
    name = f"{stem}{code}-{datetime.date.today():%Y%m%d}.xlsx"
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=name,
                     max_age=0)


# --- View -------------------------------------------------------------------------------

class CatalogueExcelView(BaseView):
    """Export the catalogue and the copies; import a catalogue from the Excel template."""

    route_base = "/catalogue-excel"
    access_policy = "school_data"
    default_view = "index"
    class_permission_name = "CatalogueExcelView"
    method_permission_name = {
        "index": "download", "template": "download", "export_records": "download",
        "export_copies": "download",
        "upload": "import", "preview": "import", "confirm": "import", "rejected": "import",
    }
    base_permissions = ["can_download", "can_import"]

    def _own_school(self):
        """The school an import writes into: the librarian's own, nothing else."""
        school_id = current_scope().write_school_id
        if school_id is None:
            abort(403)
        return db.session.get(OrgUnit, school_id)

    def _can_import(self):
        return (current_scope().write_school_id is not None
                and self.appbuilder.sm.has_access("can_import", self.class_permission_name))

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        school = scoped_school(request.args.get("school"))
        return self.render_template(
            "catalog/excel.html", school=school, schools=school_choices(),
            form=ExcelUploadForm() if self._can_import() else None,
            max_mb=excel.MAX_BYTES // (1024 * 1024), max_rows=excel.MAX_ROWS,
            title=_l("Catalogue in Excel"), appbuilder=self.appbuilder)

    def _export_school(self):
        school = scoped_school(request.args.get("school"))
        if school is None:
            flash(gettext("Choose a school first."), "warning")
            return None
        return school

    @expose("/records.xlsx", methods=["GET"])
    @has_access
    def export_records(self):
        school = self._export_school()
        if school is None:
            return redirect(url_for(".index"))
        return _download(excel.export_records(db.session, school.id), gettext("catalogue"),
                         school)

    @expose("/copies.xlsx", methods=["GET"])
    @has_access
    def export_copies(self):
        school = self._export_school()
        if school is None:
            return redirect(url_for(".index"))
        return _download(excel.export_copies(db.session, school.id), gettext("copies"),
                         school)

    @expose("/template.xlsx", methods=["GET"])
    @has_access
    def template(self):
        school = scoped_school(request.args.get("school"))
        reference = excel.Reference(db.session, school) if school is not None else None
        return _download(excel.build_template(reference), gettext("catalogue-template"))

    @expose("/upload", methods=["POST"])
    @has_access
    def upload(self):
        school = self._own_school()
        form = ExcelUploadForm()
        if not form.validate_on_submit():
            for error in form.file.errors or [gettext("The form has expired or is invalid. "
                                                      "Reload the page and try again.")]:
                flash(str(error), "danger")
            return redirect(url_for(".index"))
        upload = form.file.data
        data = upload.read(excel.MAX_BYTES + 1)
        result = excel.parse_import(data, db.session, school)
        db.session.rollback()  # parsing only reads
        if result.errors:
            for error in result.errors:
                flash(error, "danger")
            return redirect(url_for(".index"))
        token = _store(data, upload.filename, school.id)
        return redirect(url_for(".preview", token=token))

    @expose("/preview/<token>", methods=["GET"])
    @has_access
    def preview(self, token):
        meta = _meta(token)
        school = self._own_school()
        data = _read(_path(token, ".xlsx"))
        if data is None:
            abort(404)
        result = excel.parse_import(data, db.session, school)
        db.session.rollback()
        form = ConfirmForm()
        form.fill_choices(school.id)
        return self._render_preview(token, meta, result, form)

    def _render_preview(self, token, meta, result, form):
        problems = [(row.number, p.column, p.message) for row in result.invalid_rows
                    for p in row.problems]
        valid = result.valid_rows
        return self.render_template(
            "catalog/excel_preview.html", token=token, meta=meta, result=result,
            problems=problems[:PREVIEW_ROWS], more_problems=max(len(problems) - PREVIEW_ROWS, 0),
            valid=valid[:PREVIEW_ROWS], more_valid=max(len(valid) - PREVIEW_ROWS, 0),
            copies=sum(r.data.get("count") or 0 for r in valid), form=form,
            title=_l("Import a catalogue: check before saving"), appbuilder=self.appbuilder)

    @expose("/confirm/<token>", methods=["POST"])
    @has_access
    def confirm(self, token):
        _meta(token)
        school = self._own_school()
        form = ConfirmForm()
        form.fill_choices(school.id)
        if not form.validate_on_submit():
            flash(gettext("The form has expired or is invalid. Reload the page and try again."),
                  "danger")
            return redirect(url_for(".preview", token=token))
        upload, working = _path(token, ".xlsx"), _path(token, ".working")
        try:
            os.rename(upload, working)  # one confirmation only, even if clicked twice
        except OSError:
            flash(gettext("This file has already been imported."), "warning")
            return redirect(url_for(".index"))

        def give_back(message, category="danger", to_preview=True):
            os.rename(working, upload)
            flash(message, category)
            return redirect(url_for(".preview", token=token) if to_preview
                            else url_for(".index"))

        try:
            return self._import(token, school, form, working, upload, give_back)
        except BaseException:
            db.session.rollback()
            if os.path.exists(working):
                os.rename(working, upload)
            raise

    def _import(self, token, school, form, working, upload, give_back):
        result = excel.parse_import(_read(working) or b"", db.session, school)
        if result.errors:
            return give_back(" ".join(result.errors), to_preview=False)
        invalid = result.invalid_rows
        if invalid and not form.valid_only.data:
            db.session.rollback()
            return give_back(gettext(
                "Nothing was imported: %(n)d row(s) have problems. Correct the file and upload "
                "it again, or choose to import the valid rows only.", n=len(invalid)))
        valid = result.valid_rows
        if not valid:
            db.session.rollback()
            return give_back(gettext("Nothing was imported: no row is valid."))
        intake = None
        if form.intake.data:
            intake = db.session.get(Intake, int(form.intake.data))
            if intake is None or intake.school_id != school.id:
                abort(404)
        try:
            created = excel.apply_import(db.session, school, valid, intake=intake)
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            return give_back(str(error))
        os.remove(working)
        copies = sum(len(c) for _r, c in created)
        flash(gettext("Imported %(records)d record(s) and %(copies)d copies.",
                      records=len(created), copies=copies), "success")
        if invalid:
            with open(_path(token, ".rejected.xlsx"), "wb") as fh:
                fh.write(excel.rejected_rows_workbook(result))
            link = url_for(".rejected", token=token)
            flash(Markup('{} <a href="{}" id="rejected-rows">{}</a>').format(
                gettext("%(n)d row(s) with problems were left out.", n=len(invalid)), link,
                gettext("Download them with the reason")), "warning")
        return redirect(url_for(".index"))

    @expose("/rejected/<token>", methods=["GET"])
    @has_access
    def rejected(self, token):
        _meta(token)
        data = _read(_path(token, ".rejected.xlsx"))
        if data is None:
            abort(404)
        return _download(data, gettext("rejected-rows"))
