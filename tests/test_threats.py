"""Threats told apart from protocol events, without Suricata: rule classes from the real rule
files, alerts grouped by signature, severities named, references parsed from rule text."""

from pathlib import Path

import orjson

from packettotal.ingest import pipeline, suricata, threats

from .conftest import settings

DECODER_SID = 2200002  # "SURICATA IPv4 total length smaller than header size", decoder-events.rules
EICAR_SID = 9100001    # the project's own


def alert(sid: int, src: str, dest: str, ts: str, severity: int = 2, signature: str = "ET TEST") -> bytes:
    return orjson.dumps({"timestamp": ts, "event_type": "alert", "src_ip": src, "dest_ip": dest,
                         "alert": {"signature_id": sid, "signature": signature, "category": "A Network Trojan",
                                   "severity": severity}})


def test_rule_classes_by_the_file_a_sid_comes_from(tmp_path):
    user = tmp_path / "rules"
    user.mkdir()
    (user / "emerging-trojan.rules").write_text(
        'alert tcp any any -> any any (msg:"ET TROJAN x"; sid:2000001; rev:1;)\n')
    # a newer copy of a protocol-event file in the user's folder (as ET tarballs ship them)
    (user / "quic-events.rules").write_text(
        'alert quic any any -> any any (msg:"SURICATA QUIC new"; sid:2231999; rev:1;)\n'
        '#alert quic any any -> any any (msg:"SURICATA QUIC off"; sid:2231998; rev:1;)\n')
    s = settings(tmp_path / "home", user_rules_dir=user)
    rules = suricata.build_rules(s, tmp_path / "combined.rules")
    classes = suricata.rule_classes(s, {**rules, 2231998: "enabled by a merged ruleset"})
    assert classes[DECODER_SID] == "protocol" and classes[2231999] == "protocol" and classes[2231998] == "protocol"
    assert classes[EICAR_SID] == "own" and classes[2000001] == "threat"
    assert set(classes) == set(rules) | {2231998}
    counts = {c: list(classes.values()).count(c) for c in ("protocol", "own", "threat")}
    assert counts["own"] == 7 and counts["threat"] == 1 and counts["protocol"] > 300


def test_alerts_grouped_by_signature_bounded():
    lines = [alert(2000001, "10.0.0.5", f"203.0.113.{i % 60}", f"2024-03-01T10:00:{i % 60:02d}.000000+0000")
             for i in range(120)]
    lines += [alert(2000002, "10.0.0.6", "198.51.100.1", "2024-03-01T09:59:00.000000+0000", severity=1)]
    lines += [alert(DECODER_SID, "10.0.0.7", "10.0.0.8", "2024-03-01T10:00:00.000000+0000", severity=3,
                    signature="SURICATA IPv4 total length smaller than header size")] * 3
    lines += [orjson.dumps({"event_type": "anomaly", "anomaly": {"type": "decode"}})]
    acc = pipeline.Accumulator(pipeline.Limits())
    list(acc.records(lines))
    classes = {2000001: "threat", 2000002: "threat", DECODER_SID: "protocol"}
    rules = {2000001: 'alert ip any any -> any any (msg:"ET TEST"; reference:url,example.com/a; sid:2000001;)'}
    s = acc.finish("c" * 64, len(lines), pipeline.RunFacts(1), rules, classes, {"url": "http://"}).summary
    assert (s.alerts, s.anomalies) == (121, 4)  # protocol-event alerts are strange, not malicious
    t = s.threats
    assert t["notice"] is None and t["ruleset"] == {"threat": 2, "own": 0, "protocol": 1}
    assert (t["protocol_alerts"], t["protocol_sids"], t["signature_count"]) == (3, [DECODER_SID], 2)
    high, trojan = t["signatures"]  # most severe first
    assert (high["sid"], high["severity_name"], high["count"]) == (2000002, "high", 1)
    assert (trojan["count"], trojan["severity_name"], trojan["category"]) == (120, "medium", "A Network Trojan")
    assert (trojan["first_seen"], trojan["last_seen"]) == ("2024-03-01T10:00:00.000000+0000",
                                                           "2024-03-01T10:00:59.000000+0000")
    # 60 distinct pairs: PAIRS_KEPT counted, PAIRS_LISTED listed, the rest counted as more
    assert len(trojan["pairs"]) == threats.PAIRS_LISTED and trojan["pairs"][0]["count"] == 2
    assert trojan["pairs_more"] == 120 - 2 * threats.PAIRS_LISTED
    assert trojan["references"] == [{"system": "url", "value": "example.com/a", "url": "http://example.com/a"}]
    assert "2000001" in s.rules


def test_no_threat_ruleset_is_said():
    acc = pipeline.Accumulator(pipeline.Limits())
    list(acc.records([alert(EICAR_SID, "10.0.0.5", "10.0.0.6", "2024-03-01T10:00:00.000000+0000")]))
    s = acc.finish("c" * 64, 1, pipeline.RunFacts(1), {}, {EICAR_SID: "own", DECODER_SID: "protocol"}, {}).summary
    assert s.alerts == 1 and s.threats["signatures"][0]["class"] == "own"
    assert "No threat ruleset was loaded" in s.threats["notice"]
    assert "packettotal rules add FOLDER|TARBALL" in s.threats["notice"]
    assert "packettotal rules update" in s.threats["notice"]


def test_references_parsed_linked_only_when_http():
    prefixes = threats.reference_prefixes()  # Suricata's own reference.config
    assert prefixes["cve"].startswith("http://cve.mitre.org/") and prefixes["url"] == "http://"
    rule = ('alert http any any -> any any (msg:"reference:url,evil.example/not-an-option\\; really"; '
            'content:"a\\;reference:url,inside.example"; reference:url,www.example.com/x?a=1; '
            'reference:cve,2014-6271; reference: url , https://secure.example.org/y ; '
            'reference:url,javascript:alert(1); reference:md5,"><img src=x>; reference:nosuch,abc; '
            'reference:url,exa mple.com; reference:url,"onmouseover="x; sid:1; rev:1;)')
    refs = threats.references(rule, prefixes)
    assert [(r["system"], r["value"], r["url"]) for r in refs] == [
        ("url", "www.example.com/x?a=1", "http://www.example.com/x?a=1"),
        ("cve", "2014-6271", prefixes["cve"] + "2014-6271"),
        ("url", "https://secure.example.org/y", "https://secure.example.org/y"),
        ("url", "javascript:alert(1)", None),          # http://javascript:alert(1): no host
        ("md5", '"><img src=x>', None),                # a space: not a URL
        ("nosuch", "abc", None),                       # no prefix known
        ("url", "exa mple.com", None),
        ("url", '"onmouseover="x', None),             # not a host name
    ]
    assert threats.references("not a rule", prefixes) == []
    many = "alert ip any any -> any any (" + "reference:url,a.example; " * 30 + "sid:2;)"
    assert len(threats.references(many, prefixes)) == threats.MAX_REFERENCES


def test_severity_names():
    assert [threats.severity_name(n) for n in (1, 2, 3, 4, 7, 0, None, "1")] == [
        "high", "medium", "low", "info", "info", "unknown", "unknown", "unknown"]


def test_reference_config_missing_still_links_urls(tmp_path):
    assert threats.reference_prefixes(Path(tmp_path / "none.config")) == {"url": "http://"}
