"""Import readers from an Excel class list: upload, choose the columns, check, import.

Every route writes or prepares a write: "can_import", the librarian only, always into the
librarian's own school. The uploaded file waits in the instance folder under a random
token (never in the cookie), bound to its uploader and school, for at most a day; the
chosen columns wait with it and are saved for the school when the librarian confirms them.
"""
import io
import json
import os
import secrets
import time

from flask import abort, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField

from app.core.errors import ValidationError
from app.core.tenancy import current_scope
from app.core.uploads import ExcelUploadForm, PendingUploads
from app.extensions import db
from app.org.models import OrgUnit
from app.readers import importer

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPIRED = _l("The form has expired or is invalid. Reload the page and try again.")


# --- Uploaded files waiting for confirmation ---------------------------------------------

UPLOADS = PendingUploads("reader_imports")
_path, _cleanup = UPLOADS.path, UPLOADS.cleanup
_save_meta, _meta = UPLOADS.save_meta, UPLOADS.meta


def _sheet(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return importer.Sheet.from_json(json.load(fh))
    except OSError:
        return None


# --- Forms ------------------------------------------------------------------------------

class ConfirmForm(FlaskForm):
    valid_only = BooleanField(_l("Import the valid rows only (the rows with errors are left "
                                 "out)"))


class MappingForm(FlaskForm):
    """The select boxes are plain HTML (one per field, the file's columns as choices): only
    the CSRF token goes through WTForms."""


# --- View -------------------------------------------------------------------------------

class ReaderImportView(BaseView):
    route_base = "/readers-import"
    access_policy = "school_data"
    default_view = "index"
    class_permission_name = "ReaderImportView"
    method_permission_name = {name: "import" for name in (
        "index", "template", "upload", "preview", "mapping", "confirm")}
    base_permissions = ["can_import"]

    def _school(self):
        """The school an import writes into: the librarian's own, nothing else."""
        school_id = current_scope().write_school_id
        if school_id is None:
            abort(403)
        return db.session.get(OrgUnit, school_id)

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        school = self._school()
        saved = importer.load_mapping(db.session, school.id)
        db.session.rollback()
        return self.render_template(
            "readers/import.html", school=school, form=ExcelUploadForm(),
            saved=[(importer.BY_KEY[k].label, v) for k, v in saved.items()
                   if v and k in importer.BY_KEY],
            max_rows=importer.MAX_ROWS, title=_l("Import readers from Excel"),
            appbuilder=self.appbuilder)

    @expose("/template.xlsx", methods=["GET"])
    @has_access
    def template(self):
        name = f"{gettext('class-list-template')}.xlsx"
        return send_file(io.BytesIO(importer.build_template()), mimetype=XLSX,
                         as_attachment=True, download_name=name, max_age=0)

    @expose("/upload", methods=["POST"])
    @has_access
    def upload(self):
        school = self._school()
        form = ExcelUploadForm()
        if not form.validate_on_submit():
            for error in form.file.errors or [str(EXPIRED)]:
                flash(str(error), "danger")
            return redirect(url_for(".index"))
        upload = form.file.data
        data = upload.read(importer.MAX_BYTES + 1)
        saved = importer.load_mapping(db.session, school.id)
        try:
            sheet = importer.read_sheet(data, [v for v in saved.values() if v])
        except ValidationError as error:
            db.session.rollback()
            flash(str(error), "danger")
            return redirect(url_for(".index"))
        db.session.rollback()  # reading only
        _cleanup()
        token = secrets.token_urlsafe(24)
        # The rows as read (not the file): checking and confirming do not read it again.
        with open(_path(token, ".rows"), "x", encoding="utf-8") as fh:
            json.dump(sheet.to_json(), fh, ensure_ascii=False)
        mapping = importer.initial_mapping(sheet.headers, saved)
        _save_meta(token, {
            "user_id": current_user.id, "school_id": school.id, "uploaded": time.time(),
            "filename": (upload.filename or "")[:200], "mapping": mapping,
            # Every saved choice applied to this file: the page says so instead of "guessed".
            "remembered": bool(saved) and all(mapping.get(k) == v for k, v in saved.items()
                                              if k in importer.BY_KEY)})
        return redirect(url_for(".preview", token=token))


    @expose("/preview/<token>", methods=["GET"])
    @has_access
    def preview(self, token):
        meta = _meta(token)
        school = self._school()
        sheet = _sheet(_path(token, ".rows"))
        if sheet is None:
            flash(gettext("This file has already been imported."), "warning")
            return redirect(url_for(".index"))
        try:
            result = importer.preview(db.session, school, sheet, meta["mapping"])
        finally:
            db.session.rollback()  # checking only reads
        problems = [(row.number, column, message) for row in result.rows
                    for column, message in row.problems]
        return self.render_template(
            "readers/import_preview.html", token=token, meta=meta, result=result,
            totals=result.totals, problems=problems, fields=importer.FIELDS,
            headers=[h for h in result.sheet.headers if h], labels=importer.OUTCOME_LABELS,
            lines=importer.outcome_lines(result), field_label=importer.services.LABELS,
            mapping_form=MappingForm(), form=ConfirmForm(),
            title=_l("Import readers: check before saving"), appbuilder=self.appbuilder)

    @expose("/mapping/<token>", methods=["POST"])
    @has_access
    def mapping(self, token):
        meta = _meta(token)
        school = self._school()
        if not MappingForm().validate_on_submit():
            flash(str(EXPIRED), "danger")
            return redirect(url_for(".preview", token=token))
        sheet = _sheet(_path(token, ".rows"))
        if sheet is None:
            abort(404)
        headers = sheet.headers
        mapping = {}
        for field in importer.FIELDS:
            value = request.form.get(f"map_{field.key}", "")
            if value and value not in headers:
                abort(400)  # not a column of this file: a forged form
            mapping[field.key] = value or None
        used = [v for v in mapping.values() if v]
        if len(used) != len(set(used)):
            flash(gettext("A column can only be imported into one field."), "danger")
            return redirect(url_for(".preview", token=token))
        meta["mapping"] = mapping
        _save_meta(token, meta)
        importer.save_mapping(db.session, school, mapping)
        db.session.commit()
        return redirect(url_for(".preview", token=token))

    @expose("/confirm/<token>", methods=["POST"])
    @has_access
    def confirm(self, token):
        meta = _meta(token)
        school = self._school()
        form = ConfirmForm()
        if not form.validate_on_submit():
            flash(str(EXPIRED), "danger")
            return redirect(url_for(".preview", token=token))
        upload, working = _path(token, ".rows"), _path(token, ".working")
        try:
            os.rename(upload, working)  # one import only, even if clicked twice
        except OSError:
            flash(gettext("This file has already been imported."), "warning")
            return redirect(url_for(".index"))
        try:
            sheet = _sheet(working)
            result = importer.preview(db.session, school, sheet, meta["mapping"])
            done = importer.apply_import(db.session, school, result,
                                         valid_only=form.valid_only.data)
            db.session.commit()
        except ValidationError as error:
            db.session.rollback()
            os.rename(working, upload)
            flash(str(error), "danger")
            return redirect(url_for(".preview", token=token))
        except BaseException:
            db.session.rollback()
            if os.path.exists(working):
                os.rename(working, upload)
            raise
        os.remove(working)
        flash(gettext("Imported: %(created)d new reader(s), %(updated)d updated, %(unchanged)d "
                      "unchanged.", created=done.created, updated=done.updated,
                      unchanged=done.unchanged), "success")
        if done.skipped:
            flash(gettext("%(n)d row(s) with errors were left out.", n=done.skipped),
                  "warning")
        return redirect(url_for("ReaderView.list"))
