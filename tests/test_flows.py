"""The flow page, API and pcap cut on real captures analysed by real Suricata."""

import io
import json
import sqlite3
from pathlib import Path

import dpkt
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from packettotal.ingest import capfile, flowpackets
from packettotal.service import PacketTotal

from .conftest import PCAPS, analyse, settings
from .test_cli import run
from .test_pages import assert_inert
from .web import analysed, client

SCRIPT = b"<script>window.__pwned=9</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with client(tmp_path_factory.mktemp("home")) as c:
        yield c


def service_of(site) -> PacketTotal:
    return site.app.state.instance.service


def first(site, cid: str, event_type: str, q: str = "") -> dict:
    events = service_of(site).capture_events(cid, event_type, q, limit=50).events
    assert events, (cid, event_type, q)
    return events[0]["event"]


def of_flow(pt: PacketTotal, cid: str, rec: dict) -> set[tuple]:
    """The http and fileinfo records of rec's connection, as comparable values (hashes included)."""
    q = f'community_id:"{rec["community_id"]}"'  # of the five-tuple: the same in the cut
    out = set()
    for t in ("http", "fileinfo"):
        for e in pt.capture_events(cid, t, q, limit=1000).events:
            r = e["event"]
            out.add((t, (r.get("http") or {}).get("url"), (r.get("http") or {}).get("status"),
                     *((r.get("fileinfo") or {}).get(k) for k in ("sha256", "md5", "sha1", "size", "filename"))))
    return out


@pytest.mark.parametrize("name, q", [("dpkt-http.pcap", ""), ("sv-http-4files.pcap", "fileinfo.stored:true")])
def test_cut_analysed_again_gives_the_same_http_and_files(site, tmp_path, name, q):
    row = analysed(site, PCAPS / name)
    rec = first(site, row["id"], "fileinfo", q) if q else first(site, row["id"], "http")
    r = site.get(f"/api/v1/captures/{row['id']}/flows/{rec['flow_id']}/pcap")
    assert r.status_code == 200 and r.headers["content-disposition"].endswith('.pcap"')
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(r.content)
    reader = dpkt.pcap.Reader(io.BytesIO(r.content))
    assert reader.datalink() == 1
    whole = sum(1 for _ in dpkt.pcap.Reader(open(PCAPS / name, "rb")))
    kept = sum(1 for _ in reader)
    assert 0 < kept < whole if name == "dpkt-http.pcap" else kept == whole  # 4files: one connection
    expected = of_flow(service_of(site), row["id"], rec)
    assert any(t == "fileinfo" and sha for t, _, _, sha, *_ in expected)
    fresh = PacketTotal(settings(tmp_path / "fresh"))
    try:
        again = analyse(fresh, cut)
        assert again["status"] == "done", again
        assert of_flow(fresh, again["id"], rec) == expected
    finally:
        fresh.close()


def test_tls_flow_lists_its_tls_and_flow_records(site):
    row = analysed(site, PCAPS / "sv-tls-cert-chain.pcap")
    rec = first(site, row["id"], "tls")
    body = site.get(f"/api/v1/captures/{row['id']}/flows/{rec['flow_id']}").json()
    types = [e["event_type"] for e in body["records"]]
    assert "tls" in types and "flow" in types
    assert body["app_proto"] == "tls" and body["dest_port"] == rec["dest_port"]
    assert body["to_server"]["packets"] > 0 and body["duration"] >= 0
    assert [e["timestamp"] for e in body["records"]] == sorted(e["timestamp"] for e in body["records"])
    page = site.get(f"/captures/{row['id']}/flows/{rec['flow_id']}")
    assert page.status_code == 200 and 'id="records"' in page.text and "flow-pcap" in page.text
    by_community = site.get(f"/api/v1/captures/{row['id']}/flows/"
                            + rec["community_id"].replace("+", "-").replace("/", "_")).json()
    assert {e["event_type"] for e in by_community["records"]} >= {"tls", "flow"}
    tab = site.get(f"/captures/{row['id']}/tab/tls").text
    assert f"/captures/{row['id']}/flows/{rec['flow_id']}" in tab


def test_exploit_kit_pcapng_payload_and_cut(site):
    row = analysed(site, PCAPS / "cs-ek_to_cryptowall4.pcapng")
    events = service_of(site).capture_events(row["id"], "http", limit=1000).events
    rec = min((e["event"] for e in events), key=lambda e: e["timestamp"])
    base = f"/api/v1/captures/{row['id']}/flows/{rec['flow_id']}"
    payload = site.get(base + "/payload").json()
    assert payload["reassembled"]
    request_line = f"{rec['http']['http_method']} {rec['http']['url']} HTTP/1."
    assert payload["directions"]["to server"]["text"].startswith(request_line)
    assert payload["directions"]["to client"]["text"].startswith("HTTP/1.")
    r = site.get(base + "/pcap")
    assert r.headers["content-disposition"].endswith('.pcapng"')
    reader = dpkt.pcapng.Reader(io.BytesIO(r.content))  # section and interface blocks copied
    assert reader.datalink() == 1 and sum(1 for _ in reader) > 2
    packets = site.get(base + "/packets", params={"limit": 5}).json()
    assert len(packets["packets"]) == 5 and packets["total"] > 5
    assert packets["packets"][0]["flags"] == "S" and packets["packets"][0]["direction"] == "to server"
    assert packets["packets"][1]["flags"] == "SA" and packets["packets"][1]["direction"] == "to client"
    more = site.get(base + "/packets", params={"limit": 5, "offset": 5}).json()
    assert more["packets"][0]["n"] == 6


def test_dns_flow(site):
    row = analysed(site, PCAPS / "sv-dns-udp-txt.pcap")
    rec = first(site, row["id"], "dns")
    base = f"/api/v1/captures/{row['id']}/flows/{rec['flow_id']}"
    body = site.get(base).json()
    assert "dns" in {e["event_type"] for e in body["records"]} and body["proto"] == "UDP"
    payload = site.get(base + "/payload").json()
    assert not payload["reassembled"] and payload["directions"]["to server"]["bytes"] > 0
    assert payload["directions"]["to server"]["hex"].startswith("00000000  ")
    packets = site.get(base + "/packets", params={"layers": True}).json()["packets"]
    assert packets and packets[0]["summary"].startswith("UDP ") and "###[ DNS ]###" in packets[0]["layers"]


def test_hostile_payload_is_shown_as_text(site, tmp_path):
    path = tmp_path / "hostile.pcap"
    c, s = ("10.0.0.1", 40000), ("10.0.0.2", 80)
    request = b"GET /" + SCRIPT + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    pkts = [Ether() / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="S", seq=100),
            Ether() / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="SA", seq=500, ack=101),
            Ether() / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="A", seq=101, ack=501),
            Ether() / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="PA", seq=101, ack=501) / request]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i / 10
    wrpcap(str(path), pkts)
    row = analysed(site, path)
    rec = first(site, row["id"], "flow")
    url = f"/captures/{row['id']}/flows/{rec['flow_id']}"
    for view in ("payload", "packets", "records"):
        html = site.get(url, params={"view": view}).text
        assert_inert(html, view)
        assert "<script>window.__pwned" not in html
    assert "&lt;script&gt;window.__pwned=9&lt;/script&gt;" in site.get(url, params={"view": "payload"}).text


def test_bad_and_unknown_flows(site):
    row = analysed(site, PCAPS / "sv-dns-udp-txt.pcap")
    r = site.get(f"/api/v1/captures/{row['id']}/flows/1%20OR%20x")
    assert r.status_code == 422 and "flow" in r.text
    r = site.get(f"/api/v1/captures/{row['id']}/flows/12345")
    assert r.status_code == 404 and "no flow 12345" in r.json()["detail"]
    r = site.get(f"/api/v1/captures/{row['id']}/flows/99999999999999999999")  # past int64
    assert r.status_code in (400, 404) and r.json()["detail"], r.text
    page = site.get(f"/captures/{row['id']}/flows/12345")
    assert page.status_code == 404 and "no flow 12345" in page.text


def test_search_events_link_their_flows(site):
    row = analysed(site, PCAPS / "sv-dns-udp-txt.pcap")
    rec = first(site, row["id"], "dns")
    html = site.get("/search", params={"q": f"flow_id:{rec['flow_id']}", "view": "events"}).text
    assert f'href="/captures/{row["id"]}/flows/{rec["flow_id"]}"' in html


def test_index_is_built_at_analysis(site):
    row = analysed(site, PCAPS / "dpkt-http.pcap")
    assert service_of(site)._blobs.has("flowindex", row["id"])


def test_flow_index_of_a_capture_from_before(tmp_path):
    """A capture analysed before there were flow indexes gets one on first use."""
    pt = PacketTotal(settings(tmp_path))
    try:
        row = analyse(pt, PCAPS / "dpkt-http.pcap")
        index = pt.flow_index(row["id"])
        Path(index).unlink()
        rec = pt.capture_events(row["id"], "http", limit=1).events[0]["event"]
        data = b"".join(pt.flow_pcap(pt.flow(row["id"], str(rec["flow_id"]))))
        assert Path(index).exists() and len(list(dpkt.pcap.Reader(io.BytesIO(data)))) > 0
    finally:
        pt.close()


def test_cli_flow(tmp_path):
    home = tmp_path / "home"
    cid = json.loads(run(home, "analyze", "--json", str(PCAPS / "dpkt-http.pcap"), check=0).stdout)[0]["id"]
    rec = json.loads(run(home, "show", cid, "--tab", "http", "--json", check=0).stdout)["events"][0]
    fid = str(rec["flow_id"])
    shown = json.loads(run(home, "flow", cid, fid, "--json", check=0).stdout)
    assert "http" in {e["event_type"] for e in shown["records"]}
    lines = run(home, "flow", cid, fid, "--packets", "--limit", "3", check=0).stdout.decode().splitlines()
    assert lines[0].endswith("1-3:") and len(lines) == 4 and " to server " in lines[1]
    text = run(home, "flow", cid, fid, "--payload", check=0).stdout.decode()
    assert text.splitlines()[1].startswith(f"GET {rec['http']['url']} HTTP/1.1")
    run(home, "flow", cid, fid, "--pcap", "-o", str(tmp_path / "f.pcap"), check=0)
    assert len(list(dpkt.pcap.Reader(open(tmp_path / "f.pcap", "rb")))) == shown["to_server"]["packets"] + \
        shown["to_client"]["packets"]
    bad = run(home, "flow", cid, "x'y", check=None)
    assert bad.returncode != 0 and "neither a flow_id" in bad.stderr.decode()


def test_ipv6_flow_cut_holds_its_packets(site):
    row = analysed(site, PCAPS / "sv-tls-ipv6-communityid.pcap")
    rec = first(site, row["id"], "flow", "proto:TCP")
    assert ":" in rec["src_ip"]
    data = site.get(f"/api/v1/captures/{row['id']}/flows/{rec['flow_id']}/pcap").content
    f = rec["flow"]
    assert len(list(dpkt.pcap.Reader(io.BytesIO(data)))) == f["pkts_toserver"] + f["pkts_toclient"]


def test_pcap_of_a_tabs_flows(site):
    row = analysed(site, PCAPS / "dpkt-http.pcap")
    base = f"/api/v1/captures/{row['id']}/flows.pcap"
    every = site.get(base, params={"type": "flow"})
    whole = sum(1 for _ in dpkt.pcap.Reader(open(PCAPS / "dpkt-http.pcap", "rb")))
    assert every.headers["x-flows"] == "3" and every.headers["x-flows-truncated"] == "false"
    assert sum(1 for _ in dpkt.pcap.Reader(io.BytesIO(every.content))) == whole
    http = service_of(site).capture_events(row["id"], "http", limit=100).events
    one = http[0]["event"]
    some = site.get(base, params={"type": "http", "q": f"dest_port:{one['dest_port']} AND src_port:{one['src_port']}"})
    assert some.headers["x-flows"] == "1"
    alone = site.get(f"/api/v1/captures/{row['id']}/flows/{one['flow_id']}/pcap").content
    assert some.content == alone  # the same packets, in file order, under the same header
    bad = site.get(base, params={"q": "dest_port:[1 TO"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_query"
    assert 'id="flows-pcap"' in site.get(f"/captures/{row['id']}/tab/http").text


@pytest.mark.parametrize("name", ["sv-damaged-smtp.pcap", "sv-truncated-http-mime.pcap", "cs-ratinfected.pcapng",
                                  "sv-sll2.pcap", "sv-nfs3.pcap"])
def test_index_holds_every_packet_validation_counts(tmp_path, name):
    """The index walks as far as validation does (damaged and big-endian files too), and every
    flow's packets cut from it are that flow's, in the capture's link type."""
    path = PCAPS / name
    index = tmp_path / "index.sqlite"
    flowpackets.build_index(path, index)
    counted = capfile.inspect(path).packets
    keys = [k for k, in sqlite3.connect(index).execute("SELECT key FROM flows")]
    per_flow = {k: list(flowpackets.read_packets(path, index, k)) for k in keys}
    assert sum(map(len, per_flow.values())) == counted  # all of them IP here
    for key, packets in per_flow.items():
        for p in packets:
            assert flowpackets.flow_key(*flowpackets.ends_of(flowpackets.ip_layer(p.linktype, p.data))) == key
    data = b"".join(flowpackets.cut(path, index, [(keys[0], None, None)]))
    reader = (dpkt.pcapng.Reader if name.endswith("pcapng") else dpkt.pcap.Reader)(io.BytesIO(data))
    assert sum(1 for _ in reader) == len(per_flow[keys[0]])
    assert reader.datalink() == next(iter(capfile.inspect(path).linktypes))
