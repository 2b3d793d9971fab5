"""nDPI as a second engine, for real: Debian's libndpi (nDPI 4.2.0), in its helper process, beside
real Suricata on the dev captures. What nDPI 4.2.0 reported for them in a run here (ingest/ndpi's
names; ndpiReader 4.2 reported the same):
- sv-tls-cert-chain.pcap: 5 TLS flows (category Web), 4 with self_signed_certificate, all 5 with
  missing_sni_tls_extension (score 150 / 50); 2 MDNS flows
- cs-ratinfected.pcapng: the RAT's 8 TCP flows to port 4433, all Unknown, no risk
- sv-dns-udp-txt.pcap: DNS.Signal (category Chat) and DNS.Google
- cs-http_espn.pcapng: 25 HTTP and 14 DNS flows, no risk
- sv-tls-pre1970-cert.pcap: TLS with tls_expired_certificate, obsolete_tls_version_1_1_or_older
- dpkt-truncated_dns_2.pcap (cut in a packet header): the one DNS answer before the cut, Unknown
  (ndpiReader, through libpcap, refused the whole file)
"""

import os
import pwd
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from scapy.all import IP, TCP, Ether, wrpcap

from packettotal.ingest import ndpi
from packettotal.ingest.ndpi import helper
from packettotal.service import PacketTotal
from packettotal.store import db

from .conftest import PCAPS, analyse, settings
from .web import analysed, client

pytestmark = pytest.mark.skipif(not ndpi.available(), reason="libndpi (Debian's libndpi4.2) is not installed")
CAPTURES = ("sv-tls-cert-chain.pcap", "cs-ratinfected.pcapng", "sv-dns-udp-txt.pcap", "cs-http_espn.pcapng",
            "sv-tls-pre1970-cert.pcap", "sv-tls-ipv6-communityid.pcap")
FORGED_UA = "<script>alert(1)</script>][Risk: ** SQL Injection **** Totally Evil **][Risk Score: 10][cat: Fake/1]"


@pytest.fixture(scope="module")
def pt(tmp_path_factory):
    service = PacketTotal(settings(tmp_path_factory.mktemp("ndpi-home")))
    yield service
    service.close()


@pytest.fixture(scope="module")
def caps(pt) -> dict[str, dict]:
    return {name: analyse(pt, PCAPS / name) for name in CAPTURES}


def flows_of(pt: PacketTotal, cap: dict) -> list[dict]:
    t = db.ndpi_flows
    return pt._db._rows(sa.select(t).where(t.c.capture_id == cap["id"]).order_by(t.c.first_seen))


def found(pt: PacketTotal, query: str) -> set[str]:
    return {g["name"] for g in pt.search(query).groups}


def test_apps_categories_and_risks_of_real_captures(pt, caps):
    for cap in caps.values():
        assert cap["status"] == "done" and not [w for w in cap["warnings"] if w.startswith("nDPI")], cap
        assert cap["summary"]["ndpi"]["version"].startswith("4.")
    tls = flows_of(pt, caps["sv-tls-cert-chain.pcap"])
    assert sorted(f["app"] for f in tls) == ["MDNS", "MDNS", "TLS", "TLS", "TLS", "TLS", "TLS"]
    assert sum("self_signed_certificate" in f["risks"] for f in tls) == 4
    assert sum("missing_sni_tls_extension" in f["risks"] for f in tls) == 5
    assert {f["category"] for f in tls if f["app"] == "TLS"} == {"Web"}
    assert max(f["risk_score"] for f in tls) == 150
    rat = flows_of(pt, caps["cs-ratinfected.pcapng"])
    assert len(rat) == 8 and {(f["app"], f["dest_port"], tuple(f["risks"])) for f in rat} == {("Unknown", 4433, ())}
    dns = {f["app"]: f["category"] for f in flows_of(pt, caps["sv-dns-udp-txt.pcap"])}
    assert dns == {"DNS.Signal": "Chat", "DNS.Google": "Web"}
    espn = [f["app"] for f in flows_of(pt, caps["cs-http_espn.pcapng"])]
    assert (espn.count("HTTP"), espn.count("DNS")) == (25, 14)
    old = flows_of(pt, caps["sv-tls-pre1970-cert.pcap"])[0]["risks"]
    assert {"tls_expired_certificate", "obsolete_tls_version_1_1_or_older"} <= set(old)


def test_joined_to_suricatas_flows(pt, caps):
    """Every Suricata flow record of these captures finds its nDPI flow (IPv6 too: Suricata writes
    addresses long, nDPI short), and the nearest start wins among flows of one five-tuple."""
    for name in ("sv-tls-cert-chain.pcap", "sv-tls-ipv6-communityid.pcap", "cs-ratinfected.pcapng"):
        cap = caps[name]
        records = [e["event"] for e in pt.tab_events(cap, "flow", "", limit=100).events]
        seen = pt.ndpi_of(cap["id"], records)
        assert records and all(seen), name
        assert len({id(s) for s in seen}) == len(records)  # one nDPI flow each
    v6 = {s["app"] for s in pt.ndpi_of(caps["sv-tls-ipv6-communityid.pcap"]["id"], [
        e["event"] for e in pt.tab_events(caps["sv-tls-ipv6-communityid.pcap"], "flow", "").events])}
    assert v6 == {"TLS.Google", "TLS.DoH_DoT"}


def test_searchable_as_capture_fields(pt, caps):
    assert found(pt, "ndpi.risk:self_signed_certificate") == {"sv-tls-cert-chain.pcap"}
    assert found(pt, "ndpi.risk:self_signed*") == {"sv-tls-cert-chain.pcap"}
    assert found(pt, "ndpi.risk:tls_expired_certificate") == {"sv-tls-pre1970-cert.pcap"}
    assert found(pt, "ndpi.app:DNS.Signal") == {"sv-dns-udp-txt.pcap"}
    assert found(pt, "ndpi.app:dns.signal") == {"sv-dns-udp-txt.pcap"}  # case-insensitive
    assert found(pt, "ndpi.category:Chat") == {"sv-dns-udp-txt.pcap"}
    assert found(pt, "ndpi.app:Unknown AND dest_port:4433") == {"cs-ratinfected.pcapng"}
    assert found(pt, "ndpi.app:HTTP") == {"cs-http_espn.pcapng"}
    assert found(pt, "ndpi.app:TLS.*") == {"sv-tls-ipv6-communityid.pcap"}
    assert found(pt, "ndpi.risk:*") == {"sv-tls-cert-chain.pcap", "sv-tls-pre1970-cert.pcap"}
    assert found(pt, "ndpi.app:TLS.Telegram") == set()


def test_pivots_count_apps_and_risks(pt, caps):
    cert = caps["sv-tls-cert-chain.pcap"]["id"]
    assert pt._db.value_counts(["self_signed_certificate", "DNS.Signal", "TLS"]) == {
        "self_signed_certificate": 1, "DNS.Signal": 1, "TLS": 2}
    pivot = pt.ioc("self_signed_certificate")
    assert pivot["kind"] == "ndpi_risk" and [c["capture_id"] for c in pivot["captures"]] == [cert]
    assert pivot["captures"][0]["count"] == 4  # flows with the risk
    assert "Unknown" not in pt._db.value_counts(["Unknown"])  # nDPI's "no idea" is no indicator


def test_reanalysis_replaces_the_flows(pt, caps):
    cap = caps["sv-dns-udp-txt.pcap"]
    before = flows_of(pt, cap)
    again = pt.analyse(cap["id"])
    assert again["status"] == "done"
    assert flows_of(pt, again) == before and len(before) == 2
    assert pt._db.value_counts(["DNS.Signal"]) == {"DNS.Signal": 1}


def test_a_capture_cut_short_gives_the_flows_before_the_cut(pt):
    cap = analyse(pt, PCAPS / "dpkt-truncated_dns_2.pcap")
    assert cap["status"] == "done" and not [w for w in cap["warnings"] if w.startswith("nDPI")], cap["warnings"]
    assert [(f["proto"], f["src_port"], f["app"]) for f in flows_of(pt, cap)] == [(17, 53, "Unknown")]


def helper_pid(helpers: ndpi.Helpers) -> int:
    (idle,) = helpers._idle
    return idle.proc.pid


def test_one_helper_serves_every_capture_and_a_dead_one_is_replaced(tmp_path):
    """A helper is started once per worker: the same helper process answers capture after
    capture; one that died while idle is never given a capture; closing stops them."""
    helpers = ndpi.Helpers(None, keep=1)
    try:
        first = helpers.run(PCAPS / "sv-dns-udp-txt.pcap").result()
        assert {f["app"] for f in first.flows} == {"DNS.Signal", "DNS.Google"} and first.version == "4.2.0"
        pid = helper_pid(helpers)
        for _ in range(3):
            assert len(helpers.run(PCAPS / "cs-ratinfected.pcapng").result().flows) == 8
        assert helper_pid(helpers) == pid
        os.kill(pid, signal.SIGKILL)
        helpers._idle[0].proc.wait()
        again = helpers.run(PCAPS / "sv-dns-udp-txt.pcap").result()
        assert again.error is None and len(again.flows) == 2 and helper_pid(helpers) != pid
    finally:
        helpers.close()
    assert helpers._idle == []


def test_helpers_start_ahead_with_the_daemons(tmp_path):
    """warm_engines starts a helper in each worker thread; the worker's first capture uses it.
    Under root it runs as the unprivileged account, with no other group, under its limits."""
    service = PacketTotal(settings(tmp_path / "home"))
    try:
        with ThreadPoolExecutor(1) as threads:
            service.warm_engines(threads)
            threads.submit(time.sleep, 0).result()  # after the warm-ups, in the same thread
            assert service._ndpi_helpers is not None
            pid = helper_pid(service._ndpi_helpers)
            cap = threads.submit(analyse, service, PCAPS / "sv-dns-udp-txt.pcap").result()
            assert cap["summary"]["ndpi"]["flows"] == 2 and helper_pid(service._ndpi_helpers) == pid
            status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
            if os.geteuid() == 0:
                uid = pwd.getpwnam(service.settings.suricata_user).pw_uid
                assert status["Uid"].split() == [str(uid)] * 4 and status["Groups"].split() == []
            limits = Path(f"/proc/{pid}/limits").read_text()
            assert re.search(r"Max file size\s+0\s+0", limits) and re.search(r"Max data size\s+2147483648", limits)
    finally:
        service.close()


def test_its_answer_and_flows_are_bounded(monkeypatch):
    helpers = ndpi.Helpers(None, keep=1)
    try:
        monkeypatch.setattr(ndpi, "MAX_OUTPUT", 2048)
        result = helpers.run(PCAPS / "sv-ftp-data-190k.pcap").result()
        assert result.error == "nDPI's helper: its answer passed 2,048 bytes" and result.flows == []
        monkeypatch.setattr(ndpi, "MAX_OUTPUT", 256 << 20)
        monkeypatch.setattr(ndpi, "MAX_FLOWS", 10)
        result = helpers.run(PCAPS / "sv-ftp-data-190k.pcap").result()
        assert (len(result.flows), result.dropped, result.error) == (10, 150, None)
    finally:
        helpers.close()


def test_past_its_time_limit_it_is_stopped(monkeypatch):
    """A helper that does not answer in time (here: stopped by SIGSTOP) is killed; the next
    capture gets a new one."""
    monkeypatch.setattr(ndpi, "TIMEOUT", 0.5)
    helpers = ndpi.Helpers(None, keep=1)
    try:
        helpers.run(PCAPS / "sv-dns-udp-txt.pcap").result()
        stuck = helpers._idle[0]
        os.kill(stuck.proc.pid, signal.SIGSTOP)
        t = time.monotonic()
        result = helpers.run(PCAPS / "sv-dns-udp-txt.pcap").result()
        assert 0.5 <= time.monotonic() - t < 5
        assert result.error == "stopped after 0.5 s" and result.flows == []
        assert stuck.proc.poll() == -signal.SIGKILL and helpers._idle == []
        assert len(helpers.run(PCAPS / "sv-dns-udp-txt.pcap").result().flows) == 2
    finally:
        helpers.close()


def test_a_helper_killed_mid_capture_fails_only_that_captures_ndpi_part(tmp_path):
    """The service's helper is killed while it holds a capture (stopped first, so it cannot have
    answered): that capture is done, with Suricata's events and an nDPI warning; the next capture
    is analysed with nDPI again, by a new helper."""
    service = PacketTotal(settings(tmp_path / "home"))
    try:
        assert analyse(service, PCAPS / "sv-dns-udp-txt.pcap")["summary"]["ndpi"]["flows"] == 2
        helpers = service._ndpi_helpers
        assert helpers is not None
        victim = helper_pid(helpers)
        os.kill(victim, signal.SIGSTOP)
        killer = threading.Timer(1.0, os.kill, (victim, signal.SIGKILL))
        killer.start()
        cap = analyse(service, PCAPS / "sv-ftp-data-190k.pcap")
        killer.join()
        assert cap["status"] == "done" and cap["summary"]["events"] > 100
        assert "nDPI: nDPI's helper was killed (signal 9)" in cap["warnings"]
        assert cap["summary"]["ndpi"]["flows"] == 0 and flows_of(service, cap) == []
        after = analyse(service, PCAPS / "cs-ratinfected.pcapng")
        assert not [w for w in after["warnings"] if w.startswith("nDPI")]
        assert after["summary"]["ndpi"]["flows"] == 8 and helper_pid(helpers) != victim
    finally:
        service.close()


def test_a_helper_that_cannot_start_is_a_warning(tmp_path, monkeypatch):
    """Its memory limit too low for Python to start: the helper exits, the capture is done; the
    warning ends with what the helper said on stderr (the folders of this installation hidden)."""
    monkeypatch.setattr(ndpi, "MAX_MEMORY", 1 << 20)
    service = PacketTotal(settings(tmp_path / "home"))
    try:
        cap = analyse(service, PCAPS / "sv-dns-udp-txt.pcap")
        assert cap["status"] == "done" and cap["summary"]["events"] > 0
        (said,) = [w for w in cap["warnings"] if w.startswith("nDPI: nDPI's helper exited with code")]
        assert "error while loading shared libraries" in said and sys.prefix not in said, said
        assert len(said) < ndpi.MAX_STDERR + 100
        monkeypatch.setattr(ndpi, "MAX_MEMORY", 2 << 30)
        assert analyse(service, PCAPS / "cs-ratinfected.pcapng")["summary"]["ndpi"]["flows"] == 8
    finally:
        service.close()


def test_setting_off(tmp_path):
    service = PacketTotal(settings(tmp_path, ndpi="off"))
    try:
        cap = analyse(service, PCAPS / "sv-dns-udp-txt.pcap")
        assert cap["status"] == "done" and "ndpi" not in cap["summary"]
        assert service._db.ndpi_overview(cap["id"])["flows"] == 0
        assert service.search("ndpi.app:DNS.Signal").groups == []
    finally:
        service.close()


def forged_http(path: Path) -> Path:
    """One HTTP exchange whose User-Agent imitates ndpiReader's listing: a forged category, a
    known risk, an unknown one and markup."""
    req = (f"GET /index.html HTTP/1.1\r\nHost: evil.example.com\r\nUser-Agent: {FORGED_UA}\r\n\r\n").encode()
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/html\r\n\r\nok"
    c, s, seq, ack = "10.0.0.1", "10.0.0.2", 1000, 5000
    pk = [Ether() / IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="S", seq=seq),
          Ether() / IP(src=s, dst=c) / TCP(sport=80, dport=40000, flags="SA", seq=ack, ack=seq + 1),
          Ether() / IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="A", seq=seq + 1, ack=ack + 1),
          Ether() / IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="PA", seq=seq + 1, ack=ack + 1) / req,
          Ether() / IP(src=s, dst=c) / TCP(sport=80, dport=40000, flags="PA", seq=ack + 1,
                                           ack=seq + 1 + len(req)) / resp]
    for i, p in enumerate(pk):
        p.time = 1_700_000_000 + i * 0.01
    wrpcap(str(path), pk)
    return path


def test_pages_show_ndpi_escaped(tmp_path):
    with client(tmp_path / "home") as c:
        cert = analysed(c, PCAPS / "sv-tls-cert-chain.pcap")
        forged = analysed(c, forged_http(tmp_path / "forged.pcap"))
        page = c.get(f"/captures/{cert['id']}/tab/flow").text
        cells = re.findall(r'<td class="ndpi">(.*?)</td>', page, re.S)
        assert "<th>nDPI</th>" in page and len(cells) == 7
        assert sum("TLS · Web" in x and ">self_signed_certificate</a>" in x for x in cells) == 4
        summary = c.get(f"/captures/{cert['id']}").text
        assert 'id="ndpi"' in summary and ">TLS</a></td><td>Web</td><td class=\"n\">5</td>" in summary
        section = summary[summary.index('id="ndpi"'):summary.index("<h2>Indicators</h2>")]
        assert section.count(">self_signed_certificate</a>") == 4  # the riskiest flows
        assert '<a class="ioc" href="/ioc/self_signed_certificate">' in summary  # an indicator too

        page = c.get(f"/captures/{forged['id']}/tab/flow").text
        cell = re.findall(r'<td class="ndpi">(.*?)</td>', page, re.S)
        # nDPI's own answer (read through its API, not from a listing the capture's text is printed
        # into): HTTP/Web, and the risk names the user agent imitates are not taken at all
        assert cell and cell[0].startswith("HTTP · Web") and "Fake" not in cell[0] and "evil" not in cell[0]
        assert "<script>alert(1)</script>" not in page
        assert ">sql_injection</a>" not in cell[0] and "totally" not in cell[0].lower()


def tcp_exchange(path: Path, server: str, request: bytes, response: bytes, t0: float) -> Path:
    """One TCP connection from 10.0.0.1 to server:8080: handshake, a request, its response."""
    c, seq, ack, port = "10.0.0.1", 1000, 5000, 8080
    pk = [Ether() / IP(src=c, dst=server) / TCP(sport=40000, dport=port, flags="S", seq=seq),
          Ether() / IP(src=server, dst=c) / TCP(sport=port, dport=40000, flags="SA", seq=ack, ack=seq + 1),
          Ether() / IP(src=c, dst=server) / TCP(sport=40000, dport=port, flags="A", seq=seq + 1, ack=ack + 1),
          Ether() / IP(src=c, dst=server) / TCP(sport=40000, dport=port, flags="PA", seq=seq + 1,
                                                ack=ack + 1) / request,
          Ether() / IP(src=server, dst=c) / TCP(sport=port, dport=40000, flags="PA", seq=ack + 1,
                                                ack=seq + 1 + len(request)) / response]
    for i, p in enumerate(pk):
        p.time = t0 + i * 0.01
    wrpcap(str(path), pk)
    return path


def test_no_capture_changes_how_another_is_named(tmp_path):
    """nDPI keeps caches by address in its detection module (here its Ookla cache: a speed test's
    HTTP request marks the server): each capture gets a fresh module, so a capture gives the same
    flows alone, after one that talked to its server, and after the dev captures in sequence."""
    speedtest = tcp_exchange(tmp_path / "a.pcap", "10.9.9.9", b"GET /speedtest HTTP/1.1\r\nHost: "
                             b"speedtest.ooklaserver.net\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                             1.7e9)
    later = tcp_exchange(tmp_path / "b.pcap", "10.9.9.9", b"HI\n", b"HELLO 2.9 (2.9.3) 2020-01-01.1234.abc\n",
                         1.7e9 + 10)
    named = [later, PCAPS / "sv-tls-cert-chain.pcap", PCAPS / "sv-dns-udp-txt.pcap", PCAPS / "cs-http_espn.pcapng"]
    alone = {}
    for pcap in named:
        fresh = ndpi.Helpers(None, keep=1)
        try:
            alone[pcap] = fresh.run(pcap).result().flows
        finally:
            fresh.close()
    assert [f["app"] for f in alone[later]] == ["HTTP.Ookla"]
    helpers = ndpi.Helpers(None, keep=1)
    try:
        for pcap in [speedtest, *named, speedtest, *CAPTURES, *reversed(named)]:
            pcap = PCAPS / pcap if isinstance(pcap, str) else pcap
            result = helpers.run(pcap).result()
            assert result.error is None
            if pcap in alone:
                assert result.flows == alone[pcap], pcap.name
        assert len({h.proc.pid for h in helpers._idle}) == 1  # one helper all along
    finally:
        helpers.close()


def test_a_helper_that_cannot_be_started_is_a_warning(tmp_path, monkeypatch):
    """Its Popen fails (here: no such interpreter; EAGAIN, ENOMEM alike): the capture is done with
    a warning, its socket is closed; the next capture gets a helper."""
    service = PacketTotal(settings(tmp_path / "home"))
    try:
        analyse(service, PCAPS / "cs-ratinfected.pcapng")  # the service's own descriptors, opened
        assert service._ndpi_helpers is not None
        service._ndpi_helpers.close()  # no idle helper: the next capture starts one
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
        before = sorted(os.listdir("/proc/self/fd"))
        with pytest.raises(FileNotFoundError):
            ndpi.Helper(None)
        assert sorted(os.listdir("/proc/self/fd")) == before  # its socket's two ends closed
        cap = analyse(service, PCAPS / "sv-dns-udp-txt.pcap")
        assert cap["status"] == "done" and cap["summary"]["events"] > 0 and "ndpi" not in cap["summary"]
        assert "nDPI: its helper could not be started: No such file or directory" in cap["warnings"]
        monkeypatch.undo()
        assert analyse(service, PCAPS / "cs-ratinfected.pcapng")["summary"]["ndpi"]["flows"] == 8
    finally:
        service.close()


def test_an_answer_not_of_its_shape_fails_the_helper():
    """The helper parsed the capture: an answer of the wrong shape is its failure (the helper is
    then ended, not given back), and a row of the wrong shape is counted, not kept."""
    for answer in ([], "x", None, {"flows": {}}, {"flows": [], "dropped": "x"}, {"flows": [], "dropped": -1},
                   {"flows": [], "dropped": 1.5}, {"flows": [], "dropped_more": "yes"}):
        with pytest.raises(ndpi.HelperFailed):
            ndpi.checked(answer)
    assert ndpi.checked({"error": "<b>\x00"}).error == "<b>?"
    good = {"proto": 6, "first_seen": 1.0, "src_ip": "10.0.0.1", "src_port": 1, "dest_ip": "10.0.0.2",
            "dest_port": 2, "app": "TLS", "category": "Web", "risks": ["Self-signed Certificate"], "risk_score": 100}
    bad = ["x", {**good, "risks": "Self-signed"}, {**good, "dest_port": 70000}, {**good, "risk_score": 1 << 70},
           {**good, "proto": -1}, {**good, "src_port": "9" * 5000}]
    kept, dropped = ndpi.rows([good, *bad], 100)
    assert dropped == len(bad) and [r["risks"] for r in kept] == [["self_signed_certificate"]]


def test_flows_past_the_cap_are_counted_up_to_a_bound(tmp_path):
    """Flows past max_flows are counted by key up to max_skipped distinct ones, then as "at
    least": real nDPI in a process of its own, on a capture of 160 flows."""
    code = ("import sys; from packettotal.ingest.ndpi import helper, lib; "
            "ndpi = lib.Library(lib.SONAME); "
            "out = helper.analyse(ndpi, open(sys.argv[1], 'rb'), 10, int(sys.argv[2])); "
            "print(len(out['flows']), out['dropped'], out['dropped_more'])")
    src = str(Path(helper.__file__).resolve().parents[3])
    counted = {}
    for bound in (1000, 40):
        run = subprocess.run([sys.executable, "-c", code, str(PCAPS / "sv-ftp-data-190k.pcap"), str(bound)],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": src})
        counted[bound] = run.stdout.split()
    assert counted == {1000: ["10", "150", "False"], 40: ["10", "40", "True"]}
