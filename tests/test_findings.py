"""The detectors of ingest/findings.py: each fires on a capture built for it (scapy, read by the
real Suricata), stays quiet on dev captures where it should, and its findings are searchable
(`finding:`), shown on the console, and made again by a re-analysis."""

import struct

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.tls.cert import Cert
from scapy.layers.tls.handshake import TLSCertificate, TLSClientHello, TLSServerHello, TLSServerHelloDone
from scapy.layers.tls.record import TLS
from scapy.utils import wrpcap

from packettotal.demo import _certificate, _Clock, _tcp_session
from packettotal.ingest.findings import Detectors, entropy, parent_domain, random_looking
from packettotal.service import PacketTotal

from .conftest import PCAPS, analyse, settings

CLIENT, SERVER = "10.20.0.5", "203.0.113.9"


def pe_bytes() -> bytes:
    """The headers of a PE32 executable, as libmagic (in Suricata) recognises one."""
    pe = bytearray(4096)
    pe[0:2] = b"MZ"
    struct.pack_into("<I", pe, 0x3C, 0x80)
    pe[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", pe, 0x84, 0x14C, 1, 0, 0, 0, 0xE0, 0x102)
    struct.pack_into("<H", pe, 0x98, 0x10B)
    struct.pack_into("<H", pe, 0x98 + 68, 2)
    return bytes(pe)


def http(path: str, body: bytes, ctype: str, host: str = "cdn.example.net") -> tuple[bytes, bytes]:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t\r\n\r\n".encode()
    return request, (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                     + body)


def beacon_pkts(clock) -> list:
    pkts = []
    for i in range(8):  # every 30 s, alike
        clock.t = 1_700_000_000 + 30 * i
        pkts += _tcp_session(clock, CLIENT, SERVER, 50000 + i, 8443, b"ping" * 50, b"pong" * 25)
    return pkts


def upload_pkts(clock) -> list:
    clock.t = 1_700_001_000
    return _tcp_session(clock, CLIENT, "198.18.7.7", 50100, 9000, b"x" * 300_000, b"ok")


def scan_pkts(clock) -> list:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    pkts = []
    for port in range(1, 61):  # 60 ports, none answers
        p = eth / IP(src="10.20.0.66", dst="10.20.0.200") / TCP(sport=40000, dport=port, flags="S", seq=7)
        p.time = clock()
        pkts.append(p)
    return pkts


def tunnel_pkts(clock) -> list:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:03")
    pkts = []
    for i in range(25):
        label = f"{(i * 2654435761) & 0xFFFFFFFF:08x}" * 5  # 40 hex characters
        p = eth / IP(src=CLIENT, dst="10.20.0.1") / UDP(sport=41000 + i, dport=53) / \
            DNS(id=i, rd=1, qd=DNSQR(qname=f"{label}.t.tunnel-example.com", qtype="TXT"))
        p.time = clock()
        pkts.append(p)
    return pkts


def dga_pkts(clock) -> list:
    eth, back = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:03"), Ether(src="02:00:00:00:00:03",
                                                                              dst="02:00:00:00:00:01")
    pkts = []
    for i in range(12):  # random-looking names, none registered
        name = f"{'qxzvkwtrpl'[i % 10:] + 'qxzvkwtrpl'[:i % 10]}{i:02d}.com"
        q = eth / IP(src=CLIENT, dst="10.20.0.1") / UDP(sport=43000 + i, dport=53) / DNS(
            id=i, rd=1, qd=DNSQR(qname=name))
        r = back / IP(src="10.20.0.1", dst=CLIENT) / UDP(sport=53, dport=43000 + i) / DNS(
            id=i, qr=1, rd=1, ra=1, rcode=3, qd=DNSQR(qname=name))
        q.time, r.time = clock(), clock()
        pkts += [q, r]
    return pkts


def long_pkts(clock) -> list:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ser = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    src, dst, sp, dp = CLIENT, "198.18.9.9", 50200, 7000
    clock.t = 1_700_002_000
    c, s = 100, 900
    pkts = [eth / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags="S", seq=c),
            ser / IP(src=dst, dst=src) / TCP(sport=dp, dport=sp, flags="SA", seq=s, ack=c + 1),
            eth / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags="A", seq=c + 1, ack=s + 1)]
    for p in pkts:
        p.time = clock()
    c, s = c + 1, s + 1
    for _ in range(15):  # a keep-alive every 60 s for 15 minutes
        clock.t += 60
        p = eth / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags="PA", seq=c, ack=s) / b"hb"
        q = ser / IP(src=dst, dst=src) / TCP(sport=dp, dport=sp, flags="A", seq=s, ack=c + 2)
        c += 2
        p.time, q.time = clock.t, clock.t + 0.01
        pkts += [p, q]
    return pkts


def disguised_pkts(clock) -> list:
    clock.t = 1_700_003_000
    return _tcp_session(clock, CLIENT, SERVER, 50300, 80, *http("/logo.gif", pe_bytes(), "image/gif"))


def tls_pkts(clock) -> list:
    """A self-signed certificate valid 2023-11-01..2024-10-31 seen in 2025, no SNI, public address."""
    clock.t = 1_750_000_000
    cert = Cert(_certificate("tls-odd.example"))  # type: ignore[call-arg]
    server = TLS(msg=[TLSServerHello(cipher=0xC02F), TLSCertificate(certs=[cert]), TLSServerHelloDone()])
    return _tcp_session(clock, CLIENT, "8.8.4.4", 50400, 443, bytes(TLS(msg=[TLSClientHello(ciphers=[0xC02F])])),
                        bytes(server))


BUILT = {"beacon": beacon_pkts, "upload_heavy": upload_pkts, "scan": scan_pkts, "dns_tunnel": tunnel_pkts,
         "dga": dga_pkts, "long_low_volume": long_pkts, "disguised_executable": disguised_pkts,
         "tls_self_signed": tls_pkts, "tls_expired": tls_pkts, "tls_bare_ip": tls_pkts}
QUIET = ["cs-ek_to_cryptowall4.pcapng", "cs-http_dvwa_sqlinjection.pcapng", "sv-http-4files.pcap",
         "sv-dns-udp-txt.pcap", "cs-aurora.pcapng", "sv-smtp-starttls.pcap", "sv-ftp-multi-files.pcap",
         "sv-dhcp-flood.pcap", "sv-smb2-psexec.pcap", "cs-mail_sender_attachment.pcapng"]


@pytest.fixture(scope="module")
def pt(tmp_path_factory):
    pt = PacketTotal(settings(tmp_path_factory.mktemp("home")))
    yield pt
    pt.close()


def found_by(pt: PacketTotal, query: str) -> set[str]:
    return {g["capture_id"] for g in pt.search(query, limit=500).groups}


def names(row: dict) -> set[str]:
    return {f["name"] for f in row["summary"]["findings"]}


@pytest.mark.parametrize("detector", sorted(BUILT))
def test_each_detector_fires_on_a_capture_built_for_it(pt, tmp_path, detector):
    path = tmp_path / f"{detector}.pcap"
    wrpcap(str(path), BUILT[detector](_Clock()))
    row = analyse(pt, path)
    assert row["status"] == "done", row["error"]
    found = [f for f in row["summary"]["findings"] if f["name"] == detector]
    assert len(found) == 1, row["summary"]["findings"]
    f = found[0]
    assert f["why"] and f["title"] and f["severity"] in ("high", "medium", "low") and f["evidence"]
    assert row["id"] in found_by(pt, f"finding:{detector}")


def test_what_the_built_captures_say(pt, tmp_path):
    rows = {}
    for name in ("beacon", "scan", "dns_tunnel", "dga", "disguised_executable"):
        path = tmp_path / f"{name}.pcap"
        wrpcap(str(path), BUILT[name](_Clock()))
        rows[name] = {f["name"]: f for f in analyse(pt, path)["summary"]["findings"]}
    beacon = rows["beacon"]["beacon"]
    assert beacon["key"] == f"{CLIENT} -> {SERVER}:8443/TCP" and "7 of the 7 gaps" in beacon["why"]
    assert len(beacon["evidence"]) == 8 and all(e["event_type"] == "flow" for e in beacon["evidence"])
    assert rows["scan"]["scan"]["key"] == "10.20.0.66 -> 10.20.0.200"
    assert "tried 60 ports of 10.20.0.200" in rows["scan"]["scan"]["why"]
    assert rows["dns_tunnel"]["dns_tunnel"]["key"] == "tunnel-example.com"
    assert rows["dga"]["dga"]["key"] == CLIENT and "12 random-looking domains" in rows["dga"]["dga"]["why"]
    assert "12 of them NXDOMAIN" in rows["dga"]["dga"]["why"]
    exe = rows["disguised_executable"]["disguised_executable"]
    assert exe["severity"] == "high" and "served as image/gif and named .gif but is PE32 executable" in exe["why"]


def test_the_rat_capture_beacons_and_uploads_and_the_selks_certificate_is_self_signed(pt):
    rat = analyse(pt, PCAPS / "cs-ratinfected.pcapng")
    assert names(rat) == {"beacon", "upload_heavy"}
    assert {f["key"] for f in rat["summary"]["findings"]} == {"172.16.0.114 -> 172.16.0.111:4433/TCP"}
    assert names(analyse(pt, PCAPS / "sv-tls-cert-chain.pcap")) == {"tls_self_signed"}
    assert found_by(pt, "finding:beacon AND dest_port:4433") == {rat["id"]}


@pytest.mark.parametrize("name", QUIET)
def test_quiet_on_dev_captures(pt, name):
    """Browsing, exploit kits, SMB, FTP active-mode data, STARTTLS without SNI, a DHCP flood to
    broadcast: nothing here is beaconing, tunnelling or a lopsided upload."""
    row = analyse(pt, PCAPS / name)
    assert row["status"] == "done" and row["summary"]["findings"] == []


def test_a_reanalysis_makes_the_findings_again_not_twice(pt):
    rat = analyse(pt, PCAPS / "cs-ratinfected.pcapng")
    again = pt.analyse(pt.reanalyse(rat["id"]).capture["id"])
    said = lambda row: [(f["name"], f["key"], f["why"], [e["timestamp"] for e in f["evidence"]])  # noqa: E731
                        for f in row["summary"]["findings"]]
    assert said(again) == said(rat) and len(said(rat)) == 2
    assert rat["id"] in found_by(pt, "finding:beacon") and rat["id"] in found_by(pt, "finding:upload*")
    assert rat["id"] not in found_by(pt, "NOT finding:beacon AND event_type:flow")


def test_findings_and_their_evidence_are_bounded_and_pure():
    d = Detectors()
    for i in range(50_000):  # many destinations, each with one flow: nothing periodic, state bounded
        d.add({"event_type": "flow", "src_ip": "10.0.0.1", "dest_ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
               "dest_port": 80, "proto": "TCP", "flow": {"start": "2024-01-01T00:00:00+0000",
                                                        "bytes_toserver": 10, "pkts_toclient": 1}})
    assert d.result() == []
    assert all(len(g) <= 10_000 for det in d.detectors for g in [getattr(det, "groups", {})])
    assert parent_domain("a.b.evil.co.uk") == "evil.co.uk" and parent_domain("x.y.example.com") == "example.com"
    assert [random_looking(w) for w in ("kq3vz8wplx", "xjwqkrtzvm", "facebook", "windowsupdate", "googleapis")] == \
        [True, True, False, False, False]
    assert entropy("aaaa") == 0 and entropy("abcd") == 2


def test_the_console_shows_findings_escaped(tmp_path):
    from .web import analysed, client
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:03")
    pkts = []
    for i in range(25):  # a tunnel under a hostile domain: the finding's key and evidence name it
        p = eth / IP(src=CLIENT, dst="10.20.0.1") / UDP(sport=42000 + i, dport=53) / DNS(
            id=i, rd=1, qd=DNSQR(qname=f"{i:04d}{'q' * 36}.<script>alert(1)</script>.example", qtype="TXT"))
        p.time = 1_700_000_000 + i
        pkts.append(p)
    path = tmp_path / "t.pcap"
    wrpcap(str(path), pkts)
    with client(tmp_path / "home") as c:
        row = analysed(c, path)
        assert row["status"] == "done" and {f["name"] for f in row["summary"]["findings"]} == {"dns_tunnel"}
        assert row["summary"]["findings"][0]["key"] == "<script>alert(1)</script>.example"
        page = c.get(f"/captures/{row['id']}").text
        assert 'id="top-findings"' in page and 'data-finding="dns_tunnel"' in page
        assert "Signs of DNS tunnelling" in page and "/search?q=finding%3Adns_tunnel" in page
        tab = c.get(f"/captures/{row['id']}/tab/anomaly")
        assert tab.status_code == 200 and 'data-finding="dns_tunnel"' in tab.text
        assert "<script>alert(1)" not in page + tab.text and "&lt;script&gt;alert(1)&lt;/script&gt;.example" in page
        api = c.get("/api/v1/search", params={"q": "finding:dns_tunnel"}).json()
        assert [g["capture_id"] for g in api["groups"]] == [row["id"]]
        assert c.get("/api/v1/search", params={"q": "finding:[a TO b]"}).status_code == 400
