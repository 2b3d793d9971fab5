"""IOC feeds for real: feeds made here (stix2 bundles, MISP events, CSV), real Suricata on dev
captures, retro-hunts through their stored observables, matching at ingest, the console and exports.

From a run of these captures (Suricata 7.0.10, this project's config), values in their observables:
- fga-agency.com (http.hostname): cs-ek_to_cryptowall4.pcapng only
- homealldaylong.com (http.hostname): cs-ek_to_cryptowall4.pcapng and cs-cryptowall4_c2.pcapng
- 172.16.0.114 (src_ip/dest_ip): cs-ratinfected.pcapng only
- JA3 308b0bd904abbef5e0034a1ff7a78920 (tls.ja3.hash): sv-tls-cert-chain.pcap only
- xxxxxx@xxxxx.co.uk and 217.12.11.66: sv-smtp-attachment.pcap (analysed after the feeds)
"""

import datetime as dt
import json
from pathlib import Path

import pytest
import stix2

from packettotal import cli
from packettotal.errors import IntelError
from packettotal.ingest import intel
from packettotal.service import PacketTotal

from .conftest import PCAPS, analyse, settings, use_home
from .web import client

SCRIPT = "<script>alert(1)</script>"
EARLY = ("cs-ek_to_cryptowall4.pcapng", "cs-cryptowall4_c2.pcapng", "cs-ratinfected.pcapng", "cs-aurora.pcapng",
         "sv-http-4files.pcap", "sv-dns-udp-txt.pcap", "sv-tls-cert-chain.pcap")
LATE = "sv-smtp-attachment.pcap"
JA3 = "308b0bd904abbef5e0034a1ff7a78920"
RULE = ('alert http any any -> any any (msg:"PT TEST host fga-agency"; http.host; content:"fga-agency.com"; '
        'sid:9900001; rev:1;)\n')


def stix_bundle() -> bytes:
    me = stix2.Identity(name="Test CERT", identity_class="organization")
    return stix2.Bundle(
        me,
        stix2.Indicator(pattern="[domain-name:value = 'FGA-Agency.com.']", pattern_type="stix", confidence=85,
                        description=f"EK landing {SCRIPT}", created_by_ref=me.id),
        stix2.Indicator(pattern="[ipv4-addr:value = '172.16.0.114' OR ipv4-addr:value = '203.0.113.77']",
                        pattern_type="stix", valid_until="2099-01-01T00:00:00Z", created_by_ref=me.id),
        stix2.Indicator(pattern="[domain-name:value = 'nowhere.invalid-example.org']", pattern_type="stix"),
        stix2.Indicator(pattern="[ipv4-addr:value = '172.16.0.114'] AND [domain-name:value = 'fga-agency.com']",
                        pattern_type="stix"),
        stix2.Indicator(pattern="[ipv4-addr:value ISSUBSET '172.16.0.0/16']", pattern_type="stix"),
        stix2.Indicator(pattern='alert ip any any -> any any (sid:1;)', pattern_type="snort"),
    ).serialize().encode()


def misp_event() -> bytes:
    attrs = [{"type": "hostname", "value": "homealldaylong.com", "to_ids": True, "comment": f"C2 {SCRIPT}"},
             {"type": "ja3-fingerprint-md5", "value": JA3.upper(), "to_ids": True},
             {"type": "ip-dst", "value": "198.51.100.9", "to_ids": True},
             {"type": "filename", "value": "invoice.exe", "to_ids": True},
             {"type": "ip-dst|port", "value": "172.16.0.114|4433", "to_ids": True}]
    return json.dumps({"Event": {"info": "CryptoWall 4", "Orgc": {"name": "Test MISP"}, "Attribute": attrs[:3],
                                 "Object": [{"name": "file", "Attribute": attrs[3:]}]}}).encode()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("intel-home")


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("intel-rules")
    (folder / "test.rules").write_text(RULE)
    return folder


@pytest.fixture(scope="module")
def pt(home, rules_dir):
    service = PacketTotal(settings(home, user_rules_dir=rules_dir))
    yield service
    service.close()


@pytest.fixture(scope="module")
def caps(pt) -> dict[str, str]:
    return {name: analyse(pt, PCAPS / name)["id"] for name in EARLY}


@pytest.fixture(scope="module")
def feeds(pt, caps) -> dict[str, dict]:
    return {"stix": pt.import_feed(stix_bundle(), "certfeed", None, "cert.json"),
            "misp": pt.import_feed(misp_event(), "mispfeed", None, "event.json")}


def holders(pt, values: list[str]) -> set[str]:
    return {cid for cid, _ in pt._db.holders(values)}


def test_stix_and_misp_feeds_retro_hunt_exactly_the_captures_holding_them(pt, caps, feeds):
    names = {cid: name for name, cid in caps.items()}
    stix_hit = pt.search("intel:certfeed").groups
    misp_hit = pt.search("intel:MISPFEED").groups
    assert {names[g["capture_id"]] for g in stix_hit} == {"cs-ek_to_cryptowall4.pcapng", "cs-ratinfected.pcapng"}
    assert {names[g["capture_id"]] for g in misp_hit} == {"cs-ek_to_cryptowall4.pcapng", "cs-cryptowall4_c2.pcapng",
                                                          "sv-tls-cert-chain.pcap"}
    # exactly the stored captures whose observables hold a value (none hold the others)
    assert {g["capture_id"] for g in stix_hit} == holders(pt, ["fga-agency.com", "172.16.0.114"])
    assert {g["capture_id"] for g in misp_hit} == holders(pt, ["homealldaylong.com", JA3])
    assert not holders(pt, ["203.0.113.77", "nowhere.invalid-example.org", "198.51.100.9"])
    assert {g["capture_id"] for g in pt.search("intel:*").groups} == \
        {g["capture_id"] for g in stix_hit + misp_hit}
    assert all(g["intel"] for g in stix_hit)
    assert feeds["stix"]["indicators"] == 4 and feeds["stix"]["captures"] == 2
    assert feeds["stix"]["skipped"] == {"pattern_type snort (not read)": 1, "patterns not of the simple equality "
                                        "kind (" + intel.STIX_SUPPORTED + ")": 2}
    assert feeds["misp"]["indicators"] == 3 and feeds["misp"]["captures"] == 3
    assert feeds["misp"]["skipped"] == {"attributes of type filename (not read)": 1,
                                        "attributes of type ip-dst|port (not read)": 1}
    ek = pt.capture_intel(caps["cs-ek_to_cryptowall4.pcapng"])
    assert [(h["feed"], h["kind"], h["value"], h["confidence"], h["source"]) for h in ek] == [
        ("certfeed", "domain", "fga-agency.com", 85, "Test CERT"),
        ("mispfeed", "domain", "homealldaylong.com", None, "Test MISP")]
    assert {f["field"] for f in ek[0]["fields"]} >= {"http.hostname"} and ek[0]["count"] > 0
    assert pt.search("intel:nosuch").groups == []
    for name, cid in caps.items():  # no re-analysis
        assert pt.capture(cid)["status"] == "done", name


def test_a_capture_analysed_afterwards_is_matched_at_ingest_but_not_by_an_expired_indicator(pt, caps, feeds):
    csv = (b"value,type,description,expires\n"
           b"XXXXXX@xxxxx.co.uk,email,sender,2099-12-31\n"
           b"217.12.11.66,ip,old relay,2001-01-01T00:00:00Z\n")
    row = pt.import_feed(csv, "mailfeed", "csv", "mail.csv")
    assert (row["indicators"], row["expired"], row["captures"]) == (2, 1, 0)
    cid = analyse(pt, PCAPS / LATE)["id"]
    hits = pt.capture_intel(cid)
    assert [(h["kind"], h["value"], h["expired"]) for h in hits] == [("email", "xxxxxx@xxxxx.co.uk", False)]
    assert holders(pt, ["217.12.11.66"]) == {cid}  # the expired one is there, and did not match
    assert [g["capture_id"] for g in pt.search("intel:mailfeed").groups] == [cid]
    badges = pt.intel_for("217.12.11.66")
    assert [(b["feed"], b["expired"]) for b in badges] == [("mailfeed", True)]


@pytest.mark.parametrize(("text", "line", "what"), [
    (b"value,type\n10.0.0.1,ip\nnot-an-address,ip\n", 3, "'not-an-address' is not a valid ip"),
    (b"# feed\nvalue,confidence\n10.0.0.1,50\n10.0.0.2,high\n", 4, "confidence 'high'"),
    (b"value,type\n10.0.0.1,ipaddr\n", 2, "type 'ipaddr' is not one of"),
    (b"value,expires\nevil.example.com,31/12/2025\n", 2, "expires '31/12/2025' is not an ISO 8601"),
    (b"value,typ\n10.0.0.1,ip\n", 1, "unknown columns 'typ'"),
    (b"value\n10.0.0.1,extra\n", 2, "2 cells, but the header names 1"),
    (b"value\n???\n", 2, "cannot tell what '???' is: give its type"),
])
def test_a_bad_csv_line_is_refused_naming_it(text, line, what):
    with pytest.raises(IntelError) as err:
        intel.parse(text, "csv")
    assert err.value.message.startswith(f"line {line}: ") and what in err.value.message


def test_a_refused_reimport_keeps_the_feed_and_a_good_one_replaces_it(pt, caps, feeds):
    ek, c2 = caps["cs-ek_to_cryptowall4.pcapng"], caps["cs-cryptowall4_c2.pcapng"]
    pt.import_feed(b"value\nhomealldaylong.com\n", "swapfeed", None, "a.csv")
    assert {g["capture_id"] for g in pt.search("intel:swapfeed").groups} == {ek, c2}
    with pytest.raises(IntelError, match="^line 3: 'x y' is not a valid domain"):
        pt.import_feed(b"value,type\nfga-agency.com,domain\nx y,domain\n", "swapfeed", None, "b.csv")
    assert {g["capture_id"] for g in pt.search("intel:swapfeed").groups} == {ek, c2}
    row = pt.import_feed(b"value,type\nfga-agency.com,domain\n", "swapfeed", None, "c.csv")
    assert (row["indicators"], row["captures"], row["origin"]) == (1, 1, "c.csv")
    assert [g["capture_id"] for g in pt.search("intel:swapfeed").groups] == [ek]
    pt.remove_feed("swapfeed")
    assert pt.search("intel:swapfeed").groups == [] and "swapfeed" not in {f["name"] for f in pt.list_feeds()}


def test_feed_formats_are_told_from_the_content_and_names_are_checked():
    assert intel.guess_format(stix_bundle()) == "stix" and intel.guess_format(misp_event()) == "misp"
    assert intel.guess_format(b"value\n1.2.3.4\n") == "csv"
    with pytest.raises(IntelError, match="neither a STIX 2.1 bundle"):
        intel.guess_format(b'{"hello": 1}')
    with pytest.raises(IntelError, match="not a valid STIX 2.1 bundle"):
        intel.parse(b'{"type": "bundle", "id": "bundle--x", "objects": [{"type": "indicator"}]}', "stix")
    with pytest.raises(IntelError, match="feed name"):
        intel.check_name("two words")
    assert intel.default_name("/x/abuse.ch-urls.csv") == "abuse.ch-urls"
    assert intel.normalise("url", "HTTP://Evil.Example:80") == "http://evil.example/"


def test_urls_and_file_hashes_match_in_the_form_observables_keep_them(pt, caps, feeds):
    sha = "548f2d6f4d0d820c6c5ffbeffcbd7f0e73193e2932eefe542accc84762deec87"  # a file of cs-aurora.pcapng
    row = pt.import_feed(f"value\nHTTP://FGA-Agency.com:80/VOEHSQ.php?h=ttfkjb668o38k1z\n{sha.upper()}\n".encode(),
                         "urlhash", None, "u.csv")
    assert row["indicators"] == 2
    expected = holders(pt, ["http://fga-agency.com/VOEHSQ.php?h=ttfkjb668o38k1z", sha])
    assert expected == {caps["cs-ek_to_cryptowall4.pcapng"], caps["cs-aurora.pcapng"]}
    assert {g["capture_id"] for g in pt.search("intel:urlhash").groups} == expected
    pt.remove_feed("urlhash")


def test_hostile_json_is_refused_not_crashed():
    with pytest.raises(IntelError, match="nested too deeply|not valid JSON"):
        intel.parse(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(IntelError, match="neither a STIX"):
        intel.parse(b"[" * 500 + b"]" * 500)


def test_exports_parse_back_and_name_the_captures_alerts_and_indicators(pt, caps, feeds, tmp_path, home, rules_dir,
                                                                        monkeypatch):
    use_home(monkeypatch, home)
    cid = caps["cs-ek_to_cryptowall4.pcapng"]
    bundle = stix2.parse(pt.export_intel(cid, "stix"), allow_custom=False)
    kinds = [o.type for o in bundle.objects]
    assert kinds.count("indicator") == 2 and kinds.count("sighting") == 2 and kinds.count("note") == 1
    patterns = sorted(o.pattern for o in bundle.objects if o.type == "indicator")
    assert patterns == ["[domain-name:value = 'fga-agency.com']", "[domain-name:value = 'homealldaylong.com']"]
    note = next(o for o in bundle.objects if o.type == "note")
    assert note.abstract == "Suricata alert: PT TEST host fga-agency" and "signature 9900001" in note.content
    group = next(o for o in bundle.objects if o.type == "grouping")
    assert group.name == "PacketTotal capture cs-ek_to_cryptowall4.pcapng" and cid in group.description
    seen = next(o for o in bundle.objects if o.type == "observed-data")
    assert seen.first_observed.year == 2016
    event = json.loads(pt.export_intel(cid, "misp"))["Event"]
    values = [(a["type"], a["value"]) for a in event["Attribute"]]
    assert values == [("domain", "fga-agency.com"), ("domain", "homealldaylong.com"),
                      ("text", "Suricata alert 9900001: PT TEST host fga-agency")]
    assert cid in event["info"]
    back = intel.parse(json.dumps({"Event": event}).encode())  # our own event imports again
    assert [(i.kind, i.value) for i in back.indicators] == [("domain", "fga-agency.com"),
                                                            ("domain", "homealldaylong.com")]
    config = tmp_path / "config.toml"
    config.write_text(f'home = "{home}"\nuser_rules_dir = "{rules_dir}"\nengines = 1\n')
    out = tmp_path / "x.stix.json"
    assert cli.run(["--config", str(config), "export", cid[:16], "--format", "stix", "-o", str(out)]) == 0
    assert {o.type for o in stix2.parse(out.read_text()).objects} >= {"indicator", "sighting", "grouping"}


def test_cli_intel_add_list_remove(pt, caps, feeds, tmp_path, home, rules_dir, capsys, monkeypatch):
    use_home(monkeypatch, home)
    config = tmp_path / "config.toml"
    config.write_text(f'home = "{home}"\nuser_rules_dir = "{rules_dir}"\nengines = 1\n')
    feed = tmp_path / "rat-c2.csv"
    feed.write_text("value,type,confidence\n172.16.0.114,ip,70\n")
    assert cli.run(["--config", str(config), "intel", "add", str(feed)]) == 0
    assert "rat-c2: 1 indicators (0 expired) from csv, in 1 captures (search: intel:rat-c2)" in capsys.readouterr().out
    assert cli.run(["--config", str(config), "intel", "list"]) == 0
    assert "rat-c2" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("value,confidence\n172.16.0.114,x\n")
    assert cli.run(["--config", str(config), "intel", "add", str(bad), "--name", "rat-c2"]) == 1
    assert "line 2: confidence 'x'" in capsys.readouterr().err
    assert cli.run(["--config", str(config), "intel", "remove", "rat-c2"]) == 0
    assert cli.run(["--config", str(config), "intel", "remove", "rat-c2"]) != 0


def test_console_tab_pivot_badge_and_search_escape_a_hostile_description(pt, caps, feeds, home, rules_dir):
    cid = caps["cs-ek_to_cryptowall4.pcapng"]
    c = client(home, user_rules_dir=rules_dir)
    try:
        tab = c.get(f"/captures/{cid}/intel")
        assert tab.status_code == 200
        assert "fga-agency.com" in tab.text and "certfeed" in tab.text and "http.hostname" in tab.text
        assert "EK landing &lt;script&gt;alert(1)&lt;/script&gt;" in tab.text and SCRIPT not in tab.text
        assert 'data-tab="intel">Intelligence <span class="count">2</span>' in c.get(f"/captures/{cid}").text
        pivot = c.get("/ioc/homealldaylong.com")
        assert "in feed mispfeed" in pivot.text and SCRIPT not in pivot.text
        assert "C2 &lt;script&gt;" in pivot.text
        assert c.get("/api/v1/ioc/homealldaylong.com").json()["intel"][0]["feed"] == "mispfeed"
        search = c.get("/search", params={"q": "intel:certfeed"})
        assert search.status_code == 200 and "in feed certfeed" in search.text
        assert c.get("/api/v1/search", params={"q": "intel:certfeed"}).json()["groups"][0]["intel"]
        api = c.get(f"/api/v1/captures/{cid}/intel").json()
        assert api[0]["description"] == f"EK landing {SCRIPT}"  # JSON: as written
        stix = c.get(f"/api/v1/captures/{cid}/export", params={"format": "stix"})
        assert stix.status_code == 200 and stix2.parse(stix.text).type == "bundle"
        assert json.loads(c.get(f"/api/v1/captures/{cid}/export", params={"format": "misp"}).text)["Event"]
    finally:
        c.app.state.instance.stop()


def test_api_and_page_import_list_and_remove(pt, caps, feeds, home, rules_dir):
    c = client(home, user_rules_dir=rules_dir)
    try:
        r = c.post("/api/v1/intel", json={"name": "apifeed", "content": "value\nfga-agency.com\n"})
        assert r.status_code == 201 and r.json()["captures"] == 1, r.text
        r = c.post("/api/v1/intel", params={"name": "upfeed"}, files={"file": ("e.json", misp_event())})
        assert r.status_code == 201 and r.json()["format"] == "misp" and r.json()["captures"] == 3, r.text
        r = c.post("/api/v1/intel", json={"name": "apifeed", "content": "value,type\n1.2.3.4,domain\n"})
        assert r.status_code == 400 and r.json()["error"] == "bad_feed" and "line 2" in r.json()["detail"]
        assert c.post("/api/v1/intel", json={"name": "x"}).status_code == 422
        assert {f["name"]: f["captures"] for f in c.get("/api/v1/intel").json()}["apifeed"] == 1
        page = c.post("/intel", files={"file": ("page-feed.csv", b"value\n172.16.0.114\n")},
                      headers={"origin": "http://testserver"})
        assert page.status_code == 200 and "Imported <strong>page-feed</strong>" in page.text
        refused = c.post("/intel", files={"file": ("bad.csv", b"value,type\nzz,md5\n")})
        assert refused.status_code == 400 and "Refused: line 2: &#39;zz&#39; is not a valid md5" in refused.text
        cross = c.post("/intel", files={"file": ("x.csv", b"value\n1.2.3.4\n")}, headers={"origin": "http://evil"})
        assert cross.status_code == 403
        listing = c.get("/intel")
        assert "page-feed" in listing.text and "apifeed" in listing.text and 'action="/intel"' in listing.text
        for name in ("apifeed", "upfeed"):
            assert c.delete(f"/api/v1/intel/{name}").status_code == 204
        assert c.post("/intel/page-feed/delete").status_code == 303
        assert c.delete("/api/v1/intel/apifeed").status_code == 404
        assert {f["name"] for f in c.get("/api/v1/intel").json()} == {"certfeed", "mispfeed", "mailfeed"}
    finally:
        c.app.state.instance.stop()


def test_expiry_is_utc(pt):
    ind = intel.parse(b"value,expires\n10.0.0.1,2030-01-01T02:00:00+02:00\n").indicators[0]
    assert ind.expires == dt.datetime(2030, 1, 1, 0, 0)
