"""Per-capture memory follows the settings, not the number of distinct values in a capture:
observables and top talkers are bounded while every event is still indexed and counted."""

import ipaddress
from pathlib import Path

import dpkt

from packettotal.ingest import summary
from packettotal.service import PacketTotal

from .conftest import analyse, settings


def many_flows(path: Path, n: int) -> Path:
    """n one-packet UDP flows, each from its own address: n distinct flows, addresses, community ids."""
    base = int(ipaddress.ip_address("10.1.0.0"))
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f)
        for i in range(n):
            udp = dpkt.udp.UDP(sport=2000 + i, dport=9999, data=b"hello")
            udp.ulen = len(udp)
            ip = dpkt.ip.IP(src=(base + i).to_bytes(4, "big"), dst=bytes([198, 51, 100, 7]),
                            p=dpkt.ip.IP_PROTO_UDP, data=udp)
            ip.len = len(ip)
            w.writepkt(bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)), ts=1.7e9 + i)
    return path


def test_distinct_observables_are_bounded_and_said(tmp_path):
    pt = PacketTotal(settings(tmp_path / "home", max_observables_per_capture=500))
    try:
        row = analyse(pt, many_flows(tmp_path / "flows.pcap", 3000))
        assert row["status"] == "done", row["error"]
        assert row["summary"]["counts"]["flow"] == 3000 and row["summary"]["indexed"] >= 3000
        assert len(pt._db.capture_observables(row["id"])) == 500
        assert any("max_observables_per_capture" in w for w in row["warnings"]), row["warnings"]
        # every event is still searchable, the bound is on the pivot index only
        assert pt.search("event_type:flow AND dest_port:9999").total_hits == 3000
    finally:
        pt.close()


def test_top_talkers_stay_bounded_and_exact_at_the_top():
    agg = summary.Aggregates()
    for i in range(5 * summary.TALKERS_KEPT):
        agg.add({"event_type": "flow", "src_ip": f"10.0.{i // 256 % 256}.{i % 256}-{i}", "dest_ip": "big",
                 "flow": {"bytes_toserver": 10, "bytes_toclient": 0}})
        assert len(agg.talkers) <= 2 * summary.TALKERS_KEPT + 2
    top = agg.result()["top_talkers"]
    assert top[0] == {"ip": "big", "bytes": 10 * 5 * summary.TALKERS_KEPT}
