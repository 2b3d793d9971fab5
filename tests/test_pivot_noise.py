"""Pivots without noise, for real: co-occurrence and similar-capture scores leave out flow ids,
community ids, multicast, broadcast, link-local and unspecified addresses (and subnet broadcasts a
capture's DHCP tells), while pivots on them still list their captures; a pivot page's "Where"
links open each tab filtered to exactly the records holding the value."""

import re

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from packettotal.ingest.broadcasts import Broadcasts, broadcast
from packettotal.query import noise, where
from packettotal.query.lucene import parse
from packettotal.query.nodes import Phrase
from packettotal.service import PacketTotal

from .conftest import PCAPS, analyse, settings
from .test_file_context import Table, disguised_pkts
from .web import analysed, client

NOISY = ("239.255.255.250", "224.0.0.252", "ff02::1:2", "ff02::1:3", "255.255.255.255")  # SSDP, LLMNR, DHCPv6


@pytest.fixture(scope="module")
def pt(tmp_path_factory):
    pt = PacketTotal(settings(tmp_path_factory.mktemp("home")))
    yield pt
    pt.close()


@pytest.fixture(scope="module")
def lan(pt):
    """Two dev captures of Windows LANs: SSDP, LLMNR (v4 and v6), DHCPv6 multicast in both."""
    return analyse(pt, PCAPS / "sv-ftp-data-190k.pcap"), analyse(pt, PCAPS / "sv-smb2-psexec.pcap")


def noisy(values) -> list:
    return [v for v in values if noise.is_noise(v["kind"], v["value"])]


def test_co_occurrence_leaves_out_multicast_and_flow_ids(pt, lan):
    ftp, psexec = lan
    held = pt.top_indicators(ftp["id"], per_kind=10_000)
    assert set(NOISY) <= {v["value"] for v in held["ip"]} and held["community_id"]
    for value in ("224.0.0.252", "ff02::1:3"):  # a pivot on a multicast address still finds both
        assert {c["capture_id"] for c in pt.ioc(value)["captures"]} == {ftp["id"], psexec["id"]}
    # ff02::1:2 and ff02::1:3 are in both captures: they would top the list seen with 224.0.0.252
    co = pt.ioc("224.0.0.252")["co_occurring"]
    assert co and noisy(co) == [] and not {r["value"] for r in co} & set(NOISY)
    assert all(r["kind"] != "community_id" for r in co)
    value = next(v["value"] for v in held["ip"] if not noise.noise_ip(v["value"]))
    assert noisy(pt.ioc(value)["co_occurring"]) == []


def test_similar_scores_leave_out_multicast_and_flow_ids(pt, lan):
    ftp, psexec = lan
    for a, b in ((ftp, psexec), (psexec, ftp)):
        found = {s["capture_id"]: s for s in pt.similar(a["id"])}
        for s in found.values():
            assert noisy(s["shared"]) == [] and not {r["value"] for r in s["shared"]} & set(NOISY)
        if b["id"] in found:  # they share more than noise (nDPI's names of what runs there, when installed)
            assert found[b["id"]]["score"] > 0


def lan_pkts(tag: bytes) -> list:
    """Only noise: SSDP-like datagrams to 239.255.255.250 and mDNS to 224.0.0.251 from a link-local
    address, a broadcast from 0.0.0.0, IPv6 link-local to ff02::fb; the same five-tuples (so the
    same community ids) in both captures, other payloads (another capture)."""
    eth = Ether(src="02:00:00:00:00:09", dst="01:00:5e:00:00:fb")
    pkts = [eth / IP(src="169.254.7.7", dst="239.255.255.250") / UDP(sport=40001, dport=1900) / (tag * 40),
            eth / IP(src="169.254.7.7", dst="224.0.0.251") / UDP(sport=40002, dport=9875) / (tag * 40),
            eth / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=40003, dport=9876) / (tag * 40),
            eth / IPv6(src="fe80::7", dst="ff02::fb") / UDP(sport=40004, dport=9877) / (tag * 40)]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i
    return pkts


def test_two_captures_sharing_only_noise_score_zero(tmp_path):
    """nDPI off: its app names ("SSDP", "Unknown") are values like any other, weighed by rarity."""
    pt = PacketTotal(settings(tmp_path / "home", ndpi="off"))
    try:
        ids = []
        for tag in (b"A", b"B"):
            path = tmp_path / f"{tag.decode()}.pcap"
            wrpcap(str(path), lan_pkts(tag))
            row = analyse(pt, path)
            assert row["status"] == "done"
            ids.append(row["id"])
        a, b = ids
        shared = [v for v in pt.top_indicators(a, 1000)["community_id"] if len(pt.ioc(v["value"])["captures"]) == 2]
        assert len(shared) == 4  # the same flows: the same community ids in both
        for value in ("239.255.255.250", "224.0.0.251", "255.255.255.255", "169.254.7.7", "fe80::7", "ff02::fb",
                      "0.0.0.0"):
            assert {c["capture_id"] for c in pt.ioc(value)["captures"]} == {a, b}, value
        assert [s for s in pt.similar(a) if s["capture_id"] == b] == []  # score 0: not similar at all
        assert pt.ioc("169.254.7.7")["co_occurring"] == []
    finally:
        pt.close()


def test_noise_and_subnet_broadcasts_are_pure():
    assert [noise.noise_ip(v) for v in ("224.0.0.251", "239.255.255.250", "ff02::fb", "255.255.255.255",
                                        "169.254.1.1", "fe80::1", "0.0.0.0", "::")] == [True] * 8
    assert [noise.noise_ip(v) for v in ("10.0.0.1", "8.8.8.8", "2001:db8::1", "223.255.255.255", "fec0::1",
                                        "192.168.1.255", "not an ip")] == [False] * 7
    assert noise.is_noise("community_id", "1:abc=") and noise.is_noise("ip", "192.168.1.255",
                                                                      frozenset({"192.168.1.255"}))
    assert not noise.is_noise("domain", "ff02.example.com")
    assert broadcast("192.168.1.10", "255.255.255.0") == "192.168.1.255"
    assert broadcast("10.1.2.3", "255.255.0.0") == "10.1.255.255"
    assert [broadcast("0.0.0.0", "255.255.255.0"), broadcast("10.0.0.1", "nope"), broadcast(None, "255.0.0.0"),
            broadcast("10.0.0.1", "255.255.255.254")] == [None] * 4
    b = Broadcasts()
    b.add({"event_type": "dhcp", "dhcp": {"assigned_ip": "192.168.1.10", "subnet_mask": "255.255.255.0"}})
    b.add({"event_type": "dhcp", "dhcp": {"assigned_ip": "0.0.0.0", "client_ip": "0.0.0.0"}})
    assert b.result() == ["192.168.1.255"]


def test_a_dhcp_capture_knows_its_subnet_broadcast(pt):
    row = analyse(pt, PCAPS / "cs-dhcp_nolease_initialization.pcapng")
    assert row["summary"]["broadcasts"] == ["192.168.1.255"]  # its ACK: 192.168.1.10/255.255.255.0


def test_where_filters_are_quoted_phrases_the_parser_reads_back():
    for value in ('a "q" \\b', "x:y AND z", "*?", "(1)"):
        node = parse(where.term("http.http_user_agent", value))
        assert node == Phrase("http.http_user_agent", value)
    assert where.tab_filter([{"field": "src_ip", "kind": "ip", "value": "10.0.0.1"}], "dns") == \
        'src_ip:"10.0.0.1" OR dest_ip:"10.0.0.1"'
    assert where.tab_filter([{"field": "http.url", "kind": "url", "value": "http://h.example/p?q=1"},
                             {"field": "dns.rrname", "kind": "domain", "value": "h.example"}], "http") == \
        'http.url:"http://h.example/p?q=1" OR (http.hostname:"h.example" AND http.url:"/p?q=1")'


def holds(value, rec) -> bool:
    """Whether any value of the record is `value` (case-insensitively, as keywords are matched)."""
    if isinstance(rec, dict):
        return any(holds(value, v) for v in rec.values())
    if isinstance(rec, list):
        return any(holds(value, v) for v in rec)
    return isinstance(rec, str) and rec.lower() == value.lower()


def seqs(page: str) -> set[int]:
    return {int(n) for n in re.findall(r"<summary>#(\d+)</summary>", page.split('id="events"', 1)[1])}


@pytest.mark.parametrize("kind", ["domain", "ip", "user_agent"])
def test_where_links_open_the_tab_filtered_to_exactly_the_records_holding_the_value(tmp_path, kind):
    path = tmp_path / "disguised.pcap"
    from packettotal.demo import _Clock
    wrpcap(str(path), disguised_pkts(_Clock()))
    with client(tmp_path / "home") as c:
        cap = analysed(c, PCAPS / "cs-ek_to_cryptowall4.pcapng") if kind != "user_agent" else analysed(c, path)
        value = {"domain": "xktzjm.topcentc.top", "ip": "192.168.122.145", "user_agent": 'a "q" \\b'}[kind]
        page = c.get(f"/ioc/{value}").text
        [row] = Table(page, "pivot").rows
        links = [a["href"] for t, a in row[2]["tags"] if t == "a" and a.get("class") == "where"]
        assert links and all("?q=" in h for h in links)
        for href in links:
            etype = href.split("/tab/", 1)[1].split("?", 1)[0]
            tab = c.get(href + "&size=500")
            assert tab.status_code == 200, tab.text[:300]
            every = c.get(f"/api/v1/captures/{cap['id']}/events", params={"type": etype, "limit": 1000}).json()
            want = {e["seq"] for e in every["events"] if holds(value, e["event"])}
            assert want and seqs(tab.text) == want, (href, len(want))
