"""Deleting a capture from its console in a real browser (Playwright driving Debian's Chromium)
against a real server in team mode with real Suricata: the form needs its box ticked, then the
capture is gone from its page, the list and the search."""

from __future__ import annotations

import time

import httpx
import pytest


from .test_browser import ARGS, CHROMIUM, ESPN
from .web import serve_with_users

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed "
                                "(scripts/setup-system.sh test installs it)")
PASSWORD = "browser password"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_with_users(tmp_path_factory.mktemp("home"), "team", {"root": "admin"}, PASSWORD) as (url, accounts):
        yield url, accounts.create_key("tests", user="root")[1]


def test_delete_from_the_console(server):
    from playwright.sync_api import sync_playwright
    base, key = server
    h = {"x-api-key": key}
    cid = httpx.post(f"{base}/api/v1/captures", headers=h, files={"file": (ESPN.name, ESPN.read_bytes())},
                     timeout=60).json()["id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{base}/api/v1/captures/{cid}", headers=h, timeout=10).json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_context().new_page()
        page.goto(f"{base}/login?next=/captures/{cid}")
        page.fill('#login-form input[name="name"]', "root")
        page.fill('#login-form input[name="password"]', PASSWORD)
        with page.expect_navigation():
            page.click("#login-form button")
        assert page.url == f"{base}/captures/{cid}"
        for before in ("/ioc/espn.go.com", "/search?q=http.hostname:espn.go.com", "/captures"):
            page.goto(base + before)
            assert cid[:12] in page.content(), before
        page.goto(f"{base}/captures/{cid}")
        page.click("#delete button")  # the box not ticked: the browser does not send the form
        page.wait_for_timeout(300)
        assert page.url == f"{base}/captures/{cid}"
        page.check('#delete input[name="confirm"]')
        with page.expect_navigation():
            page.click("#delete button")
        assert page.url == f"{base}/captures"
        assert cid[:12] not in page.content()
        r = page.goto(f"{base}/captures/{cid}")
        assert r is not None and r.status == 404
        page.goto(f"{base}/ioc/espn.go.com")
        assert cid[:12] not in page.content()
        page.goto(f"{base}/search?q=http.hostname:espn.go.com")
        assert cid[:12] not in page.content()
        browser.close()
    assert httpx.get(f"{base}/api/v1/captures", headers=h, timeout=10).json() == []
