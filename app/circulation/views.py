"""The circulation desk: one screen made for a barcode scanner and a keyboard.

The page talks to four small JSON endpoints; each does one use case from
app.circulation.services in one transaction and answers with a Vietnamese message. Only the
librarian of the school uses the desk (one "desk" permission, a write).
"""
from flask import jsonify, request
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext, lazy_gettext as _l

from app.catalog.services import search_records
from app.circulation import policies, services
from app.circulation.models import HoldStatus
from app.circulation.services import CirculationError
from app.core import cache
from app.core.i18n import format_date
from app.core.security import cached_access_api
from app.core.tenancy import current_scope
from app.extensions import db


def _school_id():
    school_id = current_scope().write_school_id
    if school_id is None:
        raise CirculationError(_l("Only the librarian of a school can use the desk."))
    return school_id


def _loan_row(loan, copy, record, today):
    return {"loan_id": loan.id, "title": record.title, "accession": copy.accession_label,
            "barcode": copy.barcode, "call_number": record.call_number or "",
            "loaned_on": format_date(loan.loaned_at.date()), "due_on": format_date(loan.due_on),
            "overdue": loan.due_on < today, "renewals": loan.renewals}


def reader_panel(session, reader, today):
    """Everything the desk shows about a reader (a services.PanelReader): loans, holds, what
    they may still borrow."""
    from app.circulation.services import allowance, open_loans

    services.expire_holds(session, reader.school_id, today)
    loans = open_loans(session, reader.id)
    rules = policies.school_rules(session, reader.school_id)
    holds = services.reader_holds(session, reader.id)
    warnings = []
    if reader.valid_until is not None and reader.valid_until < today:
        warnings.append(gettext("The card expired on %(date)s.",
                                date=format_date(reader.valid_until)))
    overdue = sum(1 for loan in loans if loan.due_on < today)
    if overdue:
        warnings.append(gettext("%(n)d item(s) overdue.", n=overdue))
    return {
        "reader": {"id": reader.id, "name": reader.full_name, "class": reader.class_name or "",
                   "category": reader.category_name, "card": reader.card_number,
                   "code": reader.code or "", "status": str(reader.status.label),
                   "valid_until": format_date(reader.valid_until)},
        "loans": [_loan_row(loan, loan, loan, today) for loan in loans],
        "holds": [{"hold_id": hold.id, "title": hold.title,
                   "status": str(hold.status.label),
                   "ready": hold.status == HoldStatus.ready,
                   "expires_on": format_date(hold.expires_on)} for hold in holds],
        "allowance": [{"label": _rule_label(rule), "used": used, "max": rule.max_items,
                       "remaining": remaining}
                      for rule, used, remaining in allowance(session, reader, rules, loans)],
        "warnings": warnings,
    }


def _rule_label(rule):
    if rule.document_type_name is not None:
        return rule.document_type_name
    return gettext("All documents")


class DeskView(BaseView):
    route_base = "/desk"
    default_view = "index"
    access_policy = "school_data"
    # One permission for the whole desk; "desk" is not a read, so only librarians get it.
    method_permission_name = {name: "desk" for name in (
        "index", "api_reader", "api_scan", "api_undo", "api_hold", "api_titles")}

    @expose("/")
    @has_access
    def index(self):
        return self.render_template("circulation/desk.html", title=_l("Circulation desk"))

    def _answer(self, work):
        """Run one use case in one transaction; a refusal changes nothing."""
        try:
            result = work(_school_id())
            cache.confirm(db.session)  # see cached_access_api
            db.session.commit()
            return jsonify(dict(ok=True, **result))
        except CirculationError as error:
            cache.confirm(db.session)  # a refusal made on trust too (see cached_access_api)
            db.session.rollback()
            return jsonify(ok=False, message=str(error)), 409

    @expose("/api/reader", methods=["POST"])
    @cached_access_api
    def api_reader(self):
        payload = request.get_json(silent=True) or {}

        def work(school_id):
            today = _today()
            reader = services.find_panel_reader(db.session, school_id, payload.get("card"),
                                                payload.get("reader_id"))
            return reader_panel(db.session, reader, today)
        return self._answer(work)

    @expose("/api/scan", methods=["POST"])
    @cached_access_api
    def api_scan(self):
        payload = request.get_json(silent=True) or {}
        barcode = (payload.get("barcode") or "").strip()
        action = payload.get("action") or "auto"

        def work(school_id):
            today = _today()
            actor = _actor()
            if action == "renew":
                loan = services.renew(db.session, actor, school_id, barcode, today)
                return {"kind": "renew", "loan_id": loan.id, "due_on": format_date(loan.due_on),
                        "message": gettext("Renewed %(copy)s until %(date)s.",
                                           copy=loan.copy.accession_label,
                                           date=format_date(loan.due_on))}
            if payload.get("reader_id"):
                reader_id = payload["reader_id"]
                reader = services.desk_reader(db.session, school_id, int(reader_id)) if str(
                    reader_id).isdigit() else None
                if reader is None:
                    raise CirculationError(_l("Reader not found in your school."))
                try:
                    loan, copy = services.lend(db.session, actor, school_id, reader, barcode,
                                               today)
                except CirculationError:
                    # A reader card scanned into the same box switches the reader.
                    other = services.panel_reader(db.session, school_id, barcode,
                                                  by_code=False)
                    if other is None:
                        raise
                    return {"kind": "reader", **reader_panel(db.session, other, today)}
                return {"kind": "checkout", "loan_id": loan.id,
                        "due_on": format_date(loan.due_on),
                        "loan": _loan_row(loan, copy, copy, today),
                        "message": gettext("Lent %(copy)s “%(title)s”, due %(date)s.",
                                           copy=copy.accession_label, title=copy.title,
                                           date=format_date(loan.due_on))}
            try:
                loan, copy, reader_name, hold = services.take_back(
                    db.session, actor, school_id, barcode, today, damaged=action == "damaged")
            except services.UnknownCopy:
                # Not a copy: a reader card scanned with no reader selected opens the reader.
                other = services.panel_reader(db.session, school_id, barcode,
                                              by_code=False)
                if other is None:
                    raise
                return {"kind": "reader", **reader_panel(db.session, other, today)}
            message = gettext("Returned %(copy)s by %(reader)s.",
                              copy=copy.accession_label, reader=reader_name)
            if loan.due_on < today:
                message += " " + gettext("%(days)d day(s) late.",
                                         days=(today - loan.due_on).days)
            if loan.fine:
                message += " " + gettext("Fine: %(amount)s đ.", amount=f"{loan.fine:,.0f}"
                                         .replace(",", "."))
            result = {"kind": "return", "loan_id": loan.id, "message": message}
            if hold is not None:
                result["hold"] = gettext("Set this copy aside for %(reader)s (hold until "
                                         "%(date)s).", reader=hold.reader.full_name,
                                         date=format_date(hold.expires_on))
            return result
        return self._answer(work)

    @expose("/api/undo", methods=["POST"])
    @cached_access_api
    def api_undo(self):
        payload = request.get_json(silent=True) or {}

        def work(school_id):
            loan_id = payload.get("loan_id")
            if not str(loan_id).isdigit():
                raise CirculationError(_l("Loan not found."))
            if payload.get("kind") == "return":
                loan = services.undo_return(db.session, _actor(), school_id, int(loan_id))
                message = gettext("Return undone: %(copy)s is on loan again.",
                                  copy=loan.copy.accession_label)
            else:
                loan = services.cancel_checkout(db.session, _actor(), school_id, int(loan_id))
                message = gettext("Checkout cancelled: %(copy)s is back on the shelf.",
                                  copy=loan.copy.accession_label)
            return {"kind": "undo", "loan_id": loan.id, "message": message}
        return self._answer(work)

    @expose("/api/hold", methods=["POST"])
    @cached_access_api
    def api_hold(self):
        payload = request.get_json(silent=True) or {}

        def work(school_id):
            reader = services.panel_reader_by_id(db.session, school_id,
                                                 payload.get("reader_id"))
            if payload.get("cancel"):
                services.cancel_hold(db.session, _actor(), school_id,
                                     int(payload.get("hold_id") or 0))
                return {"message": gettext("Hold cancelled.")}
            record_id = payload.get("record_id")
            hold = services.place_hold(db.session, _actor(), school_id, reader,
                                       int(record_id) if str(record_id).isdigit() else 0,
                                       _today())
            if hold.status == HoldStatus.ready:
                message = gettext("A copy is on the shelf: %(copy)s is set aside for "
                                  "%(reader)s.", copy=hold.copy.accession_label,
                                  reader=reader.full_name)
            else:
                message = gettext("Hold placed: %(reader)s will be told when a copy comes "
                                  "back.", reader=reader.full_name)
            return {"message": message, "hold_id": hold.id}
        return self._answer(work)

    @expose("/api/titles", methods=["POST"])
    @cached_access_api
    def api_titles(self):
        payload = request.get_json(silent=True) or {}

        def work(school_id):
            _total, records = search_records(db.session, payload.get("q") or "",
                                             school_ids=[school_id], limit=10)
            return {"titles": [{"id": r.id, "title": r.title, "authors": r.authors_text or "",
                                "year": r.year or ""} for r in records]}
        return self._answer(work)


def _actor():
    from flask_login import current_user

    return current_user if getattr(current_user, "is_authenticated", False) else None


def _today():
    from app.core.i18n import local_today

    return local_today()


def register(appbuilder):
    from app.circulation.admin_views import register as register_admin

    appbuilder.add_view(DeskView, "Circulation desk", label=_l("Circulation desk"),
                        icon="fa-barcode", category="Circulation",
                        category_label=_l("Circulation"), category_icon="fa-exchange-alt")
    register_admin(appbuilder)
