"""The /captures page in a real browser (Playwright, Debian's Chromium) against a real server:
the filter form, the pager, a hostile name shown as text."""

import time

import httpx
import pytest

from .conftest import PCAPS
from .test_browser import CHROMIUM, browser, page, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
HOSTILE = "<img src=x onerror=alert(7)>.pcap"


@pytest.fixture(scope="module")
def stored(server):  # noqa: F811
    names = {}
    for path, name in ((PCAPS / "sv-icmp-echo.pcap", None), (PCAPS / "dpkt-http.pcap", None),
                       (PCAPS / "sv-modbus.pcap", HOSTILE)):
        r = httpx.post(server + "/api/v1/captures", files={"file": (name or path.name, path.read_bytes())}, timeout=30)
        assert r.status_code == 202, r.text
        names[r.json()["id"]] = name or path.name
    deadline = time.monotonic() + 120
    while any(httpx.get(f"{server}/api/v1/captures/{cid}", timeout=10).json()["status"] not in ("done", "failed")
              for cid in names):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return names


def _shown(pg) -> list[str]:
    return pg.locator("#captures tbody td:first-child a").all_inner_texts()


def test_filter_form_and_pager(page, server, stored):  # noqa: F811
    page.goto(server + "/")
    page.click("#all-captures")
    page.wait_for_url(server + "/captures")
    assert sorted(_shown(page)) == sorted(stored.values())
    assert HOSTILE in _shown(page) and page.locator("#captures img").count() == 0 and page.dialogs == []

    page.fill('#filters input[name="q"]', "SV-")
    page.select_option('#filters select[name="status"]', "done")
    page.click('#filters button[type="submit"]')
    page.wait_for_url("**/captures?*q=SV-*")
    assert _shown(page) == ["sv-icmp-echo.pcap"]  # sv-modbus.pcap was sent under another name
    assert page.locator('#filters input[name="q"]').input_value() == "SV-"  # the form keeps what was asked
    assert page.locator("#summary").inner_text().startswith("1 capture")

    page.goto(server + "/captures?limit=2")
    first = _shown(page)
    assert len(first) == 2 and page.locator('a[rel="prev"]').count() == 0
    page.click('a[rel="next"]')
    page.wait_for_url("**offset=2**")
    second = _shown(page)
    assert len(second) == 1 and not set(first) & set(second)
    assert page.locator(".pager span").inner_text() == "page 2 of 2"
    page.click('a[rel="prev"]')
    page.wait_for_url("**offset=0**")
    assert _shown(page) == first
    assert page.dialogs == []
