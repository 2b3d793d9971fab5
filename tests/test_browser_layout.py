"""The console fits the screen (issue #16, item 8): Chromium at 1366x768 and 390x844 on the
exploit-kit capture analysed by real Suricata, with a small ruleset the test writes so that it has
threat alerts of three severities."""

import gzip
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from packettotal.ingest import rules

from .conftest import PCAPS, settings
from .test_browser import CHROMIUM, browser, serving  # noqa: F401  (browser: the shared fixture)
from .test_rules import folder

EK = PCAPS / "cs-ek_to_cryptowall4.pcapng"  # MANIFEST.tsv: exploit kit leading to CryptoWall 4
RULES = [
    'alert http any any -> any any (msg:"PT layout EK landing host"; http.host; content:"topcentc.top"; '
    'priority:1; sid:9400001; rev:1;)',
    'alert http any any -> any any (msg:"PT layout Flash served"; http.content_type; content:"shockwave-flash"; '
    'priority:2; sid:9400002; rev:1;)',
    'alert http any any -> any any (msg:"PT layout POST"; http.method; content:"POST"; priority:3; '
    'sid:9400003; rev:1;)',
]
SIZES = [(1366, 768), (390, 844)]
OTHER_PAGES = ["/", "/captures", "/hunts", "/intel", "/bulk", "/fields", "/api", "/search?q=http.hostname:*topcentc*"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed "
                                "(scripts/setup-system.sh test installs it)")


def _uploaded(server: str, name: str, data: bytes) -> str:
    r = httpx.post(server + "/api/v1/captures", files={"file": (name, data)})
    assert r.status_code in (202, 303), r.text
    return r.json()["id"]


def _done(server: str, cid: str) -> dict:
    for _ in range(600):
        row = httpx.get(f"{server}/api/v1/captures/{cid}").json()
        if row["status"] in ("done", "failed"):
            assert row["status"] == "done", row.get("error")
            return row
        time.sleep(0.1)
    raise AssertionError(f"capture {cid} not analysed in time")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server whose home has the small ruleset, and the exploit-kit capture analysed on it."""
    home = tmp_path_factory.mktemp("home")
    s = settings(home)
    rules.add(s, str(folder(tmp_path_factory.mktemp("rules"), {"layout.rules": RULES})))
    with serving(s) as url:
        cid = _uploaded(url, EK.name, EK.read_bytes())
        yield url, _done(url, cid)


def _page(browser, width: int, height: int):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    return context, context.new_page()


@pytest.fixture
def wide(browser):  # noqa: F811
    context, pg = _page(browser, 1366, 768)
    yield pg
    context.close()


def _sideways(pg) -> int:
    """How far the page scrolls sideways (0: it fits)."""
    return pg.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_no_page_of_the_exploit_kit_capture_scrolls_sideways(browser, site, width, height):  # noqa: F811
    server, cap = site
    context, pg = _page(browser, width, height)
    try:
        pg.goto(f"{server}/captures/{cap['id']}")
        tabs = pg.locator("nav.tabs a").evaluate_all("els => els.map(e => [e.dataset.tab, e.href])")
        assert {"summary", "alert", "anomaly", "flow", "http", "fileinfo"} <= {k for k, _ in tabs}
        pg.goto(f"{server}/captures/{cap['id']}/tab/http")
        flow = server + pg.locator("a.flow-link").first.get_attribute("href")
        pages = [href for _, href in tabs] + [flow, flow + "?view=packets", flow + "?view=payload"]
        carved = httpx.get(f"{server}/api/v1/captures/{cap['id']}/files").json()
        pages.append(f"{server}/ioc/{carved[0]['sha256']}")  # a carved file's pivot: its sightings table
        for href in pages + [server + p for p in OTHER_PAGES]:
            pg.goto(href)
            assert _sideways(pg) <= 0, (width, href)
            nav = pg.locator(".top nav a").evaluate_all("els => els.map(e => e.getBoundingClientRect().right)")
            assert nav and max(nav) <= width, (width, href)  # the header's links wrap, none off-screen
            if width == 1366 and "/captures/" in href:  # wide enough for the tables whole: no inner scroll
                inner = pg.locator(".scroll").evaluate_all("els => els.map(e => e.scrollWidth - e.clientWidth)")
                assert all(x <= 1 for x in inner), (href, inner)
        pg.goto(f"{server}/captures/{cap['id']}/tab/fileinfo")
        links = pg.locator("#carved a[download]").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().right)")
        assert links, "no carved file to download"
        if width == 1366:
            assert max(links) <= width  # the download links are on screen
        else:  # at 390 px the table scrolls inside its own box, never the page
            box = pg.locator("#carved").locator("xpath=..")
            assert box.evaluate("e => getComputedStyle(e).overflowX") == "auto"
            box.evaluate("e => e.scrollLeft = e.scrollWidth")
            assert _sideways(pg) <= 0
            right = pg.locator("#carved a[download]").first.evaluate("e => e.getBoundingClientRect().right")
            assert right <= width
    finally:
        context.close()


@pytest.mark.parametrize("name", ["sv-tls-cert-chain.pcap", "sv-tls-ipv6-communityid.pcap", "cs-ratinfected.pcapng"])
def test_other_captures_tabs_fit_1366_px_too(wide, site, name):
    """The rules are generic: the TLS tab's subjects, JA3/JA3S/JA4 and IPv6 addresses fit as well."""
    server, _ = site
    cid = _uploaded(server, name, (PCAPS / name).read_bytes())
    _done(server, cid)
    wide.goto(f"{server}/captures/{cid}")
    for href in wide.locator("nav.tabs a").evaluate_all("els => els.map(e => e.href)"):
        wide.goto(href)
        inner = wide.locator(".scroll").evaluate_all("els => els.map(e => e.scrollWidth - e.clientWidth)")
        assert _sideways(wide) <= 0 and all(x <= 1 for x in inner), (name, href, inner)


def test_wide_values_are_cut_whole_on_hover_and_a_click(wide, site):
    server, cap = site
    records = httpx.get(f"{server}/api/v1/captures/{cap['id']}/events", params={"type": "http", "limit": 50}).json()
    agents = {e["event"]["http"].get("http_user_agent") for e in records["events"]} - {None}
    referers = {e["event"]["http"].get("http_refer") for e in records["events"]} - {None}
    assert agents and referers
    wide.goto(f"{server}/captures/{cap['id']}/tab/http")
    heads = wide.locator("#events thead th").all_inner_texts()
    assert "Referer" in [h.strip() for h in heads]
    col = [h.strip() for h in heads].index("User agent")
    first = wide.locator("#events tbody tr").first
    agent = first.locator("td").nth(col).locator(".cut")
    assert agent.get_attribute("title") in agents and len(agent.get_attribute("title")) > 40  # on hover
    assert agent.evaluate("e => e.scrollHeight > e.clientHeight + 1")  # cut to two lines
    at = [h.strip() for h in heads].index("URL") + 1
    longest = max(wide.locator(f"#events td:nth-child({at}) .cut").all(), key=lambda e: len(e.get_attribute("title")))
    assert longest.evaluate("e => e.scrollHeight > e.clientHeight + 1")
    shown = longest.evaluate("e => e.getBoundingClientRect().height")
    longest.click()
    assert "open" in longest.get_attribute("class")
    assert longest.evaluate("e => e.scrollHeight <= e.clientHeight + 1")  # whole now
    assert longest.evaluate("e => e.getBoundingClientRect().height") > shown
    assert longest.inner_text().strip() == longest.get_attribute("title")  # the text itself, to select and copy
    ref = [h.strip() for h in heads].index("Referer")
    titles = wide.locator("#events tbody tr").evaluate_all(
        f"rows => rows.map(r => r.cells[{ref}].querySelector('.cut, .whole')).filter(Boolean)"
        ".map(e => e.title || e.textContent)")
    assert set(titles) <= referers and titles
    assert _sideways(wide) <= 0


def test_the_raw_record_opens_pretty_and_wrapped_below_its_row(wide, site):
    server, cap = site
    wide.goto(f"{server}/captures/{cap['id']}/tab/http")
    row = wide.locator("#events tbody tr").first
    row.locator("details.record summary").click()
    raw = wide.locator("#events tr.raw pre")
    raw.wait_for()
    text = raw.inner_text()
    record = json.loads(text)
    assert record["event_type"] == "http" and text.count("\n") > 10 and '\n  "http": {\n    "' in text
    table = wide.locator("#events").evaluate("e => e.getBoundingClientRect().width")
    box = raw.evaluate("e => [e.getBoundingClientRect().width, e.scrollWidth, e.clientWidth]")
    assert box[0] > 0.9 * table - 20  # the table's width, not one column's
    assert box[1] <= box[2]  # long lines wrap: nothing to scroll sideways in it
    assert _sideways(wide) <= 0
    row.locator("details.record summary").click()
    wide.locator("#events tr.raw").wait_for(state="detached")  # closed: its row goes (the toggle event is async)
    assert wide.locator("#events tr.raw").count() == 0


def test_the_timeline_spans_its_axis_and_marks_alerts(wide, site):
    server, cap = site
    buckets = cap["summary"]["timeline"]["buckets"]
    with_alerts = sum(1 for b in buckets if b.get("alert"))
    assert with_alerts > 0
    wide.goto(f"{server}/captures/{cap['id']}")
    bars = wide.locator("svg.timeline rect.bar").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })")
    axis = wide.locator(".timeline-chart .axis").evaluate("e => { const r = e.getBoundingClientRect(); "
                                                          "return [r.left, r.right]; }")
    assert len(bars) == len(buckets)
    assert abs(bars[0][0] - axis[0]) <= 2 and abs(bars[-1][1] - axis[1]) <= 2, (bars[0], bars[-1], axis)
    assert all(a[1] <= b[0] + 0.5 for a, b in zip(bars, bars[1:], strict=False))  # in order, not overlapping
    marks = wide.locator("svg.timeline rect.alert-mark")
    assert marks.count() == with_alerts
    assert wide.locator("svg.timeline rect.alert-mark title").first.text_content().split(" alert")[0].isdigit()
    assert marks.first.evaluate("e => getComputedStyle(e).fill") != wide.locator("svg.timeline rect.bar").first \
        .evaluate("e => getComputedStyle(e).fill")


def test_slash_goes_to_the_search_box_but_not_from_a_field(wide, site):
    server, cap = site
    wide.goto(f"{server}/captures/{cap['id']}/tab/http")
    wide.locator("h1").click()
    wide.keyboard.press("/")
    assert wide.evaluate("() => document.activeElement.matches('.searchbar input')")
    assert wide.locator(".searchbar input").input_value() == ""  # the key itself is not typed
    wide.locator(".filter input[type=search]").fill("")
    wide.locator(".filter input[type=search]").type("http.url:/a/b")
    assert wide.evaluate("() => document.activeElement.matches('.filter input')")
    assert wide.locator(".filter input[type=search]").input_value() == "http.url:/a/b"


def test_severities_are_named(wide, site):
    server, cap = site
    wide.goto(f"{server}/captures/{cap['id']}/tab/alert")
    names = dict(zip(wide.locator("#signatures tbody tr").evaluate_all("els => els.map(e => e.dataset.sid)"),
                     wide.locator("#signatures td.severity").all_inner_texts(), strict=True))
    assert names == {"9400001": "1 High", "9400002": "2 Medium", "9400003": "3 Low"}
    shown = set(wide.locator("#events tbody td").all_inner_texts())
    assert {"1 High", "2 Medium", "3 Low"} <= shown
    wide.goto(f"{server}/captures/{cap['id']}")
    assert "1 High" in wide.locator("#top-signatures td.severity").all_inner_texts()


def test_a_pcapng_downloads_as_pcapng_gzipped_or_not(wide, site, tmp_path):
    server, cap = site
    wide.goto(f"{server}/captures/{cap['id']}")
    assert wide.locator("#download-capture").inner_text() == "Original capture (pcapng)"
    with wide.expect_download() as d:
        wide.click("#download-capture")
    assert d.value.suggested_filename == f"{cap['id']}.pcapng"
    assert hashlib.sha256(Path(d.value.path()).read_bytes()).hexdigest() == cap["id"]
    espn = (PCAPS / "cs-http_espn.pcapng").read_bytes()
    cid = _uploaded(server, "espn.pcapng.gz", gzip.compress(espn))
    assert _done(server, cid)["compression"] == "gzip"
    r = httpx.get(f"{server}/api/v1/captures/{cid}/download")
    assert r.content == espn
    assert r.headers["content-disposition"] == f'attachment; filename="{cid}.pcapng"'
    pcap = (PCAPS / "sv-http-4files.pcap").read_bytes()
    cid = _uploaded(server, "four.pcap.gz", gzip.compress(pcap))
    _done(server, cid)
    assert httpx.get(f"{server}/api/v1/captures/{cid}/download").headers["content-disposition"] \
        .endswith(f'{cid}.pcap"')
