"""The search box understands indicators, on real captures (real Suricata, real stores): a lone
indicator, defanged or not, goes to its pivot (web: 303; API: the pivot's captures with `pivot`);
bulk lists split and refang, and export as CSV and JSON; an unknown field gets suggestions."""

import csv
import io
from urllib.parse import quote, unquote

import orjson
import pytest

from .conftest import PCAPS
from .web import analysed, client

FILES = PCAPS / "sv-http-4files.pcap"  # four files carved from HTTP
HTTP = PCAPS / "dpkt-http.pcap"


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    with client(tmp_path_factory.mktemp("home")) as c:
        files = analysed(c, FILES)
        http = analysed(c, HTTP)
        yield c, files["id"], http["id"]


def _carved(c, cid: str) -> dict:
    stored = [f for f in c.get(f"/api/v1/captures/{cid}/files").json() if f["sha1"]]
    assert stored
    return stored[0]


def _request_url(c, cid: str) -> str:
    """A URL the capture's HTTP traffic requested, read from its own events. Without `%`:
    Starlette's test client decodes a path twice (a real server once; tests/test_browser_indicators.py)."""
    events = c.get(f"/api/v1/captures/{cid}/events", params={"type": "http", "limit": 100}).json()["events"]
    for e in events:
        http = e["event"].get("http", {})
        host, uri = http.get("hostname"), http.get("url")
        if host and uri and uri.startswith("/") and not any(ch.isspace() or ch == "%" for ch in uri) \
                and http.get("http_port") in (None, 80):
            return f"http://{host}{uri}"
    raise AssertionError("no HTTP request in the capture")


def _defang(url: str) -> str:
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    return scheme.replace("tt", "xx") + "://" + host.replace(".", "[.]") + "/" + path


def _pivot_page(c, typed: str) -> tuple[str, str]:
    """/search?q=typed: it must answer 303 to an /ioc/ page; returns the pivot's value and page."""
    r = c.get("/search", params={"q": typed})
    assert r.status_code == 303, (typed, r.status_code)
    location = r.headers["location"]
    assert location.startswith("/ioc/")
    page = c.get(location)
    assert page.status_code == 200
    return unquote(location[len("/ioc/"):]), page.text


def test_a_bare_sha1_of_a_carved_file_reaches_its_pivot(web):
    c, files_id, http_id = web
    f = _carved(c, files_id)
    before = c.get("/api/v1/search", params={"q": f"fileinfo.sha1:{f['sha1']}"}).json()
    assert [g["capture_id"] for g in before["groups"]] == [files_id]  # the Lucene way finds it too
    for typed, kind in ((f["sha1"], "sha1"), (f["sha1"].upper(), "sha1"), (f["md5"], "md5"),
                        (f["sha256"], "sha256")):
        value, html = _pivot_page(c, typed)
        assert value == typed.lower()
        assert f'href="/captures/{files_id}"' in html and f'href="/captures/{http_id}"' not in html
        api = c.get("/api/v1/search", params={"q": typed})
        assert api.status_code == 200, api.text
        body = api.json()
        assert body["pivot"] == {"value": typed.lower(), "kind": kind, "defanged": False,
                                 "url": "/api/v1/ioc/" + typed.lower()}
        assert [g["capture_id"] for g in body["groups"]] == [files_id] and body["total_captures"] == 1
        assert body["groups"][0]["found_in"] == {"fileinfo": 1} and body["groups"][0]["hits"] >= 1


def test_a_defanged_url_of_a_real_request_reaches_its_pivot(web):
    c, files_id, http_id = web
    url = _request_url(c, http_id)
    typed = _defang(url)
    assert "hxxp://" in typed and "[.]" in typed
    value, html = _pivot_page(c, typed)
    assert value == url
    assert f'href="/captures/{http_id}"' in html and "No capture holds this value" not in html
    body = c.get("/api/v1/search", params={"q": typed}).json()
    assert body["pivot"]["kind"] == "url" and body["pivot"]["defanged"] is True and body["pivot"]["value"] == url
    assert http_id in [g["capture_id"] for g in body["groups"]]
    assert body["groups"][0]["found_in"].get("http", 0) >= 1
    assert body["pivot"]["url"] == "/api/v1/ioc/" + quote(url, safe="")
    direct = c.get("/api/v1/ioc/" + quote(typed, safe="")).json()  # the pivot itself refangs too
    assert direct["value"] == url and http_id in [x["capture_id"] for x in direct["captures"]]
    # before: "regex queries are not supported"; the URL in quotes stays a search (the pivot links it)
    assert f'id="as-text" href="/search?q={quote(chr(34) + url + chr(34), safe="")}"' in html
    assert c.get("/search", params={"q": f'"{url}"'}).status_code == 200


def test_queries_stay_queries(web):
    c, files_id, http_id = web
    host = _request_url(c, http_id).split("/")[2]
    for q in (f"http.hostname:{host}", f"{host} AND event_type:http", f'"{host}"'):
        r = c.get("/search", params={"q": q})
        assert r.status_code == 200 and f'href="/captures/{http_id}"' in r.text, q
        assert c.get("/api/v1/search", params={"q": q}).json()["pivot"] is None
    lone = c.get("/api/v1/search", params={"q": host}).json()  # alone: its pivot
    assert lone["pivot"]["kind"] == "domain" and http_id in [g["capture_id"] for g in lone["groups"]]
    assert lone["total_captures"] == len(lone["groups"])


def test_a_file_name_no_capture_holds_as_a_domain_is_searched_as_text(web):
    c, files_id, http_id = web
    typed = "nothing-holds-this.zip"  # .zip is a top-level domain, and a file name
    assert c.app.state.instance.service.indicator(typed) is None
    body = c.get("/api/v1/search", params={"q": typed}).json()
    assert body["pivot"] is None and body["total_captures"] == 0
    assert c.get("/search", params={"q": typed}).status_code == 200  # a search page, no redirect


def test_bulk_with_mixed_separators_and_defanged_values_and_its_exports(web):
    c, files_id, http_id = web
    f = _carved(c, files_id)
    url = _request_url(c, http_id)
    host = url.split("/")[2]
    typed = [host.replace(".", "[.]"), f["sha1"].upper(), _defang(url), "203.0.113[.]9", "nobody[at]example[dot]org"]
    text = f"{typed[0]}, {typed[1]};{typed[2]}\r\n\n{typed[3]} ;; {typed[4]}\n{host}"  # host: the first again
    page = c.post("/bulk", data={"values": text}, files={"file": ("empty.txt", b"")})
    assert page.status_code == 200 and "3 of 5 indicators found" in page.text
    assert f'href="/captures/{files_id}"' in page.text and f'href="/captures/{http_id}"' in page.text
    assert 'action="/bulk/export?format=csv"' in page.text and 'formaction="/bulk/export?format=json"' in page.text

    api = c.post("/api/v1/ioc/bulk", json={"values": typed}).json()
    assert [r["input"] for r in api] == typed
    assert [r["value"] for r in api] == [host, f["sha1"].upper(), url, "203.0.113.9", "nobody@example.org"]
    assert [r["total_captures"] for r in api] == [1, 1, 1, 0, 0]
    assert [r["captures"][0]["capture_id"] for r in api[:3]] == [http_id, files_id, http_id]

    exported = c.post("/bulk/export?format=csv", data={"values": text})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["input"], r["value"], r["total_captures"], r["capture_id"]) for r in rows] == [
        (typed[0], host, "1", http_id), (typed[1], f["sha1"].upper(), "1", files_id), (typed[2], url, "1", http_id),
        (typed[3], "203.0.113.9", "0", ""), (typed[4], "nobody@example.org", "0", "")]
    assert rows[1]["capture_name"] == FILES.name and rows[0]["kind"] == "domain"
    as_json = c.post("/bulk/export?format=json", data={"values": text})
    assert as_json.headers["content-type"] == "application/json"
    assert orjson.loads(as_json.content) == api
    api_csv = c.post("/api/v1/ioc/bulk/export", params={"format": "csv"}, json={"values": typed})
    assert api_csv.status_code == 200 and api_csv.text == exported.text
    api_json = c.post("/api/v1/ioc/bulk/export", params={"format": "json"}, json={"values": typed})
    assert orjson.loads(api_json.content) == api
    assert c.post("/api/v1/ioc/bulk/export", params={"format": "xml"}, json={"values": typed}).status_code == 422
    assert c.post("/bulk/export?format=csv", data={"values": "x"},
                  headers={"origin": "http://evil.example"}).status_code == 403


def test_bulk_csv_cannot_start_a_formula(web):
    c, _, _ = web
    rows = list(csv.reader(io.StringIO(c.post("/api/v1/ioc/bulk/export", json={
        "values": ["=HYPERLINK(\"http://x\")", "@SUM(1)"]}).text)))
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://x\")", "'@SUM(1)"]


def test_an_unknown_field_is_answered_with_the_nearest(web):
    c, _, _ = web
    r = c.get("/api/v1/search", params={"q": "dns.rrnam:www.example.com"})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "bad_query" and body["detail"] == "unknown field 'dns.rrnam'; did you mean dns.rrname?"
    assert body["suggestions"] == ["dns.rrname"] and body["position"] == 0
    q = "event_type:http AND (xhttp.hostnam:y OR http.hostnam:x)"
    r = c.get("/api/v1/search/events", params={"q": q})
    assert r.status_code == 400 and r.json()["detail"].startswith("unknown field 'xhttp.hostnam'")
    q = "event_type:http AND (http.hostname:y OR ttp.hostname:x)"  # the unknown one ends a known one
    r = c.get("/api/v1/search/events", params={"q": q})
    assert r.status_code == 400 and r.json()["suggestions"][0] == "http.hostname"
    assert r.json()["position"] == q.index(" ttp.") + 1
    page = c.get("/search", params={"q": "dns.rrnam:www.example.com"})
    assert page.status_code == 400 and "did you mean dns.rrname?" in page.text
    assert 'href="/search?q=dns.rrname%3Awww.example.com"' in page.text
    for q in ("dns.rrnam:*.example.com", "flow.bytes_toservr:[1 TO *]"):  # the backend refuses these: named
        r = c.get("/api/v1/search", params={"q": q})
        assert r.status_code == 400 and r.json()["detail"].startswith(f"unknown field '{q.split(':')[0]}'"), r.text
    assert c.get("/api/v1/search", params={"q": "nosuchfield:x"}).json()["detail"] == \
        "unknown field 'nosuchfield'; see the field list (/fields)"
    # a bad query that is not about fields keeps its error shape, without suggestions
    assert "suggestions" not in c.get("/api/v1/search", params={"q": "a AND (b"}).json()


@pytest.mark.parametrize("q", [
    "tag:nothing", "family:x*", "finding:beacon", "hunt:1", "yara:EICAR*", "intel:*", "geo.country:ZZ",
    "asn:64496", "geo.range:private", "ndpi.app:TLS", "ndpi.category:Chat", "ndpi.risk:*", "capture:abc",
    "dns.opcode:99", "ip:192.0.2.1", "domain:no-such.example",
])
def test_fields_outside_the_frozen_schema_are_accepted(web, q):
    r = web[0].get("/api/v1/search", params={"q": q})
    assert r.status_code == 200, (q, r.text)


def test_an_uncatalogued_eve_field_still_matches_exact_values(web):
    c, _, http_id = web
    events = c.get(f"/api/v1/captures/{http_id}/events", params={"type": "http", "limit": 1}).json()["events"]
    status = events[0]["event"]["http"]["status"]  # http.status is neither catalogued nor declared
    body = c.get("/api/v1/search", params={"q": f"http.status:{status}"}).json()
    assert http_id in [g["capture_id"] for g in body["groups"]]


def test_the_cli_search_answers_a_lone_indicator_with_its_pivot(tmp_path):
    from .test_cli import run
    row = orjson.loads(run(tmp_path, "analyze", "--json", str(FILES), check=0).stdout)[0]
    sha1 = next(f["sha1"] for f in orjson.loads(run(tmp_path, "show", row["id"], "--json", check=0).stdout)["files"]
                if f["sha1"])
    found = orjson.loads(run(tmp_path, "search", sha1.upper(), "--json", check=0).stdout)
    assert found["pivot"] == {"value": sha1, "kind": "sha1", "defanged": False}
    assert [g["capture_id"] for g in found["groups"]] == [row["id"]]
    text = run(tmp_path, "search", "hxxp://nowhere[.]example/x", check=0).stdout.decode()
    assert text.startswith("http://nowhere.example/x (url, refanged): its pivot\n0 captures")
    assert run(tmp_path, "search", "dns.rrnam:x", check=2).stderr.decode().count("did you mean dns.rrname?") == 1
