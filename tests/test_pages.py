"""Server-rendered pages on a real instance: every page renders, attacker text is escaped."""

import re
from html.parser import HTMLParser

import pytest

from packettotal import demo

from .conftest import PCAPS
from .web import DEMO_DOMAIN, analysed, client

# Markup in every name a capture can carry; none may reach a page unescaped.
HOSTILE = {
    "host": "<script>window.__pwned=1</script>.evil",
    "uri": "/\"><img src=x onerror=\"window.__pwned=2\">",
    "user_agent": "<svg onload=alert(3)>Mozilla",
    "filename": "<script>alert(4)</script>.exe",
    "dns": "<img src=x onerror=alert(5)>.evil.com",
    "sni": "'><script>alert(6)</script>",
}


class Tags(HTMLParser):
    """Every element a browser would build from a page."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_inert(html: str, where: str) -> None:
    """No element from the packets: only our script, no event handlers, no javascript: links."""
    for tag, attrs in Tags(html).tags:
        assert tag not in ("img", "iframe", "object", "embed", "base"), (where, tag, attrs)
        if tag == "script":
            assert attrs == {"src": "/static/app.js", "defer": None}, (where, attrs)
        if tag == "svg":
            allowed = {"class", "viewbox", "preserveaspectratio", "width", "height", "role", "aria-label"}
            assert set(attrs) <= allowed, (where, attrs)
        assert not any(a.startswith("on") for a in attrs), (where, tag, attrs)
        assert not any(str(v).strip().lower().startswith("javascript:") for v in attrs.values()), (where, attrs)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with client(tmp_path_factory.mktemp("home")) as c:
        yield c


@pytest.fixture(scope="module")
def hostile(site, tmp_path_factory):
    row = analysed(site, demo.write(tmp_path_factory.mktemp("h") / "<i onmouseover=alert(7)>hostile.pcap", HOSTILE))
    assert row["status"] == "done", row
    return row


def test_home_lists_recent_and_explains_limits(site, hostile):
    html = site.get("/").text
    assert 'id="dropzone"' in html and "up to 1.0 GiB" in html
    assert f'href="/captures/{hostile["id"]}"' in html


def test_every_tab_renders_and_escapes(site, hostile):
    cid = hostile["id"]
    pages = [f"/captures/{cid}"] + [f"/captures/{cid}/tab/{t}" for t in hostile["summary"]["counts"] if t != "stats"]
    for path in pages:
        r = site.get(path)
        assert r.status_code == 200, path
        html = r.text
        for payload in HOSTILE.values():
            assert payload not in html, (path, payload)
        assert_inert(html, path)
    http = site.get(f"/captures/{cid}/tab/http").text
    assert "&lt;svg onload=alert(3)&gt;Mozilla" in http  # shown, as text
    summary = site.get(f"/captures/{cid}").text
    assert "&lt;i onmouseover=alert(7)&gt;hostile.pcap" in summary
    indicators = summary[summary.index("<h2>Indicators</h2>"):]
    assert 'href="/ioc/10.13.37.5"' in indicators and "<h3>ja3</h3>" in indicators


def test_ioc_links_are_url_encoded(site, hostile):
    html = site.get(f"/captures/{hostile['id']}/tab/http").text
    links = re.findall(r'href="(/ioc/[^"]*)"', html)
    assert links and all("<" not in link and " " not in link for link in links)
    ua = site.get("/ioc/" + "%3Csvg%20onload%3Dalert(3)%3EMozilla")
    assert ua.status_code == 200 and f'href="/captures/{hostile["id"]}"' in ua.text
    assert_inert(ua.text, "ioc page")


def test_tab_filter_sort_and_paging(site):
    row = analysed(site, PCAPS / "cs-http_espn.pcapng")
    cid = row["id"]
    flows = row["summary"]["counts"]["flow"]
    assert flows > 25
    page = site.get(f"/captures/{cid}/tab/flow", params={"size": 25, "sort": "dest_port", "order": "desc"})
    assert page.status_code == 200 and f"{flows:,} events" in page.text
    pages = -(-flows // 25)
    assert f"page 1 of {pages}" in page.text and 'rel="next"' in page.text
    ports = [int(p) for p in re.findall(r'<td><span class="whole">(\d+)</span></td>\s*<td><span class="whole">'
                                        r'(?:TCP|UDP)', page.text)]
    assert ports == sorted(ports, reverse=True) and len(ports) == 25
    last = site.get(f"/captures/{cid}/tab/flow", params={"size": 25, "page": pages})
    assert 'rel="prev"' in last.text and 'rel="next"' not in last.text
    row = analysed(site, PCAPS / "sv-http-4files.pcap")
    cid = row["id"]
    bad = site.get(f"/captures/{cid}/tab/http", params={"q": "http.url:(a OR"})
    assert bad.status_code == 400 and "Bad filter" in bad.text and "at character" in bad.text
    none = site.get(f"/captures/{cid}/tab/http", params={"q": "http.hostname:nothing.invalid"})
    assert "No events match this filter" in none.text
    assert site.get(f"/captures/{cid}/tab/nosuchtype").status_code == 404
    files = site.get(f"/captures/{cid}/tab/fileinfo").text
    assert 'id="carved"' in files and "password <code>infected</code>" in files


def test_alert_tab_shows_rule_text(site, hostile):
    html = site.get(f"/captures/{hostile['id']}/tab/alert").text
    assert "sid:9100001" in html and "EICAR" in html


def test_status_pages_for_queued_and_failed(site, tmp_path):
    """How a job that is not done is shown (failure detection itself: test_pipeline.py)."""
    from .captures import pcap_bytes
    row = analysed(site, data=pcap_bytes(packets=5), name="tiny.pcap")
    db = site.app.state.instance.service._db  # a state only a job leaves
    db.update_capture(row["id"], status="queued")
    queued = site.get(f"/captures/{row['id']}").text
    assert f'data-status-url="/api/v1/captures/{row["id"]}"' in queued and "waiting for an engine" in queued
    assert site.get(f"/captures/{row['id']}/tab/flow").status_code == 303  # no console until done
    db.update_capture(row["id"], status="failed", error="Suricata could not read the capture: <b>boom</b>")
    failed = site.get(f"/captures/{row['id']}").text
    assert 'id="failure"' in failed and "&lt;b&gt;boom&lt;/b&gt;" in failed
    db.update_capture(row["id"], status="done", error=None)


def test_search_fields_api_and_errors(site, hostile):
    found = site.get("/search", params={"q": f"dns.rrname:{DEMO_DOMAIN} OR alert.signature_id:9100001"})
    assert found.status_code == 200 and hostile["id"] in found.text
    bad = site.get("/search", params={"q": "a AND (b"})
    assert bad.status_code == 400 and "Bad query" in bad.text
    assert "dns.rrname" in site.get("/fields").text
    api = site.get("/api").text
    assert "/api/v1/captures/{ref}/events" in api and "openapi.json" in api
    missing = site.get("/captures/" + "0" * 64)
    assert missing.status_code == 404 and "no capture" in missing.text


def test_no_script_upload_form(site, tmp_path):
    r = site.post("/upload", files={"file": ("page.html", b"<html><body>hi</body></html>")})
    assert r.status_code == 415 and "Refused: HTML document" in r.text
    ok = site.post("/upload", files={"file": ("demo.pcap", demo.write(tmp_path / "d.pcap").read_bytes())})
    assert ok.status_code == 303 and ok.headers["location"].startswith("/captures/")


def test_every_sortable_column_sorts(site):
    from packettotal.web import tabs
    row = analysed(site, PCAPS / "sv-http-4files.pcap")
    for t in ("flow", "http", "fileinfo", "anomaly"):
        for col in tabs.tab(t).columns:
            if col.sort:
                for order in ("asc", "desc"):
                    r = site.get(f"/captures/{row['id']}/tab/{t}", params={"sort": col.sort, "order": order})
                    assert r.status_code == 200, (t, col.sort, order)
