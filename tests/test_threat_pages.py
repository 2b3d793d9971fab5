"""Malicious activity apart from protocol events, on a real instance with real Suricata: pages and
API for real captures, with and without a threat ruleset of the test's own."""

import csv
import io
import re

import pytest

from packettotal import demo

from .captures import pcap_bytes
from .conftest import PCAPS
from .test_pages import assert_inert
from .web import analysed, client

MAIL = PCAPS / "cs-mail_sender_attachment.pcapng"
DECODER = "SURICATA IPv4 total length smaller than header size"  # 19 of the capture's 20 alerts
# A threat ruleset of the test's own: IP packets of the demo capture (it fired 8 times: each DNS
# packet, and once each way in the two TCP sessions: six source -> destination pairs), with
# references good and hostile, and markup in its message.
EVERY_PACKET = "TEST TROJAN every packet <b class=pwn>bold</b>"
RULES = (
    f'alert ip any any -> any any (msg:"{EVERY_PACKET}"; classtype:trojan-activity; '
    'reference:url,www.example.com/advisory?id=1&x=2; reference:cve,2014-6271; '
    'reference:url,javascript:alert(9); reference:url,"onmouseover="alert(10); '
    'sid:3000001; rev:1;)\n'
    'alert dns any any -> any any (msg:"TEST DNS lookup of example names"; dns.query; content:"example"; '
    'classtype:bad-unknown; sid:3000002; rev:1;)\n')


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """An instance with only the protocol-event rules and the project's own."""
    with client(tmp_path_factory.mktemp("plain")) as c:
        yield c


@pytest.fixture(scope="module")
def ruled(tmp_path_factory):
    rules = tmp_path_factory.mktemp("rules")
    (rules / "test-threats.rules").write_text(RULES)
    with client(tmp_path_factory.mktemp("ruled"), user_rules_dir=rules) as c:
        yield c


def test_decoder_events_are_strange_not_malicious(plain):
    row = analysed(plain, MAIL)
    s, cid = row["summary"], row["id"]
    assert s["counts"]["alert"] == 20 and s["counts"]["anomaly"] == 21  # what Suricata wrote
    assert s["alerts"] == 0 and s["anomalies"] == 41 and s["threats"]["protocol_alerts"] == 20
    assert s["threats"]["signatures"] == [] and s["threats"]["protocol_sids"] == [2200002, 2260002]
    malicious = plain.get(f"/captures/{cid}/tab/alert").text
    assert DECODER not in malicious and "0 events" in malicious and 'id="no-ruleset"' in malicious
    assert "No threat alerts (no threat ruleset was loaded)" in malicious
    strange = plain.get(f"/captures/{cid}/tab/anomaly", params={"size": 100}).text
    cells = strange.count(f'<td><span class="cut" title="{DECODER}">{DECODER}</span></td>')
    assert "41 events" in strange and cells == 19
    assert "SURICATA Applayer Detect protocol only one direction" in strange
    # a filter narrows the tab, never widens it past its records
    only = plain.get(f"/captures/{cid}/tab/anomaly", params={"q": "alert.signature_id:2200002"}).text
    assert "19 events" in only
    none = plain.get(f"/captures/{cid}/tab/alert", params={"q": "alert.signature_id:2200002"}).text
    assert "0 events" in none
    nav = re.findall(r'data-tab="(\w+)">([^<]+)(?:<span class="count">([\d,]+))?', malicious)
    assert ("alert", "Malicious activity", "") in nav and ("anomaly", "Strange activity ", "41") in nav


def test_each_tabs_csv_holds_what_the_tab_lists(plain):
    """The Malicious activity tab's CSV link has no protocol-event alert; Strange activity's has them."""
    row = analysed(plain, MAIL)
    cid = row["id"]
    malicious = plain.get(f"/captures/{cid}/tab/alert").text
    link = re.search(r'href="(/api/v1/captures/[0-9a-f]+/export\?format=csv&amp;tab=alert)"', malicious)
    assert link, "the Malicious activity tab links its own CSV"
    rows = list(csv.DictReader(io.StringIO(plain.get(link.group(1).replace("&amp;", "&")).text)))
    assert rows == []  # no threat alerts: no decoder event either
    strange = plain.get(f"/api/v1/captures/{cid}/export", params={"format": "csv", "tab": "anomaly"}).text
    rows = list(csv.DictReader(io.StringIO(strange)))
    assert len(rows) == 41 and sum(r["event_type"] == "alert" for r in rows) == 20
    filtered = plain.get(f"/api/v1/captures/{cid}/export",
                         params={"format": "csv", "tab": "anomaly", "q": "alert.signature_id:2200002"}).text
    assert len(list(csv.DictReader(io.StringIO(filtered)))) == 19
    raw = plain.get(f"/api/v1/captures/{cid}/export", params={"format": "csv", "type": "alert"}).text
    assert len(list(csv.DictReader(io.StringIO(raw)))) == 20  # type= stays Suricata's records of that type


def test_malicious_tab_present_without_alerts(plain):
    """It answered 404 for a capture without alerts: now it says why there are none."""
    row = analysed(plain, data=pcap_bytes(packets=3), name="quiet.pcap")
    assert row["status"] == "done" and "alert" not in row["summary"]["counts"]
    page = plain.get(f"/captures/{row['id']}/tab/alert")
    assert page.status_code == 200 and 'id="no-ruleset"' in page.text
    assert "packettotal rules add FOLDER|TARBALL" in page.text and "packettotal rules update" in page.text
    summary = plain.get(f"/captures/{row['id']}").text
    assert 'data-tab="alert"' in summary and 'id="top-signatures"' in summary and 'id="no-ruleset"' in summary
    assert plain.get(f"/captures/{row['id']}/tab/anomaly").status_code == 404  # none of those
    api = plain.get(f"/api/v1/captures/{row['id']}").json()["summary"]["threats"]
    assert api["ruleset"]["threat"] == 0 and "No threat ruleset was loaded" in api["notice"]


def test_project_rules_alone_are_not_a_threat_ruleset(plain, tmp_path):
    row = analysed(plain, demo.write(tmp_path / "demo.pcap"))
    t = row["summary"]["threats"]
    assert [g["sid"] for g in t["signatures"]] == [9100011, 9100001] and t["notice"]
    assert [g["severity_name"] for g in t["signatures"]] == ["high", "low"]
    html = plain.get(f"/captures/{row['id']}/tab/alert").text
    assert 'id="no-ruleset"' in html and 'data-sid="9100001"' in html and "3 Low" in html


def test_grouped_alerts_with_references_escaped(ruled, tmp_path):
    row = analysed(ruled, demo.write(tmp_path / "demo.pcap"))
    s, cid = row["summary"], row["id"]
    t = s["threats"]
    assert t["notice"] is None and t["ruleset"]["threat"] == 2
    every = next(g for g in t["signatures"] if g["sid"] == 3000001)
    assert every["count"] == 8
    assert every["severity_name"] == "high" and every["category"] == "A Network Trojan was detected"
    assert len(every["pairs"]) == 6 and every["pairs_more"] == 0 and sum(p["count"] for p in every["pairs"]) == 8
    assert every["first_seen"] < every["last_seen"]
    dns = next(g for g in t["signatures"] if g["sid"] == 3000002)
    assert dns["count"] == 2 and dns["pairs"] == [{"src": "10.13.37.5", "dest": "10.13.37.1", "count": 2}]
    assert [r["url"] for r in every["references"]] == [
        "http://www.example.com/advisory?id=1&x=2", "http://cve.mitre.org/cgi-bin/cvename.cgi?name=2014-6271",
        None, None]

    html = ruled.get(f"/captures/{cid}/tab/alert").text
    assert 'id="no-ruleset"' not in html
    assert_inert(html, "alert tab")
    assert "<b class=pwn>" not in html and "TEST TROJAN every packet &lt;b class=pwn&gt;bold&lt;/b&gt;" in html
    links = re.findall(r'<td class="refs">(.*?)</td>', html)
    hrefs = [h for cell in links for h in re.findall(r'href="([^"]*)"', cell)]
    assert hrefs.count("http://www.example.com/advisory?id=1&amp;x=2") == 1 and len(hrefs) == 2
    assert "url: javascript:alert(9)" in html and "url: &#34;onmouseover=&#34;alert(10)" in html
    groups = html[html.index('id="signatures"'):html.index("Alerts one by one")]
    assert groups.index('data-sid="3000001"') < groups.index('data-sid="9100011"')  # severity, then count
    assert '<td class="n">8</td>' in groups and "10.13.37.5</a> → <a" in groups
    listed = ruled.get(f"/captures/{cid}/tab/alert", params={"q": "alert.signature_id:3000002"}).text
    assert "2 events" in listed

    summary = ruled.get(f"/captures/{cid}").text
    top = summary[summary.index('id="top-signatures"'):summary.index("<h2>Timeline</h2>")]
    assert 'id="no-ruleset"' not in top and EVERY_PACKET not in top and 'data-sid="3000001"' in top
    assert re.search(r"2 threat, 7 PacketTotal's, [\d,]+ protocol-event", summary)
    assert_inert(summary, "summary")


def test_captures_analysed_before_the_split_still_render(plain, tmp_path):
    """Summaries written before threats were told apart: the console falls back to EVE counts."""
    row = analysed(plain, demo.write(tmp_path / "old.pcap", {"host": "old.example.com"}))
    old = {k: v for k, v in row["summary"].items() if k != "threats"}
    db = plain.app.state.instance.service._db  # a state only an older version leaves
    db.update_capture(row["id"], summary=old)
    for path in ("", "/tab/alert"):
        page = plain.get(f"/captures/{row['id']}{path}")
        assert page.status_code == 200 and 'id="no-ruleset"' not in page.text, path
    assert "2 events" in plain.get(f"/captures/{row['id']}/tab/alert").text
