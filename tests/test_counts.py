"""Top values of a field ("counts by field") on real captures analysed by real Suricata: the
counts agree with the capture's own EVE records, and the filter a value gives back returns
exactly that many rows."""

import csv
import io
from collections import Counter
from pathlib import Path

import orjson
import pytest

from packettotal import demo
from packettotal.query import lucene, refine
from packettotal.query.nodes import Phrase
from packettotal.query.topvalues import canonical_ip, keys
from packettotal.query import fields as catalog
from packettotal.store.events.base import catalogue_values
from packettotal.store.events.tantivy import TantivyEventStore

from .conftest import PCAPS
from .test_pages import HOSTILE, assert_inert
from .web import analysed, client

FLOOD = PCAPS / "sv-dhcp-flood.pcap"  # MANIFEST.tsv: "DHCP request flood (~3 MB, many transactions)"
ESPN = PCAPS / "cs-http_espn.pcapng"  # DNS, HTTP, flows


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with client(tmp_path_factory.mktemp("home")) as c:
        yield c


@pytest.fixture(scope="module")
def caps(site, tmp_path_factory):
    hostile = demo.write(tmp_path_factory.mktemp("h") / "hostile.pcap", HOSTILE)
    out = {name: analysed(site, path) for name, path in (("flood", FLOOD), ("espn", ESPN), ("hostile", hostile))}
    assert all(c["status"] == "done" for c in out.values()), out
    return out


def records(site, cid: str) -> list[dict]:
    r = site.get(f"/api/v1/captures/{cid}/export", params={"format": "eve"})
    assert r.status_code == 200
    return [orjson.loads(line) for line in r.content.splitlines() if line.strip()]


def oracle(recs: list[dict], field: str, event_type: str | None) -> Counter:
    """Events per value, read from the EVE records themselves (a value once per event)."""
    out: Counter = Counter()
    for rec in recs:
        if event_type and rec.get("event_type") != event_type:
            continue
        cur: object = rec
        for part in field.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is None:
            continue
        kind = catalog.BY_NAME[field].kind
        out.update({str(cur).lower() if kind == "keyword" else cur})
    return out


def counts(site, cid: str, tab: str, **params) -> list[dict]:
    r = site.get(f"/api/v1/captures/{cid}/tabs/{tab}/counts", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def rows(site, cid: str, tab: str, q: str) -> int:
    """How many rows the tab lists with this filter (its CSV: what the tab lists, all of it)."""
    r = site.get(f"/api/v1/captures/{cid}/events", params={"type": tab, "q": q, "limit": 1})
    assert r.status_code == 200, r.text
    return r.json()["total"]


def key(value, field: str):
    return str(value).lower() if catalog.BY_NAME[field].kind == "keyword" else value


def test_dhcp_flood_reads_at_a_glance(site, caps):
    cap = caps["flood"]
    dhcp = cap["summary"]["counts"]["dhcp"]
    recs = records(site, cap["id"])
    panels = counts(site, cap["id"], "dhcp")
    assert [p["field"] for p in panels] == ["dhcp.client_mac", "src_ip"]  # the DHCP tab's defaults
    for p in panels:
        expected = oracle(recs, p["field"], "dhcp")
        assert p["matched"] == p["counted"] == dhcp and p["exact"] and not p["capped"]
        assert {key(v["value"], p["field"]): v["count"] for v in p["values"]} == dict(expected.most_common(10))
        assert p["others"] == sum(expected.values()) - sum(v["count"] for v in p["values"])
        assert p["missing"] == dhcp - sum(expected.values())
        for v in p["values"]:
            assert v["share"] == pytest.approx(v["count"] / dhcp)
            assert rows(site, cap["id"], "dhcp", v["filter"]) == v["count"], v
    # the flood is one client asking again and again: one value, all of the tab
    mac = panels[0]["values"]
    assert len(mac) == 1 and mac[0]["count"] == dhcp and mac[0]["share"] == 1.0


def test_dns_tab_defaults_and_every_value_filters_exactly(site, caps):
    cap = caps["espn"]
    recs = records(site, cap["id"])
    panels = counts(site, cap["id"], "dns", limit=100)
    assert [p["field"] for p in panels] == ["dns.rrname", "dns.rcode"]
    for p in panels:
        expected = oracle(recs, p["field"], "dns")
        assert p["exact"] and p["matched"] == cap["summary"]["counts"]["dns"]
        assert {key(v["value"], p["field"]): v["count"] for v in p["values"]} == dict(expected)
        assert [v["count"] for v in p["values"]] == sorted((v["count"] for v in p["values"]), reverse=True)
        for v in p["values"]:
            assert rows(site, cap["id"], "dns", v["filter"]) == v["count"], v
    assert len(panels[0]["values"]) > 5  # many names: a real top list


def test_columns_and_scans_agree_on_flows_and_http(site, caps):
    """dest_port and app_proto are columns (tantivy's terms aggregation), http.status is read
    from the stored records: both count what the index matches."""
    cap = caps["espn"]
    recs = records(site, cap["id"])
    for tab, fields in (("flow", ["dest_port", "app_proto"]), ("http", ["http.hostname", "http.status",
                                                                     "http.http_user_agent"])):
        panels = counts(site, cap["id"], tab, limit=100)
        assert [p["field"] for p in panels] == fields
        for p in panels:
            expected = oracle(recs, p["field"], tab)
            assert {key(v["value"], p["field"]): v["count"] for v in p["values"]} == dict(expected), p["field"]
            for v in p["values"][:5]:
                assert rows(site, cap["id"], tab, v["filter"]) == v["count"], v


def test_a_filter_is_kept_and_narrowed(site, caps):
    cap = caps["espn"]
    q = "dns.rrtype:A OR dns.rrtype:CNAME"  # an OR: the added clause needs parentheses
    whole = rows(site, cap["id"], "dns", q)
    (p,) = counts(site, cap["id"], "dns", field="dns.rrname", q=q, limit=100)
    assert p["matched"] == whole and sum(v["count"] for v in p["values"]) + p["missing"] == whole
    for v in p["values"]:
        assert v["filter"].startswith(f"({q}) AND dns.rrname:")
        assert rows(site, cap["id"], "dns", v["filter"]) == v["count"]
    # a wildcard filter runs in a query process under the time budget, and counts the same
    wild = counts(site, cap["id"], "dns", field="dns.rrname", q="dns.rrname:*espn*", limit=100)[0]
    expected = {k: n for k, n in oracle(records(site, cap["id"]), "dns.rrname", "dns").items() if "espn" in k}
    assert {v["value"].lower(): v["count"] for v in wild["values"]} == expected


def test_hostile_values_are_quoted_and_escaped(site, caps):
    cap = caps["hostile"]
    for tab, field, value in (("dns", "dns.rrname", HOSTILE["dns"]), ("http", "http.http_user_agent",
                                                                       HOSTILE["user_agent"]),
                              ("tls", "tls.sni", HOSTILE["sni"])):
        (p,) = counts(site, cap["id"], tab, field=field)
        (v,) = [v for v in p["values"] if v["value"] == value]
        assert v["filter"] == f"{field}:{refine.phrase(value)}"
        assert rows(site, cap["id"], tab, v["filter"]) == v["count"] > 0
        page = site.get(f"/captures/{cap['id']}/tab/{tab}", params={"top": field})
        assert page.status_code == 200
        assert_inert(page.text, f"{tab} top values")
        assert 'id="top-values"' in page.text


@pytest.mark.parametrize("value", ['say "hi"', "back\\slash\\", 'both \\" and )', "a:b (c) *d?", "new\nline",
                                   "OR", "AND NOT", "[1 TO 2]", "{x}", "^2~", "", "é ünïcode ✓"])
def test_phrase_round_trips(value):
    node = lucene.parse(refine.clause("dns.rrname", value))
    assert node == Phrase("dns.rrname", value)
    assert refine.narrowed("a OR b", "dns.rrname", value) == f"(a OR b) AND dns.rrname:{refine.phrase(value)}"
    assert refine.narrowed("a b", "dns.rrname", value) == f"a b AND dns.rrname:{refine.phrase(value)}"
    assert refine.narrowed("a AND (", "dns.rrname", value) is None  # not a query: no link


def test_keys_agree_with_the_index_fields(site, caps):
    """The scan keys each record's values exactly as the index is fed them (store/events/base.py)."""
    seen = 0
    for cap in caps.values():
        for rec in records(site, cap["id"]):
            indexed: dict[str, set] = {}
            for f, v in catalogue_values(rec):
                if f.kind == "ip":
                    try:  # the index takes addresses in any form, and drops what is not one
                        v = canonical_ip(v)
                    except ValueError:
                        continue
                if f.kind != "date":
                    indexed.setdefault(f.name, set()).add(v.lower() if f.kind == "keyword" else v)
            for f in catalog.CATALOG:
                if f.kind != "date":
                    assert set(keys(rec, f)) == indexed.get(f.name, set()), (f.name, rec)
                    seen += bool(indexed.get(f.name))
    assert seen > 20_000


def test_a_capped_scan_says_so(site, caps, tmp_path: Path):
    """Past the scan cap the answer is of the first events only, and says how many of how many."""
    cap = caps["flood"]
    store = TantivyEventStore(tmp_path / "index")
    try:
        store.index_capture(cap["id"], records(site, cap["id"]))
        store.commit()
        (mac, port) = store.top_values(None, ("dhcp.client_mac", "dest_port"), cap["id"], "dhcp", scan=1_000)
    finally:
        store.close()
    dhcp = cap["summary"]["counts"]["dhcp"]
    assert mac.capped and mac.counted == 1_000 and mac.matched == dhcp and mac.buckets[0].count == 1_000
    assert not port.capped and port.counted == dhcp and port.buckets[0].count == dhcp  # a column: all


def test_search_counts_across_captures(site, caps):
    everything = [r for c in caps.values() for r in records(site, c["id"])]
    r = site.get("/api/v1/search/counts", params={"q": "event_type:dns", "field": ["dns.rrname", "src_ip"],
                                                  "limit": 100})
    assert r.status_code == 200, r.text
    names, sources = r.json()
    assert names["exact"] and names["matched"] == sum(1 for e in everything if e.get("event_type") == "dns")
    assert {v["value"].lower(): v["count"] for v in names["values"]} == dict(oracle(everything, "dns.rrname", "dns"))
    for v in names["values"][:5] + sources["values"][:3]:
        assert v["filter"].startswith("event_type:dns AND ")
        total = site.get("/api/v1/search/events", params={"q": v["filter"], "limit": 1}).json()["total"]
        assert total == v["count"], v
    defaults = site.get("/api/v1/search/counts", params={"q": "dest_port:53"}).json()
    assert [p["field"] for p in defaults] == ["event_type", "dest_ip", "dest_port"]


@pytest.mark.parametrize("params, status, says", [
    ({"field": "timestamp"}, 400, "a time differs"),
    ({"field": "no.such.field"}, 400, "not in the field catalogue"),
    ({"field": "dns.rrname", "q": "dns.rrname:("}, 400, ""),
    ({"field": "dns.rrname", "limit": 0}, 422, ""),
])
def test_bad_requests_say_why(site, caps, params, status, says):
    r = site.get(f"/api/v1/captures/{caps['espn']['id']}/tabs/dns/counts", params=params)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]


def test_tab_and_search_pages_show_the_panel(site, caps):
    cap = caps["flood"]
    page = site.get(f"/captures/{cap['id']}/tab/dhcp")
    assert page.status_code == 200
    panel = page.text[page.text.index('id="top-values"'):]
    assert "64:65:3a:61:64:3a" in panel and "100.0%" in panel
    assert f"{cap['summary']['counts']['dhcp']:,}" in panel
    assert '<option value="dhcp.client_mac"' in panel and '<option value="dns.rrname"' not in panel
    chosen = site.get(f"/captures/{cap['id']}/tab/dhcp", params={"top": "dest_port"}).text
    assert 'data-field="dest_port"' in chosen and 'data-field="src_ip"' not in chosen
    search = site.get("/search", params={"q": "event_type:dhcp", "top": "dhcp.client_mac"})
    assert search.status_code == 200 and 'data-field="dhcp.client_mac"' in search.text
    assert "event_type%3Adhcp+AND+dhcp.client_mac%3A%2264%3A65%3A3a%3A61%3A64%3A3a%22" in search.text


def test_nothing_matched_counts_nothing(site, caps):
    r = site.get("/api/v1/search/counts", params={"q": 'dns.rrname:"no.such.name.example"',
                                                  "field": ["dest_port", "dns.rrname"]})
    assert r.status_code == 200, r.text
    for p in r.json():
        assert p["matched"] == p["counted"] == p["missing"] == p["others"] == 0 and p["values"] == [], p


def tab_csv_rows(site, cid: str, tab: str, q: str) -> int:
    """How many rows a console tab lists with this filter: its CSV export, all of it."""
    r = site.get(f"/api/v1/captures/{cid}/export", params={"format": "csv", "tab": tab, "q": q})
    assert r.status_code == 200, r.text
    return len(list(csv.reader(io.StringIO(r.text)))) - 1  # less the header


def test_strange_activity_counts_what_the_tab_lists(site, caps):
    """Strange activity lists anomalies and protocol-event alerts (no one event type): its counts
    are of those, and each value's filter gives back that many of its rows."""
    cap = analysed(site, PCAPS / "cs-mail_sender_attachment.pcapng")  # decoder events
    listed = tab_csv_rows(site, cap["id"], "anomaly", "")
    panels = counts(site, cap["id"], "anomaly")
    assert [p["field"] for p in panels] == ["anomaly.event", "alert.signature"]
    for p in panels:
        assert p["matched"] == listed > 0 and p["exact"]
        assert sum(v["count"] for v in p["values"]) + p["others"] + p["missing"] == listed
        for v in p["values"]:
            assert tab_csv_rows(site, cap["id"], "anomaly", v["filter"]) == v["count"], v
    assert any(p["values"] for p in panels)


def test_the_panel_says_when_counts_are_partial():
    from packettotal.query.topvalues import Bucket, TopValues
    from packettotal.web import counts as shapes
    from packettotal.web.pages import _env

    macro = _env.get_template("counts.html").module.top_values  # type: ignore[attr-defined]
    top = TopValues("dns.rrname", 1_234_567, 10_000, 0, 0, [Bucket('<b>"x"</b>', 10_000)], capped=True)
    html = str(macro({"tops": [shapes.shaped(top, "")], "error": None}, ("dns.rrname",), "",
                     lambda **kw: "?q=" + kw["q"], {}))
    assert "partial: the first 10,000 of 1,234,567 events" in html
    assert "&lt;b&gt;&#34;x&#34;&lt;/b&gt;" in html and "<b>" not in html
