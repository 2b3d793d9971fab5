"""The console in a real browser: Playwright driving Debian's Chromium (headless) against a real
server with real Suricata."""

import contextlib
import hashlib
from pathlib import Path

import httpx
import pytest
import pyzipper

from packettotal import demo
from packettotal.web.app import create_app

from .conftest import PCAPS, settings
from .test_pages import HOSTILE
from .web import serve_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ESPN = PCAPS / "cs-http_espn.pcapng"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed "
                                "(scripts/setup-system.sh test installs it)")


@contextlib.contextmanager
def serving(s):
    """A real server of the app on these settings, on a free loopback port: its base URL."""
    with serve_app(create_app(s, seed_demo=False)) as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(settings(tmp_path_factory.mktemp("home"))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def test_upload_watch_open_tabs_pivot_download(page, server, tmp_path):
    page.goto(server + "/")
    page.set_input_files("#file-input", str(ESPN))
    page.wait_for_url(f"{server}/captures/*", timeout=60_000)  # forwarded when the job is done
    cid = page.url.rsplit("/", 1)[1]
    assert page.locator("nav.tabs a.current").inner_text().startswith("Summary")
    assert page.locator("svg.timeline rect").count() > 0

    tabs = page.locator("nav.tabs a").evaluate_all("els => els.map(e => [e.dataset.tab, e.href])")
    assert {"flow", "dns", "http"} <= {t for t, _ in tabs}
    for key, href in tabs:
        if key in ("summary", "similar", "intel"):  # not event tabs
            continue
        page.goto(href)
        assert page.locator("nav.tabs a.current").get_attribute("data-tab") == key
        if key == "alert":  # always there; with no threat ruleset loaded it says so, alerts or none
            assert page.locator("#no-ruleset").is_visible()
            continue
        assert page.locator("#events tbody tr").count() > 0, key
        assert page.locator("#events td.empty").count() == 0, key

    page.goto(f"{server}/captures/{cid}/tab/dns")
    link = page.locator("#events a.ioc").first
    value = link.inner_text()
    link.click()
    page.wait_for_url(f"{server}/ioc/**")
    assert page.locator("h1").inner_text() == value
    assert page.locator(f'a[href="/captures/{cid}"]').count() == 1

    page.goto(f"{server}/captures/{cid}")
    page.select_option(".add-label select", "campaign")
    page.fill('.add-label input[name="value"]', "ESPN sample")
    with page.expect_navigation():
        page.click(".add-label button")
    assert page.url == f"{server}/captures/{cid}", (page.url, page.content()[:500])
    assert "campaign: ESPN sample" in page.locator("#labels").inner_text()
    page.fill(".searchbar input", 'campaign:"espn sample"')
    page.press(".searchbar input", "Enter")
    page.wait_for_url(f"{server}/search**")
    assert page.locator(f'#results a[href="/captures/{cid}"]').count() == 1

    page.goto(f"{server}/captures/{cid}")
    with page.expect_download() as d:
        page.click("#download-capture")
    assert hashlib.sha256(Path(d.value.path()).read_bytes()).hexdigest() == cid
    assert d.value.suggested_filename == f"{cid}.pcapng"  # the ESPN capture is a pcapng
    with page.expect_download() as d:
        page.click("#download-zip")
    with pyzipper.AESZipFile(d.value.path()) as z:
        z.setpassword(b"infected")
        assert hashlib.sha256(z.read(f"{cid}.pcapng")).hexdigest() == cid
        assert "eve.json" in z.namelist()
    assert page.dialogs == []


def test_refused_drop_shows_its_reason(page, server):
    page.goto(server + "/")
    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["<!doctype html><html><body>not a capture</body></html>"], "notes.pcap"));
        document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
    }""")
    refused = page.locator("#uploads .refused")
    refused.wait_for()
    assert "HTML document, not a packet capture" in refused.inner_text()


def test_hostile_capture_renders_as_text(page, server, tmp_path):
    path = demo.write(tmp_path / "hostile.pcap", HOSTILE)
    with open(path, "rb") as f:
        r = httpx.post(server + "/api/v1/captures", files={"file": ("<svg onload=alert(8)>.pcap", f)})
    assert r.status_code == 202, r.text
    cid = r.json()["id"]
    page.goto(f"{server}/captures/{cid}")
    page.locator("nav.tabs").wait_for(timeout=60_000)  # the status page reloads itself when done
    hrefs = page.locator("nav.tabs a").evaluate_all("els => els.map(e => e.href)")
    shown = ""
    for href in hrefs:
        page.goto(href)
        page.locator("details").evaluate_all("els => els.forEach(e => e.open = true)")
        shown += page.locator("main").inner_text()
        assert page.evaluate("() => window.__pwned") is None
    assert page.dialogs == []
    for key in ("user_agent", "host", "filename", "dns", "sni"):
        assert HOSTILE[key] in shown, key
    assert "<svg onload=alert(8)>.pcap" in shown
    # the HTTP flow's page: its payload (the hostile request as it went) and packets, as text
    page.goto(f"{server}/captures/{cid}/tab/http")
    flow = page.locator("a.flow-link").first.get_attribute("href")
    payload = ""
    for view in ("payload", "packets", "records"):
        page.goto(f"{server}{flow}?view={view}")
        page.locator("details").evaluate_all("els => els.forEach(e => e.open = true)")
        payload += page.locator("main").inner_text()
        assert page.evaluate("() => window.__pwned") is None
    assert page.dialogs == []
    assert f"GET {HOSTILE['uri']} HTTP/1.1" in payload and HOSTILE["user_agent"] in payload


def _uploaded(server: str, path: Path) -> str:
    with open(path, "rb") as f:
        r = httpx.post(server + "/api/v1/captures", files={"file": (path.name, f)})
    assert r.status_code in (202, 303), r.text
    return r.json()["id"]


def test_no_threat_ruleset_notice_and_grouped_alerts(page, server, tmp_path):
    cid = _uploaded(server, demo.write(tmp_path / "threats-demo.pcap", {"host": "threats.example.com"}))
    page.goto(f"{server}/captures/{cid}")
    page.locator("nav.tabs").wait_for(timeout=60_000)
    top = page.locator("#top-signatures")
    assert "No threat ruleset was loaded" in top.locator("#no-ruleset").inner_text()
    assert top.locator("#signatures tbody tr").count() == 2

    page.click('nav.tabs a[data-tab="alert"]')
    page.wait_for_url(f"{server}/captures/{cid}/tab/alert")
    notice = page.locator("#no-ruleset")
    assert notice.is_visible() and "packettotal rules add FOLDER|TARBALL" in notice.inner_text()
    groups = page.locator("#signatures tbody tr[data-sid]")
    assert groups.count() == 2
    first = groups.nth(0)
    assert first.locator("td.severity").inner_text() == "1 High"
    assert "PACKETTOTAL POLICY Scripted HTTP client user agent" in first.inner_text()
    assert "10.13.37.5 → 203.0.113.80" in first.locator("td.pairs").inner_text()
    first.locator("details summary").click()
    rule = page.locator("#signatures tr.raw pre.rule")  # opened in a row of its own, below
    rule.wait_for()
    assert rule.is_visible() and "sid:9100011" in rule.inner_text()
    assert page.locator("#events tbody tr").count() == 2  # and one by one below

    groups.nth(1).locator("a", has_text="EICAR").click()  # the signature's own alerts
    page.wait_for_url(f"{server}/captures/{cid}/tab/alert?q=*")
    assert page.locator("#events tbody tr").count() == 1
    assert "3 Low" in page.locator("#events tbody tr").inner_text()
    assert page.dialogs == []


def test_decoder_events_show_as_strange_activity(page, server):
    cid = _uploaded(server, PCAPS / "cs-mail_sender_attachment.pcapng")
    page.goto(f"{server}/captures/{cid}/tab/anomaly")
    page.locator("nav.tabs").wait_for(timeout=60_000)
    if not page.url.endswith("/tab/anomaly"):  # the status page forwarded to the summary
        page.goto(f"{server}/captures/{cid}/tab/anomaly")
    assert "SURICATA IPv4 total length smaller than header size" in page.locator("#events").inner_text()
    page.click('nav.tabs a[data-tab="alert"]')
    assert page.locator("#events td.empty").inner_text() == "No events."
    assert page.locator("#no-ruleset").is_visible()


def test_top_values_panel_shows_and_a_click_filters(page, server):
    cid = _uploaded(server, ESPN)
    page.goto(f"{server}/captures/{cid}")
    page.locator("nav.tabs").wait_for(timeout=60_000)
    page.goto(f"{server}/captures/{cid}/tab/dns")
    panel = page.locator("#top-values")
    assert panel.is_visible()
    names = panel.locator('table[data-field="dns.rrname"]')
    assert names.is_visible() and panel.locator('table[data-field="dns.rcode"]').is_visible()
    first = names.locator("tbody tr").first
    value = first.locator("td.top-value a").inner_text()
    count = int(first.locator("td.n").first.inner_text().replace(",", ""))
    first.locator("td.top-value a").click()
    page.wait_for_url(f"{server}/captures/{cid}/tab/dns?q=*")
    assert page.locator(".filter input[name=q]").input_value() == f'dns.rrname:"{value}"'
    assert page.locator("#events tbody tr").count() == count
    assert all(value.lower() in t.lower() for t in page.locator("#events tbody tr").all_inner_texts())
    # the panel now counts the narrowed rows: one value, all of them
    narrowed = page.locator('#top-values table[data-field="dns.rrname"] tbody tr')
    assert narrowed.count() == 1 and "100.0%" in narrowed.inner_text()
    # another field from the picker, the filter kept
    page.select_option("#top-values select[name=top]", "src_ip")
    with page.expect_navigation():
        page.click("#top-values button")
    assert page.locator('#top-values table[data-field="src_ip"]').is_visible()
    assert page.locator(".filter input[name=q]").input_value() == f'dns.rrname:"{value}"'
    assert page.dialogs == []
