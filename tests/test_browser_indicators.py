"""Indicators in the search box and bulk downloads, in a real browser (Playwright, Debian's
Chromium) against a real server with real Suricata: what a person types reaches its pivot."""

import csv
import io
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson

from .conftest import PCAPS
from .test_browser import browser, page, pytestmark, server  # noqa: F401  (fixtures, and the skip without Chromium)

HTTP = PCAPS / "dpkt-http.pcap"


def _analysed(base: str, path: Path) -> str:
    with httpx.Client(base_url=base, timeout=60) as c:
        r = c.post("/api/v1/captures", files={"file": (path.name, path.read_bytes())})
        assert r.status_code in (202, 303), r.text
        cid = r.json()["id"]
        for _ in range(1200):
            if c.get(f"/api/v1/captures/{cid}").json()["status"] in ("done", "failed"):
                break
            time.sleep(0.05)
        assert c.get(f"/api/v1/captures/{cid}").json()["status"] == "done"
        return cid


def _urls(base: str, cid: str) -> list[str]:
    """The absolute URLs of the capture's HTTP requests, from its own events."""
    events = httpx.get(f"{base}/api/v1/captures/{cid}/events", params={"type": "http", "limit": 100}).json()
    return [f"http://{e['event']['http']['hostname']}{e['event']['http']['url']}" for e in events["events"]
            if e["event"].get("http", {}).get("hostname") and e["event"]["http"].get("url", "").startswith("/")]


def _defang(url: str) -> str:
    host, _, path = url.removeprefix("http://").partition("/")
    return "hxxp://" + host.replace(".", "[.]") + "/" + path


def test_a_defanged_url_typed_in_the_search_box_reaches_its_pivot(page, server):  # noqa: F811
    cid = _analysed(server, HTTP)
    # a URL with its own %-escapes (a real server decodes the path once)
    url = next(u for u in _urls(server, cid) if "%" in u and " " not in u)
    page.goto(server + "/")
    page.fill(".searchbar input", _defang(url))
    page.press(".searchbar input", "Enter")
    page.wait_for_url(f"{server}/ioc/**")
    assert page.url == f"{server}/ioc/{quote(url, safe='')}"
    assert page.locator("h1").inner_text() == url
    assert page.locator(f'#pivot a[href="/captures/{cid}"]').count() == 1
    assert page.locator("#capture-count").inner_text() == "1"

    page.fill(".searchbar input", "dns.rrnam:www.ethereal.com")
    page.press(".searchbar input", "Enter")
    page.wait_for_url(f"{server}/search**")
    assert "did you mean dns.rrname?" in page.locator("#query-error").inner_text()
    page.click("#query-error a.suggestion")
    page.wait_for_url(f"{server}/search?q=dns.rrname%3Awww.ethereal.com")
    assert page.locator("#query-error").count() == 0
    assert page.dialogs == []


def test_bulk_results_download_as_csv_and_json(page, server, tmp_path):  # noqa: F811
    cid = _analysed(server, HTTP)
    url = next(u for u in _urls(server, cid) if "%" not in u)
    host = url.split("/")[2]
    events = httpx.get(f"{server}/api/v1/captures/{cid}/events", params={"type": "http", "limit": 1}).json()
    agent = events["events"][0]["event"]["http"]["http_user_agent"]
    assert ";" in agent  # kept whole in double quotes, and posted again so to the export
    typed = [host.replace(".", "[.]"), _defang(url), "198.51.100[.]7", agent]
    page.goto(server + "/bulk")
    page.fill("textarea[name=values]", f'{typed[0]}; {typed[1]}\n{typed[2]},{host};"{agent}"')
    with page.expect_navigation():
        page.click("form.bulk button")
    assert "3 of 4 indicators found" in page.locator("h2").inner_text()
    assert page.locator(f'#bulk-results a[href="/captures/{cid}"]').count() == 3
    with page.expect_download() as d:
        page.click("#bulk-export button:has-text('CSV')")
    rows = list(csv.DictReader(io.StringIO(Path(d.value.path()).read_text())))
    assert [(r["input"], r["value"], r["capture_id"]) for r in rows] == [
        (typed[0], host, cid), (typed[1], url, cid), (typed[2], "198.51.100.7", ""), (agent, agent, cid)]
    with page.expect_download() as d:
        page.click("#bulk-export button:has-text('JSON')")
    assert [r["value"] for r in orjson.loads(Path(d.value.path()).read_bytes())] == [host, url, "198.51.100.7", agent]
    assert page.dialogs == []
