"""Hunting: rules of the test's own run over stored real captures through a fresh real Suricata
daemon, leaving the captures' analyses as they were (service, API, pages, console, CLI)."""

import json
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from packettotal.errors import QueryError, RulesRefused
from packettotal.ingest import hunts
from packettotal.service import PacketTotal
from packettotal.store import db as db_mod

from .captures import pcap_bytes
from .conftest import PCAPS, analyse, settings
from .test_cli import run
from .test_pages import assert_inert
from .web import analysed, client, wait_finished

DVWA = PCAPS / "cs-http_dvwa_sqlinjection.pcapng"  # 3 requests for /dvwa/vulnerabilities/sqli/?id=...
DPKT = PCAPS / "dpkt-http.pcap"                      # GET /download.html, and an ad request naming it
HEADERS = PCAPS / "sv-http-all-headers.pcap"         # GET /download.html once
DNS = PCAPS / "sv-dns-udp-txt.pcap"                  # no HTTP at all
HOSTILE = 'hunt dvwa <script>alert(1)</script>'
RULES = (f'alert http any any -> any any (msg:"{HOSTILE}"; http.uri; content:"/dvwa/vulnerabilities/sqli/"; '
         'sid:9900001; rev:1;)\n'
         '# a comment, and a blank line\n\n'
         'alert http any any -> any any (msg:"hunt download page"; http.uri; content:"/download.html"; '
         'sid:9900002; rev:1;)\n')
EXPECTED = {DVWA.name: {"9900001": 3}, DPKT.name: {"9900002": 2}, HEADERS.name: {"9900002": 1}}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with client(tmp_path_factory.mktemp("hunts")) as c:
        rows = {p.name: analysed(c, p) for p in (DVWA, DPKT, HEADERS, DNS)}
        assert all(r["status"] == "done" for r in rows.values())
        c.rows = rows
        yield c


def service(c) -> PacketTotal:
    return c.app.state.instance.service


def analysis(pt: PacketTotal, cid: str) -> dict:
    """What a hunt must leave as it was: the capture's row and its indexed events."""
    events = pt.capture_events(cid, limit=1000)
    return {"row": pt.capture(cid), "total": events.total, "events": [e["event"] for e in events.events]}


def test_a_hunt_finds_exactly_the_captures_holding_its_content(site):
    pt = service(site)
    ids = {name: r["id"] for name, r in site.rows.items()}
    before = {cid: analysis(pt, cid) for cid in ids.values()}
    hunt = pt.new_hunt(RULES)
    assert hunt["status"] == "queued" and hunt["name"] == HOSTILE
    seen: list[tuple[int, int]] = []
    done = pt.run_hunt(hunt["id"], progress=lambda n, total: seen.append((n, total)))
    assert done["status"] == "done" and done["error"] is None and (done["done"], done["total"]) == (4, 4)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {c["name"]: c["by_sid"] for c in done["captures"]} == EXPECTED  # the DNS capture: no hit
    assert [(r["sid"], r["alerts"], r["captures"]) for r in done["rules"]] == [(9900001, 3, 1), (9900002, 3, 2)]
    assert done["hit_captures"] == 3 and done["failed_captures"] == 0
    for c in done["captures"]:
        assert c["alerts"] == len(c["events"]) and c["error"] is None
        for e in c["events"]:
            want = "/dvwa/vulnerabilities/sqli/" if c["name"] == DVWA.name else "/download.html"
            assert want in unquote(e["http"]["url"]) and str(e["alert"]["signature_id"]) in c["by_sid"]
            assert "packet" not in e and "payload" not in e  # base64 copies are not kept
    # the captures' own analyses are as they were: rows (summary, ruleset, times) and events
    assert {cid: analysis(pt, cid) for cid in ids.values()} == before
    assert all("9900001" not in json.dumps(b["events"]) for b in before.values())
    # hunt:<id> is the captures holding hits, and combines with everything else
    found = pt.search(f"hunt:{hunt['id']}")
    assert {g["capture_id"] for g in found.groups} == {ids[n] for n in EXPECTED}
    assert [g["capture_id"] for g in pt.search(f"hunt:{hunt['id']} AND http.url:*dvwa*").groups] == [ids[DVWA.name]]
    assert {g["capture_id"] for g in pt.search("hunt:*").groups} >= {ids[n] for n in EXPECTED}
    assert pt.search("hunt:999999").groups == [] and pt.search("hunt:abc").groups == []
    with pytest.raises(QueryError, match="hunt is a hunt: give a value such as hunt:1"):
        pt.search("hunt:[1 TO 3]")
    panel = pt.capture_hunts(ids[DPKT.name])
    assert panel[0]["id"] == hunt["id"] and panel[0]["rules"] == [
        {"sid": 9900002, "msg": "hunt download page", "alerts": 2}]
    assert pt.capture_hunts(ids[DNS.name]) == []


def test_a_query_restricts_the_hunt(site):
    pt = service(site)
    done = pt.run_hunt(pt.new_hunt(RULES, query="http.url:*dvwa*", name="only DVWA")["id"])
    assert done["status"] == "done" and done["query"] == "http.url:*dvwa*" and done["name"] == "only DVWA"
    assert done["total"] == 1 and {c["name"]: c["by_sid"] for c in done["captures"]} == {DVWA.name: {"9900001": 3}}
    assert [(r["sid"], r["alerts"]) for r in done["rules"]] == [(9900001, 3), (9900002, 0)]
    with pytest.raises(QueryError):
        pt.new_hunt(RULES, query="http.url:(")


@pytest.mark.parametrize("rules, reason", [
    ('alert http any any -> any any (msg:"x"; http.uri; content:"a"; nosuchkeyword; sid:9900010;)',
     "Suricata refused the hunt's rules: Error: detect-parse: unknown rule keyword 'nosuchkeyword'"),
    ('alert http any any -> any any (msg:"no sid"; content:"sid:5;"; rev:1;)', "rule 1 has no sid"),
    ('alert ip any any -> any any (msg:"a"; sid:1;)\nalert ip any any -> any any (msg:"b"; sid:1;)',
     "rule 2 has sid 1, as rule 1 has"),
    ("# only a comment\n\n", "there is no rule to hunt with"),
    ("".join(f'alert ip any any -> any any (msg:"r"; sid:{i};)\n' for i in range(1, 1002)),
     "1,001 rules: a hunt takes at most 1,000"),
    ("#" * (1 << 20) + "\n", "the rules are 1,048,577 bytes: a hunt takes at most 1,048,576"),
])
def test_bad_rules_are_refused_with_the_reason_and_nothing_is_stored(site, rules, reason):
    before = service(site).list_hunts()
    r = site.post("/api/v1/hunts", json={"rules": rules})
    assert r.status_code == 400 and r.json()["error"] == "bad_rules", r.text
    assert r.json()["detail"].startswith(reason), r.json()["detail"]
    assert len(r.json()["detail"]) < 7000  # Suricata's lines are bounded
    assert service(site).list_hunts() == before
    assert not list((service(site).settings.work_dir / "hunts").glob("check-*"))  # its -T folder is gone


def test_the_form_refuses_bad_rules_with_suricatas_words(site):
    page = site.post("/hunts", data={"rules": 'alert ip any any -> any any (msg:"<b>x</b>"; bogus; sid:9900011;)',
                                     "query": "", "name": ""})
    assert page.status_code == 400 and "unknown rule keyword &#39;bogus&#39;" in page.text
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x" not in page.text  # kept in the form, escaped
    assert_inert(page.text, "refused hunt form")
    api = site.post("/api/v1/hunts", json={"rules": RULES, "query": "http.url:("})
    assert api.status_code == 400 and api.json()["error"] == "bad_query"


def wait_hunt(c, hunt_id: int, timeout: float = 60) -> dict:
    return wait_finished(c, f"/api/v1/hunts/{hunt_id}", f"hunt {hunt_id}", timeout)


def test_api_pages_console_and_delete(site):
    ids = {name: r["id"] for name, r in site.rows.items()}
    r = site.post("/api/v1/hunts", json={"rules": RULES, "name": "api <i>hunt</i>"})
    assert r.status_code == 202, r.text
    hunt_id = r.json()["id"]
    assert r.json()["status_url"] == f"/api/v1/hunts/{hunt_id}" and r.json()["page_url"] == f"/hunts/{hunt_id}"
    got = wait_hunt(site, hunt_id)
    assert got["status"] == "done" and got["progress"] == {"done": 4, "total": 4} and got["hit_captures"] == 3
    assert {c["name"]: c["by_sid"] for c in got["captures"]} == EXPECTED
    assert [(x["sid"], x["alerts"], x["captures"]) for x in got["rules"]] == [(9900001, 3, 1), (9900002, 3, 2)]
    assert hunt_id in [h["id"] for h in site.get("/api/v1/hunts").json()]
    found = site.get("/api/v1/search", params={"q": f"hunt:{hunt_id}"}).json()
    assert {g["capture_id"] for g in found["groups"]} == {ids[n] for n in EXPECTED}

    console = site.get(f"/captures/{ids[DVWA.name]}").text
    panel = console[console.index('id="hunts"'):console.index("</section>", console.index('id="hunts"'))]
    assert f'href="/hunts/{hunt_id}"' in panel and "api &lt;i&gt;hunt&lt;/i&gt;" in panel
    assert "hunt dvwa &lt;script&gt;alert(1)&lt;/script&gt; (3)" in panel and "<script>alert" not in console
    assert_inert(console, "console with a hunt")
    assert 'id="hunts"' not in site.get(f"/captures/{ids[DNS.name]}").text  # no hit, no panel
    assert 'id="hunts"' in site.get(f"/captures/{ids[DPKT.name]}/tab/http").text  # on every tab

    listing = site.get("/hunts").text
    assert f'href="/hunts/{hunt_id}"' in listing and 'id="new-hunt"' in listing
    detail = site.get(f"/hunts/{hunt_id}").text
    assert "hunt dvwa &lt;script&gt;" in detail and "<script>alert" not in detail
    assert f'href="/captures/{ids[DVWA.name]}"' in detail and "/dvwa/vulnerabilities/sqli/" in detail
    for html, where in ((listing, "hunts"), (detail, "hunt")):
        assert_inert(html, where)

    assert site.delete(f"/api/v1/hunts/{hunt_id}").status_code == 204
    assert site.get(f"/api/v1/hunts/{hunt_id}").status_code == 404
    assert site.delete(f"/api/v1/hunts/{hunt_id}").status_code == 404
    assert site.get(f"/hunts/{hunt_id}").status_code == 404
    assert site.get("/api/v1/search", params={"q": f"hunt:{hunt_id}"}).json()["groups"] == []
    assert f'href="/hunts/{hunt_id}"' not in site.get(f"/captures/{ids[DVWA.name]}").text


def test_the_form_starts_a_hunt_and_deletes_it(site):
    r = site.post("/hunts", data={"rules": RULES, "query": "http.url:*download*", "name": "form hunt"})
    assert r.status_code == 303
    hunt_id = int(r.headers["location"].rsplit("/", 1)[1])
    got = wait_hunt(site, hunt_id)
    assert got["name"] == "form hunt" and {c["name"] for c in got["captures"]} == {DPKT.name, HEADERS.name}
    assert site.post(f"/hunts/{hunt_id}/delete").status_code == 303
    assert site.get(f"/api/v1/hunts/{hunt_id}").status_code == 404
    assert site.post("/hunts", data={"rules": RULES}, headers={"origin": "http://evil.example"}).status_code == 403


def test_a_capture_that_cannot_be_read_is_recorded_and_the_hunt_goes_on(tmp_path):
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        good = analyse(pt, DPKT)
        crafted = tmp_path / "broken.pcap"
        crafted.write_bytes(pcap_bytes(packets=3))
        broken = analyse(pt, crafted)
        assert good["status"] == broken["status"] == "done"
        pt.capture_path(broken["id"]).write_bytes(pcap_bytes(packets=0))  # its stored copy lost its packets
        done = pt.run_hunt(pt.new_hunt(RULES)["id"])
        assert done["status"] == "done" and done["done"] == 2 and done["hit_captures"] == 1
        assert done["failed_captures"] == 1
        rows = {c["capture_id"]: c for c in done["captures"]}
        assert rows[good["id"]]["by_sid"] == {"9900002": 2} and rows[good["id"]]["error"] is None
        assert rows[broken["id"]]["alerts"] == 0
        assert rows[broken["id"]]["error"].startswith("Suricata could not read the capture")
        assert pt.search(f"hunt:{done['id']}").groups[0]["capture_id"] == good["id"]  # failed: not a hit
        # deleting a capture deletes its hits (the foreign key cascades)
        pt._db._exec(sa.delete(db_mod.captures).where(db_mod.captures.c.id == good["id"]))
        assert [c["capture_id"] for c in pt.hunt(done["id"])["captures"]] == [broken["id"]]
    finally:
        pt.close()


def test_rules_are_parsed_with_bounds_and_their_msgs():
    rules = hunts.parse_rules(RULES)
    assert [(r.sid, r.msg) for r in rules] == [(9900001, HOSTILE), (9900002, "hunt download page")]
    assert rules[0].text.startswith("alert http") and "#" not in "".join(r.text for r in rules)
    unnamed = hunts.parse_rules('alert ip any any -> any any (content:"msg:"; sid:7;)')
    assert unnamed[0].msg == "sid 7"
    with pytest.raises(RulesRefused, match="more than one sid"):
        hunts.parse_rules("alert ip any any -> any any (sid:1; sid:2;)")


def test_cli_round_trip(tmp_path):
    home = tmp_path / "home"
    rows = json.loads(run(home, "analyze", "--json", str(DPKT), str(DNS), check=0).stdout)
    rules = tmp_path / "hunt.rules"
    rules.write_text(RULES)
    out = run(home, "hunt", str(rules), "--name", "cli hunt", check=0).stdout.decode()
    assert "hunt 1  cli hunt  done  2 of 2 captures read, 1 hit  (search: hunt:1)" in out
    assert "sid 9900002         2 alerts in    1 captures  hunt download page" in out
    assert f"{rows[0]['id'][:16]}       2 alerts  {DPKT.name}: hunt download page (2)" in out
    shown = json.loads(run(home, "hunts", "show", "1", "--json", check=0).stdout)
    assert [c["capture_id"] for c in shown["captures"]] == [rows[0]["id"]] and len(shown["captures"][0]["events"]) == 2
    assert "    1  done     2 of 2 read, 1 hit  cli hunt" in run(home, "hunts", check=0).stdout.decode()
    as_json = json.loads(run(home, "hunt", str(rules), "--query", "dns.rrname:*", "--json", check=0).stdout)
    assert as_json["id"] == 2 and as_json["query"] == "dns.rrname:*" and as_json["total"] == 2
    bad = tmp_path / "bad.rules"
    bad.write_text('alert ip any any -> any any (msg:"x"; bogus; sid:1;)\n')
    refused = run(home, "hunt", str(bad), check=2).stderr.decode()
    assert "Suricata refused the hunt's rules: Error: detect-parse: unknown rule keyword 'bogus'" in refused
    assert "hunt 1 deleted" in run(home, "hunts", "delete", "1", check=0).stdout.decode()
    assert "no hunt 1" in run(home, "hunts", "show", "1", check=1).stderr.decode()


def test_a_hunt_cut_short_runs_again_at_the_next_start(tmp_path):
    home = tmp_path / "home"
    pt = PacketTotal(settings(home))
    try:
        cid = analyse(pt, DPKT)["id"]
        hunt_id = pt.new_hunt(RULES)["id"]
        left = pt.run_hunt(hunt_id, stopping=lambda: True)  # `serve` stopping: before the first capture
        assert left["status"] == "queued" and left["done"] == 0 and left["captures"] == []
        assert pt.unfinished_hunts() == [hunt_id]
    finally:
        pt.close()
    with client(home) as c:  # the web instance runs it in its hunt thread
        got = wait_hunt(c, hunt_id)
    assert got["status"] == "done" and [x["capture_id"] for x in got["captures"]] == [cid]
