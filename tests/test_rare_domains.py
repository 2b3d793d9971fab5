"""Domains new to the instance (ingest/rare.py, the `rare_domain` finding): the pure decision on
hand-made inputs, then the real service (real Suricata) over a few dev captures and captures the
test builds: quiet below the baseline, fires on a domain no earlier capture held, quiet on a
second capture of that registered domain, searchable, and the same after a re-analysis."""

import datetime as dt
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from packettotal.ingest import rare
from packettotal.ingest.findings import MAX_EVIDENCE
from packettotal.service import PacketTotal
from packettotal.store.db import Database
from packettotal.web.app import create_app

from .conftest import PCAPS, analyse, settings
from .web import serve_app

CLIENT, RESOLVER = "10.30.0.5", "10.30.0.1"
NEW = "update-check-portal.example-new.net"


def obs(value: str, field: str = "dns.rrname", first_seen: str = "2024-01-01T00:00:00.000000+0000") -> dict:
    return {"kind": "domain", "value": value, "field": field, "first_seen": first_seen}


def test_registered_domains_and_what_has_none():
    assert rare.registered_domain(NEW) == "example-new.net"
    assert rare.registered_domain("A.B.Example.CO.UK.") == "example.co.uk"
    assert rare.registered_domain("c2.duckdns.org") == "c2.duckdns.org"  # a private suffix: its owner's name
    for none in ("4.3.2.1.in-addr.arpa", "b.a.ip6.arpa", "printer.home.arpa", "printer.local", "nas.lan",
                 "dc01.corp", "x.internal", "wpad", "localhost", "net", "co.uk", "10.0.0.1", "a..b.com",
                 "<script>.com", "x" * 64 + ".com", ""):
        assert rare.registered_domain(none) is None, none


def test_domains_of_a_capture_keep_the_first_name_and_skip_the_rest():
    seen = rare.domains_of([
        obs("b.example-new.net", first_seen="2024-01-01T00:00:02.000000+0000"),
        obs("a.example-new.net", "tls.sni", "2024-01-01T00:00:01.000000+0000"),
        obs("cdn.example-new.net", "dns.answers.rrname"),   # answers and CNAMEs: a CDN's names, not asked for
        obs("tracker.example.org", "http.hostname"),
        obs("9.8.7.6.in-addr.arpa"), obs("printer.local"), obs("wpad"),
        {"kind": "ip", "value": "8.8.8.8", "field": "dest_ip"},
    ])
    assert set(seen) == {"example-new.net", "example.org"}
    assert seen["example-new.net"] == rare.Seen("a.example-new.net", "tls.sni", "2024-01-01T00:00:01.000000+0000", 2)
    assert seen["example.org"].field == "http.hostname"


def test_judge_names_only_rare_domains_once_the_baseline_is_there():
    seen = rare.domains_of([obs(NEW), obs("www.google.com"), obs("api.once-seen.com")])
    held = {"google.com": 40, "once-seen.com": 1}
    assert rare.judge(seen, rare.History(19, held), min_baseline=20, rare_below=1) is None
    f = rare.judge(seen, rare.History(20, held), min_baseline=20, rare_below=1)
    assert f is not None and f.name == "rare_domain" and f.key == "example-new.net"
    assert [e["domain"] for e in f.evidence] == ["example-new.net"]
    assert f.evidence[0]["seen_as"] == NEW and f.evidence[0]["event_type"] == "dns"
    assert f.why == ("1 registered domain held by none of the 20 or more captures with domains analysed before "
                     f"this one: {NEW} (2 of the capture's 3 were known)")
    assert f.severity == "low"  # new among familiar names
    two = rare.judge(seen, rare.History(20, held), min_baseline=20, rare_below=2)
    assert two is not None and [(e["domain"], e["earlier_captures"]) for e in two.evidence] == [
        ("example-new.net", 0), ("once-seen.com", 1)]
    assert two.key == "example-new.net and 1 more" and "held by fewer than 2 of the 20 or more" in two.why
    assert two.severity == "info" and two.why.endswith("(1 of the capture's 3 were known)")  # mostly new here
    assert rare.judge(rare.domains_of([obs("www.google.com")]), rare.History(99, held), 20, 1) is None


def test_judge_is_bounded():
    seen = rare.domains_of(obs(f"host.new-{i:03d}.com", first_seen=f"2024-01-01T00:00:{i % 60:02d}.000000+0000")
                           for i in range(300))
    f = rare.judge(seen, rare.History(50, {}), 20, 1)
    assert f is not None and len(f.evidence) == MAX_EVIDENCE and f.why.startswith("300 registered domains")
    assert f.why.endswith(", ... (0 of the capture's 300 were known)") and f.key == "new-000.com and 299 more"
    many = rare.domains_of(obs(f"x.n{i}.com") for i in range(rare.MAX_DOMAINS + 50))
    assert len(many) == rare.MAX_DOMAINS


def test_a_batch_is_judged_in_ingest_order_whatever_order_it_comes_in():
    a = rare.Judged("a", ("2024-01-01", "a"), rare.domains_of([obs(NEW)]), rare.History(20, {}))
    b = rare.Judged("b", ("2024-01-02", "b"), rare.domains_of([obs("api.example-new.net")]), rare.History(20, {}))
    c = rare.Judged("c", ("2024-01-03", "c"), {}, rare.History(20, {}))
    for batch in ([a, b, c], [c, b, a]):
        out = rare.judge_batch(batch, 20, 1)
        assert out["b"] is None and out["c"] is None
        found = out["a"]
        assert found is not None and found.key == "example-new.net" and "of the 20 or more captures" in found.why
    # b's baseline counts a (it held domains): at 21 it is met only with a before it
    assert rare.judge_batch([b, a], 21, 1)["a"] is None
    assert rare.judge_batch([rare.Judged("n", ("2024-01-04", "n"), rare.domains_of([obs("x.other-new.org")]),
                                         rare.History(20, {})), b, a], 22, 1)["n"] is not None


def test_the_store_counts_earlier_captures_only_and_only_as_far_as_needed(tmp_path):
    db = Database.from_url(settings(tmp_path).database)
    t0 = dt.datetime(2026, 1, 1)
    ids = [f"{i:064x}" for i in range(6)]
    for i, cid in enumerate(ids):  # the last two submitted at the same moment: by id then
        db.insert_capture({"id": cid, "md5": cid[:32], "sha1": cid[:40], "name": f"c{i}", "size": 1, "status": "done",
                           "warnings": [], "attempts": 0, "submitted_at": t0 + dt.timedelta(seconds=min(i, 4))})
    held = {0: ["common.com", "a.com"], 1: ["common.com"], 2: [], 3: ["common.com", "b.com"], 4: ["c.com"], 5: []}
    db.finish_captures([{"id": cid, "observables": [], "files": [], "status": "done", "domains": held[i]}
                        for i, cid in enumerate(ids)])
    assert db.domain_history(ids[5], ["common.com", "a.com", "b.com", "c.com", "new.com"], [], 99, 99) == (
        4, {"common.com": 3, "a.com": 1, "b.com": 1, "c.com": 1})
    assert db.domain_history(ids[4], ["common.com", "c.com"], [], 99, 99) == (3, {"common.com": 3})  # not itself
    assert db.domain_history(ids[3], ["common.com", "b.com"], [], 99, 99) == (2, {"common.com": 2})  # not later ones
    assert db.domain_history(ids[5], ["common.com", "a.com"], [ids[0], ids[1]], 99, 99) == (2, {"common.com": 1})
    assert db.domain_history(ids[5], ["common.com", "a.com"], [], 2, 1) == (2, {"common.com": 1, "a.com": 1})
    db.finish_captures([{"id": ids[0], "observables": [], "files": [], "status": "done", "domains": ["d.com"]}])
    assert db.domain_history(ids[5], ["common.com", "a.com", "d.com"], [], 99, 99) == (4, {"common.com": 2, "d.com": 1})
    db.close()


def dns_capture(path: Path, names: list[str], t0: float) -> Path:
    """A query and its answer for each name, from one client to its resolver."""
    eth, back = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:03"), Ether(src="02:00:00:00:00:03",
                                                                              dst="02:00:00:00:00:01")
    pkts = []
    for i, name in enumerate(names):
        q = eth / IP(src=CLIENT, dst=RESOLVER) / UDP(sport=44000 + i, dport=53) / DNS(
            id=100 + i, rd=1, qd=DNSQR(qname=name))
        r = back / IP(src=RESOLVER, dst=CLIENT) / UDP(sport=53, dport=44000 + i) / DNS(
            id=100 + i, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata="198.51.100.7"))
        q.time, r.time = t0 + i, t0 + i + 0.01
        pkts += [q, r]
    wrpcap(str(path), pkts)
    return path


@pytest.fixture(scope="module")
def pt(tmp_path_factory):
    pt = PacketTotal(settings(tmp_path_factory.mktemp("home"), rare_domain_baseline=3))
    yield pt
    pt.close()


def rare_of(row: dict) -> dict | None:
    assert row["status"] == "done", row["error"]
    found = [f for f in row["summary"]["findings"] if f["name"] == "rare_domain"]
    assert len(found) <= 1
    return found[0] if found else None


def found_by(pt: PacketTotal, query: str) -> set[str]:
    return {g["capture_id"] for g in pt.search(query, limit=500).groups}


def test_new_domains_across_real_captures(pt, tmp_path):
    # two dev captures with domains (google.com, whispersystems.org; oisf.net), then one the test
    # builds: three earlier captures are needed (rare_domain_baseline), it has two
    assert rare_of(analyse(pt, PCAPS / "sv-dns-udp-txt.pcap")) is None
    assert rare_of(analyse(pt, PCAPS / "sv-dns-nxdomain-soa.pcap")) is None
    early = analyse(pt, dns_capture(tmp_path / "early.pcap", ["first-look.example-early.org"], 1_700_000_000))
    assert rare_of(early) is None
    # from the fourth on, a domain no earlier capture held is named: ethereal.com in a dev capture
    headers = rare_of(analyse(pt, PCAPS / "sv-http-all-headers.pcap"))
    assert headers is not None and headers["key"] == "ethereal.com" and headers["severity"] == "info"  # all new
    assert headers["evidence"][0]["field"] == "http.hostname"
    assert rare_of(analyse(pt, PCAPS / "cs-cryptowall4_c2.pcapng")) is not None  # its C2 domain, new here

    # the built capture: the new name, one seen before, reverse DNS, an mDNS name, a single label
    new = analyse(pt, dns_capture(tmp_path / "new.pcap", [NEW, "www.google.com", "7.0.30.10.in-addr.arpa",
                                                         "printer.local", "wpad"], 1_700_100_000))
    f = rare_of(new)
    assert f is not None and f["severity"] == "low" and f["title"] == "Domains new to this instance"
    assert f["key"] == "example-new.net"
    assert f["why"] == ("1 registered domain held by none of the 3 or more captures with domains analysed before "
                        f"this one: {NEW} (1 of the capture's 2 were known)")
    assert [(e["domain"], e["seen_as"], e["event_type"], e["earlier_captures"]) for e in f["evidence"]] == [
        ("example-new.net", NEW, "dns", 0)]
    assert new["id"] in found_by(pt, "finding:rare_domain") and early["id"] not in found_by(pt, "finding:rare_domain")
    assert found_by(pt, f"finding:rare* AND dns.rrname:{NEW}") == {new["id"]}

    # another name under the same registered domain, later: seen before, so nothing to say
    again = analyse(pt, dns_capture(tmp_path / "again.pcap", ["api.example-new.net"], 1_700_200_000))
    assert rare_of(again) is None and again["id"] not in found_by(pt, "finding:rare_domain")

    # a re-analysis judges against the captures submitted before it: the later one does not count
    redone = pt.analyse(pt.reanalyse(new["id"]).capture["id"])
    assert rare_of(redone) == f
    redone_again = pt.analyse(pt.reanalyse(again["id"]).capture["id"])
    assert rare_of(redone_again) is None


def test_the_console_shows_the_finding_with_its_domain(tmp_path):
    from .web import analysed, client
    with client(tmp_path / "home", rare_domain_baseline=1) as c:
        analysed(c, PCAPS / "sv-dns-nxdomain-soa.pcap")
        row = analysed(c, dns_capture(tmp_path / "new.pcap", [NEW], 1_700_300_000))
        assert rare_of(row) is not None
        page = c.get(f"/captures/{row['id']}").text
        assert 'data-finding="rare_domain"' in page and "Domains new to this instance" in page
        assert "domain example-new.net" in page and f"seen_as {NEW}" in page
        assert "/search?q=finding%3Arare_domain" in page
        api = c.get("/api/v1/search", params={"q": "finding:rare_domain"}).json()
        assert [g["capture_id"] for g in api["groups"]] == [row["id"]]


def serving(home: Path, **kw):
    """A real server on loopback, with these settings."""
    return serve_app(create_app(settings(home, **kw), seed_demo=False))


def test_in_a_browser_the_summary_names_the_new_domain_and_links_the_search(tmp_path):
    from playwright.sync_api import sync_playwright

    from .test_browser import ARGS, CHROMIUM, _uploaded
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup-system.sh test installs it)")
    with serving(tmp_path / "home", rare_domain_baseline=1) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        first = _uploaded(server, PCAPS / "sv-dns-nxdomain-soa.pcap")
        page.goto(f"{server}/captures/{first}")
        page.locator("nav.tabs").wait_for(timeout=60_000)
        cid = _uploaded(server, dns_capture(tmp_path / "new.pcap", [NEW, "ns1.oisf.net"], 1_700_400_000))
        page.goto(f"{server}/captures/{cid}")
        page.locator("nav.tabs").wait_for(timeout=60_000)
        row = page.locator('#top-findings tr[data-finding="rare_domain"]')
        assert row.locator("td.severity").inner_text() == "Low"  # one new, one known (oisf.net)
        assert row.locator("td").nth(2).inner_text() == "example-new.net"
        assert "(1 of the capture's 2 were known)" in row.inner_text()
        row.locator("details summary").click()
        evidence = row.locator("ul.evidence li")
        assert evidence.count() == 1 and evidence.is_visible()
        assert f"domain example-new.net seen_as {NEW}" in " ".join(evidence.inner_text().split())
        row.locator("a", has_text="Domains new to this instance").click()
        page.wait_for_url(f"{server}/search?q=finding%3Arare_domain")
        assert cid in page.locator("main").inner_html() and first not in page.locator("main").inner_html()
        browser.close()


def test_a_private_capture_does_not_make_a_domain_known_to_others(tmp_path):
    """rare_domain outside single mode judges against public captures only: alice's private
    capture holding a domain does not make it "not new" in bob's (a one-bit leak otherwise)."""
    from .visibility_world import upload_as
    from .web import client
    with client(tmp_path / "home", mode="public", rare_domain_baseline=1) as c:
        accounts, keys = c.app.state.instance.service.accounts, {}
        for name in ("alice", "bob"):
            accounts.add_user(name, "analyst", "rare domain password")
            keys[name] = accounts.create_key(name, user=name)[1]
        base = upload_as(c, keys, "bob", dns_capture(tmp_path / "base.pcap", ["www.example-base.org"], 1_700_000_000))
        r = c.post(f"/api/v1/captures/{base['id']}/visibility", json={"visibility": "public"},
                   headers={"x-api-key": keys["bob"]})
        assert r.status_code == 200, r.text
        upload_as(c, keys, "alice", dns_capture(tmp_path / "secret.pcap", ["secret.example-hidden.net"], 1_700_000_100))
        later = upload_as(c, keys, "bob", dns_capture(tmp_path / "later.pcap",
                                                       ["www.example-base.org", "www.example-hidden.net"],
                                                       1_700_000_200))
        found = rare_of(later)
        assert found is not None and found["key"] == "example-hidden.net", found
        assert [e["domain"] for e in found["evidence"]] == ["example-hidden.net"]


def test_in_single_mode_every_earlier_capture_counts(tmp_path):
    from .web import client, upload, wait_done
    with client(tmp_path / "home", rare_domain_baseline=1) as c:
        for name, names in (("base", ["www.example-base.org"]), ("secret", ["secret.example-hidden.net"])):
            wait_done(c, upload(c, dns_capture(tmp_path / f"{name}.pcap", names, 1_700_000_000)).json()["id"])
        later = dns_capture(tmp_path / "later.pcap", ["www.example-base.org", "www.example-hidden.net"], 1_700_000_200)
        assert rare_of(wait_done(c, upload(c, later).json()["id"])) is None
