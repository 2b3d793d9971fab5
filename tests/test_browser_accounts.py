"""Accounts in a real browser (Playwright driving Debian's Chromium) against a real server in team
mode with real Suricata: the login wall, a session's upload and label, logout, and a form posted
from a page of another origin (a second loopback server) refused."""

from __future__ import annotations

import http.server
import threading
import time

import httpx

import pytest


from .test_browser import ARGS, CHROMIUM, ESPN
from .web import serve_with_users

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed "
                                "(scripts/setup-system.sh test installs it)")
PASSWORD = "browser password"


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    with serve_with_users(tmp_path_factory.mktemp("home"), "team", {"ann": "analyst"}, PASSWORD) as (url, accounts):
        yield url, accounts.create_key("tests", user="ann")[1]


@pytest.fixture(scope="module")
def server(instance) -> str:
    return instance[0]


@pytest.fixture(scope="module")
def key(instance) -> dict[str, str]:
    """Headers with an API key of ann's, for the tests' own requests."""
    return {"x-api-key": instance[1]}


@pytest.fixture(scope="module")
def elsewhere():
    """Another origin on loopback, serving whatever page a test sets."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", pages
    srv.shutdown()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser.new_context().new_page()
        browser.close()


def log_in(page, server):
    page.goto(server + "/")
    assert page.url == f"{server}/login?next=%2F"  # anonymous: sent to log in
    page.fill('#login-form input[name="name"]', "ann")
    page.fill('#login-form input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button")
    assert page.url == server + "/"
    assert page.locator("#account").inner_text() == "ann (analyst)"


def test_login_upload_label_logout(page, server):
    page.goto(server + "/hunts")
    assert page.url == f"{server}/login?next=%2Fhunts"
    page.fill('#login-form input[name="name"]', "ann")
    page.fill('#login-form input[name="password"]', "not the password")
    with page.expect_navigation():
        page.click("#login-form button")
    assert "wrong user name or password" in page.locator("#login-failed").inner_text()
    log_in(page, server)
    cookie = next(c for c in page.context.cookies() if c["name"] == "pt_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # no script can read the session

    page.set_input_files("#file-input", str(ESPN))  # the page's script posts to the API with the token
    page.wait_for_url(f"{server}/captures/*", timeout=60_000)
    cid = page.url.rsplit("/", 1)[1]
    page.fill('.add-label input[name="value"]', "team sample")
    with page.expect_navigation():
        page.click(".add-label button")
    assert "tag: team sample" in page.locator("#labels").inner_text()

    with page.expect_navigation():
        page.click("#logout button")
    assert page.url == server + "/login"
    page.goto(f"{server}/captures/{cid}")
    assert page.url == f"{server}/login?next=%2Fcaptures%2F{cid}"
    assert page.context.request.get(f"{server}/api/v1/captures/{cid}").status == 401


def test_a_form_from_another_origin_is_refused(page, server, key, elsewhere):
    origin, pages = elsewhere
    r = httpx.post(f"{server}/api/v1/captures", headers=key, files={"file": (ESPN.name, ESPN.read_bytes())})
    cid = r.json()["id"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{server}/api/v1/captures/{cid}", headers=key).json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    log_in(page, server)
    pages["/evil.html"] = (f'<form method="post" action="{server}/captures/{cid}/labels">'
                           '<input name="kind" value="tag"><input name="value" value="planted">'
                           '<button id="go">go</button></form>').encode()
    page.goto(origin + "/evil.html")
    with page.expect_navigation() as nav:
        page.click("#go")
    assert nav.value.status == 403
    assert "cross-site request refused" in page.content()
    page.goto(f"{server}/captures/{cid}")
    assert "planted" not in page.locator("#labels").inner_text()
