"""An instance in public mode with private, shared and public captures, built for the visibility
matrix (tests/test_access.py): crafted DNS captures (scapy) analysed by the real Suricata, each
holding one indicator they all share and one of its own, uploaded with each user's API key."""

from __future__ import annotations

import time
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from .web import client

SHARED_IOC = "common-pivot.example.net"
OWN = {"private": "alice-private.example.net", "shared": "alice-shared.example.net",
       "public": "bob-public.example.net"}
USERS = {"alice": "analyst", "bob": "analyst", "carol": "analyst", "gina": "analyst", "vera": "viewer",
         "root": "admin"}
GROUP = "blueteam"  # gina's group; the shared capture is shared with carol and with it
PASSWORD = "visibility password"
# who sees which capture: alice owns private and shared (shared with carol and group blueteam, of
# which gina is a member), bob owns public
SEES = {"anonymous": {"public"}, "vera": {"public"}, "bob": {"public"}, "carol": {"public", "shared"},
        "gina": {"public", "shared"},
        "alice": {"public", "shared", "private"}, "root": {"public", "shared", "private"}}


def dns_capture(path: Path, names: list[str], client_ip: str) -> Path:
    pkts = []
    for i, name in enumerate(names):
        q = (Ether() / IP(src=client_ip, dst="192.0.2.53") / UDP(sport=40000 + i, dport=53)
             / DNS(id=i + 1, rd=1, qd=DNSQR(qname=name)))
        r = (Ether() / IP(src="192.0.2.53", dst=client_ip) / UDP(sport=53, dport=40000 + i)
             / DNS(id=i + 1, qr=1, aa=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata="198.51.100.7")))
        q.time, r.time = 1_700_000_000 + i, 1_700_000_000 + i + 0.01
        pkts += [q, r]
    wrpcap(str(path), pkts)
    return path


def headers(keys: dict, who: str) -> dict:
    return {} if who == "anonymous" else {"x-api-key": keys[who]}


def upload_as(c, keys: dict, who: str, path: Path, name: str | None = None) -> dict:
    r = c.post("/api/v1/captures", files={"file": (name or path.name, path.read_bytes())}, headers=headers(keys, who))
    assert r.status_code in (202, 303), r.text
    url, deadline = f"/api/v1/captures/{r.json()['id']}", time.monotonic() + 90
    while time.monotonic() < deadline:
        row = c.get(url, headers=headers(keys, who)).json()
        if row["status"] in ("done", "failed"):
            assert row["status"] == "done", row
            return row
        time.sleep(0.05)
    raise AssertionError(f"{path.name} not analysed")


def build(home: Path, work: Path) -> dict:
    """The world: its home, the users' keys, the three captures' ids by visibility."""
    with client(home, mode="public") as c:
        accounts = c.app.state.instance.service.accounts
        keys = {}
        for name, role in USERS.items():
            accounts.add_user(name, role, PASSWORD)
            keys[name] = accounts.create_key(name, user=name)[1]
        accounts.add_group(GROUP)
        accounts.add_member(GROUP, "gina")
        ids = {}
        for n, (level, own) in enumerate(OWN.items()):
            path = dns_capture(work / f"{level}.pcap", [SHARED_IOC, own], f"10.9.0.{n + 1}")
            ids[level] = upload_as(c, keys, "bob" if level == "public" else "alice", path)["id"]
        set_to = {"shared": ("alice", {"visibility": "shared", "share_with": ["carol", f"group:{GROUP}"]}),
                  "public": ("bob", {"visibility": "public"})}
        for level, (who, body) in set_to.items():
            r = c.post(f"/api/v1/captures/{ids[level]}/visibility", json=body, headers=headers(keys, who))
            assert r.status_code == 200 and r.json()["visibility"] == level, r.text
        r = c.post(f"/api/v1/captures/{ids['private']}/labels", json={"kind": "family", "value": "alicesecret"},
                   headers=headers(keys, "alice"))
        assert r.status_code == 201, r.text
    return {"home": home, "keys": keys, "ids": ids}
