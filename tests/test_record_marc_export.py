"""The catalogue list's "Xuất MARC": the ticked records as ISO 2709 or MARCXML.

Expected contents come from the database and from pymarc reading the file, not from the
application's MARC code. Records catalogued in the application (no stored original MARC)
carry their id in 001, which identifies them in the file.
"""
import glob
import io
import json
import os
import subprocess
import sys

import pymarc
import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from app.catalog.models import Record
from app.extensions import db
from app.org.models import OrgUnit
from tests.helpers import session_csrf, text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMATS = {"export_marc": ("application/marc", ".mrc"),
           "export_marcxml": ("application/marcxml+xml", ".xml")}


def record_ids(app, code):
    """Ids of the records of school `code` catalogued in the application (001 = id)."""
    with app.app_context():
        return db.session.execute(
            select(Record.id).join(OrgUnit, OrgUnit.id == Record.school_id)
            .where(OrgUnit.code == code, Record.marc.is_(None)).order_by(Record.id)
        ).scalars().all()


def run_action(client, action, ids):
    """Tick `ids` in the list and choose `action`, as the list page's form posts it."""
    return client.post("/recordview/action_post", data={
        "action": action, "rowid": [str(i) for i in ids],
        "csrf_token": session_csrf(client)})


def marc_records(resp):
    if resp.mimetype == "application/marcxml+xml":
        return pymarc.parse_xml_to_array(io.BytesIO(resp.data))
    return list(pymarc.MARCReader(resp.data, to_unicode=True))


def flashes(client):
    with client.session_transaction() as sess:
        return [message for _cat, message in sess.pop("_flashes", [])]


@pytest.mark.parametrize("action", sorted(FORMATS))
@pytest.mark.parametrize("username", ["thuvien", "hieutruong"])
def test_the_selected_records_and_only_they_are_exported(app, login, username, action):
    own = record_ids(app, "79000001")
    chosen = own[0:5:2]  # 3 records, not neighbours
    assert len(chosen) == 3
    client = login(username)  # the librarian, and the principal (a read)
    resp = run_action(client, action, chosen)
    assert resp.status_code == 200, text(resp)[:300]
    mimetype, extension = FORMATS[action]
    assert resp.mimetype == mimetype
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "marc-79000001-" in disposition
    assert disposition.endswith(f'{extension}"')
    records = marc_records(resp)
    assert sorted(int(r["001"].data) for r in records) == chosen
    # Copies are exported in 852 with the school's code, never another school's.
    assert {f["a"] for r in records for f in r.get_fields("852")} <= {"79000001"}


def test_the_show_page_exports_its_record(app, login):
    pk = record_ids(app, "79000001")[1]
    client = login("thuvien")
    assert "/recordview/action/export_marc/" in text(client.get(f"/recordview/show/{pk}"))
    resp = client.post(f"/recordview/action/export_marc/{pk}",
                       data={"csrf_token": session_csrf(client)})
    assert resp.status_code == 200
    assert [int(r["001"].data) for r in marc_records(resp)] == [pk]


@pytest.mark.parametrize("username", ["thuvien", "hieutruong"])
def test_another_schools_records_are_never_exported(app, login, username):
    own, foreign = record_ids(app, "79000001"), record_ids(app, "79000002")
    client = login(username)
    for action in FORMATS:
        for ids in (foreign[:2], own[:2] + foreign[:1]):
            resp = run_action(client, action, ids)
            # Not found: no file at all, not a file without the foreign record.
            assert resp.status_code == 404, (action, ids)
            assert "attachment" not in resp.headers.get("Content-Disposition", "")
        resp = client.post(f"/recordview/action/{action}/{foreign[0]}",
                           data={"csrf_token": session_csrf(client)})
        assert resp.status_code == 404


def test_readers_may_not_export(app, login):
    client = login("hocsinh")
    resp = run_action(client, "export_marc", record_ids(app, "79000001")[:1])
    assert resp.status_code == 302 and "Content-Disposition" not in resp.headers
    assert "Truy cập bị từ chối" in flashes(client)


def test_one_file_is_one_schools_catalogue(app, login):
    """The department sees every school: a selection across two schools is refused with a
    message; one other school's records are exported with that school's code."""
    own, foreign = record_ids(app, "79000001"), record_ids(app, "79000002")
    client = login("admin")
    resp = run_action(client, "export_marc", own[:1] + foreign[:1])
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/recordview/list/")
    assert len(flashes(client)) == 1
    resp = run_action(client, "export_marcxml", foreign[:2])
    assert resp.status_code == 200 and "marc-79000002-" in resp.headers["Content-Disposition"]
    assert sorted(int(r["001"].data) for r in marc_records(resp)) == foreign[:2]


@pytest.mark.parametrize("username", ["thuvien", "hieutruong", "phong"])
def test_the_list_offers_the_export(app, login, username):
    page = text(login(username).get("/recordview/list/"))
    # Tick boxes, the two actions, and the button to the whole catalogue's export.
    assert 'class="action_check"' in page
    assert "export_marc_menu_item" in page and "export_marcxml_menu_item" in page
    assert 'id="record-marc-export" href="/marc/"' in page


def test_new_messages_have_a_pending_vietnamese_translation(tmp_path):
    pot = tmp_path / "export.pot"
    files = ["app/catalog/views.py", "app/templates/catalog/record_list_widget.html",
             "app/templates/app/baselayout.html"]
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel.cfg", "-k", "N_", "-k", "_l", "-k", "lazy_gettext", "-o", str(pot),
                    *files], cwd=ROOT, check=True, capture_output=True)
    with open(pot, "rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    with open(os.path.join(ROOT, "translations", "vi", "LC_MESSAGES", "messages.po"),
              "rb") as fh:
        known = {m.id for m in read_po(fh) if m.id and m.string}
    # New messages wait in translations/pending_*.json until they are merged.
    for path in glob.glob(os.path.join(ROOT, "translations", "pending_*.json")):
        with open(path, encoding="utf-8") as fh:
            known |= {k for k, v in json.load(fh).items() if v.strip()}
    assert sorted(extracted - known) == []
