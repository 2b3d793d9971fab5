"""Files with their context and pivots' Where links in a real browser (Playwright, Debian's
Chromium) against a real server with real Suricata, at the 1366 px the console is made to fit."""

import hashlib
import time
from pathlib import Path

import httpx
import pyzipper

from .conftest import PCAPS
from .test_browser import browser, page, pytestmark, server  # noqa: F401 (fixtures, the Chromium check)

EK = PCAPS / "cs-ek_to_cryptowall4.pcapng"


def done(base: str, path: Path) -> str:
    with open(path, "rb") as f:
        r = httpx.post(base + "/api/v1/captures", files={"file": (path.name, f)})
    cid = r.json()["id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{base}/api/v1/captures/{cid}").json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return cid


def test_files_tab_fits_and_the_pivot_page_downloads(page, server):  # noqa: F811
    cid = done(server, EK)
    files = httpx.get(f"{server}/api/v1/captures/{cid}/files").json()
    page.set_viewport_size({"width": 1366, "height": 800})
    page.goto(f"{server}/captures/{cid}/tab/fileinfo")
    carved = page.locator("#carved")
    assert carved.locator("tbody tr").count() == len(files)
    width = carved.evaluate("t => t.getBoundingClientRect().right")
    assert width <= 1366, width  # the carved-files table does not widen the page
    long = max(files, key=lambda f: len(f["url"]))
    row = carved.locator(f'tr[data-sha256="{long["sha256"]}"]')
    assert row.locator(f'td.where span[title="{long["url"]}"]').count() == 1  # cut, whole on hover
    assert long["host"] in row.locator("td.where").inner_text()
    assert ("to client" if long["direction"] == "to_client" else "to server") in row.locator("td.where").inner_text()

    f = max(files, key=lambda f: len(f["names"]))
    row = carved.locator(f'tr[data-sha256="{f["sha256"]}"]')
    row.locator("a.more").click()  # "+1 more": the names on the file's pivot page
    page.wait_for_url(f"{server}/ioc/{f['sha256']}")
    assert page.locator("code.name").all_inner_texts() == f["names"]
    assert page.locator("#file-seen tbody tr").count() == len(f["seen"])
    with page.expect_download() as d:
        page.click("#file-download")
    with pyzipper.AESZipFile(d.value.path()) as z:
        z.setpassword(b"infected")
        assert hashlib.sha256(z.read(f"{f['sha256']}.bin")).hexdigest() == f["sha256"]
    assert page.dialogs == []


def test_a_where_link_opens_the_tab_filtered_to_the_value(page, server):  # noqa: F811
    cid = done(server, EK)
    host = "xktzjm.topcentc.top"
    http = httpx.get(f"{server}/api/v1/captures/{cid}/events", params={"type": "http", "limit": 1000}).json()
    want = sum(e["event"]["http"].get("hostname") == host for e in http["events"])
    page.goto(f"{server}/ioc/{host}")
    page.locator(f'#pivot a.where[href^="/captures/{cid}/tab/http"]').click()
    page.wait_for_url(f"{server}/captures/{cid}/tab/http?q=*")
    assert page.locator('form.filter input[name="q"]').input_value() == f'http.hostname:"{host}"'
    assert want and page.locator("#events tbody tr").count() == want
    assert set(page.locator("#events tbody tr td:nth-child(3)").all_inner_texts()) == {host}
