"""The ingest pipeline without Suricata: EVE lines in; records to index, observables, carved-file
records, rule texts and a typed summary out."""

import orjson

from packettotal.ingest import pipeline


def line(**rec) -> bytes:
    return orjson.dumps({"timestamp": "2024-03-01T10:00:00.000000+0000", "src_ip": "10.0.0.5",
                         "dest_ip": "203.0.113.9", "src_port": 40000, "dest_port": 80, "proto": "TCP",
                         **rec})


LINES = [
    line(event_type="flow", app_proto="http", community_id="1:abc=",
         flow={"bytes_toserver": 500, "bytes_toclient": 7000}),
    line(event_type="http", http={"hostname": "evil.example.com", "url": "/a", "http_user_agent": "curl/8"}),
    line(event_type="alert", alert={"signature_id": 2000001, "signature": "ET TEST"}),
    line(event_type="alert", alert={"signature_id": 2000001, "signature": "ET TEST"}),
    line(event_type="alert", alert={"signature_id": 9999999, "signature": "not loaded"}),
    line(event_type="fileinfo", fileinfo={"sha256": "ab" * 32, "filename": "x.exe"}),
    line(event_type="dns", dns={"rrname": "a" * 5000 + ".com"}),
    b"this is not json",
    orjson.dumps({"event_type": "stats", "stats": {"uptime": 1}}),
]


def run(lines, **limits):
    acc = pipeline.Accumulator(pipeline.Limits(**{"max_string": 512, **limits}))
    indexed = list(acc.records(lines))
    out = acc.finish("c" * 64, len(indexed), pipeline.RunFacts(packets_read=7, expected_packets=9,
                                                               errors=("a warning from Suricata",)),
                     rules={2000001: 'alert http any any -> any any (msg:"ET TEST"; sid:2000001;)'},
                     rule_class={2000001: "threat"}, prefixes={})
    return acc, indexed, out


def test_counts_summary_rules_and_warnings():
    acc, indexed, out = run(LINES)
    s = out.summary
    assert s.counts == {"alert": 3, "dns": 1, "fileinfo": 1, "flow": 1, "http": 1}
    assert (s.events, s.indexed, s.alerts, s.anomalies) == (7, 7, 3, 0)
    assert len(indexed) == 8 and indexed[-1]["event_type"] == "stats"  # stored, not counted
    assert s.rules == {"2000001": 'alert http any any -> any any (msg:"ET TEST"; sid:2000001;)'}
    assert s.top_talkers[0] == {"ip": "10.0.0.5", "bytes": 7500} and s.protocols == {"http": 1}
    assert [f["fileinfo"]["filename"] for f in acc.fileinfo] == ["x.exe"]
    w = "\n".join(out.warnings)
    assert "Suricata read 7 of the 9 packets" in w and "Suricata: a warning from Suricata" in w
    assert "1 EVE lines could not be read" in w and "over-long values were cut to 512 bytes" in w
    assert s.as_dict()["counts"] == s.counts


def test_observables_come_out_with_counts():
    _, _, out = run(LINES)
    got = {(o["kind"], o["value"], o["field"]): o["count"] for o in out.observables}
    assert got[("domain", "evil.example.com", "http.hostname")] == 1
    assert got[("ip", "10.0.0.5", "src_ip")] == 7
    assert got[("sha256", "ab" * 32, "fileinfo.sha256")] == 1
    assert got[("user_agent", "curl/8", "http.http_user_agent")] == 1
    assert all(o["capture_id"] == "c" * 64 for o in out.observables)


def test_limits_count_what_they_leave_out():
    _, indexed, out = run(LINES, max_events=2, max_observables=3)
    assert out.summary.events == 7 and out.summary.indexed == 2
    assert len(out.observables) == 3
    w = "\n".join(out.warnings)
    assert "5 of 7 events were counted but not indexed (limit 2 per capture)" in w
    assert "max_observables_per_capture" in w
