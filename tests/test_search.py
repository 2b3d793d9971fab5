"""Search, pivots, similar captures and labels across real captures (real Suricata, real stores)."""

import base64
import csv
import io
import ipaddress
import re

import orjson
import pytest
import sqlalchemy as sa

from packettotal.errors import Forbidden, QueryError
from packettotal.jobs.local import LocalJobs
from packettotal.query import correlate
from packettotal.service import PacketTotal

from .conftest import PCAPS, settings
from .web import client

CAPTURES = ["dpkt-http.pcap", "sv-http-all-headers.pcap", "cs-ek_to_cryptowall4.pcapng",
            "cs-cryptowall4_c2.pcapng", "cs-ratinfected.pcapng", "sv-http-4files.pcap", "sv-http-ipv6.pcap",
            "sv-dns-udp-txt.pcap", "sv-dhcp-option60.pcap"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pt = PacketTotal(settings(tmp_path_factory.mktemp("home"), engines=2))
    ids = {name: pt.submit(PCAPS / name, name).capture["id"] for name in CAPTURES}
    jobs = LocalJobs(pt)
    rows = jobs.run(list(ids.values()))
    jobs.close()
    assert all(r["status"] == "done" for r in rows), [(r["name"], r["error"]) for r in rows]
    yield pt, ids
    pt.close()


def test_a_domain_in_two_captures_pivots_to_both(corpus):
    pt, ids = corpus
    found = pt.ioc("WWW.Ethereal.com.")  # any case, trailing dot: normalised like the stored value
    assert found["kind"] == "domain" and found["matched"] == ["www.ethereal.com"]
    assert {c["capture_id"] for c in found["captures"]} == {ids["dpkt-http.pcap"], ids["sv-http-all-headers.pcap"]}
    for c in found["captures"]:
        assert "http" in c["found_in"] and "http.hostname" in {f["field"] for f in c["fields"]}


def test_value_counts_follow_analyses(corpus):
    """How many captures hold a value is kept, not counted per query: re-analysing a capture
    must leave it unchanged, and a database from before the table (and the migrations) is counted
    once on opening."""
    pt, ids = corpus
    assert pt._db.value_counts(["www.ethereal.com"]) == {"www.ethereal.com": 2}
    pt.analyse(ids["dpkt-http.pcap"])
    assert pt._db.value_counts(["www.ethereal.com"]) == {"www.ethereal.com": 2}
    from packettotal.store.db import Database, value_counts
    with pt._db.engine.begin() as conn:
        before = dict(conn.execute(value_counts.select()).all())
        conn.execute(value_counts.delete())
        conn.execute(sa.text("DROP TABLE alembic_version"))
    again = Database(pt._db.url)
    with again.engine.connect() as conn:
        assert dict(conn.execute(value_counts.select()).all()) == before
    again.engine.dispose()


def test_a_carved_file_hash_pivots_back_to_its_capture(corpus):
    pt, ids = corpus
    cid = ids["sv-http-4files.pcap"]
    stored = [f for f in pt.capture_files(cid) if f["md5"]]
    assert stored
    for f in stored:
        for value in (f["sha256"], f["md5"].upper(), f["sha1"]):
            found = pt.ioc(value)
            assert [c["capture_id"] for c in found["captures"]] == [cid], value
            assert found["captures"][0]["found_in"] == {"fileinfo": 1}


def _all_flows(pt, ids) -> list[tuple[str, dict]]:
    return [(cid, r) for cid in ids.values() for r in pt.export_events(cid, "flow")]


@pytest.mark.parametrize("query,field,network", [
    ("event_type:flow AND src_ip:192.168.122.0/24", "src_ip", "192.168.122.0/24"),
    ("event_type:flow AND dest_ip:184.170.149.0/24", "dest_ip", "184.170.149.0/24"),
    ("event_type:flow AND ip:10.0.0.0/8", "ip", "10.0.0.0/8"),
    ("event_type:flow AND ip:::1/128", "ip", "::1/128"),
])
def test_cidr_finds_exactly_the_right_flows(corpus, query, field, network):
    pt, ids = corpus
    net = ipaddress.ip_network(network)

    def inside(rec: dict) -> bool:
        keys = ("src_ip", "dest_ip") if field == "ip" else (field,)
        return any(ipaddress.ip_address(rec[k]) in net for k in keys if k in rec)

    expected = {(cid, r["flow_id"], r["src_port"] if "src_port" in r else None) for cid, r in _all_flows(pt, ids)
                if inside(r)}
    page = pt.search_events(query, limit=10_000)
    got = {(e["capture"], e["event"]["flow_id"], e["event"].get("src_port")) for e in page.events}
    assert expected and got == expected and page.total == len(expected)


def test_grouped_results_sort_and_page(corpus):
    pt, ids = corpus
    everything = pt.search("event_type:http", limit=100)
    http_captures = {cid for cid in ids.values() if (pt.capture(cid)["summary"]["counts"].get("http"))}
    assert {g["capture_id"] for g in everything.groups} == http_captures
    assert everything.total_hits == sum(g["hits"] for g in everything.groups)
    hits = [g["hits"] for g in everything.groups]
    assert hits == sorted(hits, reverse=True)
    newest = pt.search("event_type:http", sort="newest", limit=100).groups
    assert [g["submitted_at"] for g in newest] == sorted((g["submitted_at"] for g in newest), reverse=True)
    pages = [pt.search("event_type:http", limit=2, offset=o).groups for o in range(0, len(hits), 2)]
    assert [g["capture_id"] for p in pages for g in p] == [g["capture_id"] for g in everything.groups]
    with pytest.raises(QueryError):
        pt.search("event_type:http", sort="bogus")


def test_labels_are_searchable_and_shown_with_pivots(corpus):
    pt, ids = corpus
    ek = ids["cs-ek_to_cryptowall4.pcapng"]
    family = pt.add_label(ek, "family", "CryptoWall", "ransomware, from the EK run", source="test")
    pt.add_label(ek, "campaign", "Angler EK 2015")
    pt.add_label(ek, "family", "cryptowall")  # the same label again: one label (case-insensitive)
    assert [(x["kind"], x["value"]) for x in pt.labels(ek)] == [("campaign", "Angler EK 2015"),
                                                                ("family", "CryptoWall")]

    def found(q):
        return {g["capture_id"] for g in pt.search(q, limit=100).groups}

    assert found("tag:cryptowall") == found("family:CRYPTO*") == found('campaign:"angler ek 2015"') == {ek}
    assert found("campaign:cryptowall") == set() and found("actor:*") == set()
    assert found("tag:cryptowall AND domain:homealldaylong.com") == {ek}
    assert ek not in found("NOT tag:cryptowall AND event_type:flow")
    pivot = pt.ioc("homealldaylong.com")
    shown = {c["capture_id"]: [lb["value"] for lb in c["labels"]] for c in pivot["captures"]}
    assert shown[ek] == ["Angler EK 2015", "CryptoWall"] and shown[ids["cs-cryptowall4_c2.pcapng"]] == []
    with pytest.raises(QueryError):
        pt.search("tag:[a TO b]")
    pt.remove_label(ek, family["id"])
    assert found("family:cryptowall") == set()
    pt.add_label(ek, "family", "CryptoWall")


def test_labels_can_be_made_read_only(corpus, tmp_path):
    pt, ids = corpus
    ro = PacketTotal(settings(pt.settings.home, labelling="nobody"))
    try:
        with pytest.raises(Forbidden):
            ro.add_label(ids["dpkt-http.pcap"], "tag", "x")
    finally:
        ro._db.engine.dispose()
    for bad in ("", "x" * 101, "a\x00b"):
        with pytest.raises(QueryError):
            pt.add_label(ids["dpkt-http.pcap"], "tag", bad)
    with pytest.raises(QueryError):
        pt.add_label(ids["dpkt-http.pcap"], "colour", "red")


def test_similar_captures_find_the_cryptowall_pair(corpus):
    """The two CryptoWall 4 captures (the exploit-kit run and the C2 traffic) share the C2 host,
    its address, the victim and the downloaded files: each ranks the other first."""
    pt, ids = corpus
    ek, c2 = ids["cs-ek_to_cryptowall4.pcapng"], ids["cs-cryptowall4_c2.pcapng"]
    for a, b in ((ek, c2), (c2, ek)):
        found = pt.similar(a)
        assert found[0]["capture_id"] == b and found[0]["score"] > 0.3
        assert all(s["score"] < found[0]["score"] / 5 for s in found[1:])
        reasons = found[0]["shared"]
        assert all(x["captures"] == 2 and x["weight"] > 0 for x in reasons)  # the rarest values
        assert "homealldaylong.com" in {x["value"] for x in reasons}  # the C2 domain is a reason
        assert reasons[0]["kind"] in ("sha256", "sha1", "md5")  # the shared downloads come first
    rat = pt.similar(ids["cs-ratinfected.pcapng"])
    assert all(s["score"] < 0.05 for s in rat)  # a different family: nothing of weight in common


def test_similar_ranking_weighs_rarity():
    total = 1000
    own = {"rare.example": "domain", "8.8.8.8": "ip"}
    df = {"rare.example": 2, "8.8.8.8": 900}
    holders = [("a", "rare.example"), ("b", "8.8.8.8"), ("c", "8.8.8.8")]
    ranked = correlate.rank(own, df, total, holders)
    assert [s.capture_id for s in ranked] == ["a", "b", "c"]
    assert ranked[0].score > 10 * ranked[1].score
    assert correlate.probes({"x": "ip", "y": "ip", "z": "ip"}, {"x": 1, "y": 5, "z": 900}, total) == ["y"]


def test_co_occurring_and_bulk(corpus):
    pt, ids = corpus
    pivot = pt.ioc("homealldaylong.com")
    co = {r["value"]: r for r in pivot["co_occurring"]}
    assert co["184.170.149.44"]["captures"] == 2 and co["184.170.149.44"]["df"] == 2
    assert "homealldaylong.com" not in co
    sha = next(f["sha256"] for f in pt.capture_files(ids["sv-http-4files.pcap"]) if f["md5"])
    results = pt.bulk_ioc(["www.ethereal.com", sha, "no-such-thing.invalid", "www.ethereal.com", ""])
    by = {r["value"]: r for r in results}
    assert list(by) == ["www.ethereal.com", sha, "no-such-thing.invalid"]
    assert by["www.ethereal.com"]["total_captures"] == 2 and by[sha]["total_captures"] == 1
    assert by["no-such-thing.invalid"]["total_captures"] == 0
    assert len(pt.bulk_ioc([f"10.0.{i // 250}.{i % 250}" for i in range(1500)])) == correlate.MAX_BULK


def test_api_and_pages_for_search_pivots_similar_labels(tmp_path):
    with client(tmp_path / "home") as c:
        from .web import analysed
        a = analysed(c, PCAPS / "dpkt-http.pcap")
        b = analysed(c, PCAPS / "sv-http-all-headers.pcap")
        r = c.post(f"/api/v1/captures/{a['id']}/labels", json={"kind": "family", "value": "Ethereal", "note": "n"})
        assert r.status_code == 201 and r.json()["source"] == "api"
        label_id = r.json()["id"]
        assert c.post(f"/api/v1/captures/{a['id']}/labels", json={"kind": "colour", "value": "x"}).status_code == 422
        assert c.post(f"/api/v1/captures/{a['id']}/labels", json={"value": "x"},
                      headers={"origin": "http://evil.example"}).status_code == 403

        s = c.get("/api/v1/search", params={"q": "tag:ethereal"}).json()
        assert [g["capture_id"] for g in s["groups"]] == [a["id"]]
        assert s["groups"][0]["labels"][0]["value"] == "Ethereal"
        first = c.get("/api/v1/search", params={"q": "event_type:http", "limit": 1}).json()
        second = c.get("/api/v1/search",
                       params={"q": "event_type:http", "limit": 1, "cursor": first["next_cursor"]}).json()
        assert {first["groups"][0]["capture_id"], second["groups"][0]["capture_id"]} == {a["id"], b["id"]}
        assert second["next_cursor"] is None
        ev = c.get("/api/v1/search/events", params={"q": "http.hostname:www.ethereal.com"}).json()
        assert ev["total"] >= 2 and {e["capture_id"] for e in ev["events"]} == {a["id"], b["id"]}
        exported = c.get("/api/v1/search/export", params={"q": "http.hostname:www.ethereal.com", "format": "csv"})
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) == ev["total"] and rows[0]["capture_id"] in (a["id"], b["id"])
        nd = c.get("/api/v1/search/export", params={"q": "http.hostname:www.ethereal.com"}).content.splitlines()
        assert len(nd) == ev["total"] and orjson.loads(nd[0])["http"]["hostname"] == "www.ethereal.com"
        assert c.get("/api/v1/search/export", params={"q": "a AND (b"}).status_code == 400

        pivot = c.get("/api/v1/ioc/www.ethereal.com").json()
        assert pivot["total_captures"] == 2
        bulk = c.post("/api/v1/ioc/bulk", json={"values": ["www.ethereal.com", "1.2.3.4"]}).json()
        assert [x["total_captures"] for x in bulk] == [2, 0]
        sim = c.get(f"/api/v1/captures/{a['id']}/similar").json()
        assert sim[0]["capture_id"] == b["id"] and any(x["value"] == "www.ethereal.com" for x in sim[0]["shared"])

        html = c.get("/ioc/www.ethereal.com").text
        assert html.count('href="/captures/') >= 2 and "family: Ethereal" in html
        assert "family: Ethereal" in c.get("/search", params={"q": "tag:ethereal"}).text
        events_view = c.get("/search", params={"q": "http.hostname:www.ethereal.com", "view": "events"}).text
        assert "matching events" in events_view
        page = c.get(f"/captures/{a['id']}/similar").text
        assert b["id"] in page and "www.ethereal.com" in page
        bulk_page = c.post("/bulk", files={"file": ("iocs.txt", b"www.ethereal.com\n1.2.3.4")}, data={"values": ""})
        assert bulk_page.status_code == 200 and "1 of 2 indicators found" in bulk_page.text
        form = c.post(f"/captures/{a['id']}/labels", data={"kind": "tag", "value": "<b>web</b>", "note": ""})
        assert form.status_code == 303
        console = c.get(f"/captures/{a['id']}").text
        assert "tag: &lt;b&gt;web&lt;/b&gt;" in console
        assert c.delete(f"/api/v1/captures/{a['id']}/labels/{label_id}").status_code == 204
        assert c.delete(f"/api/v1/captures/{a['id']}/labels/{label_id}").status_code == 404
        assert "Ethereal" not in c.get(f"/captures/{a['id']}").text


def test_hostile_inputs_to_search_and_labels(tmp_path):
    with client(tmp_path / "home") as c:
        from .web import analysed
        a = analysed(c, PCAPS / "dpkt-http.pcap")
        deep = base64.urlsafe_b64encode(b"o:99999999999").decode().rstrip("=")
        r = c.get("/api/v1/search/events", params={"q": "event_type:http", "cursor": deep})
        assert r.status_code == 400 and "deeper" in r.json()["detail"]  # not a crash of the server
        r = c.get("/api/v1/search", params={"q": "event_type:http", "cursor": deep})
        assert r.status_code == 200 and r.json()["groups"] == []  # groups are paged in memory
        quoted = c.post(f"/api/v1/captures/{a['id']}/labels", json={"value": 'say "hi" \\ there'}).json()
        html = c.get(f"/captures/{a['id']}").text
        link = re.search(r'<a href="(/search\?q=[^"]+)">tag: say', html).group(1)
        found = c.get(link.replace("&amp;", "&")).text
        assert f'href="/captures/{a["id"]}"' in found and "Bad query" not in found
        c.post(f"/api/v1/captures/{a['id']}/labels", json={"value": "a*b-literal"})
        groups = c.get("/api/v1/search", params={"q": r"tag:a\*b*"}).json()["groups"]
        assert [g["capture_id"] for g in groups] == [a["id"]]
        assert c.get("/api/v1/search", params={"q": r"tag:ax\*b*"}).json()["groups"] == []
        assert c.get("/api/v1/search", params={"q": r"tag:a\*c*"}).json()["groups"] == []
        assert c.delete(f"/api/v1/captures/{a['id']}/labels/{2 ** 40}").status_code == 422
        assert c.post(f"/captures/{a['id']}/labels/99999999999999999999/delete").status_code == 422
        assert c.post("/api/v1/ioc/bulk", json={"values": ["x" * 3000]}).status_code == 422
        null_origin = c.post(f"/api/v1/captures/{a['id']}/labels", json={"value": "x"}, headers={"origin": "null"})
        assert null_origin.status_code == 403
        same = c.post(f"/api/v1/captures/{a['id']}/labels", json={"value": "x"},
                      headers={"origin": "null", "sec-fetch-site": "same-origin"})
        assert same.status_code == 201 and quoted["value"] == 'say "hi" \\ there'
