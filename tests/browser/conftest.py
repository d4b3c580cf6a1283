"""Browser test harness: the real app served over HTTP, driven by a real Chromium.

Fixtures (later flows add their test modules next to this file):

- `live_server`  (session)  base URL ("http://127.0.0.1:<port>") of the session `app`
                            served by werkzeug in a daemon thread;
- `browser`      (session)  Playwright's Chromium, headless, from /usr/bin/chromium
                            (Debian's package: `scripts/install-browser` installs it);
- `page_as`      (function) `page_as("thuvien")` -> a new context + page logged in through
                            the real login form, on the dashboard. Every request the page makes
                            is recorded in `page.requests` (URLs); at the end of the test the
                            fixture fails the test if any request left the live server, so
                            every browser flow also proves the app works with no internet;
- `db_query`     (function) `db_query(lambda session: ...)` runs a read in its own app
                            context and closes it at once (an open SQLite read transaction
                            would block the server's writes).

Every test under tests/browser gets the `browser` marker (`-m browser` / `-m "not browser"`).

Run: `scripts/install-browser && python -m pytest tests/browser`
(add TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres for PostgreSQL).
"""
import os
import threading

import pytest

from tests import helpers

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# Milliseconds. The app is local: anything slower than this is a failure, not a slow network.
DEFAULT_TIMEOUT = 15_000

_HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(_HERE + os.sep):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def live_server(app):
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        """Log only failed requests (4xx/5xx): a page load is dozens of static files."""

        def log_request(self, code="-", size="-"):
            if str(getattr(code, "value", code)).startswith(("4", "5")):
                super().log_request(code, size)

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def _playwright():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        yield pw
    finally:
        pw.stop()


@pytest.fixture(scope="session")
def browser(_playwright):
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
            "Install it with `scripts/install-browser` (as root), then run the tests again. "
            "(Do not use `playwright install`: the tests use the system chromium.)",
            pytrace=False,
        )
    browser = _playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def db_query(app):
    """db_query(fn) -> fn(session), in a fresh app context closed right after."""
    from app.extensions import db

    def _run(fn):
        with app.app_context():
            try:
                return fn(db.session)
            finally:
                db.session.rollback()
                db.session.remove()
    return _run


def offline_violations(urls, base_url):
    """The recorded URLs that did not go to the live server (data:/blob: are not network)."""
    prefix = base_url.rstrip("/") + "/"
    return [u for u in urls
            if not (u.startswith(prefix) or u.startswith("data:") or u.startswith("blob:"))]


@pytest.fixture
def page_as(browser, live_server):
    """page_as(username[, password]) -> a Playwright page logged in as that account."""
    contexts = []
    pages = []

    def _page_as(username, password=helpers.DEMO_PASSWORD):
        context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(DEFAULT_TIMEOUT)
        context.set_default_navigation_timeout(DEFAULT_TIMEOUT)
        contexts.append(context)
        page = context.new_page()
        page.requests = []
        page.on("request", lambda request: page.requests.append(request.url))
        pages.append(page)

        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("form[name=login] [type=submit]")
        if not page.locator("#dashboard").count():
            alerts = page.locator(".alert").all_inner_texts()
            pytest.fail(f"login as {username!r} did not reach the dashboard: "
                        f"url={page.url} alerts={alerts}", pytrace=False)
        assert page.url.rstrip("/") == live_server, page.url
        return page

    yield _page_as

    try:
        for page in pages:
            outside = offline_violations(page.requests, live_server)
            if outside:
                pytest.fail(f"the page made requests outside the live server {live_server} "
                            f"(the app must work with no internet): {outside}", pytrace=False)
    finally:
        for context in contexts:
            context.close()
