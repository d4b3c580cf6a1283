"""Uploaded files waiting for the librarian's confirmation (imports: preview, then apply).

A file waits in the instance folder under a random token (never in the cookie), bound to
its uploader and their school, for a limited time; `meta(token)` answers 404 to anyone else,
so a token alone never reaches another school's upload.
"""
import json
import os
import re
import time

from flask import abort, current_app
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from app.core.tenancy import current_scope

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")


class PendingUploads:
    def __init__(self, folder, keep_seconds=24 * 3600):
        self.name = folder
        self.keep_seconds = keep_seconds

    def folder(self):
        path = os.path.join(current_app.instance_path, self.name)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def path(self, token, suffix):
        return os.path.join(self.folder(), f"{token}{suffix}")

    def cleanup(self):
        """Forget uploads (and their working files) older than the keeping time."""
        limit = time.time() - self.keep_seconds
        for name in os.listdir(self.folder()):
            path = os.path.join(self.folder(), name)
            try:
                if os.path.getmtime(path) < limit:
                    os.remove(path)
            except OSError:
                pass

    def save_meta(self, token, meta):
        tmp = self.path(token, f".json.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, ensure_ascii=False)
        os.replace(tmp, self.path(token, ".json"))

    def meta(self, token):
        """The upload's record, if it belongs to this librarian and their school (else 404)."""
        if not TOKEN.match(token or ""):
            abort(404)
        try:
            with open(self.path(token, ".json"), encoding="utf-8") as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            abort(404)
        scope = current_scope()
        if (meta.get("user_id") != current_user.id or scope.write_school_id is None
                or meta.get("school_id") != scope.write_school_id
                or meta.get("uploaded", 0) < time.time() - self.keep_seconds):
            abort(404)
        return meta


class ExcelUploadForm(FlaskForm):
    """The upload step of the Excel imports (catalogue, readers)."""

    file = FileField(_l("Excel file (.xlsx)"), validators=[FileRequired(
        message=_l("Choose the Excel file to import."))])
