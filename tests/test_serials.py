"""Newspapers and magazines (app.serials): the rules of subscriptions and issues, the receive
page (good and bad input, nothing half-saved), the periodicals register's cells, the library
report's acquisitions, and another school's rows (404 everywhere).

Data of 2024 created here (the demo's periodicals are of the current year), removed at the
end."""
import datetime
import re

import pytest
from sqlalchemy import delete, func, select

from app.catalog.models import DocumentType, Record
from app.collection.models import Funding
from app.core.audit import acting_as
from app.core.errors import ValidationError
from app.core.i18n import local_today
from app.org.models import OrgUnit
from app.serials import services
from app.serials.models import Frequency, PeriodicalIssue, PeriodicalSubscription
from app.statistics.library_report import figures
from tests.helpers import post_form, session_csrf, text
from tests.test_registers import check_layout, header_row_index, values, workbook

D = datetime.date
YEAR = "from=01/01/2024&to=31/12/2024"


def flashes(client):
    with client.session_transaction() as sess:
        return [m for _c, m in sess.pop("_flashes", [])]


def issue_count(session, sub_id):
    session.rollback()
    return session.scalar(select(func.count()).select_from(PeriodicalIssue).where(
        PeriodicalIssue.subscription_id == sub_id))


@pytest.fixture(scope="module")
def serials(app):
    """A 2024 weekly magazine at 79000001 with three issues received, a 2024 subscription at
    79000002 with one; a book record of 79000001 (not a periodical)."""
    from app.extensions import db

    with app.app_context():
        session = db.session
        schools = {code: session.scalar(select(OrgUnit).where(OrgUnit.code == code))
                   for code in ("79000001", "79000002")}
        bc = session.scalar(select(DocumentType).where(DocumentType.code == "BC"))
        before = session.scalar(select(func.max(Record.id)))
        with acting_as(name="test-serials"):
            records, subs = {}, {}
            for code, title in (("79000001", "Tạp chí Thử nghiệm"),
                                ("79000002", "Báo Trường khác")):
                record = Record(school_id=schools[code].id, title=title,
                                publisher="NXB Thử", year=2024, language="vie",
                                document_type=bc)
                session.add(record)
                session.flush()
                records[code] = record
                sub = PeriodicalSubscription(
                    school_id=schools[code].id, record_id=record.id, year=2024,
                    frequency=Frequency.weekly, issuing_body="Hội Thử nghiệm",
                    copies_per_issue=2, price=520000, issue_price=10000,
                    funding=Funding.state_budget, note="Đặt qua bưu điện")
                session.add(sub)
                session.flush()
                subs[code] = sub
            s1 = subs["79000001"]
            services.receive_issue(session, s1, "2", "11/01/2024", "12/01/2024", "2",
                                   today=D(2024, 12, 31))
            services.receive_issue(session, s1, "1", "04/01/2024", "05/01/2024", "1",
                                   "Thiếu 1 bản", today=D(2024, 12, 31))
            services.receive_issue(session, s1, "3", "18/01/2024", "19/01/2024", None,
                                   today=D(2024, 12, 31))
            services.receive_issue(session, subs["79000002"], "7", "01/03/2024",
                                   "02/03/2024", "1", today=D(2024, 12, 31))
            session.commit()
        book = session.scalar(select(Record).join(DocumentType).where(
            Record.school_id == schools["79000001"].id, DocumentType.code == "STK"))
        info = {"schools": schools, "subs": {c: s.id for c, s in subs.items()},
                "records": {c: r.id for c, r in records.items()}, "book": book.id}
        yield info
        session.rollback()
        ids = list(info["subs"].values())
        session.execute(delete(PeriodicalIssue).where(
            PeriodicalIssue.subscription_id.in_(ids)))
        session.execute(delete(PeriodicalSubscription).where(
            PeriodicalSubscription.record_id.in_(list(info["records"].values()))))
        session.execute(delete(Record).where(Record.id > before,
                                             Record.id.in_(list(info["records"].values()))))
        session.commit()


# --- Rules ----------------------------------------------------------------------------------

def test_subscription_rules(db_session, serials):
    s1 = serials["schools"]["79000001"]

    def sub(**kw):
        values = dict(school_id=s1.id, record_id=serials["records"]["79000001"], year=2025,
                      frequency=Frequency.monthly, copies_per_issue=1)
        values.update(kw)
        return PeriodicalSubscription(**values)

    services.check_subscription(db_session, sub(), today=D(2025, 6, 1))
    cases = [
        (sub(record_id=serials["book"]), "không phải báo, tạp chí"),
        (sub(year=2024), "đã được đặt mua cho năm 2024"),
        (sub(year=1999), "Năm đặt mua phải từ 2000 đến 2026"),
        (sub(year=2027), "Năm đặt mua phải từ 2000 đến 2026"),
        (sub(copies_per_issue=0), "Số bản mỗi kỳ phải từ 1 trở lên"),
        (sub(price=-1), "Giá không được âm"),
    ]
    from flask_babel import force_locale

    for item, message in cases:
        with pytest.raises(ValidationError) as error, force_locale("vi"):
            services.check_subscription(db_session, item, today=D(2025, 6, 1))
        with force_locale("vi"):
            assert message in str(error.value), (message, str(error.value))
    # The year of a subscription with issues cannot move away from them.
    existing = db_session.get(PeriodicalSubscription, serials["subs"]["79000001"])
    existing.year = 2025
    with pytest.raises(ValidationError):
        services.check_subscription(db_session, existing, today=D(2025, 6, 1))
    db_session.rollback()


def test_issue_rules_list_every_problem(db_session, serials):
    sub = db_session.get(PeriodicalSubscription, serials["subs"]["79000001"])
    today = D(2024, 6, 1)
    from flask_babel import force_locale

    def problems(*args):
        with pytest.raises(services.IssueRejected) as error:
            services.receive_issue(db_session, sub, *args, today=today)
        return error.value.messages

    before = issue_count(db_session, sub.id)
    sub = db_session.get(PeriodicalSubscription, sub.id)
    with force_locale("vi"):
        assert problems("2", "11/01/2024", "12/01/2024", "1") == [
            "Số 2 của Tạp chí Thử nghiệm (2024) đã được nhận rồi."]
        assert problems("9", "02/06/2024", "02/06/2024", "1") == [
            "Ngày phát hành 02/06/2024 ở tương lai.", "Ngày nhận 02/06/2024 ở tương lai."]
        assert problems("9", "10/05/2024", "09/05/2024", "1") == [
            "Ngày nhận 09/05/2024 trước ngày phát hành 10/05/2024."]
        assert problems("9", "31/12/2023", "02/01/2024", "1") == [
            "Ngày phát hành 31/12/2023 nằm ngoài năm đặt mua 2024."]
        assert problems("", "32/13/2024", "", "hai") == [
            "Ngày phát hành: “32/13/2024” không phải là ngày (dd/mm/yyyy).",
            "Số bản nhận phải là số nguyên.", "Hãy nhập số báo (kỳ)."]
        assert problems("9", "", "", "0") == [
            "Hãy nhập ngày phát hành (dd/mm/yyyy).", "Số bản nhận phải từ 1 trở lên."]
    assert issue_count(db_session, sub.id) == before
    # Empty copies: the subscription's copies per issue; empty date received: today.
    issue = services.receive_issue(db_session, sub, "20", "10/05/2024", "", "", today=today)
    assert (issue.copies, issue.received_on) == (2, today)
    db_session.rollback()
    assert issue_count(db_session, sub.id) == before


# --- The receive page -----------------------------------------------------------------------

def test_receive_page_records_an_issue_in_one_step(login, db_session, serials):
    sub_id = serials["subs"]["79000001"]
    c = login("thuvien")
    page = text(c.get(f"/serials/receive/?subscription={sub_id}"))
    assert "Tạp chí Thử nghiệm" in page and 'id="serials-receive"' in page
    assert 'data-issue="1"' in page and 'data-issue="2"' in page
    assert re.search(r'id="serials-received">3<', page)
    before = issue_count(db_session, sub_id)
    token = session_csrf(c)
    resp = c.post(f"/serials/receive/{sub_id}", data={
        "csrf_token": token, "number": "4", "issue_date": "25/01/2024",
        "received_on": "26/01/2024", "copies": "2"})
    assert resp.status_code == 302
    assert flashes(c) == ["Đã nhận số 4 của Tạp chí Thử nghiệm ngày 26/01/2024 (2 bản)."]
    assert issue_count(db_session, sub_id) == before + 1
    page = text(c.get(f"/serials/receive/?subscription={sub_id}"))
    assert 'data-issue="4"' in page
    # Bad input: the Vietnamese messages, the typed values kept, nothing saved.
    for data, message in [
        ({"number": "4", "issue_date": "25/01/2024"},
         "Số 4 của Tạp chí Thử nghiệm (2024) đã được nhận rồi."),
        ({"number": "5", "issue_date": (local_today() + datetime.timedelta(days=1))
          .strftime("%d/%m/%Y")}, "ở tương lai"),
        ({"number": "5", "issue_date": "01/02/2024", "received_on": "31/01/2024"},
         "Ngày nhận 31/01/2024 trước ngày phát hành 01/02/2024."),
        ({"number": "5", "issue_date": "hôm qua"},
         "Ngày phát hành: “hôm qua” không phải là ngày (dd/mm/yyyy)."),
    ]:
        resp = c.post(f"/serials/receive/{sub_id}", data={"csrf_token": token, **data})
        assert resp.status_code == 302
        assert f"subscription={sub_id}" in resp.headers["Location"]
        assert "number=" in resp.headers["Location"]
        messages = flashes(c)
        assert any(message in m for m in messages), (message, messages)
        assert issue_count(db_session, sub_id) == before + 1
    db_session.execute(delete(PeriodicalIssue).where(PeriodicalIssue.subscription_id == sub_id,
                                                     PeriodicalIssue.number == "4"))
    db_session.commit()


def test_crud_views_apply_the_same_rules(login, db_session, serials):
    sub_id = serials["subs"]["79000001"]
    c = login("thuvien")
    before = issue_count(db_session, sub_id)
    resp = post_form(c, "/periodicalissueview/add", {
        "subscription": str(sub_id), "number": "1", "issue_date": "04/01/2024",
        "received_on": "05/01/2024", "copies": "1"})
    assert "Số 1 của Tạp chí Thử nghiệm (2024) đã được nhận rồi." in text(resp) + " ".join(
        flashes(c))
    assert issue_count(db_session, sub_id) == before
    count = db_session.scalar(select(func.count()).select_from(PeriodicalSubscription))
    resp = post_form(c, "/periodicalsubscriptionview/add", {
        "record": str(serials["records"]["79000001"]), "year": "2024", "frequency": "weekly",
        "copies_per_issue": "1", "funding": "state_budget"})
    assert "Tên báo, tạp chí này đã được đặt mua cho năm 2024." in text(resp) + " ".join(
        flashes(c))
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(PeriodicalSubscription)) == count
    # The record drop-down offers the school's periodicals only.
    form = text(c.get("/periodicalsubscriptionview/add"))
    assert "Tạp chí Thử nghiệm" in form and "Báo Nhi Đồng" in form
    assert "Truyện Kiều" not in form and "Báo Trường khác" not in form


# --- The register -----------------------------------------------------------------------------

def test_periodical_register_one_page_per_title_and_year(login, serials):
    c = login("thuvien")
    ws = workbook(c.get(f"/registers/download/periodicals?{YEAR}")).worksheets[0]
    check_layout(ws, "SỔ ĐĂNG KÝ BÁO, TẠP CHÍ", landscape=False)
    top = header_row_index(ws) - 1
    rows = values(ws)
    assert rows[top] == ["STT", "Số báo (kỳ)", "Ngày phát hành", "Ngày nhận", "Số bản nhận",
                         "Ghi chú"]
    body = rows[top + 1:]
    assert body[0][0] == "Tạp chí Thử nghiệm – năm 2024" and body[0][-1] == "Đã nhận 3 số"
    assert body[1][0] == "Cơ quan xuất bản: Hội Thử nghiệm"
    assert body[2][0] == "Định kỳ: Hằng tuần (tuần báo) (52 số/năm)"
    assert body[3][0] == ("Giá đặt mua: 520.000 đ; số bản mỗi kỳ: 2; nguồn kinh phí: "
                          "Ngân sách")
    assert body[4][0] == "Đặt qua bưu điện"
    assert body[5] == [1, "1", datetime.datetime(2024, 1, 4), datetime.datetime(2024, 1, 5), 1,
                       "Thiếu 1 bản"]
    assert body[6][:5] == [2, "2", datetime.datetime(2024, 1, 11),
                           datetime.datetime(2024, 1, 12), 2]
    assert body[7][:5] == [3, "3", datetime.datetime(2024, 1, 18),
                           datetime.datetime(2024, 1, 19), 2]
    assert body[8][0] == "Tổng cộng" and body[8][4] == 5
    assert ws.cell(top + 7, 3).number_format == "dd/mm/yyyy"
    flat = [v for row in rows for v in row if isinstance(v, str)]
    assert not any("Báo Trường khác" in v for v in flat)  # another school's title
    # The period filters the issues by date received.
    ws = workbook(c.get("/registers/download/periodicals?from=10/01/2024&to=31/01/2024")
                  ).worksheets[0]
    body = values(ws)[header_row_index(ws):]
    assert [r[1] for r in body[5:7]] == ["2", "3"] and body[7][0] == "Tổng cộng"
    # Printed: the same page.
    page = text(c.get(f"/registers/print/periodicals?{YEAR}"))
    assert "Tạp chí Thử nghiệm – năm 2024" in page and "Cơ quan xuất bản: Hội Thử nghiệm" in page
    assert "Thiếu 1 bản" in page and "04/01/2024" in page
    # Nothing in 2010: the empty register with its header.
    page = text(c.get("/registers/print/periodicals?from=01/01/2010&to=31/12/2010"))
    assert "Không có báo, tạp chí nào nhận trong kỳ này." in page or 'class="empty"' in page


def test_library_report_counts_issues_received(db_session, serials):
    s1 = serials["schools"]["79000001"]
    assert services.acquisitions(db_session, s1.id, D(2024, 1, 1), D(2024, 1, 31)) == (
        5, 50000, 0)
    result = figures(db_session, s1.id, D(2024, 1, 1), D(2024, 1, 31))
    row = [r for r in result.acquisitions if str(r[0]) == "Newspapers and magazines"
           or "Báo" in str(r[0])][0]
    assert tuple(row[1:]) == (5, 50000, 0)
    assert services.acquisitions(db_session, s1.id, D(2024, 2, 1), D(2024, 2, 29)) == (0, 0, 0)


# --- Another school ---------------------------------------------------------------------------

def test_another_schools_subscriptions_and_issues_are_not_found(login, db_session, serials):
    sub_id = serials["subs"]["79000001"]
    issue_id = db_session.scalar(select(PeriodicalIssue.id).where(
        PeriodicalIssue.subscription_id == sub_id).limit(1))
    other = login("thuvien2")
    token = session_csrf(other)
    before = issue_count(db_session, sub_id)
    for url in (f"/serials/receive/?subscription={sub_id}",
                f"/periodicalsubscriptionview/show/{sub_id}",
                f"/periodicalsubscriptionview/edit/{sub_id}",
                f"/periodicalissueview/show/{issue_id}",
                f"/periodicalissueview/edit/{issue_id}",
                "/registers/download/periodicals?school=79000001",
                "/registers/print/periodicals?school=79000001"):
        assert other.get(url).status_code == 404, url
    for url in (f"/serials/receive/{sub_id}", f"/periodicalsubscriptionview/delete/{sub_id}",
                f"/periodicalissueview/delete/{issue_id}"):
        resp = other.post(url, data={"csrf_token": token, "number": "99",
                                     "issue_date": "01/02/2024"})
        assert resp.status_code == 404, url
    assert issue_count(db_session, sub_id) == before
    # Their own list does not show it either.
    page = text(other.get("/periodicalsubscriptionview/list/"))
    assert "Báo Trường khác" in page and "Tạp chí Thử nghiệm" not in page


def test_principal_reads_but_cannot_receive(login, db_session, serials):
    sub_id = serials["subs"]["79000001"]
    c = login("hieutruong")
    page = c.get(f"/serials/receive/?subscription={sub_id}")
    assert page.status_code == 200
    assert "Tạp chí Thử nghiệm" in text(page) and 'id="serials-receive"' not in text(page)
    assert c.get(f"/periodicalsubscriptionview/show/{sub_id}").status_code == 200
    before = issue_count(db_session, sub_id)
    resp = c.post(f"/serials/receive/{sub_id}", data={
        "csrf_token": session_csrf(c), "number": "98", "issue_date": "01/02/2024"})
    assert resp.status_code in (302, 403)
    assert issue_count(db_session, sub_id) == before


def test_offices_and_department_pick_a_school_inside_their_scope(login, serials):
    admin = login("admin")
    page = admin.get("/serials/receive/")
    assert page.status_code == 200 and 'id="serials-school"' in text(page)
    page = text(admin.get("/serials/receive/?school=79000002"))
    assert "Báo Trường khác" in page and 'id="serials-receive"' not in page
    office = login("phong")  # 79000001 and 79000003
    assert office.get("/serials/receive/?school=79000002").status_code == 404
    assert office.get(f"/serials/receive/?subscription={serials['subs']['79000002']}"
                      ).status_code == 404
    page = office.get(f"/serials/receive/?subscription={serials['subs']['79000001']}")
    assert page.status_code == 200 and 'id="serials-receive"' not in text(page)


def test_demo_school_has_periodicals(db_session):
    school = db_session.scalar(select(OrgUnit).where(OrgUnit.code == "79000001"))
    subs = services.subscriptions(db_session, school.id, local_today().year)
    assert len(subs) == 3
    assert all(s.issues for s in subs if s.frequency != Frequency.daily or
               local_today().timetuple().tm_yday > 1)


def test_tenancy_sweep_covers_the_new_views(app):
    """tests/test_tenancy.py sweeps every registered view: these are among them, with rows
    of two schools in the demo city (so that the other school's rows are tried)."""
    from app.extensions import db
    from tests.test_tenancy import _scoped_views, view_routes

    with app.app_context():
        scoped = {type(v).__name__ for v in _scoped_views(app)}
        assert {"PeriodicalSubscriptionView", "PeriodicalIssueView"} <= scoped
        routes = {(type(v).__name__, m) for v, m, _r in view_routes(app)}
        assert {("PeriodicalReceiveView", "index"), ("PeriodicalReceiveView", "receive")} \
            <= routes
        for model in (PeriodicalSubscription, PeriodicalIssue):
            schools = db.session.scalars(select(model.school_id).distinct()).all()
            assert len(set(schools)) >= 2, model
