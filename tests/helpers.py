"""Small helpers shared by the tests (no fixtures here)."""
import re

DEMO_PASSWORD = "thuvien2025"

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, url):
    page = client.get(url)
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def login(client, username, password=DEMO_PASSWORD):
    token = csrf_token(client, "/login/")
    return client.post("/login/", data={"username": username, "password": password,
                                        "csrf_token": token})


def post_form(client, url, data):
    """Submit a form like a browser: fetch it, take its CSRF token, post."""
    token = csrf_token(client, url)
    return client.post(url, data={**data, "csrf_token": token})


def text(resp):
    return resp.get_data(as_text=True)


def session_csrf(client):
    """A valid CSRF token for this logged-in client (every user may open this form)."""
    return csrf_token(client, "/resetmypassword/form")


def statements_during(fn):
    """(fn(), the SQL statements it sent, whitespace normalised)."""
    from sqlalchemy import event

    from app.extensions import db

    seen = []

    def log(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", log)
    try:
        result = fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", log)
    return result, seen
