"""Vietnamese by default, English selectable, nothing left in English on a Vietnamese screen."""
import html
import os
import re
import subprocess
import sys

import pytest
from babel.messages.pofile import read_po

from tests.helpers import text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PO = os.path.join(ROOT, "translations", "vi", "LC_MESSAGES", "messages.po")


def catalogue():
    with open(PO, "rb") as fh:
        return read_po(fh, locale="vi")


def test_every_message_is_translated_and_none_is_fuzzy():
    bad = [m.id for m in catalogue()
           if m.id and (m.fuzzy or not m.string or (isinstance(m.string, tuple)
                                                    and not all(m.string)))]
    assert bad == []


def test_every_message_of_the_code_is_in_the_catalogue(tmp_path):
    pot = tmp_path / "app.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel.cfg", "-k", "N_", "-k", "_l", "-k", "lazy_gettext", "-o", str(pot),
                    "app"], cwd=ROOT, check=True, capture_output=True)
    with open(pot, "rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    known = {m.id for m in catalogue()}
    assert sorted(extracted - known) == [], "run scripts/i18n-update and translate"


def visible_text(page):
    page = re.sub(r"(?s)<script.*?</script>|<style.*?</style>", " ", page)
    page = re.sub(r"(?s)<[^>]+>", "\n", page)
    return html.unescape(page)


def english_leftovers(page):
    """Catalogue messages still shown in English (only those whose Vietnamese differs)."""
    shown = {line.strip() for line in visible_text(page).splitlines() if line.strip()}
    out = []
    for m in catalogue():
        if not m.id or isinstance(m.id, tuple) or m.string == m.id or "%" in m.id:
            continue
        if m.id.strip() in shown:
            out.append(m.id)
    return out


PAGES = {
    "admin": ["/", "/orgunitview/list/", "/orgunitview/add", "/orgunitview/show/1",
              "/orglinkview/list/", "/orglinkview/add", "/schoolyearview/list/",
              "/schoolyearview/add", "/users/list/", "/users/add", "/users/show/1",
              "/rolelistview/list/", "/auditlogview/list/", "/users/userinfo/",
              "/resetmypassword/form"],
    "thuvien": ["/", "/locationview/list/", "/locationview/add", "/auditlogview/list/",
                "/schoolyearview/list/"],
    "hieutruong": ["/", "/locationview/list/"],
    "phong": ["/", "/orgunitview/list/", "/locationview/list/"],
    "hocsinh": ["/"],
}


@pytest.mark.parametrize("username", sorted(PAGES))
def test_screens_are_vietnamese(app, login, username):
    c = login(username)
    for url in PAGES[username]:
        resp = c.get(url)
        assert resp.status_code == 200, (username, url, resp.status_code)
        page = text(resp)
        assert '<html' in page
        assert english_leftovers(page) == [], (username, url)


def test_login_page_is_vietnamese(client):
    page = text(client.get("/login/"))
    assert "Đăng nhập" in page and "Mật khẩu" in page
    assert english_leftovers(page) == []


def test_english_is_selectable(login):
    c = login("admin")
    c.get("/lang/en")
    page = text(c.get("/users/list/"))
    assert "List Users" in page
    c.get("/lang/vi")
    assert "Danh sách người dùng" in text(c.get("/users/list/"))
