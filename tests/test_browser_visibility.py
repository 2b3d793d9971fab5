"""Visibility per capture in a real browser (Playwright driving Debian's Chromium) against a real
server in public mode with real Suricata: log in, upload privately, share with another user,
label, search by the label, log out and see nothing private; the user shared with sees it."""

from __future__ import annotations

import time

import pytest


from . import visibility_world
from .test_browser import CHROMIUM
from .test_browser_accounts import page  # noqa: F401  (the fixture: a fresh browser per test)
from .web import serve_with_users

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed "
                                "(scripts/setup-system.sh test installs it)")
PASSWORD = "browser password"
OWN = "browser-private.example.net"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_with_users(tmp_path_factory.mktemp("home"), "public", {"ann": "analyst", "ben": "analyst"},
                          PASSWORD) as (url, _):
        yield url


def log_in(page, server, name: str) -> None:  # noqa: F811
    page.goto(f"{server}/login")
    page.fill('#login-form input[name="name"]', name)
    page.fill('#login-form input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button")
    assert page.locator("#account").inner_text() == f"{name} (analyst)"


def log_out(page) -> None:  # noqa: F811
    with page.expect_navigation():
        page.click("#logout button")


def test_private_upload_shared_labelled_then_nothing_private_logged_out(page, server, tmp_path):  # noqa: F811
    pcap = visibility_world.dns_capture(tmp_path / "browser-private.pcap", [OWN], "10.9.2.1")
    log_in(page, server, "ann")
    page.set_input_files("#file-input", str(pcap))
    page.wait_for_url(f"{server}/captures/*", timeout=60_000)
    cid = page.url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 60
    while page.locator("#visibility").count() == 0:  # the status page until it is analysed
        assert time.monotonic() < deadline
        time.sleep(0.3)
        page.reload()
    assert page.locator("#visibility span").inner_text() == "Private, uploaded by ann"

    page.select_option('#visibility select[name="visibility"]', "shared")
    page.fill('#visibility input[name="share_with"]', "ben")
    with page.expect_navigation():
        page.click("#visibility button")
    assert page.locator("#visibility span").inner_text() == "Shared, uploaded by ann, shared with ben"
    page.fill('.add-label input[name="value"]', "browsersecret")
    with page.expect_navigation():
        page.click(".add-label button")
    assert "tag: browsersecret" in page.locator("#labels").inner_text()
    page.goto(f"{server}/search?q=tag:browsersecret")
    assert "browser-private.pcap" in page.locator("main").inner_text()
    log_out(page)

    # anonymous, in public mode: reads, but nothing of the private capture
    for url in (f"/captures/{cid}", f"/captures/{cid}/similar", f"/api/v1/captures/{cid}/download"):
        assert page.context.request.get(server + url).status == 404, url
    page.goto(f"{server}/search?q=tag:browsersecret")
    assert "browser-private.pcap" not in page.locator("main").inner_text()
    page.goto(f"{server}/captures")
    assert "browser-private.pcap" not in page.locator("main").inner_text()
    page.goto(f"{server}/ioc/{OWN}")
    assert "browser-private.pcap" not in page.locator("main").inner_text()

    # ben, shared with: the capture and ann's label
    log_in(page, server, "ben")
    page.goto(f"{server}/captures/{cid}")
    assert "tag: browsersecret" in page.locator("#labels").inner_text()
    page.goto(f"{server}/search?q=tag:browsersecret")
    assert "browser-private.pcap" in page.locator("main").inner_text()
