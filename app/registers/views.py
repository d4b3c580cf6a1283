"""The registers page (/registers/): every register of a school, for a period, as an Excel
file in the official layout or as a printable page.

Read-only ("can_list", "can_download": every staff role that sees the school). The school
is always chosen inside the user's scope (app.core.tenancy.scoped_school: another school's
code is 404). Views stay thin: the registers are built by app.registers.providers and
written by app.registers.layout.
"""
from flask import abort, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _l

from app.circulation import reports
from app.core.i18n import local_today
from app.core.tenancy import current_scope, school_choices, scoped_school
from app.extensions import db
from app.registers import layout, providers

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PRINT_LIMIT = 1000  # lines per printed page (then "next page"); the Excel file has them all
ARGS = ("school", "from", "to", "series", "class_name")


def _values():
    return {key: (request.args.get(key) or "").strip()[:60] for key in ARGS}


def printable(register, start=0, limit=PRINT_LIMIT):
    """One printed page of the register: lines start+1 .. start+limit.

    Returns ([(sheet, header rows, [(section, rows as text, totals as text or None)])],
    whether more lines follow). A section's totals line is shown on the page of its last
    line (every line is still read, so the totals are the whole section's)."""
    parts, seen, shown, more = [], 0, 0, False
    for sheet in register.sheets:
        columns = sheet.columns
        sections = []
        for section in sheet.sections:
            rows = []
            for row in section.rows(columns):
                if seen < start:
                    seen += 1
                    continue
                if shown >= limit:
                    more = True
                    break
                rows.append([layout.display_value(c, v) for c, v in zip(columns, row)])
                shown += 1
                seen += 1
            if not rows and not (section.count == 0 and start == 0):
                continue  # printed on an earlier page
            totals = None
            if not more and section.show_totals and any(c.total for c in columns):
                totals = [layout.display_value(c, section.sums[i]) if c.total else None
                          for i, c in enumerate(columns)]
            sections.append((section, rows, totals))
            if more:
                break
        if sections or start == 0:
            parts.append((sheet, layout.header_rows(columns), sections))
        if more:
            break
    return parts, more


class RegistersView(BaseView):
    """Sổ sách điện tử: the school's registers for a period, in Excel and printable."""

    route_base = "/registers"
    access_policy = "school_data"
    default_view = "index"
    class_permission_name = "RegistersView"
    method_permission_name = {"index": "list", "download": "download", "printed": "download"}
    base_permissions = ["can_list", "can_download"]

    def _request(self):
        """(school or None, period, values, errors): the school inside the scope (404
        outside), the period checked."""
        values = _values()
        school = scoped_school(values["school"] or None)
        period, errors = providers.parse_period(values["from"], values["to"])
        return school, period, values, errors

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        school, period, values, errors = self._request()
        series, classes = [], []
        if school is not None:
            series = providers.individual_series(db.session, school.id)
            classes = reports.class_names(db.session, school.id)
        args = {k: v for k, v in values.items() if v and k in ("school", "from", "to")}
        if school is not None:
            args["school"] = school.code
        return self.render_template(
            "registers/index.html", school=school, schools=school_choices(),
            all_schools=current_scope().all_schools, values=values, errors=errors,
            period=period, kinds=providers.KINDS, series=series, classes=classes, args=args,
            title=_l("Registers"), appbuilder=self.appbuilder)

    def _register_or_redirect(self, key):
        if key not in providers.BY_KEY:
            abort(404)
        school, period, values, errors = self._request()
        back = {k: v for k, v in values.items() if v}
        if school is None:
            flash(gettext("Choose a school first."), "warning")
            return None, redirect(url_for(".index", **back))
        if errors:
            for error in errors:
                flash(error, "danger")
            return None, redirect(url_for(".index", **back))
        try:
            register = providers.build(db.session, school, key, period,
                                       series=values["series"],
                                       class_name=values["class_name"])
        except providers.UnknownRegister:
            abort(404)
        head = layout.letterhead(db.session, school, on=period.end)
        return (school, register, head), None

    @expose("/download/<key>", methods=["GET"])
    @has_access
    def download(self, key):
        found, answer = self._register_or_redirect(key)
        if found is None:
            return answer
        school, register, head = found
        data = layout.write_excel(register, head)
        name = f"{register.filename}-{school.code}-{local_today():%Y%m%d}.xlsx"
        return send_file(data, mimetype=XLSX, as_attachment=True, download_name=name,
                         max_age=0)

    @expose("/print/<key>", methods=["GET"])
    @has_access
    def printed(self, key):
        found, answer = self._register_or_redirect(key)
        if found is None:
            return answer
        school, register, head = found
        start = request.args.get("start", "0")
        start = int(start) if start.isdigit() else 0
        parts, more = printable(register, start)
        values = {k: v for k, v in _values().items() if v}
        pages = {"first": start + 1, "previous": url_for(
                     ".printed", key=key, start=max(start - PRINT_LIMIT, 0), **values)
                 if start else None,
                 "next": url_for(".printed", key=key, start=start + PRINT_LIMIT, **values)
                 if more else None}
        return self.render_template(
            "registers/print.html", school=school, register=register, head=head,
            parts=parts, pages=pages, limit=PRINT_LIMIT, start=start,
            signature_date=layout.signature_date_text(head.signed_on),
            excel_url=url_for(".download", key=key, **values))


def register(appbuilder):
    appbuilder.add_view(RegistersView, "Registers", label=_l("Registers"), icon="fa-book",
                        category="Library", category_label=_l("Library"),
                        category_icon="fa-book-open")
